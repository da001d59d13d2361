"""The objective tile by tile (config.tile) against the whole image at once:
time per evaluation and peak memory, with the memory model's estimate.

python -m benchmarks.tiles evals --height=1024 --tiles=0,256,512,512/remat [--evals=3] [--rounds=1]
python -m benchmarks.tiles main --height=4096 --tile=512 [--steps=3] [--out=DIR]

`evals`: for each tile (0: untiled), a process of its own compiles
objective.value_and_grad for the default config (Tübingen and The Starry
Night, `../shared/images/`, width by the content's aspect; a tile N/remat
or N/keep with config.tile_remat True or False, else 'auto') and times
--evals evaluations after a warm-up: the median seconds per evaluation, per
megapixel, the process's peak resident memory (getrusage ru_maxrss, which
the compile counts too) and memory.estimate for a value and gradient
(history_size 0), as a markdown table and one JSON line. With --rounds, each
tile runs that many processes, the order reversed every other round: medians
over them, and "× untiled" the median of each round's ratio to the untiled
time (this machine's speed drifts more between minutes than the tiles
differ from each other).

`main`: `python -m jaxstyle.main` with configs/default.py at that height and
tile, --steps jaxopt L-BFGS steps with no line search (one evaluation a
step, so seconds per step after the first are seconds per evaluation), its
peak resident memory (os.wait4) against memory.estimate of the run.
"""
import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks import run as bench

GIB = 2**30


def _images(height: int) -> tuple[Any, Any]:
  from jaxstyle import image  # pylint: disable=g-import-not-at-top
  content = image.load(bench.REPO / bench.CONTENT, height=height)
  return content, image.load(bench.REPO / bench.STYLE, height=height)


def _estimate(config: Any, height: int, width: int, tile: int, history_size: int) -> int:
  from jaxstyle.app import config as config_lib  # pylint: disable=g-import-not-at-top
  from jaxstyle.app import memory  # pylint: disable=g-import-not-at-top
  spec = config_lib.spec(config)
  return memory.estimate(spec.layers, height, width, history_size=history_size, tile=tile,
                         **memory.of_spec(spec))


def child(height: int, tile: int, evals: int, tile_remat: bool | str) -> dict[str, Any]:
  """Times value_and_grad at `height` tiled with `tile` in this process."""
  import jax  # pylint: disable=g-import-not-at-top
  from configs import default  # pylint: disable=g-import-not-at-top
  from jaxstyle import image, objective, tiling, vgg  # pylint: disable=g-import-not-at-top
  from jaxstyle.app import config as config_lib  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.tile_remat = tile_remat
  content, style = _images(height)
  obj = config_lib.make_objective(config, content, style, vgg.load_variables(), tile)
  x = image.preprocess(content)
  began = time.perf_counter()
  jax.block_until_ready(objective.value_and_grad(x, obj))
  first = time.perf_counter() - began
  walls = []
  for _ in range(evals):
    began = time.perf_counter()
    jax.block_until_ready(objective.value_and_grad(x, obj))
    walls.append(time.perf_counter() - began)
  h, w = content.shape[:2]
  kept = bool(tile) and tiling.keeps_of((h, w), obj.spec)
  return {'height': h, 'width': w, 'tile': tile, 'kept': kept, 'first_s': first,
          'eval_s': statistics.median(walls),
          'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
          'estimate_bytes': _estimate(config, h, w, tile, history_size=0)}


_REMAT = {'': 'auto', 'remat': 'true', 'keep': 'false'}  # a tile's suffix: config.tile_remat


def _child_row(height: int, tile: str, count: int) -> dict[str, Any] | None:
  size, _, mode = tile.partition('/')
  out = subprocess.run([sys.executable, '-m', 'benchmarks.tiles', 'child', f'--height={height}',
                        f'--tile={size}', f'--evals={count}', f'--tile_remat={_REMAT[mode]}'],
                       cwd=bench.REPO, capture_output=True, text=True, check=False)
  if out.returncode:
    print(f'| tile {tile} | failed: {out.stderr.strip().splitlines()[-1]} |', flush=True)
    return None
  return json.loads(out.stdout.strip().splitlines()[-1])


