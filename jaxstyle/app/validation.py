"""Checks every config value before anything is loaded or compiled.

Each problem is an InputError with one line that names the field. The
objective's fields are checked by the library's own checks (jaxstyle.settings),
their messages named by config field (app.config.OBJECTIVE_FIELDS).
"""
import os
from typing import Any

import ml_collections

from jaxstyle import checks, image, optimize, settings, start
from jaxstyle.app import config as config_lib
from jaxstyle.app import contents, multiscale, outputs
from jaxstyle.checks import SettingError

# Keyword settings each optimizer takes (optimize.make passes them on).
SETTINGS = {'lbfgs': ('history_size', 'linesearch', 'max_linesearch'),
            'optax_lbfgs': ('history_size', 'max_linesearch'),
            'adam': ('learning_rate', 'b1', 'b2', 'eps'),
            'scipy_lbfgsb': ('m', 'maxfun')}
# Choices of the image loading fields.
STYLE_RESIZES = ('aspect', 'content')


def _fail(field: str, problem: str) -> None:
  checks.fail(f'config.{field}', problem)


def _integer(field: str, value: Any, low: int, high: int | None = None) -> None:
  checks.integer(f'config.{field}', value, low, high)


def _weight(field: str, value: Any, low: float = 0.0) -> None:
  checks.number(f'config.{field}', value, low)


