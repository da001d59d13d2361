"""The config adapter: a run config (ml_collections.ConfigDict) as the
library's plain arguments. The one place that reads the objective's and the
optimiser's fields."""
from collections.abc import Callable
from typing import Any

import ml_collections

import numpy as np

from jaxstyle import objective, optimize, style, vgg
from jaxstyle.app import inputs, memory
from jaxstyle.checks import SettingError
from jaxstyle.errors import InputError

# objective.make's keyword -> the config field that sets it.
OBJECTIVE_FIELDS = {
    'content_layers': 'loss.content_layers', 'style_layers': 'loss.style_layers',
    'content_weight': 'loss.content_weight', 'style_weight': 'loss.style_weight',
    'style_layer_weights': 'loss.style_layer_weights', 'tv_weight': 'loss.tv_weight',
    'tv_power': 'loss.tv_power', 'normalization': 'loss.normalization',
    'normalize_gradients': 'loss.normalize_gradients', 'pooling': 'pooling',
    'precision': 'precision', 'conv_algorithm': 'conv_algorithm', 'remat': 'remat',
    'style_blend_weights': 'style_blend_weights', 'style_masks': 'style_masks',
    'style_loss': 'loss.style_loss', 'sliced_projections': 'loss.sliced_projections',
    'seed': 'seed',
    'preprocessing': 'preprocessing', 'tile': 'tile', 'tile_remat': 'tile_remat',
}


def _plain(value: Any) -> Any:
  return tuple(value) if isinstance(value, list) else value


def num_styles(config: ml_collections.ConfigDict) -> int:
  """How many style images a config names: one per `styles`, else one (`style`)."""
  return len(config.styles) if config.styles else 1


def objective_settings(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """objective.make's keywords but style_masks (files, read by app.inputs).
  `shard_spatial` keeps convolutions direct under conv_algorithm 'auto'."""
  settings = {k: _plain(config[f]) for k, f in OBJECTIVE_FIELDS.items() if k != 'style_masks'}
  if config.shard_spatial and settings['conv_algorithm'] == 'auto':
    settings['conv_algorithm'] = 'direct'
  return settings


def spec(config: ml_collections.ConfigDict) -> objective.Spec:
  """The objective's static structure, without loading anything."""
  return objective.spec(**objective_settings(config))


def weights(config: ml_collections.ConfigDict) -> objective.Weights:
  """The objective's weights (its traced settings) as the config sets them."""
  return objective.weights(num_styles(config), **objective_settings(config))


def optimizer(config: ml_collections.ConfigDict) -> tuple[str, dict[str, Any]]:
  """The optimiser's name and its keyword settings for optimize.make:
  config.optim.<name>, optim.avg_decay when set, and for jaxopt's L-BFGS on
  a loss with random directions a fresh evaluation at each step's start."""
  settings = dict(config.optim[config.optimizer])
  if config.optim.avg_decay:
    settings['avg_decay'] = config.optim.avg_decay
  if config.optimizer == 'lbfgs' and random(config):
    settings['refresh'] = True
  return config.optimizer, settings


def random(config: ml_collections.ConfigDict) -> bool:
  """Whether the objective draws random directions at every step ('sliced')."""
  return style.KINDS[config.loss.style_loss].random


def at_step(config: ml_collections.ConfigDict) -> Callable[[Any, int], Any]:
  """optimize.minimize's at_step: the objective's key folded with the step
  where the loss draws random directions, else the objective unchanged."""
  return objective.at_step if random(config) else optimize.unchanged


def history_size(config: ml_collections.ConfigDict) -> int:
  """L-BFGS history entries the optimiser keeps (0 for Adam): for memory estimates."""
  return optimizer(config)[1].get('history_size', 0)


def named(error: SettingError) -> InputError:
  """A library setting's error, named by the config field that sets it."""
  return InputError(f'config.{OBJECTIVE_FIELDS.get(error.name, error.name)}: {error.problem}')


def tile(config: ml_collections.ConfigDict, height: int, width: int) -> int:
  """The tile (px) of a run's image of height x width px: config.tile, its
  'auto' resolved by the device's free memory (memory.choose_tile); 0 with
  shard_spatial, which splits the image otherwise."""
  if config.tile != 'auto':
    return config.tile
  if config.shard_spatial:
    return 0
  structure = spec(config)
  return memory.choose_tile(structure.layers, height, width, history_size=history_size(config),
                            masked_styles=len(config.style_masks or ()),
                            **memory.of_spec(structure))


def tile_remat(config: ml_collections.ConfigDict, height: int, width: int,
               tile: int) -> bool | str:
  """config.tile_remat for a run's image of height x width px in tiles of
  `tile` px: its 'auto' (tiling.keeps) only where the run's estimate with
  what the tiles keep fits the device's free memory, else True."""
  if config.tile_remat != 'auto' or not tile:
    return config.tile_remat
  structure = spec(config)
  fits = memory.fits(structure.layers, height, width, history_size=history_size(config),
                     masked_styles=len(config.style_masks or ()), tile=tile,
                     **memory.of_spec(structure))
  return 'auto' if fits else True


def make_objective(config: ml_collections.ConfigDict, content: np.ndarray,
                   style: np.ndarray | list[np.ndarray], variables: Any = None,
                   tile: int | None = None) -> objective.Objective:
  """objective.make as the config asks, for these images (app.inputs.load_inputs);
  variables default to config.weights' (vgg.load_variables); tile (px), e.g.
  `tile`'s, in place of config.tile; config.tile_remat as `tile_remat` resolves it."""
  if variables is None:
    variables = vgg.load_variables(config.get('weights'))
  settings = objective_settings(config)
  if tile is not None:
    settings['tile'] = tile
  if isinstance(settings['tile'], int) and settings['tile']:
    settings['tile_remat'] = tile_remat(config, *content.shape[:2], settings['tile'])
  try:
    return objective.make(content, style, variables=variables,
                          style_masks=inputs.masks(config, content.shape[:2]), **settings)
  except SettingError as e:
    raise named(e) from None
