"""Checks every config value before anything is loaded or compiled.

Each problem is an InputError with one line that names the field.
"""
import math
import os
from typing import Any

import ml_collections

from jaxstyle import image, losses, many, multiscale, objective, optimize, vgg
from jaxstyle.errors import InputError

# Keyword settings each optimizer takes (optimize.make passes them on).
SETTINGS = {'lbfgs': ('history_size', 'linesearch', 'max_linesearch'),
            'optax_lbfgs': ('history_size', 'max_linesearch'),
            'adam': ('learning_rate', 'b1', 'b2', 'eps')}


def _fail(field: str, problem: str) -> None:
  raise InputError(f'config.{field}: {problem}')


def _choice(config: ml_collections.ConfigDict, field: str, options: tuple[str, ...]) -> None:
  value = config[field]
  if value not in options:
    _fail(field, f'must be one of {", ".join(options)}; got {value!r}')


def _integer(field: str, value: Any, low: int, high: int | None = None) -> None:
  if isinstance(value, bool) or not isinstance(value, int):
    _fail(field, f'must be an integer; got {value!r}')
  if value < low or (high is not None and value > high):
    _fail(field, f'must be in [{low}, {high if high is not None else "∞"}]; got {value}')


def _weight(field: str, value: Any, low: float = 0.0) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    _fail(field, f'must be a number; got {value!r}')
  if not math.isfinite(value) or value < low:
    _fail(field, f'must be a finite number ≥ {low:g}; got {value}')


def _layers(field: str, value: Any) -> None:
  if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
    _fail(field, f'must be a tuple of layer names; got {value!r}')
  try:
    vgg.check_layers(value)
  except InputError as e:
    _fail(field, str(e))
  if len(set(value)) != len(value):
    _fail(field, f'lists a layer twice: {value}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the first bad field of a run config."""
  for field in ('content', 'style', 'weights'):
    if config[field] is not None and not isinstance(config[field], str):
      _fail(field, f'must be a path; got {config[field]!r}')
  _integer('height', config.height, 1, image.MAX_SIDE)
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
  if isinstance(config.output_bits, bool) or config.output_bits not in (8, 16):
    _fail('output_bits', f'must be 8 or 16; got {config.output_bits!r}')
  for field in ('tensorboard', 'remat', 'compilation_cache', 'original_colors',
                'color_transfer', 'shard_spatial', 'grad_norms', 'loss.normalize_gradients'):
    if not isinstance(config[field], bool):
      _fail(field, f'must be True or False; got {config[field]!r}')
  _many(config)
  if not isinstance(config.init, str) or (config.init not in objective.INITS
                                          and not os.path.isfile(config.init)):
    _fail('init', f'must be one of {", ".join(objective.INITS)} or an existing image file; '
          f'got {config.init!r}')
  _weight('init_noise', config.init_noise)
  if config.init_noise > 1:
    _fail('init_noise', f'must be in [0, 1]; got {config.init_noise}')
  _choice(config, 'pooling', vgg.POOLINGS)
  _choice(config, 'precision', objective.PRECISIONS)
  _choice(config, 'conv_algorithm', objective.CONV_ALGORITHMS)
  if config.conv_algorithm == 'winograd' and config.precision == 'bf16':
    _fail('conv_algorithm', "'winograd' needs float32 convolutions; got precision 'bf16'")
  _choice(config, 'optimizer', optimize.OPTIMIZERS)

  loss = config.loss
  _choice(config, 'loss.normalization', losses.NORMALIZATIONS)
  _layers('loss.content_layers', loss.content_layers)
  _layers('loss.style_layers', loss.style_layers)
  if not loss.content_layers and not loss.style_layers:
    _fail('loss.style_layers', 'content_layers and style_layers are both empty')
  multiscale.heights(config.height, config.scales, config.scale_factor,
                     objective.min_side(tuple(loss.content_layers) + tuple(loss.style_layers)))
  for field in ('content_weight', 'style_weight', 'tv_weight'):
    _weight(f'loss.{field}', loss[field])
  _weight('loss.tv_power', loss.tv_power, low=1.0)
  if loss.style_layer_weights is not None:
    layer_weights = loss.style_layer_weights
    if not isinstance(layer_weights, (tuple, list)):
      _fail('loss.style_layer_weights', f'must be a tuple of numbers; got {layer_weights!r}')
    if len(layer_weights) != len(loss.style_layers):
      _fail('loss.style_layer_weights', f'has {len(layer_weights)} values for '
            f'{len(loss.style_layers)} style layers')
    for w in layer_weights:
      _weight('loss.style_layer_weights', w)

  _optim(config.optimizer, dict(config.optim[config.optimizer]))


def _many(config: ml_collections.ConfigDict) -> None:
  """contents, frames and frames_steps: many content images instead of `content`."""
  given = [field for field in ('content', 'contents', 'frames') if config[field] is not None]
  if len(given) > 1:
    _fail(given[-1], f'set only one of content, contents and frames; got {" and ".join(given)}')
  for field in ('contents', 'frames'):
    if config[field] is not None:
      many.inputs(field, config[field])
      if config.scales != 1:
        _fail('scales', f'must be 1 with {field}; got {config.scales}')
      if config.shard_spatial:
        _fail('shard_spatial', f'must be False with {field}')
  if config.frames_steps is not None:
    if config.frames is None:
      _fail('frames_steps', 'applies to frames, which is unset')
    _integer('frames_steps', config.frames_steps, 1)


def _per_style(field: str, value: Any, n: int) -> None:
  if not isinstance(value, (tuple, list)):
    _fail(field, f'must be a tuple with one value per style image; got {value!r}')
  if len(value) != n:
    _fail(field, f'has {len(value)} values for {n} style image(s)')


def _styles(config: ml_collections.ConfigDict) -> None:
  """styles, style_blend_weights, style_scale and style_masks."""
  styles = config.styles
  if styles is not None:
    if (not isinstance(styles, (tuple, list)) or not styles
        or not all(isinstance(p, str) for p in styles)):
      _fail('styles', f'must be a non-empty tuple of paths; got {styles!r}')
    if config.style is not None:
      _fail('styles', 'set either style or styles, not both')
  n = objective.num_styles(config)
  blend = config.style_blend_weights
  if blend is not None:
    _per_style('style_blend_weights', blend, n)
    for w in blend:
      _weight('style_blend_weights', w)
    if not any(blend):
      _fail('style_blend_weights', 'are all zero; at least one must be positive')
  scales = config.style_scale
  if isinstance(scales, (tuple, list)):
    _per_style('style_scale', scales, n)
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
    _per_style('style_masks', masks, n)
    for path in masks:
      if not isinstance(path, str) or not os.path.isfile(path):
        _fail('style_masks', f'must be existing image files; {path!r} is not one')


def _optim(name: str, settings: dict[str, Any]) -> None:
  field = f'optim.{name}'
  for key, value in settings.items():
    if key not in SETTINGS[name]:
      _fail(f'{field}.{key}', f'unknown setting; {name} takes {", ".join(SETTINGS[name])}')
    if key == 'history_size' or key == 'max_linesearch':
      _integer(f'{field}.{key}', value, 1, 1000)
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