def _objective(config: ml_collections.ConfigDict) -> None:
  """The objective's settings, by the library's checks, named by config field."""
  try:
    settings.check({**config_lib.objective_settings(config), 'style_masks': config.style_masks},
                   config_lib.num_styles(config))
  except SettingError as e:
    raise config_lib.named(e) from None


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the first bad field of a run config."""
  for field in ('content', 'style', 'weights'):
    if config[field] is not None and not isinstance(config[field], str):
      _fail(field, f'must be a path; got {config[field]!r}')
  _integer('height', config.height, 1, image.MAX_SIDE)
  _loading(config)
  _styles(config)
  _integer('steps', config.steps, 1)
  _integer('seed', config.seed, 0)
  _integer('log_every', config.log_every, 0)
  _integer('save_every', config.save_every, 0)
  _integer('checkpoint_every', config.checkpoint_every, 0)
  _integer('scales', config.scales, 1)
  _weight('scale_factor', config.scale_factor)
  if config.scale_factor <= 1:
    _fail('scale_factor', f'must be greater than 1; got {config.scale_factor}')
  if config.scale_steps is not None:
    _integer('scale_steps', config.scale_steps, 1)
  _output(config)
  for field in ('tensorboard', 'remat', 'compilation_cache', 'original_colors',
                'color_transfer', 'shard_spatial', 'grad_norms', 'loss.normalize_gradients'):
    checks.flag(f'config.{field}', config[field])
  _many(config)
  if not isinstance(config.init, str) or (config.init not in start.KINDS
                                          and not os.path.isfile(config.init)):
    _fail('init', f'must be one of {", ".join(start.KINDS)} or an existing image file; '
          f'got {config.init!r}')
  _weight('init_noise', config.init_noise)
  if config.init_noise > 1:
    _fail('init_noise', f'must be in [0, 1]; got {config.init_noise}')
  checks.choice('config.optimizer', config.optimizer, optimize.OPTIMIZERS)
  _objective(config)
  multiscale.heights(config.height, config.scales, config.scale_factor,
                     config_lib.spec(config).min_side)
  _optim(config.optimizer, dict(config.optim[config.optimizer]))
  _stopping(config)
  _on_host(config)


def _loading(config: ml_collections.ConfigDict) -> None:
  """width, resample and style_resize: how the images are resized."""
  if config.width is not None:
    _integer('width', config.width, 1, image.MAX_SIDE)
  checks.choice('config.resample', config.resample, tuple(image.RESAMPLES))
  checks.choice('config.style_resize', config.style_resize, STYLE_RESIZES)


def _output(config: ml_collections.ConfigDict) -> None:
  """output_bits and output_format: the file type and depth of the result pictures."""
  if isinstance(config.output_bits, bool) or config.output_bits not in (8, 16):
    _fail('output_bits', f'must be 8 or 16; got {config.output_bits!r}')
  checks.choice('config.output_format', config.output_format, outputs.FORMATS)
  if config.output_bits == 16 and not image.writes_16_bit(f'final.{config.output_format}'):
    _fail('output_format', f'{config.output_format!r} holds 8 bits per channel; with '
          "output_bits=16 use 'png' or 'tif'")


def _on_host(config: ml_collections.ConfigDict) -> None:
  """scipy_lbfgsb steps on the host, one image on one device."""
  if config.optimizer != 'scipy_lbfgsb':
    return
  if config.contents is not None:
    _fail('optimizer', "'scipy_lbfgsb' solves one image at a time; contents are solved as a "
          'batch: use another optimizer, or one run per image')
  if config.shard_spatial:
    _fail('shard_spatial', "must be False with optimizer 'scipy_lbfgsb', which steps on the host")


def _many(config: ml_collections.ConfigDict) -> None:
  """contents, frames and frames_steps: many content images instead of `content`."""
  given = [field for field in ('content', 'contents', 'frames') if config[field] is not None]
  if len(given) > 1:
    _fail(given[-1], f'set only one of content, contents and frames; got {" and ".join(given)}')
  for field in ('contents', 'frames'):
    if config[field] is not None:
      contents.image_paths(field, config[field])
      if config.scales != 1:
        _fail('scales', f'must be 1 with {field}; got {config.scales}')
      if config.shard_spatial:
        _fail('shard_spatial', f'must be False with {field}')
      if config.tile not in ('auto', 0):
        _fail('tile', f"tiles one image at a time, and {field} are solved as a batch; leave "
              f"it 'auto' (untiled) or 0")
  if config.shard_spatial and config.tile not in ('auto', 0):
    _fail('tile', 'and shard_spatial both split the image over the devices; set one (tiles '
          'are shared among the devices)')
  if config.frames_steps is not None:
    if config.frames is None:
      _fail('frames_steps', 'applies to frames, which is unset')
    _integer('frames_steps', config.frames_steps, 1)


def _styles(config: ml_collections.ConfigDict) -> None:
  """styles, style_blend_weights, style_scale and style_masks."""
  styles = config.styles
  if styles is not None:
    if (not isinstance(styles, (tuple, list)) or not styles
        or not all(isinstance(p, str) for p in styles)):
      _fail('styles', f'must be a non-empty tuple of paths; got {styles!r}')
    if config.style is not None:
      _fail('styles', 'set either style or styles, not both')
  n = config_lib.num_styles(config)
  try:
    settings.check({'style_blend_weights': config.style_blend_weights}, n)
  except SettingError as e:
    _fail(e.name, e.problem)
  scales = config.style_scale
  if isinstance(scales, (tuple, list)):
    checks.per_item('config.style_scale', scales, n)
  else:
    scales = (scales,)
  for scale in scales:
    _weight('style_scale', scale)
    if scale == 0:
      _fail('style_scale', 'must be positive')
    height = round(scale * config.height)
    if not 1 <= height <= image.MAX_SIDE:
      _fail('style_scale', f'{scale:g} x height {config.height} gives style images '
            f'{height} px high; that must be in [1, {image.MAX_SIDE}]')
  masks = config.style_masks
  if masks is not None:
    checks.per_item('config.style_masks', masks, n)
    for path in masks:
      if not isinstance(path, str) or not os.path.isfile(path):
        _fail('style_masks', f'must be existing image files; {path!r} is not one')


def _stopping(config: ml_collections.ConfigDict) -> None:
  """optim.tol, optim.tol_window and optim.avg_decay."""
  optim = config.optim
  _weight('optim.tol', optim.tol)
  _integer('optim.tol_window', optim.tol_window, 1)
  _weight('optim.avg_decay', optim.avg_decay)
  if optim.avg_decay >= 1:
    _fail('optim.avg_decay', f'must be in [0, 1); got {optim.avg_decay}')
  if optim.avg_decay and config.optimizer != 'adam':
    _fail('optim.avg_decay', f"averages Adam's iterates; got optimizer {config.optimizer!r}")
  if optim.tol and (config.contents is not None or config.frames is not None):
    _fail('optim.tol', 'stops single runs; with contents or frames leave it 0')
  if optim.avg_decay and config.contents is not None:
    _fail('optim.avg_decay', 'applies to single runs and frames; with contents leave it 0')


def _optim(name: str, values: dict[str, Any]) -> None:
  field = f'optim.{name}'
  for key, value in values.items():
    if key not in SETTINGS[name]:
      _fail(f'{field}.{key}', f'unknown setting; {name} takes {", ".join(SETTINGS[name])}')
    if key == 'history_size' or key == 'max_linesearch':
      _integer(f'{field}.{key}', value, 1, 1000)
    elif key == 'm' or key == 'maxfun':
      _integer(f'{field}.{key}', value, 1, 1000 if key == 'm' else None)
    elif key == 'linesearch':
      if value not in optimize.LINESEARCHES:
        _fail(f'{field}.{key}', f'must be one of {", ".join(optimize.LINESEARCHES)}; '
              f'got {value!r}')
    elif key == 'learning_rate' or key == 'eps':
      _weight(f'{field}.{key}', value)
      if value == 0:
        _fail(f'{field}.{key}', 'must be positive')
    elif key == 'b1' or key == 'b2':
      _weight(f'{field}.{key}', value)
      if value >= 1:
        _fail(f'{field}.{key}', f'must be in [0, 1); got {value}')
    else:
      _weight(f'{field}.{key}', value)
