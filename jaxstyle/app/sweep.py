"""A hyperparameter sweep, solved in compiled batches (jaxstyle.sweep is its
command line).

The config's `sweep.axes` (jaxstyle.hyper) lists the settings. Points that
differ only in traced values (loss weights, TV power, seed, init) share one
compile and run as one vmapped batch sharded over every device; points that
change shapes or layers form groups, one compile each. Writes to DIR:
  points/NNN/final.png, metrics.jsonl, result.json  one per point
  results.jsonl, results.csv                        one row per point
  contact_sheet.png                                 rows: first axis, columns: the rest
                                                    (one axis: one row)
and prints, per point, the jaxstyle.main command that reruns it alone.
A rerun of the same sweep skips the points already finished.
"""
import contextlib
import csv
import dataclasses
import functools
import io
import json
import pathlib
import shlex
import tempfile
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np

from jaxstyle import files, image, objective, optimize, start, vgg
from jaxstyle.app import cache
from jaxstyle.app import batch, checkpoint, hyper, inputs, sheet, validation
from jaxstyle.app import config as config_lib
from jaxstyle.app import workdir as workdir_lib
from jaxstyle.errors import InputError

# Config fields whose values are traced: points differing only in these share a compile.
BATCHED = ('loss.content_weight', 'loss.style_weight', 'loss.style_layer_weights',
           'loss.tv_weight', 'loss.tv_power', 'seed', 'init', 'init_noise',
           'style_blend_weights')
# Fields that change what is written, not what is computed.
_CADENCE = ('log_every', 'save_every', 'checkpoint_every', 'tensorboard', 'sweep')
# jaxstyle.main options a sweep does not run, with the value that turns them off.
_SINGLE_RUN = {'scales': 1, 'shard_spatial': False, 'output_bits': 8, 'output_format': 'png',
               'contents': None, 'frames': None, 'tile': 'auto'}


@dataclasses.dataclass(frozen=True)
class Point:
  index: int  # row-major position in the grid
  grid: tuple[int, ...]  # position on each axis
  values: hyper.Point
  config: ml_collections.ConfigDict

  @property
  def name(self) -> str:
    return f'{self.index:03d}'


def plan(config: ml_collections.ConfigDict) -> list[Point]:
  """Every point of the sweep as a checked run config."""
  if 'sweep' not in config or 'axes' not in config.sweep:
    raise InputError('config.sweep.axes is missing: a sweep config sets it with '
                     'jaxstyle.hyper (see configs/sweeps/)')
  batch_size = config.sweep.get('batch_size', 0)
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
    raise InputError(f'config.sweep.batch_size: must be an integer ≥ 0 (0: automatic); '
                     f'got {batch_size!r}')
  for field in ('tol', 'avg_decay'):
    if config.optim.get(field, 0.0):
      raise InputError(f'config.optim.{field}: not supported in a sweep (it is a jaxstyle.main '
                       'option); leave it at 0')
  for field, plain in _SINGLE_RUN.items():
    if config.get(field, plain) != plain:
      raise InputError(f'config.{field}: not supported in a sweep (it is a jaxstyle.main '
                       f'option); leave it at {plain!r}')
  points = []
  for index, (grid, values) in enumerate(hyper.points(hyper.check(config.sweep.axes))):
    point_config = hyper.apply(config, values)
    try:
      validation.validate(point_config)
    except InputError as e:
      raise InputError(f'sweep point {hyper.describe(values)}: {e}') from None
    if point_config.optimizer == 'scipy_lbfgsb':
      raise InputError("config.optimizer: 'scipy_lbfgsb' solves one image at a time, and a "
                       'sweep solves its points in batches: use another optimizer')
    points.append(Point(index, grid, values, point_config))
  return points


def group_key(config: ml_collections.ConfigDict) -> str:
  """Equal for configs that can share one compiled batch."""
  fields = config.to_dict()
  for field in BATCHED + _CADENCE:
    *parents, leaf = field.split('.')
    node = functools.reduce(lambda d, k: d.get(k, {}), parents, fields)
    node.pop(leaf, None)
  return json.dumps(fields, sort_keys=True, default=str)


def command(prefix: str, point: Point, workdir: pathlib.Path) -> str:
  """The jaxstyle.main command line that reruns `point` on its own."""
  args = [f'--config.{field}={v if isinstance(v, str) else repr(v)}' for field, v in point.values]
  args.append(f'--workdir={workdir / "points" / point.name / "rerun"}')
  return ' '.join([prefix] + [shlex.quote(a) for a in args])


def _finished(path: pathlib.Path, config: ml_collections.ConfigDict) -> dict[str, Any] | None:
  """The result a previous run of this sweep wrote for this point, if any."""
  try:
    result = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  same = (result.get('config_hash') == checkpoint.config_hash(config)
          and result.get('steps') == config.steps)
  return result if same else None


