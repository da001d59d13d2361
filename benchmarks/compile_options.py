"""What XLA options do to the compile and the run of jaxstyle's programs.

python -m benchmarks.compile_options --height=192 [--repeats=3] [--steps=5]

For each option set (jaxstyle.xla's and XLA's defaults), in a fresh process
each, alternating, `--repeats` times: the CPU seconds (all threads: a compile
and a run use both cores) to compile and to run once the targets' program,
a solver's init and its step (the Keras preset, Tübingen × Starry Night,
jaxopt L-BFGS), and the step's median wall seconds over `--steps` steps.
CPU seconds are the figure to compare: they measure the work, which the
machine's other load changes less than the wall time. Prints a markdown
table of medians.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

SETS = {
    'XLA defaults': {},
    'level 1': {'xla_backend_optimization_level': 1},
    'older fusion emitters': {'xla_cpu_use_fusion_emitters': False},
    'both (jaxstyle.xla.once)': {'xla_backend_optimization_level': 1,
                                 'xla_cpu_use_fusion_emitters': False},
}


def child(height: int, steps: int, options: dict) -> dict:
  """The programs compiled with `options`, timed in this process."""
  import jax  # pylint: disable=g-import-not-at-top
  from benchmarks import run as bench  # pylint: disable=g-import-not-at-top
  from configs import keras_example  # pylint: disable=g-import-not-at-top
  from jaxstyle import image, optimize, targets, vgg  # pylint: disable=g-import-not-at-top
  from jaxstyle.app import config as config_lib  # pylint: disable=g-import-not-at-top
  config = keras_example.get_config()
  config.height = height
  content = image.load(bench.REPO / bench.CONTENT, height=height)
  style = image.load(bench.REPO / bench.STYLE, height=height, width=content.shape[1])
  spec = config_lib.spec(config)
  variables = spec.prepare(vgg.load_variables())
  cpu = time.process_time
  out = {}

  def timed(name, jitted, *args):
    began = cpu()
    compiled = jitted.lower(*args).compile(options)
    out[f'{name}_compile'] = cpu() - began
    began = cpu()
    result = jax.block_until_ready(compiled(*args))
    out[f'{name}_run'] = cpu() - began
    return compiled, result

  timed('targets', jax.jit(lambda v, c, s: targets.each(v, c, s, spec)),
        variables, content, [style])
  obj = config_lib.make_objective(config, content, style, variables)
  x = image.preprocess(content)
  solver = optimize.make('lbfgs', **dict(config.optim.lbfgs))
  _, state = timed('init', jax.jit(solver.init), x, obj)
  update, (x, state) = timed('step', jax.jit(solver.update), x, state, obj)
  walls = []
  for _ in range(steps):
    began = time.perf_counter()
    x, state = jax.block_until_ready(update(x, state, obj))
    walls.append(time.perf_counter() - began)
  out['step_wall'] = statistics.median(walls)
  return out


def main() -> None:
  if sys.argv[1:2] == ['--child']:
    print(json.dumps(child(int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))))
    return
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--height', type=int, default=192)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--steps', type=int, default=5)
  args = parser.parse_args()
  from benchmarks import run as bench  # pylint: disable=g-import-not-at-top
  runs = {name: [] for name in SETS}
  for _ in range(args.repeats):
    for name, options in SETS.items():
      cmd = [sys.executable, '-m', 'benchmarks.compile_options', '--child', str(args.height),
             str(args.steps), json.dumps(options)]
      proc = subprocess.run(cmd, cwd=bench.REPO, capture_output=True, text=True, check=True)
      runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
  keys = ['targets_compile', 'targets_run', 'init_compile', 'init_run', 'step_compile',
          'step_wall']
  lines = [f'`python -m benchmarks.compile_options --height={args.height} '
           f'--repeats={args.repeats} --steps={args.steps}`, medians', '',
           '| options | ' + ' | '.join(keys) + ' |', '| --- |' + ' ---: |' * len(keys)]
  for name, rs in runs.items():
    lines.append(f'| {name} | ' + ' | '.join(
        f'{statistics.median(r[k] for r in rs):.3f}' for k in keys) + ' |')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