def evals(height: int, tiles: list[str], count: int, rounds: int) -> list[dict[str, Any]]:
  """Each tile's child `rounds` times, the tiles' order reversed every other
  round; medians over the rounds, and the median of each round's ratio to
  the untiled evaluation's time (where tile 0 is among them)."""
  runs: dict[str, list[dict[str, Any]]] = {tile: [] for tile in tiles}
  for r in range(rounds):
    for tile in tiles if r % 2 == 0 else tiles[::-1]:
      row = _child_row(height, tile, count)
      if row:
        runs[tile].append(row)
  print('| size | tile | backward | first call s | s / evaluation | s / evaluation / Mpx | '
        '× untiled | peak RSS GiB | estimate GiB |\n'
        '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |', flush=True)
  rows = []
  for tile, each in runs.items():
    if not each:
      continue
    row = {**each[0], 'first_s': statistics.median(r['first_s'] for r in each),
           'eval_s': statistics.median(r['eval_s'] for r in each),
           'peak_rss_bytes': max(r['peak_rss_bytes'] for r in each), 'rounds': len(each)}
    untiled = runs.get('0', [])
    ratio = (statistics.median(a['eval_s'] / b['eval_s'] for a, b in zip(each, untiled))
             if untiled else None)
    rows.append({**row, 'x_untiled': ratio})
    mpx = row['height'] * row['width'] / 1e6
    backward = 'kept' if row['kept'] else 'recomputed' if row['tile'] else '—'
    print(f"| {row['width']}x{row['height']} | {row['tile'] or 'untiled'} | {backward} | "
          f"{row['first_s']:.1f} | "
          f"{row['eval_s']:.2f} | {row['eval_s'] / mpx:.2f} | "
          f"{'—' if ratio is None else f'{ratio:.2f}'} | "
          f"{row['peak_rss_bytes'] / GIB:.2f} | {row['estimate_bytes'] / GIB:.2f} |", flush=True)
  return rows


def main_run(height: int, tile: int, steps: int, out: pathlib.Path) -> dict[str, Any]:
  """One `python -m jaxstyle.main` run; its seconds per evaluation and peak RSS."""
  from configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  content, _ = _images(height)
  h, w = content.shape[:2]
  workdir = out / f'main_{height}_{tile}'
  cmd = [sys.executable, '-m', 'jaxstyle.main', '--config', 'configs/default.py',
         f'--config.content={bench.CONTENT}', f'--config.style={bench.STYLE}',
         f'--config.height={height}', f'--config.steps={steps}', f'--config.tile={tile}',
         '--config.optim.lbfgs.linesearch=none', '--config.log_every=1',
         '--config.save_every=0', '--config.checkpoint_every=0', '--config.tensorboard=False',
         f'--workdir={workdir}']
  began = time.perf_counter()
  with open(out / f'main_{height}_{tile}.log', 'w') as log:
    proc = subprocess.Popen(cmd, cwd=bench.REPO, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - began
  if os.waitstatus_to_exitcode(status):
    raise SystemExit(f'jaxstyle.main failed: see {out}/main_{height}_{tile}.log')
  lines = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  times = [l['wall_s'] for l in lines]
  history = default.get_config().optim.lbfgs.history_size
  row = {'height': h, 'width': w, 'tile': tile, 'steps': steps, 'wall_s': wall,
         'eval_s': statistics.median(b - a for a, b in zip(times[1:], times[2:])),
         'peak_rss_bytes': usage.ru_maxrss * 1024,
         'estimate_bytes': _estimate(config, h, w, tile, history)}
  print('| size | tile | steps | wall s | s / evaluation | peak RSS GiB | estimate GiB | '
        'RSS / estimate |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
        f"| {w}x{h} | {tile or 'untiled'} | {steps} | {wall:.0f} | {row['eval_s']:.1f} | "
        f"{row['peak_rss_bytes'] / GIB:.2f} | {row['estimate_bytes'] / GIB:.2f} | "
        f"{row['peak_rss_bytes'] / row['estimate_bytes']:.2f} |", flush=True)
  return row


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('mode', choices=('evals', 'main', 'child'))
  parser.add_argument('--height', type=int, required=True)
  parser.add_argument('--tiles', default='0,512',
                      help='evals: comma-separated tiles, 0 untiled, N/remat or N/keep')
  parser.add_argument('--tile_remat', default='auto', choices=('auto', 'true', 'false'),
                      help='child: config.tile_remat')
  parser.add_argument('--tile', type=int, default=512, help='main and child: the tile, 0 untiled')
  parser.add_argument('--evals', type=int, default=3, help='evaluations timed after a warm-up')
  parser.add_argument('--rounds', type=int, default=1,
                      help='evals: processes per tile, alternated; medians over them')
  parser.add_argument('--steps', type=int, default=3, help='main: L-BFGS steps, at least 2')
  parser.add_argument('--out', type=pathlib.Path, default=None, help='main: its workdir')
  args = parser.parse_args()
  if args.mode == 'child':
    remat = {'auto': 'auto', 'true': True, 'false': False}[args.tile_remat]
    print(json.dumps(child(args.height, args.tile, args.evals, remat)))
  elif args.mode == 'evals':
    tiles = args.tiles.split(',')
    for tile in tiles:
      size, _, mode = tile.partition('/')
      if not size.isdigit() or mode not in _REMAT:
        parser.error(f'--tiles: {tile!r} is not N, N/remat or N/keep')
    print(json.dumps(evals(args.height, tiles, args.evals, args.rounds)))
  else:
    if args.steps < 2:
      parser.error('--steps: at least 2, to time an evaluation after the first step')
    out = args.out or pathlib.Path(tempfile.mkdtemp(prefix='tiles_'))
    out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(main_run(args.height, args.tile, args.steps, out)))


if __name__ == '__main__':
  main()
