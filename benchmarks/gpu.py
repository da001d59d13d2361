"""Benchmark on one GPU: jaxstyle at each precision against the PyTorch
baseline of the same objective, compile shown apart; the device's ceilings,
the compile's phases and the largest image that fits.

python -m benchmarks.gpu --out=DIR [--stages=STAGE,...] [--repeats=1] [--budget_s=420]
    [--impls=jaxstyle,jaxstyle_tf32,jaxstyle_bf16,torch,torch_tf32]

Stages, run in the order given (default: ceilings, solve:512:500, compile:512,
largest, solve:1024:100, solve:2048:20, the issue's targets first):
  ceilings[:N]     matrix-product TFLOP/s at each precision (benchmarks.device_probe)
  solve:H:S        S L-BFGS iterations of the Keras preset at H px high
                   (Tübingen x Starry Night as benchmarks.run prepares them), each
                   implementation its own process, timed from its launch
  compile:H        a cold start's phases at H px (benchmarks.device_probe)
  largest[:H1:H2]  the largest image that fits, without and with remat
  precision:H:S    benchmarks.precision with tf32 and bf16 against float32
  sweep:H          benchmarks.sweep_batch, K vmapped members against K solves
  memfit[:H]       benchmarks.memory_fit at float32 and bf16 (at 512, 1024 and
                   2048 px, or H): jaxstyle.app.memory's estimate against the compiled
                   peak, to check the fit made without a GPU

`benchmarks/README.md` says what each column measures. A stage or run that
would start after --budget_s seconds is skipped and marked so, to fit a lease.
Writes DIR/gpu.json after every run and DIR/gpu.md at the end.
"""
import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import time
from typing import Any

import jax
from PIL import Image

from benchmarks import run as bench

IMPLS = {  # name: (label, command-line flags)
    'jaxstyle': ("jaxstyle, 'highest' (float32)", ('--config.precision=highest',)),
    'jaxstyle_tf32': ("jaxstyle, 'tf32'", ('--config.precision=tf32',)),
    'jaxstyle_bf16': ("jaxstyle, 'bf16'", ('--config.precision=bf16',)),
    'torch': ('PyTorch tutorial-style L-BFGS, float32 convolutions', ()),
    'torch_tf32': ('PyTorch tutorial-style L-BFGS, TF32 convolutions (its default)',
                   ('--tf32',)),
}
BASELINE = {'jaxstyle': 'torch', 'jaxstyle_tf32': 'torch_tf32', 'jaxstyle_bf16': 'torch_tf32'}
STAGES = ('ceilings', 'solve:512:500', 'compile:512', 'largest', 'solve:1024:100',
          'solve:2048:20')


class Deadline:
  """Seconds since the benchmark began, against --budget_s."""

  def __init__(self, budget_s: float):
    self.start, self.budget_s = time.perf_counter(), budget_s

  def passed(self) -> bool:
    return time.perf_counter() - self.start > self.budget_s

  def log(self, message: str) -> None:
    print(f'[{time.perf_counter() - self.start:6.1f} s] {message}', flush=True)


def solve_row(run: dict[str, Any], steps: int, eval_flops: float) -> dict[str, Any]:
  """One run's figures. The solve excludes start-up and compile: jaxstyle's
  from the step-0 record (logged after the step compiled) to the last, torch's
  from the end of its first closure to the end of its last (S - 1 iterations),
  both scaled to S iterations."""
  times = run['wall_from_start_s']
  if 'startup_s' in run:  # jaxstyle: records at 0, every log_every, and S
    per_iter = (times[-1] - times[0]) / steps
    evals = None if run['evaluations'] is None else run['evaluations'] - 1
  else:  # torch: a loss per closure, then the last iterate's
    per_iter = (times[steps - 1] - times[0]) / (steps - 1)
    evals = steps
  row = {'wall_s': run['wall_s'], 'to_first_loss_s': times[0], 'per_iter_s': per_iter,
         'solve_s': per_iter * steps, 'final_loss': run['loss'][-1], 'loss0': run['loss'][0],
         'evaluations': evals}
  if evals:
    row['tflops'] = eval_flops * evals / row['solve_s'] / 1e12
  return row