def _solve_group(points: list[Point], variables: Any, out: pathlib.Path, prefix: str,
                 devices: jax.sharding.Mesh, label: str) -> list[dict[str, Any]]:
  """Solves points that share one compile, in batches; writes this process's points."""
  config = points[0].config
  with tempfile.TemporaryDirectory() as scratch:
    content, style = inputs.load_inputs(config, pathlib.Path(scratch))
  obj = config_lib.make_objective(config, content, style, variables)
  method, settings = config_lib.optimizer(config)
  solver = optimize.make(method, **settings)
  size = batch.size(obj.spec, *content.shape[:2], config_lib.history_size(config), devices.size,
                    len(config.style_masks or ()), config.sweep.get('batch_size', 0))
  x_content = image.preprocess(content)
  x_style = image.preprocess(style[0] if isinstance(style, list) else style)
  at = optimize.stops(config.steps, (config.log_every,))
  results = []
  for first in range(0, len(points), size):
    members = points[first:first + size]
    history = batch.History(f'{label}, points {members[0].name}-{members[-1].name}',
                            config.steps, len(members))
    began = time.perf_counter()
    x = batch.solve(obj, [config_lib.weights(p.config) for p in members],
                    [start.initial(p.config.init, x_content, x_style, p.config.seed,
                                   p.config.init_noise) for p in members],
                    solver, at, callback=history, devices=devices,
                    at_step=config_lib.at_step(config))
    wall = time.perf_counter() - began
    mine = set(batch.local_members(len(members), devices))
    for i, point in enumerate(members):
      metrics = history.member(i)
      terms = {t: metrics[-1][t] for t in objective.TERMS}
      finite = history.finite(i, x[i])
      result = {
          'index': point.index, 'grid': list(point.grid), 'point': dict(point.values),
          **terms, 'status': 'ok' if finite else 'nonfinite', 'steps': config.steps,
          'batch_size': len(members), 'batch_wall_s': round(wall, 3), 'group': label,
          'image': f'points/{point.name}/final.png' if finite else None,
          'command': command(prefix, point, out),
          'config_hash': checkpoint.config_hash(point.config)}
      results.append(result)
      if i in mine:
        _write_point(out / 'points' / point.name, point, result,
                     x=x[i] if finite else None, metrics=metrics, content=content)
  return results


def _write_point(directory: pathlib.Path, point: Point, result: dict[str, Any],
                 x: np.ndarray | None, metrics: list[dict[str, float]],
                 content: np.ndarray) -> None:
  workdir_lib.write_config(directory, point.config)
  files.write_jsonl(directory / 'metrics.jsonl', metrics)
  if x is not None:
    image.save(directory / 'final.png', inputs.output_rgb(point.config, x, content))
  files.write_text(directory / 'result.json', json.dumps(result, indent=2) + '\n')


def _write_summary(out: pathlib.Path, sweep: hyper.Sweep, results: list[dict[str, Any]],
                   title: str) -> pathlib.Path:
  files.write_jsonl(out / 'results.jsonl', results)
  fields = list(dict.fromkeys(f for r in results for f in r['point']))
  text = io.StringIO()
  writer = csv.writer(text)
  columns = ['index', *fields, *objective.TERMS, 'status', 'batch_size', 'batch_wall_s', 'image', 'command']
  writer.writerow(columns)
  for r in results:
    writer.writerow([r['index'], *(hyper.label(r['point'][f]) for f in fields),
                     *(r[t] for t in objective.TERMS), *(r[c] for c in columns[-5:])])
  files.write_text(out / 'results.csv', text.getvalue())

  # Rows: the first axis; columns: the others. One axis: a single row.
  row_axes, col_axes = (sweep[:1], sweep[1:]) if len(sweep) > 1 else ((), sweep)
  rows, cols = hyper.points(row_axes), hyper.points(col_axes)
  by_grid = {tuple(r['grid']): r for r in results}
  tiles = [[_tile(out, by_grid[ri + ci]) for ci, _ in cols] for ri, _ in rows]
  picture = sheet.grid(tiles, [hyper.describe(p) for _, p in rows],
                       [hyper.describe(p) for _, p in cols], title)
  path = out / 'contact_sheet.png'
  image.save(path, picture)
  return path


def _tile(out: pathlib.Path, result: dict[str, Any]) -> np.ndarray | None:
  return None if result['image'] is None else image.load(out / result['image'])


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
        prefix: str = 'python -m jaxstyle.main') -> pathlib.Path:
  """The whole sweep; returns the contact sheet's path. `prefix` starts each
  point's rerun command (the config file and the sweep's own overrides)."""
  points = plan(config)
  out = workdir_lib.check(workdir)
  cache.enable(config)
  devices = batch.mesh()
  lead = jax.process_index() == 0
  with workdir_lib.lock(out) if lead else contextlib.nullcontext():
    if lead:
      workdir_lib.write_config(out, config)
    done = {p.index: _finished(out / 'points' / p.name / 'result.json', p.config)
            for p in points}
    pending = [p for p in points if done[p.index] is None]
    groups = {}
    for p in pending:
      groups.setdefault(group_key(p.config), []).append(p)
    logging.info('%d points, %d finished before, %d compiled group(s) on %d device(s)',
                 len(points), len(points) - len(pending), len(groups), devices.size)
    # Every layer: a group's build prepares what its own spec reads.
    variables = vgg.load_variables(config.get('weights')) if pending else None
    results = {i: r for i, r in done.items() if r is not None}
    for g, members in enumerate(groups.values()):
      for r in _solve_group(members, variables, out, prefix, devices=devices,
                            label=f'group {g + 1}/{len(groups)}'):
        results[r['index']] = r
    results = [results[p.index] for p in points]
    for r in results:
      print(r['command'])
    if lead:
      return _write_summary(out, hyper.check(config.sweep.axes), results,
                            config.sweep.get('title', ''))
  return out / 'contact_sheet.png'
