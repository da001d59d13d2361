"""Many content images under one style: `contents`, solved together as one
batch, and `frames`, a video's frames solved in order.

Every image is loaded at `height` px and resized to the first one's width, so
all share one shape, one compile and the style targets, computed once.
`contents` runs as batch.solve batches of batch.size members (sharded over
the devices), each member with its own content targets. `frames` starts the first frame from `init` and
every later one from the previous frame's result, for `frames_steps` steps (a
warm start; there is no optical-flow temporal loss). Each input gets
<workdir>/<field>/<stem>.<output_format>, with the input's ICC profile and
DPI, and <stem>.metrics.jsonl; a rerun of `frames` skips the frames already
written.
"""
import collections
from collections.abc import Callable
import functools
import math
import os
import pathlib
import tempfile
from typing import Any, NoReturn

from absl import logging
import jax
import ml_collections
import numpy as np
from PIL import Image

from jaxstyle import files, image, objective, optimize, printing, start, vgg
from jaxstyle.app import cache
from jaxstyle.app import batch, checkpoint, inputs, memory, outputs
from jaxstyle.app import config as config_lib
from jaxstyle.app import workdir as workdir_lib
from jaxstyle.errors import InputError, NumericalError

# In the frames folder: the config_hash of the run that wrote its frames.
CONFIG_HASH = 'config_hash.txt'


def image_paths(field: str, value: Any) -> list[pathlib.Path]:
  """The images config.<field> names: every image file (by extension) of a
  folder, sorted by name, or, for `contents`, a tuple of paths.

  Raises:
    InputError: naming the field, for any other value, a folder without
      images, or two images of one stem (the outputs are named after them).
  """
  def fail(problem: str) -> NoReturn:
    raise InputError(f'config.{field}: {problem}')

  if isinstance(value, str) and os.path.isdir(value):
    extensions = Image.registered_extensions()  # loads Pillow's plugins, fills Image.OPEN
    readable = lambda p: extensions.get(p.suffix.lower()) in Image.OPEN
    paths = sorted((p for p in pathlib.Path(value).iterdir() if p.is_file() and readable(p)),
                   key=lambda p: p.name)
    if not paths:
      fail(f'{value} holds no image file')
  elif (field == 'contents' and isinstance(value, (tuple, list)) and value
        and all(isinstance(p, str) for p in value)):
    paths = [pathlib.Path(p) for p in value]
  else:
    kinds = 'an existing folder' + (' or a non-empty tuple of image paths'
                                    if field == 'contents' else '')
    fail(f'must be {kinds}; got {value!r}')
  twice = [stem for stem, n in collections.Counter(p.stem for p in paths).items() if n > 1]
  if twice:
    fail(f'two images are named {twice[0]}; the outputs are named after the inputs')
  return paths


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
        start_over: bool = False) -> pathlib.Path:
  """Stylises config.contents or config.frames (a validated config); returns
  the folder of the outputs. Every input but later frames is read before
  anything is written. `start_over`: restyle frames a previous run wrote."""
  field = 'contents' if config.contents is not None else 'frames'
  paths = image_paths(field, config[field])
  out = workdir_lib.check(workdir)
  first = config.copy_and_resolve_references()
  first.content = str(paths[0])
  with tempfile.TemporaryDirectory() as scratch:
    content, style = inputs.load_inputs(first, pathlib.Path(scratch))
  load = functools.partial(image.load, height=content.shape[0], width=content.shape[1],
                           resample=config.resample)
  contents = [content, *map(load, paths[1:])] if field == 'contents' else None
  metadata = [image.metadata(p) for p in paths]
  spec = config_lib.spec(config)
  if field == 'frames':  # batch.size checks the batch's memory
    memory.preflight(spec.layers, *content.shape[:2],
                     history_size=config_lib.history_size(config),
                     masked_styles=len(config.style_masks or ()), **memory.of_spec(spec))
  cache.enable(config)
  obj = config_lib.make_objective(config, content, style, vgg.load_variables(config.weights))
  method, settings = config_lib.optimizer(config)
  solver = optimize.make(method, **settings)
  first_style = image.preprocess(style[0] if isinstance(style, list) else style)
  begin = lambda rgb: start.initial(config.init, image.preprocess(rgb), first_style,
                                    config.seed, config.init_noise)
  folder = out / field
  with workdir_lib.lock(out):
    pending = (_pending(config, folder, paths, start_over)
               if field == 'frames' else None)
    workdir_lib.write_config(out, config)
    if field == 'contents':
      _contents(config, obj, solver, paths, contents=contents, folder=folder, begin=begin,
                metadata=metadata)
    else:
      _frames(config, obj, solver, paths, first=content, folder=folder, pending=pending,
              load=load, begin=begin, metadata=metadata)
  return folder