def solve(out: pathlib.Path, height: int, steps: int, impls: list[str], repeats: int,
          torch_device: str, deadline: Deadline, save) -> dict[str, Any]:
  """Each implementation's runs at one size, alternating, each saved as it ends."""
  counters = bench.jaxopt_counter_leaves()
  work = out / str(height)
  work.mkdir(exist_ok=True)
  content, style = bench.prepare_inputs(work, height)
  width = Image.open(content).width
  log_every = max(1, steps // 25)
  runs = {impl: [] for impl in impls}
  size = {'height': height, 'width': width, 'steps': steps, 'log_every': log_every,
          'eval_gflop': bench.eval_flops(height, width) / 1e9, 'runs': runs}
  for rep in range(repeats):
    for impl in impls:
      if deadline.passed():
        deadline.log(f'{height} px {impl}: skipped, past --budget_s')
        continue
      flags = IMPLS[impl][1]
      if impl.startswith('torch'):
        run = bench.run_torch(content, style, steps, work / f'{impl}_r{rep}.json',
                              f'--device={torch_device}', *flags)
      else:
        run = bench.run_jaxstyle(content, style, height, steps, 'lbfgs',
                                 work / f'{impl}_r{rep}', counters, *flags,
                                 log_every=log_every)
      runs[impl].append(run)
      row = solve_row(run, steps, size['eval_gflop'] * 1e9)
      deadline.log(f'{height} px {impl}: whole {row["wall_s"]:.1f} s, first loss '
                   f'{row["to_first_loss_s"]:.1f} s, {steps} its {row["solve_s"]:.2f} s, '
                   f'loss {row["final_loss"]:.4e}')
      save(size)
  return size


def solve_table(size: dict[str, Any]) -> str:
  """Medians over repeats, with each jaxstyle row against its torch baseline."""
  steps, flops = size['steps'], size['eval_gflop'] * 1e9
  rows = {impl: {k: bench.median([solve_row(r, steps, flops).get(k) for r in rs])
                 for k in ('wall_s', 'to_first_loss_s', 'per_iter_s', 'solve_s', 'final_loss',
                           'loss0', 'evaluations', 'tflops')}
          for impl, rs in size['runs'].items() if rs}
  lines = [f'### {size["height"]}x{size["width"]} px, {steps} L-BFGS iterations '
           f'(one evaluation {size["eval_gflop"]:.0f} GFLOP)', '',
           '| implementation | whole run s | launch to first loss s | '
           f'{steps} iterations s (excl. start-up) | s/iteration | evaluations | '
           "loss after them | TFLOP/s | speed-up over its torch row's iterations | "
           "time to torch's float32 final loss s |",
           '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
  target = rows.get('torch', {}).get('final_loss')
  for impl, r in rows.items():
    base = rows.get(BASELINE.get(impl), {}).get('solve_s')
    ratio = '—' if base is None else f'{base / r["solve_s"]:.2f}×'
    reach = '—'
    if target is not None and impl.startswith('jaxstyle'):
      hits = [bench.first_at_most(run['loss'], run['wall_from_start_s'], target)
              for run in size['runs'][impl]]
      reach = bench.fmt(bench.median(hits), '.1f') if any(h is not None for h in hits) else 'not reached'
    lines.append(f'| {IMPLS[impl][0]} | {r["wall_s"]:.1f} | {r["to_first_loss_s"]:.1f} | '
                 f'{r["solve_s"]:.2f} | {r["per_iter_s"] * 1e3:.1f} ms | '
                 f'{bench.fmt(r["evaluations"], ".0f")} | {r["final_loss"]:.4e} | '
                 f'{bench.fmt(r["tflops"], ".1f")} | {ratio} | {reach} |')
  if 'jaxstyle' in rows and 'torch' in rows:
    j0, t0 = rows['jaxstyle']['loss0'], rows['torch']['loss0']
    lines += ['', f'Iteration-0 loss, float32 rows: jaxstyle {j0:.6e}, torch {t0:.6e} '
              f'(relative difference {abs(j0 - t0) / abs(t0):.1e}).']
  return '\n'.join(lines)


def _stage(token: str) -> tuple[str, list[int]]:
  name, *numbers = token.split(':')
  arity = {'ceilings': (0, 1), 'solve': (2,), 'compile': (1,), 'largest': (0, 2),
           'precision': (2,), 'sweep': (1,), 'memfit': (0, 1)}
  if (name not in arity or len(numbers) not in arity[name]
      or not all(n.isdigit() for n in numbers) or (name == 'solve' and int(numbers[1]) < 2)):
    raise ValueError(token)  # solve needs 2 steps: torch's window is its 2nd..Sth closure
  return name, [int(n) for n in numbers]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, type=pathlib.Path)
  parser.add_argument('--stages', default=','.join(STAGES),
                      help='comma-separated, run in this order (see the module doc)')
  parser.add_argument('--impls', default=','.join(IMPLS))
  parser.add_argument('--repeats', type=int, default=1)
  parser.add_argument('--budget_s', type=float, default=420)
  parser.add_argument('--budget_gib', type=float,
                      help="largest: bytes to fit (default: the device's free memory)")
  parser.add_argument('--torch_device', default='cuda', help="the baseline's; 'cpu' to try it out")
  parser.add_argument('--sweep_ks', default='1,4,8', help='sweep: batch sizes')
  args = parser.parse_args()
  impls = args.impls.split(',')
  if set(impls) - set(IMPLS):
    parser.error(f'--impls: unknown {sorted(set(impls) - set(IMPLS))}; choose from {list(IMPLS)}')
  try:
    stages = [_stage(token) for token in args.stages.split(',')]
  except ValueError as e:
    parser.error(f'--stages: {e} is not one of the forms in --help')
  # This process only orchestrates: its few JAX calls stay off the GPU, whose
  # memory the children each need whole.
  jax.config.update('jax_platforms', 'cpu')
  out = args.out.resolve()
  out.mkdir(parents=True, exist_ok=True)
  deadline = Deadline(args.budget_s)
  nvidia = subprocess.run(['nvidia-smi', '--query-gpu=name,memory.total,clocks.max.sm',
                           '--format=csv,noheader'], capture_output=True, text=True,
                          check=False) if shutil.which('nvidia-smi') else None
  results = {'command': ' '.join(sys.argv), 'date': time.strftime('%Y-%m-%d'),
             'gpu': nvidia.stdout.strip() if nvidia else None, 'cpu': bench.machine()['cpu'],
             'stages': []}
  tables = []
  for name, numbers in stages:
    token = ':'.join([name, *map(str, numbers)])
    if deadline.passed():
      deadline.log(f'{token}: skipped, past --budget_s')
      continue
    deadline.log(f'{token} ...')
    entry = {'stage': token}
    results['stages'].append(entry)
    save = lambda value, entry=entry: (entry.update(result=value), (out / 'gpu.json').write_text(
        json.dumps(results, indent=1)))
    try:
      if name == 'solve':
        size = solve(out, *numbers, impls, args.repeats, args.torch_device, deadline, save)
        tables.append(solve_table(size))
      elif name in ('ceilings', 'compile', 'largest'):
        flag = {'ceilings': ['--n={}'], 'compile': ['--height={}'],
                'largest': ['--probe_heights={},{}']}[name][:1 if numbers else 0]
        extra = [f'--budget_gib={args.budget_gib}'] if name == 'largest' and args.budget_gib else []
        save(bench.last_json_line(bench.run_module(
            'benchmarks.device_probe', name, *(f.format(*numbers) for f in flag), *extra,
            log=out / f'{name}.log')))
        tables.append(f'{token}: `{json.dumps(entry["result"])}`')
      elif name == 'precision':
        height, steps = numbers
        bench.run_module('benchmarks.precision', f'--out={out}', f'--height={height}',
                         f'--steps={steps}',
                         '--variants=highest/direct,highest/direct/1e-6,tf32/direct,bf16/direct',
                         log=out / 'precision.log')
        save(json.loads((out / 'precision.json').read_text()))
        tables.append((out / 'precision.md').read_text())
      elif name == 'memfit':
        fits = []
        for precision in ('highest', 'bf16'):
          output = bench.run_module('benchmarks.memory_fit', f'--precision={precision}',
                                    *[f'--heights={n}' for n in numbers],
                                    log=out / f'memfit_{precision}.log')
          fits.append(bench.last_json_line(output))
          tables.append(output.strip().rsplit('\n', 1)[0])
        save(fits)
      else:
        bench.run_module('benchmarks.sweep_batch', f'--out={out}', f'--height={numbers[0]}',
                         '--steps=20', f'--ks={args.sweep_ks}', log=out / 'sweep.log')
        save(json.loads((out / 'sweep_batch.json').read_text()))
        tables.append((out / 'sweep_batch.md').read_text())
    except RuntimeError as e:
      save({'error': str(e)})
    deadline.log(f'{token}: {json.dumps(entry.get("result"))[:300] if name != "solve" else "done"}')
  header = (f'# jaxstyle on a GPU\n\n`{results["command"]}`, {results["date"]}; '
            f'GPU: {results["gpu"]}; host CPU: {results["cpu"]}.\n\n')
  (out / 'gpu.md').write_text(header + '\n\n'.join(tables) + '\n')
  print('\n\n'.join(tables))
  print(f'wrote {out}/gpu.md and gpu.json')


if __name__ == '__main__':
  main()
