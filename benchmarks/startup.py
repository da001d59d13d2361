"""Start-up profile of a command-line run: where the seconds before step 0 go.

python -m benchmarks.startup --out=DIR [--sizes=128,192] [--repeats=3] [--steps=30]
    [--config=configs/keras_example.py] [--flag=--config.FIELD=VALUE ...]
    [--baseline=CHECKOUT [--baseline_python=PYTHON]]

Each run is its own process, launched as `python -m jaxstyle.main` would be
(this module's `child` mode imports jaxstyle.main, then runs it), with the
config's command-line defaults and only the images, height and steps set.
Cold and warm runs alternate: a cold run has an empty compilation cache
(XDG_CACHE_HOME and the workdir's parent both new and empty); a warm run
first runs the same command untimed with the same cache. The child times
the import of jaxstyle.main, the application's phases (their functions
wrapped with timers) and every compiled program (JAX's own compile events:
trace, lower to MLIR, XLA compile or persistent-cache read); step times come
from metrics.jsonl's Unix times. With --baseline, every run is made from
that checkout too, in turn with this one's. Writes DIR/startup.json and
DIR/startup.md (medians over the repeats).
"""
import argparse
import functools
import importlib
import json
import os
import pathlib
import re
import statistics
import sys
import threading
import time
from typing import Any

# The application's phases: label -> (module, attribute); one the code no
# longer has is left out of the table.
PHASES = {
    'input loading': ('jaxstyle.app.inputs', 'load_inputs'),
    'preflight': ('jaxstyle.app.memory', 'preflight'),
    'weights': ('jaxstyle.vgg', 'load_variables'),
    'objective (targets)': ('jaxstyle.app.config', 'make_objective'),
    'outputs at the end (loss curve)': ('jaxstyle.app.outputs', 'Recorder.close'),
}
# JAX's monitoring events of a compile, by what the table calls them.
_EVENTS = {'/jax/core/compile/jaxpr_trace_duration': 'trace',
           '/jax/core/compile/jaxpr_to_mlir_module_duration': 'lower',
           '/jax/core/compile/backend_compile_duration': 'compile'}
_CACHE_HIT = '/jax/compilation_cache/cache_hits'
SMALL_S = 0.1  # programs whose trace + lower + compile take less are summed in one row


def _timed(record: list, label: str, fn: Any) -> Any:
  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    began = time.time()
    try:
      return fn(*args, **kwargs)
    finally:
      record.append((label, began, time.time()))
  return wrapper


def child(launched: float, out: pathlib.Path, argv: list[str]) -> None:
  """Runs the CLI with argv in this process, timed; writes the timings to `out`."""
  import jaxstyle.main  # pylint: disable=g-import-not-at-top
  imported = time.time()
  from absl import app  # pylint: disable=g-import-not-at-top
  from jax import monitoring  # pylint: disable=g-import-not-at-top
  from jaxstyle.app import cli  # pylint: disable=g-import-not-at-top
  spans, events, phases = [], [], []
  monitoring.register_event_time_span_listener(
      lambda event, start, end, **kw: spans.append(
          (_EVENTS[event], kw.get('fun_name', '?'), start, end, threading.get_ident()))
      if event in _EVENTS else None)
  monitoring.register_event_listener(
      lambda event, **kw: events.append((time.time(), threading.get_ident()))
      if event == _CACHE_HIT else None)
  for label, (module, attribute) in PHASES.items():
    owner = importlib.import_module(module)
    *parents, name = attribute.split('.')
    for parent in parents:
      owner = getattr(owner, parent, None)
    if hasattr(owner, name):
      setattr(owner, name, _timed(phases, label, getattr(owner, name)))
  sys.argv = ['jaxstyle.main', *argv]
  try:
    app.run(jaxstyle.main.main, flags_parser=cli.parse_flags)
  finally:
    hit = lambda kind, start, end, thread: kind == 'compile' and any(
        start <= t <= end and th == thread for t, th in events)
    out.write_text(json.dumps({
        'imports_s': imported - launched,
        'phases': [(label, a - launched, b - launched) for label, a, b in phases],
        'programs': [{'kind': kind, 'name': name, 'start': a - launched,
                      'end': b - launched, 'cache_hit': hit(kind, a, b, thread)}
                     for kind, name, a, b, thread in spans]}))


