"""Benchmark: jaxstyle (jaxopt and optax L-BFGS) against a PyTorch baseline of
the same objective and against pastiche, on CPU.

python -m benchmarks.run --out=DIR [--sizes=128,256,384] [--steps=50] [--repeats=2]
    [--impls=jaxstyle,jaxstyle_defaults,jaxstyle_hugepages,jaxstyle_zoom,jaxstyle_direct,
             jaxstyle_nols,jaxstyle_warm,jaxstyle_optax,torch,pastiche]

Every implementation runs as its own process (A B C D E, repeated), timed from
process start. Writes DIR/results.json, DIR/results.md and DIR/loss_H.png.
"""
import argparse
import json
import math
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

import matplotlib
matplotlib.use('Agg')
from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from PIL import Image

from jaxstyle import image, weights

CONTENT = '../shared/images/tubingen.jpg'
STYLE = '../shared/images/starry_night.jpg'
STYLE_LAYERS = ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1',
                'block5_conv1')
DEEPEST = 'block5_conv2'
CLOCK_GHZ = 2.5
AGREE_RTOL = 1e-3
IMPLS = ('jaxstyle', 'jaxstyle_defaults', 'jaxstyle_hugepages', 'jaxstyle_zoom', 'jaxstyle_direct',
         'jaxstyle_nols', 'jaxstyle_warm', 'jaxstyle_optax', 'torch', 'pastiche')
