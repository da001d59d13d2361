"""An objective's settings, the keywords of `objective.make`: defaults and checks.

configs/default.py sets the command line's `loss.*`, `pooling`, `preprocessing`, `precision`,
`conv_algorithm`, `remat`, `style_blend_weights`, `tile` and `tile_remat` to these defaults.
"""
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxstyle import checks, image, losses, pooling, style, vgg
from jaxstyle.errors import InputError

# The terms every objective reports; `objective.terms` adds 'style/<layer>' and extra terms.
TERMS = ('loss', 'content_loss', 'style_loss', 'tv_loss')
PRECISIONS = ('highest', 'tf32', 'bf16')  # convolutions and Grams: float32, TF32 or bfloat16
CONV_ALGORITHMS = ('auto', 'direct', 'winograd')  # of blocks 3-5; auto: winograd on a CPU

DEFAULTS: dict[str, Any] = dict(
    content_layers=('block4_conv2',),  # the paper's conv4_2
    style_layers=('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1',
                  'block5_conv1'),  # the paper's conv1_1 .. conv5_1
    content_weight=1.0,  # α
    style_weight=None,  # β; None: the style loss's own (style.KINDS[...].weight; gram: 1e4)
    style_loss='gram',  # one of style.KINDS: gram, mean_std, w2, histogram, sliced, mrf
    sliced_projections=None,  # 'sliced': random directions per evaluation; None: C
    seed=0,  # of the random directions ('sliced'), drawn afresh at each step
    style_layer_weights=None,  # w_l, one per style layer; None: 1/L each
    tv_weight=0.0,  # γ, total variation
    tv_power=1.25,  # TV is Σ((Δx²+Δy²)^power), power ≥ 1
    normalization='gatys',  # or 'keras' (losses.NORMALIZATIONS)
    pooling='avg',  # the paper's; or 'max'
    preprocessing='caffe',  # what the network sees of an image (image.PREPROCESSINGS)
    precision='highest',  # one of PRECISIONS
    conv_algorithm='auto',  # one of CONV_ALGORITHMS
    remat=False,  # recompute each VGG block in the backward pass
    normalize_gradients=False,  # each term's feature gradient scaled to L1 norm = its weight
    style_blend_weights=None,  # each style image's share of the style loss; None: equal
    style_masks=None,  # one (H, W) array in 0..1 per style image, at the content's size
    extra_terms=None,  # {name: (weight, fn(features, x) -> scalar)}
    extra_layers=(),  # layers computed for the extra terms only
    # px: the loss and gradient computed tile by tile (jaxstyle.tiles), in memory
    # set by the tile; 0 or 'auto': the whole image at once
    tile='auto',
    # recompute each tile's forward pass in its backward pass (memory set by
    # the tile alone); False: keep its ReLU masks and features instead (no
    # second forward pass); 'auto': keep them where they take at most twice
    # one window's activations (tiling.keeps)
    tile_remat='auto',
)


def _check_extra(terms: Any) -> None:
  if terms is None:
    return
  if not isinstance(terms, Mapping):
    checks.fail('extra_terms', f'must be a dict {{name: (weight, fn)}}; got {terms!r}')
  for name, value in terms.items():
    if not isinstance(name, str) or name in TERMS or name.startswith('style/'):
      checks.fail('extra_terms', f'{name!r} is no new term name (not one of {", ".join(TERMS)}'
                  ' and not style/<layer>)')
    if not (isinstance(value, tuple) and len(value) == 2 and callable(value[1])):
      checks.fail(f'extra_terms[{name!r}]', 'must be a pair (weight, fn)')
    checks.number(f'extra_terms[{name!r}] weight', value[0], low=-math.inf)


def _check_masks(masks: Any, n_styles: int, content_hw: tuple[int, int]) -> None:
  if masks is None:
    return
  checks.per_item('style_masks', masks, n_styles)
  for i, mask in enumerate(masks):
    if np.shape(mask) != content_hw:
      checks.fail('style_masks', f'mask {i} has shape {np.shape(mask)}; each must be the '
                  f'content image\'s (H, W) = {content_hw}')