def program_name(name: str) -> str:
  """A program's name as the three events give it ('f', 'jit(f)', 'jit_f') as 'f'."""
  return re.sub(r'^jit\((.*)\)$|^jit_(.*)$', lambda m: m[1] or m[2], name)


def programs(spans: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
  """Per program name: seconds traced, lowered and compiled (or read from the
  cache), summed over its compiles, and how many of them the cache served."""
  table: dict[str, dict[str, float]] = {}
  for s in spans:
    row = table.setdefault(program_name(s['name']), {'trace': 0.0, 'lower': 0.0, 'compile': 0.0,
                                       'compiles': 0, 'hits': 0})
    row[s['kind']] += s['end'] - s['start']
    if s['kind'] == 'compile':
      row['compiles'] += 1
      row['hits'] += s['cache_hit']
  return table


def one_run(args: argparse.Namespace, height: int, content: pathlib.Path, style: pathlib.Path,
            where: pathlib.Path, warm: bool, repo: pathlib.Path, python: str) -> dict[str, Any]:
  """One timed CLI run of the checkout `repo` by the interpreter `python`
  (after an untimed one with the same cache when `warm`)."""
  from benchmarks import run as bench  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(where, ignore_errors=True)
  where.mkdir(parents=True)
  env = {**os.environ, 'XDG_CACHE_HOME': str(where / 'cache')}
  flags = ['--config', args.config, f'--config.content={content}', f'--config.style={style}',
           f'--config.height={height}', f'--config.steps={args.steps}', *args.flag]
  timings = where / 'timings.json'
  child_cmd = lambda workdir: [python, '-m', 'benchmarks.startup', '--child',
                               str(time.time()), str(timings), '--', *flags,
                               f'--workdir={workdir}']
  if warm:
    bench.run_process(child_cmd(where / 'fill'), where / 'fill.log', env=env, cwd=repo)
  result = bench.run_process(child_cmd(where / 'run'), where / 'run.log', env=env, cwd=repo)
  data = json.loads(timings.read_text())
  records = [json.loads(l) for l in (where / 'run' / 'metrics.jsonl').read_text().splitlines()]
  at = {r['step']: r['time'] - result['launched'] for r in records}
  steps = sorted(at)
  first, second = steps[1], steps[-1]
  phase_s: dict[str, float] = {}
  for label, a, b in data['phases']:
    phase_s[label] = phase_s.get(label, 0.0) + b - a
  return {'wall_s': result['wall_s'], 'cpu_s': result['cpu_s'],
          'peak_rss_mb': result['peak_rss_mb'], 'imports_s': data['imports_s'],
          'phases': phase_s, 'programs': programs(data['programs']),
          'step0_s': at[0], 'first_steps_s': at[first] - at[0], 'first_steps': first,
          'steady_s_per_step': (at[second] - at[first]) / (second - first),
          'spans': data['programs'], 'phase_spans': data['phases']}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
  """Medians over repeats of every figure, programs by name."""
  med = lambda values: statistics.median(values) if values else None
  names = list(dict.fromkeys(n for r in runs for n in r['programs']))
  total = lambda r, n: sum(r['programs'][n][k] for k in ('trace', 'lower', 'compile'))
  big = [n for n in names if med([total(r, n) for r in runs if n in r['programs']]) >= SMALL_S]
  return {
      **{k: med([r[k] for r in runs]) for k in ('wall_s', 'cpu_s', 'peak_rss_mb', 'imports_s',
                                                 'step0_s', 'first_steps_s',
                                                 'steady_s_per_step')},
      'first_steps': runs[0]['first_steps'],
      'phases': {p: med([r['phases'][p] for r in runs if p in r['phases']])
                 for p in dict.fromkeys(p for r in runs for p in r['phases'])},
      'programs': {n: {'total_s': med([total(r, n) for r in runs if n in r['programs']]),
                       'compiles': runs[0]['programs'].get(n, {}).get('compiles', 0),
                       'hits': runs[0]['programs'].get(n, {}).get('hits', 0)} for n in big},
      'small': {'count': med([sum(r['programs'][n]['compiles'] for n in r['programs']
                                  if n not in big) for r in runs]),
                'total_s': med([sum(total(r, n) for n in r['programs'] if n not in big)
                                for r in runs])},
  }


def table(columns: dict[str, dict[str, Any]]) -> str:
  """The markdown table: one column per size and cache state."""
  heads = list(columns)
  f = lambda v, spec='.2f': '—' if v is None else format(v, spec)
  rows = [('imports (launch to `import jaxstyle.main` done)', lambda c: f(c['imports_s']))]
  for p in dict.fromkeys(p for c in columns.values() for p in c['phases']):
    rows.append((p, lambda c, p=p: f(c['phases'].get(p))))
  for n in dict.fromkeys(n for c in columns.values() for n in c['programs']):
    rows.append((f'compiled program `{n}`: trace + lower + compile (cache reads)',
                 lambda c, n=n: '—' if n not in c['programs'] else
                 f'{c["programs"][n]["total_s"]:.2f} ({c["programs"][n]["hits"]}/'
                 f'{c["programs"][n]["compiles"]})'))
  rows += [(f'other compiled programs (each under {SMALL_S} s): count, s',
            lambda c: f'{c["small"]["count"]:.0f}, {c["small"]["total_s"]:.2f}'),
           ('step 0 written, s after launch', lambda c: f(c['step0_s'])),
           ('first logged steps after step 0, s', lambda c: f'{f(c["first_steps_s"])} '
            f'({c["first_steps"]} steps)'),
           ('steady state, s per step (the later logged steps)',
            lambda c: f(c['steady_s_per_step'], '.3f')),
           ('whole process, wall s', lambda c: f(c['wall_s'])),
           ('whole process, CPU s', lambda c: f(c['cpu_s'], '.1f')),
           ('peak RSS, MB', lambda c: f(c['peak_rss_mb'], '.0f'))]
  lines = ['| | ' + ' | '.join(heads) + ' |', '| --- |' + ' ---: |' * len(heads)]
  lines += [f'| {label} | ' + ' | '.join(cell(columns[h]) for h in heads) + ' |'
            for label, cell in rows]
  return '\n'.join(lines)


def main() -> None:
  if sys.argv[1:2] == ['--child']:
    child(float(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[5:])
    return
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, type=pathlib.Path)
  parser.add_argument('--sizes', default='128,192')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--steps', type=int, default=30)
  parser.add_argument('--config', default='configs/keras_example.py')
  parser.add_argument('--flag', action='append', default=[],
                      help='a further CLI flag, e.g. --flag=--config.grad_norms=False')
  parser.add_argument('--baseline', type=pathlib.Path,
                      help='another checkout (with this benchmark) run in turn with this one')
  parser.add_argument('--baseline_python', default=sys.executable,
                      help="the baseline's interpreter (its environment); default this one")
  args = parser.parse_args()
  from benchmarks import run as bench  # pylint: disable=g-import-not-at-top
  out = args.out.resolve()
  out.mkdir(parents=True, exist_ok=True)
  checkouts = {'': (bench.REPO, sys.executable)}
  if args.baseline:
    checkouts[', baseline'] = (args.baseline.resolve(), args.baseline_python)
  runs: dict[str, list[dict[str, Any]]] = {}
  for height in (int(s) for s in args.sizes.split(',')):
    content, style = bench.prepare_inputs(out, height)
    for rep in range(args.repeats):
      for warm in (False, True):
        for label, (repo, python) in checkouts.items():
          name = f'{height} px {"warm" if warm else "cold"}{label}'
          where = out / f'{height}_{warm:d}_{rep}{"_b" if label else ""}'
          runs.setdefault(name, []).append(
              one_run(args, height, content, style, where, warm, repo, python))
          print(f'{name} repeat {rep}: step 0 at {runs[name][-1]["step0_s"]:.2f} s, '
                f'whole {runs[name][-1]["wall_s"]:.2f} s', flush=True)
  columns = {name: summary(rs) for name, rs in runs.items()}
  (out / 'startup.json').write_text(json.dumps({'args': vars(args),
                                                'runs': runs, 'summary': columns}, indent=1, default=str))
  command = ' '.join(['python -m benchmarks.startup', *sys.argv[1:]])
  text = f'`{command}`, median of {args.repeats}\n\n{table(columns)}\n'
  (out / 'startup.md').write_text(text)
  print(text)


if __name__ == '__main__':
  main()