# glibc's malloc asks for transparent huge pages for the blocks it maps (glibc 2.35+)
HUGE_PAGES = {'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}
LABELS = {'jaxstyle': 'jaxstyle (jaxopt L-BFGS)',
          'jaxstyle_defaults': 'jaxstyle (jaxopt L-BFGS), command-line defaults',
          'jaxstyle_hugepages': 'jaxstyle (jaxopt L-BFGS), command-line defaults, '
                                'GLIBC_TUNABLES=glibc.malloc.hugetlb=1',
          'jaxstyle_zoom': "jaxstyle (jaxopt L-BFGS, jaxopt's zoom line search)",
          'jaxstyle_direct': 'jaxstyle (jaxopt L-BFGS), direct convolutions (no Winograd)',
          'jaxstyle_nols': 'jaxstyle (jaxopt L-BFGS, no line search)',
          'jaxstyle_warm': 'jaxstyle (jaxopt L-BFGS), second run: warm compilation cache',
          'jaxstyle_optax': 'jaxstyle (optax L-BFGS)',
          'torch': 'PyTorch tutorial-style L-BFGS',
          'pastiche': 'pastiche CLI (different objective)'}
REPO = pathlib.Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
  """CPU model, cores and the FP32 peak assumed for the FLOP/s fraction."""
  if shutil.which('lscpu'):
    info = subprocess.run(['lscpu'], capture_output=True, text=True, check=False).stdout
  else:  # the same fields under other names
    info = pathlib.Path('/proc/cpuinfo').read_text().replace('model name', 'Model name', 1)
    info = info.replace('flags', 'Flags', 1)
  fields = {k.strip(): v for k, v in (l.split(':', 1) for l in info.splitlines() if ':' in l)}
  model = fields.get('Model name', platform.processor()).strip()
  avx512 = 'avx512f' in fields.get('Flags', '')
  # Two FMA units per core: 2 x (16 lanes AVX-512 or 8 lanes AVX2) x 2 FLOP.
  per_cycle = 64 if avx512 else 32
  cores = os.cpu_count() or 1
  return {'cpu': model, 'cores': cores, 'avx512': avx512, 'clock_ghz': CLOCK_GHZ,
          'flop_per_cycle_per_core': per_cycle,
          'peak_gflops': cores * CLOCK_GHZ * per_cycle, 'sgemm_gflops': sgemm_gflops(),
          'python': platform.python_version()}


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
  """FP32 matmul rate of numpy's BLAS on all cores, best of `repeats`: the
  practical ceiling of this machine (the nominal peak assumes a clock and FMA
  width that a virtual machine hides, e.g. AVX-512 on 256-bit units on AMD)."""
  a, b = np.random.default_rng(0).random((2, n, n), dtype=np.float32)
  a @ b
  best = math.inf
  for _ in range(repeats):
    start = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best / 1e9


def eval_flops(height: int, width: int) -> float:
  """FLOPs of one loss+gradient evaluation: 2 x forward (a gradient with
  respect to the input only), 2 FLOPs per multiply-add, VGG19 convolutions
  up to block5_conv2 at their pooled sizes."""
  macs = 0
  for name, cin, cout in weights.LAYERS[:[l[0] for l in weights.LAYERS].index(DEEPEST) + 1]:
    k = int(name[5]) - 1  # poolings before blockN
    macs += 9 * cin * cout * (height >> k) * (width >> k)
  return 2 * 2 * macs


def prepare_inputs(out: pathlib.Path, height: int) -> tuple[pathlib.Path, pathlib.Path]:
  """Content at `height` (width by its aspect) and style resized to exactly the
  content's size, both Lanczos as jaxstyle loads them, saved losslessly so
  every implementation reads the same pixels."""
  content = image.load(REPO / CONTENT, height=height)
  style = image.load(REPO / STYLE, height=height, width=content.shape[1])
  paths = out / f'content_{height}.png', out / f'style_{height}.png'
  for path, rgb in zip(paths, (content, style)):
    Image.fromarray(rgb.astype(np.uint8)).save(path)
  return paths


def run_process(cmd: list[str], log: pathlib.Path, env: dict[str, str] | None = None,
                cwd: pathlib.Path = REPO) -> dict[str, float]:
  """Runs cmd from `cwd` (default the repo root) in `env` (default this
  process's); whole wall time, the child's CPU time (its waited-for
  descendants included), peak RSS and the Unix time it was launched."""
  launched = time.time()
  start = time.perf_counter()
  with open(log, 'w') as f:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - start
  code = os.waitstatus_to_exitcode(status)
  if code:
    raise RuntimeError(f'{" ".join(cmd)} failed ({code}); see {log}')
  return {'wall_s': wall, 'cpu_s': usage.ru_utime + usage.ru_stime,
          'peak_rss_mb': usage.ru_maxrss / 1024, 'launched': launched}


def jaxopt_counter_leaves() -> dict[str, int]:
  """Indices, from the end, of jaxopt's evaluation counters among the
  checkpoint's (x, state) leaves: after fun's aux in the state, so the same
  whatever the aux holds."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxstyle import optimize  # pylint: disable=g-import-not-at-top
  solver = optimize.make('lbfgs', lambda x, p: (jnp.sum(x**2), None))
  x = jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32)
  leaves = jax.tree_util.tree_flatten_with_path((x, optimize.state_shape(solver, x, None)))[0]
  names = [jax.tree_util.keystr(path) for path, _ in leaves]
  return {counter: next(i - len(names) for i, n in enumerate(names) if counter in n)
          for counter in ('num_fun_eval', 'num_linesearch_iter')}


def evaluations(checkpoint: pathlib.Path, counters: dict[str, int], linesearch: bool) -> int:
  """Loss-and-gradient evaluations of a jaxopt L-BFGS run: one at the start and
  one per line-search iteration, or one per step without a search.
  (`num_fun_eval` also counts, once per step, the start point's aux that the
  zoom search no longer evaluates: optimize.jaxopt_lbfgs passes it in.)"""
  with np.load(checkpoint) as ckpt:
    leaves = sorted(k for k in ckpt.files if k.startswith('leaf_'))
    read = lambda counter: int(ckpt[leaves[counters[counter]]])
    return 1 + read('num_linesearch_iter') if linesearch else read('num_fun_eval')


def run_jaxstyle(content: pathlib.Path, style: pathlib.Path, height: int, steps: int,
                 optimizer: str, workdir: pathlib.Path, counters: dict[str, int],
                 *flags: str, warm: bool = False, log_every: int = 1,
                 defaults: bool = False, environment: dict[str, str] | None = None
                 ) -> dict[str, Any]:
  """One CLI run, timed from process start, logging every `log_every` steps
  without gradient norms, images or events; with `defaults`, the command
  line's defaults instead. Each run has a compilation cache of its own
  (XDG_CACHE_HOME in `workdir`), so it starts cold, as a user's first run
  does; `warm` runs the same command once before, untimed, to fill it.
  `environment`: variables set for the run besides."""
  shutil.rmtree(workdir, ignore_errors=True)
  run_dir = workdir / 'run'
  quiet = [f'--config.optimizer={optimizer}', f'--config.log_every={log_every}',
           '--config.grad_norms=False', '--config.save_every=0', '--config.checkpoint_every=0',
           '--config.tensorboard=False']
  cmd = [sys.executable, '-m', 'jaxstyle.main', '--config', 'configs/keras_example.py',
         f'--config.content={content}', f'--config.style={style}',
         f'--config.height={height}', f'--config.steps={steps}',
         *([] if defaults else quiet), *flags, f'--workdir={run_dir}']
  env = {**os.environ, **(environment or {}), 'XDG_CACHE_HOME': str(workdir / 'cache')}
  if warm:
    run_process(cmd, workdir.with_suffix('.cold.log'), env=env)
    shutil.rmtree(run_dir)
  result = run_process(cmd, workdir.with_suffix('.log'), env=env)
  records = [json.loads(l) for l in (run_dir / 'metrics.jsonl').read_text().splitlines()]
  # Each record carries the Unix time it was logged: the loss curve runs from
  # the launch to that moment, as torch's does from its t0 (the final image,
  # checkpoint and loss-curve writes come after the last record and count
  # only in the whole-run wall). Start-up is the time before the solve clock.
  since_launch = [r['time'] - result['launched'] for r in records]
  startup = since_launch[0] - records[0]['wall_s']
  evals = None
  if optimizer == 'lbfgs':
    evals = evaluations(run_dir / 'checkpoint.npz', counters,
                        '--config.optim.lbfgs.linesearch=none' not in flags)
  return {**result, 'startup_s': startup, 'loss': [r['loss'] for r in records],
          'wall_from_start_s': since_launch,
          'evaluations': evals}


def run_torch(content: pathlib.Path, style: pathlib.Path, steps: int,
              out: pathlib.Path, *flags: str) -> dict[str, Any]:
  cmd = [sys.executable, '-m', 'benchmarks.torch_baseline', f'--content={content}',
         f'--style={style}', f'--weights={weights.ensure()}', f'--steps={steps}',
         f'--t0={time.time()}', f'--out={out}', *flags]
  result = run_process(cmd, out.with_suffix('.log'))
  data = json.loads(out.read_text())
  return {**result, 'loss': data['loss'], 'wall_from_start_s': data['wall_s'],
          'evaluations': data['evaluations'], 'steady_s_per_eval': data['steady_s_per_eval'],
          'setup_s': data['setup_s'], 'torch_version': data['torch_version'],
          'device_name': data['device_name']}


def run_pastiche(content: pathlib.Path, style: pathlib.Path, side: int, steps: int,
                 out: pathlib.Path) -> dict[str, Any]:
  cmd = [sys.executable, '-m', 'pastiche', '--no-verbose', '--optimizer', 'lbfgs',
         '--num-steps', str(steps), '--pooling', 'max', '--size', str(side),
         '--style-size', str(side), '--content-layers', 'block5_relu2',
         '--style-layers', *(l.replace('conv', 'relu') for l in STYLE_LAYERS),
         '--content', str(content), '--styles', str(style), '--output', str(out)]
  return run_process(cmd, out.with_suffix('.log'))


def run_module(module: str, *args: str, log: pathlib.Path) -> str:
  """Runs `python -m module args` from the repo root, its output into `log`;
  its stdout."""
  cmd = [sys.executable, '-m', module, *args]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
  log.write_text(proc.stdout + proc.stderr)
  if proc.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}); see {log}')
  return proc.stdout


def last_json_line(stdout: str) -> Any:
  return json.loads(stdout.strip().splitlines()[-1])


def steady_state(content: pathlib.Path, style: pathlib.Path, height: int,
                 log: pathlib.Path, conv_algorithm: str = 'auto') -> dict[str, float]:
  return last_json_line(run_module(
      'benchmarks.jax_steady', f'--content={content}', f'--style={style}',
      f'--height={height}', f'--conv_algorithm={conv_algorithm}', log=log))


def first_at_most(loss: list[float], times: list[float], target: float) -> float | None:
  return next((t for l, t in zip(loss, times) if l <= target), None)


def median(values: list[Any]) -> Any:
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


def summarise(height: int, width: int, runs: dict[str, list[dict[str, Any]]],
              steady: dict[str, dict[str, float]], info: dict[str, Any]) -> dict[str, Any]:
  """Medians over repeats, the iteration-0 agreement and time-to-torch-loss."""
  torch_runs = runs['torch']
  torch_final = median([r['loss'][-1] for r in torch_runs])
  torch_wall = median([r['wall_s'] for r in torch_runs])
  flops = eval_flops(height, width)
  rows = {}
  for impl, rs in runs.items():
    row = {'wall_s': median([r['wall_s'] for r in rs]),
           'peak_rss_mb': median([r['peak_rss_mb'] for r in rs]),
           'final_loss': median([r['loss'][-1] for r in rs]) if 'loss' in rs[0] else None,
           'loss0': rs[0]['loss'][0] if 'loss' in rs[0] else None,
           'evaluations': median([r.get('evaluations') for r in rs]),
           'steady_s_per_eval': None, 'compile_s': None}
    if impl.startswith('jaxstyle'):
      own = steady['direct' if impl == 'jaxstyle_direct' else 'auto']
      row['steady_s_per_eval'] = own['steady_s_per_eval']
      row['compile_s'] = None if impl == 'jaxstyle_warm' else own['compile_s']
      row['startup_s'] = median([r['startup_s'] for r in rs])
      reach = median([first_at_most(r['loss'], r['wall_from_start_s'], torch_final) for r in rs])
      row['time_to_torch_loss_s'] = reach
      row['ratio_to_torch_wall'] = None if reach is None else reach / torch_wall
    if impl == 'torch':
      row['steady_s_per_eval'] = median([r['steady_s_per_eval'] for r in rs])
    if row['steady_s_per_eval']:
      row['gflops'] = flops / row['steady_s_per_eval'] / 1e9
      row['peak_fraction'] = row['gflops'] / info['peak_gflops']
      row['sgemm_fraction'] = row['gflops'] / info['sgemm_gflops']
    rows[impl] = row
  j0, t0 = rows['jaxstyle']['loss0'], rows['torch']['loss0']
  return {'height': height, 'width': width, 'eval_gflop': flops / 1e9,
          'iter0': {'jaxstyle': j0, 'torch': t0, 'rel_diff': abs(j0 - t0) / abs(t0),
                    'agree': abs(j0 - t0) <= AGREE_RTOL * abs(t0)},
          'rows': rows}


def fmt(value: Any, spec: str = '.2f') -> str:
  return '—' if value is None else format(value, spec)


def table(summary: dict[str, Any], steps: int, repeats: int) -> str:
  h, w = summary['height'], summary['width']
  iter0 = summary['iter0']
  lines = [f'### {h}x{w} px, {steps} L-BFGS iterations, median of {repeats}', '',
           f'Iteration-0 loss: jaxstyle {iter0["jaxstyle"]:.6e}, torch {iter0["torch"]:.6e}, '
           f'relative difference {iter0["rel_diff"]:.2e} '
           f'({"AGREE" if iter0["agree"] else "DISAGREE"} within {AGREE_RTOL:g}). '
           f'One evaluation = {summary["eval_gflop"]:.1f} GFLOP.', '',
           '| implementation | whole-run wall s | compile s | steady s/eval | evaluations '
           '| final loss | peak RSS MB | time to torch final loss s (ratio to torch wall) '
           '| GFLOP/s (% of assumed peak, % of sgemm) |',
           '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
  for impl, r in summary['rows'].items():
    reach = '—'
    if impl.startswith('jaxstyle'):
      reach = ('not reached' if r['time_to_torch_loss_s'] is None else
               f'{r["time_to_torch_loss_s"]:.1f} ({r["ratio_to_torch_wall"]:.2f})')
    evals = fmt(r['evaluations'], '.0f')
    if impl == 'jaxstyle_optax':
      evals = 'n/a'
    flops = '—' if not r.get('gflops') else (
        f'{r["gflops"]:.1f} ({100 * r["peak_fraction"]:.0f}%, {100 * r["sgemm_fraction"]:.0f}%)')
    lines.append(f'| {LABELS[impl]} | {r["wall_s"]:.1f} | {fmt(r["compile_s"])} '
                 f'| {fmt(r["steady_s_per_eval"], ".3f")} | {evals} '
                 f'| {fmt(r["final_loss"], ".4e")} | {r["peak_rss_mb"]:.0f} | {reach} | {flops} |')
  return '\n'.join(lines)


def plot(path: pathlib.Path, summary: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> None:
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for impl in (i for i in runs if i != 'pastiche'):
    for i, r in enumerate(runs[impl]):
      ax.plot(r['wall_from_start_s'], r['loss'], color=f'C{IMPLS.index(impl)}',
              alpha=1.0 if i == 0 else 0.35, label=LABELS[impl] if i == 0 else None)
  if 'pastiche' in runs:
    ax.axvline(summary['rows']['pastiche']['wall_s'], color=f'C{IMPLS.index("pastiche")}',
               linestyle='--', label='pastiche whole run (own loss, not plotted)')
  ax.set(yscale='log', xlabel='wall s since process start', ylabel='loss',
         title=f'{summary["height"]}x{summary["width"]} px, Keras-example objective')
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, type=pathlib.Path)
  parser.add_argument('--sizes', default='128,256,384')
  parser.add_argument('--steps', type=int, default=50)
  parser.add_argument('--repeats', type=int, default=2)
  parser.add_argument('--impls', default=','.join(IMPLS),
                      help='comma-separated; jaxstyle and torch always run')
  args = parser.parse_args()
  asked = set(args.impls.split(','))
  if asked - set(IMPLS):
    parser.error(f'--impls: unknown {sorted(asked - set(IMPLS))}; choose from {IMPLS}')
  impls = [i for i in IMPLS if i in {'jaxstyle', 'torch', *asked}]
  out = args.out.resolve()
  out.mkdir(parents=True, exist_ok=True)
  info = machine()
  counters = jaxopt_counter_leaves()
  weights.ensure()
  results = {'machine': info, 'steps': args.steps, 'repeats': args.repeats, 'sizes': []}
  tables = []
  for height in (int(s) for s in args.sizes.split(',')):
    work = out / str(height)
    work.mkdir(exist_ok=True)
    content, style = prepare_inputs(work, height)
    width = Image.open(content).width
    runners = {
        'jaxstyle': lambda rep: run_jaxstyle(content, style, height, args.steps, 'lbfgs',
                                             work / f'jaxstyle_r{rep}', counters),
        'jaxstyle_defaults': lambda rep: run_jaxstyle(
            content, style, height, args.steps, 'lbfgs', work / f'defaults_r{rep}', counters,
            defaults=True),
        'jaxstyle_hugepages': lambda rep: run_jaxstyle(
            content, style, height, args.steps, 'lbfgs', work / f'hugepages_r{rep}', counters,
            defaults=True, environment=HUGE_PAGES),
        'jaxstyle_direct': lambda rep: run_jaxstyle(
            content, style, height, args.steps, 'lbfgs', work / f'direct_r{rep}', counters,
            '--config.conv_algorithm=direct'),
        'jaxstyle_zoom': lambda rep: run_jaxstyle(
            content, style, height, args.steps, 'lbfgs', work / f'zoom_r{rep}', counters,
            '--config.optim.lbfgs.linesearch=zoom'),
        'jaxstyle_nols': lambda rep: run_jaxstyle(
            content, style, height, args.steps, 'lbfgs', work / f'nols_r{rep}', counters,
            '--config.optim.lbfgs.linesearch=none'),
        'jaxstyle_warm': lambda rep: run_jaxstyle(content, style, height, args.steps, 'lbfgs',
                                                  work / f'warm_r{rep}', counters, warm=True),
        'jaxstyle_optax': lambda rep: run_jaxstyle(content, style, height, args.steps,
                                                   'optax_lbfgs', work / f'optax_r{rep}',
                                                   counters),
        'torch': lambda rep: run_torch(content, style, args.steps, work / f'torch_r{rep}.json'),
        'pastiche': lambda rep: run_pastiche(content, style, max(height, width), args.steps,
                                             work / f'pastiche_r{rep}.png'),
    }
    runs = {impl: [] for impl in impls}
    for rep in range(args.repeats):
      for impl in impls:
        runs[impl].append(runners[impl](rep))
      print(f'{height} px repeat {rep}: ' + ', '.join(
          f'{impl} {runs[impl][-1]["wall_s"]:.1f} s' for impl in impls), flush=True)
    steady = {algorithm: steady_state(content, style, height,
                                      work / f'jax_steady_{algorithm}.log', algorithm)
              for algorithm in ('auto', 'direct')
              if algorithm == 'auto' or 'jaxstyle_direct' in impls}
    summary = summarise(height, width, runs, steady, info)
    plot(out / f'loss_{height}.png', summary, runs)
    tables.append(table(summary, args.steps, args.repeats))
    print('\n' + tables[-1] + '\n', flush=True)
    results['sizes'].append({**summary, 'runs': runs, 'jax_steady': steady})
    (out / 'results.json').write_text(json.dumps(results, indent=1))
  header = (f'# jaxstyle benchmark\n\n`python -m benchmarks.run --out={args.out} '
            f'--sizes={args.sizes} --steps={args.steps} --repeats={args.repeats} '
            f'--impls={",".join(impls)}`\n\n'
            f'Machine: {info["cpu"]}, {info["cores"]} cores, AVX-512: {info["avx512"]}. '
            f'Assumed FP32 peak {info["peak_gflops"]:.0f} GFLOP/s = {info["cores"]} cores x '
            f'{CLOCK_GHZ} GHz x {info["flop_per_cycle_per_core"]} FLOP/cycle; numpy FP32 '
            f'matmul (2048x2048, best of 5) reaches {info["sgemm_gflops"]:.0f} GFLOP/s here. '
            'GFLOP/s counts one evaluation as 2x the forward FLOPs of the VGG19 trunk '
            f'up to {DEEPEST}.\n\n')
  (out / 'results.md').write_text(header + '\n\n'.join(tables) + '\n')
  print(f'wrote {out}/results.md, results.json, loss_*.png')


if __name__ == '__main__':
  main()