def _write(config: ml_collections.ConfigDict, folder: pathlib.Path, stem: str,
           metrics: list[dict[str, float]], x: Any, content_rgb: np.ndarray,
           metadata: printing.Metadata) -> None:
  """<stem>.metrics.jsonl, then the picture of x (network space) with the
  input's `metadata` unless x is None."""
  files.write_jsonl(folder / f'{stem}.metrics.jsonl', metrics)
  if x is not None:
    image.save(outputs.picture(config, folder, stem), inputs.output_rgb(config, x, content_rgb),
               bits=config.output_bits, **metadata._asdict())


def _contents(config: ml_collections.ConfigDict, obj: objective.Objective,
              solver: optimize.Solver, paths: list[pathlib.Path], contents: list[np.ndarray],
              folder: pathlib.Path, begin: Callable[[np.ndarray], jax.Array],
              metadata: list[printing.Metadata]) -> None:
  """Solves every content image in batches of batch.size; writes this process's."""
  objectives = [obj, *(objective.with_content(obj, c) for c in contents[1:])]
  devices = batch.mesh()
  size = batch.size(obj.spec, *contents[0].shape[:2], config_lib.history_size(config),
                    devices.size, len(config.style_masks or ()))
  at = optimize.stops(config.steps, (config.log_every,))
  failed = []
  for first in range(0, len(paths), size):
    members = objectives[first:first + size]
    history = batch.History(f'contents {first + 1}-{first + len(members)} of {len(paths)}',
                            config.steps, len(members))
    x = batch.solve(obj, [obj.weights] * len(members),
                    [begin(c) for c in contents[first:first + size]],
                    solver, at, callback=history, devices=devices,
                    contents=[o.content for o in members], at_step=config_lib.at_step(config))
    for i in batch.local_members(len(members), devices):
      metrics = history.member(i)
      finite = history.finite(i, x[i])
      path = paths[first + i]
      _write(config, folder, path.stem, metrics=metrics, x=x[i] if finite else None,
             content_rgb=contents[first + i], metadata=metadata[first + i])
      if not finite:
        failed.append(path.name)
  if failed:
    raise NumericalError(f'config.contents: the result of {", ".join(failed)} is not finite; '
                         'its metrics are written, its picture is not')


def _pending(config: ml_collections.ConfigDict, folder: pathlib.Path,
             paths: list[pathlib.Path], start_over: bool) -> list[bool]:
  """Which frames are still to solve: those without a picture from an earlier
  run of this config. Starting afresh (no earlier run, or `start_over`)
  deletes the inputs' old outputs first.

  Raises:
    InputError: another config wrote the frames and not `start_over`.
  """
  saved, digest = folder / CONFIG_HASH, checkpoint.config_hash(config)
  resume = saved.exists() and not start_over
  if resume and saved.read_text().strip() != digest:
    raise InputError(f'{folder} holds frames of a different config; pass --start_over to '
                     'restyle them, or use another --workdir')
  if not resume:
    for path in paths:
      for old in (outputs.picture(config, folder, path.stem),
                  folder / f'{path.stem}.metrics.jsonl'):
        old.unlink(missing_ok=True)
    files.write_text(saved, digest + '\n')
  return [not outputs.picture(config, folder, p.stem).exists() for p in paths]


def _frames(config: ml_collections.ConfigDict, obj: objective.Objective,
            solver: optimize.Solver, paths: list[pathlib.Path], first: np.ndarray,
            folder: pathlib.Path, pending: list[bool],
            load: Callable[[pathlib.Path], np.ndarray],
            begin: Callable[[np.ndarray], jax.Array], metadata: list[printing.Metadata]) -> None:
  """Solves the pending frames in order: the first from config.init, each
  later one from the previous frame's result (in memory, or its picture when
  an earlier run wrote it)."""
  report = outputs.reporter(config)
  x = None  # the previous frame's result, network space
  for k, path in enumerate(paths):
    if not pending[k]:
      x = None
      continue
    if k == 0:
      rgb, frame, steps = first, obj, config.steps
      x0 = begin(first)
    else:
      rgb = load(path)
      frame, steps = objective.with_content(obj, rgb), config.frames_steps or config.steps
      x0 = x if x is not None else image.preprocess(
          load(outputs.picture(config, folder, paths[k - 1].stem)))
    metrics = []

    def record(progress, values, path=path, steps=steps, metrics=metrics):
      values = {name: float(v) for name, v in jax.device_get(values).items()}
      bad = [name for name, v in values.items() if not math.isfinite(v)]
      if bad:
        raise NumericalError(f'config.frames: {path.name} step {progress.step}: '
                             f'{", ".join(bad)} not finite; the frames before it are written')
      metrics.append({'step': progress.step, **outputs.scalars(values)})
      logging.info('frame %s: step %d/%d, loss %.4g', path.name, progress.step, steps,
                   values['loss'])

    done = optimize.minimize(solver, report, x0, frame,
                             at=optimize.stops(steps, (config.log_every,)), callback=record,
                             at_step=config_lib.at_step(config))
    x = solver.output(done.x, done.state)
    _write(config, folder, path.stem, metrics=metrics, x=x, content_rgb=rgb,
           metadata=metadata[k])