def check(settings: Mapping[str, Any], n_styles: int = 1,
          content_hw: tuple[int, int] | None = None) -> dict[str, Any]:
  """DEFAULTS updated with `settings`, checked; a bad one raises
  checks.SettingError naming it, an unknown one InputError.

  n_styles: how many style images the blend weights and masks are for;
  content_hw: the content's (H, W), which the masks must have (None: unchecked).
  """
  unknown = [k for k in settings if k not in DEFAULTS]
  if unknown:
    raise InputError(f'unknown objective setting {unknown[0]!r}; the settings are '
                     f'{", ".join(DEFAULTS)}')
  s = {**DEFAULTS, **settings}
  checks.choice('normalization', s['normalization'], losses.NORMALIZATIONS)
  checks.layers('content_layers', s['content_layers'])
  checks.layers('style_layers', s['style_layers'])
  if not s['content_layers'] and not s['style_layers']:
    checks.fail('style_layers', 'content_layers and style_layers are both empty')
  for name in ('content_weight', 'style_weight', 'tv_weight'):
    if s[name] is not None or name != 'style_weight':
      checks.number(name, s[name])
  checks.number('tv_power', s['tv_power'], low=1.0)
  layer_weights = s['style_layer_weights']
  if layer_weights is not None:
    if not isinstance(layer_weights, (tuple, list)):
      checks.fail('style_layer_weights', f'must be a tuple of numbers; got {layer_weights!r}')
    if len(layer_weights) != len(s['style_layers']):
      checks.fail('style_layer_weights', f'has {len(layer_weights)} values for '
                  f'{len(s["style_layers"])} style layers')
    for w in layer_weights:
      checks.number('style_layer_weights', w)
  checks.choice('style_loss', s['style_loss'], tuple(style.KINDS))
  if s['sliced_projections'] is not None:
    checks.integer('sliced_projections', s['sliced_projections'], 1, 4096)
  checks.integer('seed', s['seed'], 0)
  if s['style_masks'] is not None and not style.KINDS[s['style_loss']].masks:
    checks.fail('style_masks', f"style_loss {s['style_loss']!r} has no masked form (a "
                'patch matches the whole style image); leave style_masks unset')
  checks.choice('pooling', s['pooling'], pooling.KINDS)
  checks.choice('preprocessing', s['preprocessing'], image.PREPROCESSINGS)
  checks.choice('precision', s['precision'], PRECISIONS)
  checks.choice('conv_algorithm', s['conv_algorithm'], CONV_ALGORITHMS)
  if s['conv_algorithm'] == 'winograd' and s['precision'] == 'bf16':
    checks.fail('conv_algorithm', "'winograd' needs float32 convolutions; got precision 'bf16'")
  for name in ('remat', 'normalize_gradients'):
    checks.flag(name, s[name])
  if s['tile_remat'] != 'auto':
    checks.flag('tile_remat', s['tile_remat'])
  blend = s['style_blend_weights']
  if blend is not None:
    checks.per_item('style_blend_weights', blend, n_styles)
    for w in blend:
      checks.number('style_blend_weights', w)
    if not any(blend):
      checks.fail('style_blend_weights', 'are all zero; at least one must be positive')
  if content_hw is not None:
    _check_masks(s['style_masks'], n_styles, content_hw)
  checks.layers('extra_layers', s['extra_layers'])
  _check_extra(s['extra_terms'])
  _check_tile(s)
  return s


def _check_tile(s: dict[str, Any]) -> None:
  """tile: 'auto' or px ≥ 0; a tile a multiple of the deepest layer's stride,
  and only with terms that are sums over positions."""
  tile = s['tile']
  if tile == 'auto':
    return
  checks.integer('tile', tile, 0)
  if not tile:
    return
  layers = (*s['content_layers'], *s['style_layers'], *s['extra_layers'])
  deepest = max(layers, key=vgg.downsampling)
  stride = 2**vgg.downsampling(deepest)
  if tile % stride:
    checks.fail('tile', f'{tile} px is not a multiple of {stride} px, the stride of {deepest}; '
                f'try {tile // stride * stride or stride} or {(tile // stride + 1) * stride}')
  if style.KINDS[s['style_loss']].sums is None:
    checks.fail('tile', f"style_loss {s['style_loss']!r} sorts the whole image's features, "
                'which tiles cannot add up; use tile=0 or a style_loss of sums over positions '
                '(gram, mean_std, w2, mrf)')
  if s['normalize_gradients']:
    checks.fail('tile', 'normalize_gradients divides by the L1 norm of the whole image\'s '
                'feature gradient, which tiles cannot add up; use tile=0 or leave it False')
  if s['extra_terms']:
    checks.fail('tile', 'extra_terms are functions of the whole image\'s features, which tiles '
                'do not hold; use tile=0 or no extra terms')
