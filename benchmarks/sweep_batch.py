"""Benchmark: K settings of one objective as one vmapped batch against K
sequential solves, in one process.

python -m benchmarks.sweep_batch --out=DIR [--height=128] [--steps=20] [--ks=1,4,8,16]
    [--linesearch=NAME]

Both sides solve the same K members (style weights spread over 1e2..1e5,
seeds 0..K-1, init from the content): the batch with `jaxstyle.app.batch.solve`
(one compile), the sequence with `jaxstyle.optimize.minimize` one member after
another (one compile, reused). Sides alternate per K, the batch first. Writes
DIR/sweep_batch.json and DIR/sweep_batch.md.
"""
import argparse
import dataclasses
import json
import pathlib
import time

import jax
import numpy as np

from configs import default
from jaxstyle import image, optimize, start
from jaxstyle.app import batch
from jaxstyle.app import config as config_lib
from benchmarks import run as bench

CONTENT, STYLE = bench.CONTENT, bench.STYLE


def _members(config, content: np.ndarray, style: np.ndarray, k: int):
  weights, starts = [], []
  content, style = image.preprocess(content), image.preprocess(style)
  for i, style_weight in enumerate(np.logspace(2, 5, k)):
    config.loss.style_weight = float(style_weight)
    weights.append(config_lib.weights(config))
    starts.append(start.initial('content', content, style, i))
  return weights, starts


def _nothing(x, aux, obj) -> float:
  """The sequential side's report: nothing read back but the step's end."""
  return 0.0


def _timed(solve) -> dict[str, float]:
  """Wall time of solve(callback), and of its steps after the first stop past 0."""
  marks = []

  def mark(progress, values):
    jax.block_until_ready((progress.x, values))
    marks.append((progress.step, time.perf_counter()))

  began = time.perf_counter()
  solve(mark)
  wall = time.perf_counter() - began
  (s1, t1), (s2, t2) = marks[1], marks[-1]
  return {'wall_s': wall, 'first_step_s': t1 - began, 'steady_s_per_step': (t2 - t1) / (s2 - s1)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--height', type=int, default=128)
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--ks', default='1,4,8,16')
  config = default.get_config()
  parser.add_argument('--linesearch', default=config.optim.lbfgs.linesearch,
                      choices=optimize.LINESEARCHES, help="L-BFGS line search (the config's default)")
  args = parser.parse_args()
  config.optim.lbfgs.linesearch = args.linesearch
  content = image.load(CONTENT, height=args.height)
  style = image.load(STYLE, height=args.height)
  obj = config_lib.make_objective(config, content, style)
  solver = optimize.make('lbfgs', **dict(config.optim.lbfgs))
  at = [0, 1, args.steps]
  rows = []
  for k in (int(v) for v in args.ks.split(',')):
    weights, starts = _members(config, content, style, k)

    def batched(callback):
      batch.solve(obj, weights, starts, solver, at, callback)

    def sequential(callback):
      step = 0
      for w, x0 in zip(weights, starts):
        shifted = lambda p, v, step=step: callback(p._replace(step=p.step + step), v)
        progress = optimize.minimize(solver, _nothing, x0,
                                     dataclasses.replace(obj, weights=w), at, shifted)
        jax.block_until_ready(progress.x)
        step += args.steps

    row = {'k': k, 'batch': _timed(batched), 'sequential': _timed(sequential)}
    row['speedup'] = row['sequential']['wall_s'] / row['batch']['wall_s']
    rows.append(row)
    print(json.dumps(row), flush=True)

  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  h, w = content.shape[:2]
  meta = {'machine': bench.machine(), 'devices': [str(d) for d in jax.devices()],
          'height': h, 'width': w, 'steps': args.steps, 'linesearch': args.linesearch,
          'date': time.strftime('%Y-%m-%d')}
  (out / 'sweep_batch.json').write_text(json.dumps({**meta, 'rows': rows}, indent=2) + '\n')
  lines = [f'{w}x{h} px, {args.steps} L-BFGS steps per member ({args.linesearch} line search), '
           f'{meta["devices"][0]} '
           f'x{len(meta["devices"])}, {meta["date"]}', '',
           '| K | batch wall s | batch s/step (all K) | K sequential wall s | sequential s/step | speed-up |',
           '| --- | --- | --- | --- | --- | --- |']
  for r in rows:
    b, s = r['batch'], r['sequential']
    lines.append(f'| {r["k"]} | {b["wall_s"]:.1f} | {b["steady_s_per_step"]:.3f} | '
                 f'{s["wall_s"]:.1f} | {s["steady_s_per_step"]:.3f} | {r["speedup"]:.2f}x |')
  (out / 'sweep_batch.md').write_text('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
