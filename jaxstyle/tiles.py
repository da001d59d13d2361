"""The objective tile by tile: its exact value and input gradient in memory
set by the tile, not the image.

Every term but total variation is a function of sums over the positions of
a layer (style.StyleLoss.sums; content: Σ(F − P)²), and a position's
features depend only on the pixels of its receptive field. So the image is
cut into a grid of tiles, each computed on a window of the tile plus a halo
that holds the fields of its positions:

1. forward: for each tile, the features of its window and the sums over the
   tile's positions, added up over the tiles: the sums of the whole image;
2. backward: the loss's cotangents of those sums (a small computation), then
   for each tile the vector-Jacobian product of its sums with them, added
   into the image's gradient.

Tile corners are multiples of the deepest layer's stride, so each window's
poolings pair the pixels the whole image's do, and VGG19's `valid` zeroes
the positions outside the image before every convolution, as the whole
image's zero padding does. Edge tiles are padded: one program serves every
tile (`lax.scan`); with several devices each takes a share of the tiles and
the sums and gradients are summed across them (`jax.shard_map`).
"""
import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxstyle import image, vgg, windows
from jaxstyle.spec import Spec

AXIS = 'tiles'


def field(layer: str) -> tuple[int, int]:
  """The first and last pixel of the receptive field of `layer`'s position 0
  (position q's: these plus 2^k·q, k = vgg.downsampling(layer)): a 3x3
  convolution widens it by a position of its level on each side, a 2x2
  pooling by one on the far side."""
  names = vgg.LAYER_NAMES[:vgg.LAYER_NAMES.index(layer) + 1]
  first = last = 0
  for i in reversed(range(len(names))):
    first, last = first - 1, last + 1
    if i and vgg.block(names[i]) != vgg.block(names[i - 1]):
      first, last = 2 * first, 2 * last + 1
  return first, last


def receptive_field(layer: str) -> int:
  """Width (px) of the input a position of `layer` depends on (156 for block5_conv1)."""
  first, last = field(layer)
  return last - first + 1


def halo(layers: tuple[str, ...], patch_layers: tuple[str, ...] = ()) -> int:
  """Pixels a tile's window extends beyond the tile on each side: the farthest
  reach of a field beyond its position's own pixels, one position more at
  `patch_layers` (3x3 patches), rounded up to the deepest layer's stride."""
  def reach(layer: str) -> int:
    first, last = field(layer)
    stride = 2**vgg.downsampling(layer)
    return max(-first, last - (stride - 1)) + (stride if layer in patch_layers else 0)

  stride = 2**max(vgg.downsampling(l) for l in layers)
  return -(-max(reach(l) for l in layers) // stride) * stride


class Grid(NamedTuple):
  """Tiles of an image: static, hashable."""
  image_hw: tuple[int, int]  # the image's (H, W), px
  tile_hw: tuple[int, int]  # a tile's (h, w), px, multiples of the stride
  shape: tuple[int, int]  # tiles down and across
  halo: int  # px, a multiple of the stride

  @property
  def count(self) -> int:
    return self.shape[0] * self.shape[1]

  @property
  def window_hw(self) -> tuple[int, int]:
    return self.tile_hw[0] + 2 * self.halo, self.tile_hw[1] + 2 * self.halo

  def padded(self, x: jax.Array) -> jax.Array:
    """x (1, H, W, C) zero-padded by the halo and to whole tiles."""
    (h, w), (th, tw), (rows, cols) = self.image_hw, self.tile_hw, self.shape
    return jnp.pad(x, ((0, 0), (self.halo, rows * th - h + self.halo),
                       (self.halo, cols * tw - w + self.halo), (0, 0)))

  def corner(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Tile t's top left pixel in the image; t ≥ count: the last tile's."""
    t = jnp.minimum(t, self.count - 1)
    return t // self.shape[1] * self.tile_hw[0], t % self.shape[1] * self.tile_hw[1]

  def valid(self, t: jax.Array) -> windows.Valid:
    """The image in tile t's window (VGG19's `valid`); t ≥ count: none of it."""
    top, left = self.corner(t)
    real = t < self.count
    return (self.halo - top, self.halo - left, jnp.where(real, self.image_hw[0], 0),
            jnp.where(real, self.image_hw[1], 0))


def grid(image_hw: tuple[int, int], tile: int, layers: tuple[str, ...],
         patch_layers: tuple[str, ...] = ()) -> Grid:
  """The tiles of at most tile x tile px that `layers` (3x3 patches at
  `patch_layers`) need for an image of image_hw: as few tiles as cover it,
  of equal size."""
  stride = 2**max(vgg.downsampling(l) for l in layers)
  shape = tuple(-(-side // tile) for side in image_hw)
  tile_hw = tuple(-(-side // (n * stride)) * stride for side, n in zip(image_hw, shape))
  return Grid(tuple(image_hw), tile_hw, shape, halo(layers, patch_layers))


def grid_of(image_hw: tuple[int, int], spec: Spec) -> Grid:
  """The grid of spec.tile for an image of image_hw."""
  patch_layers = spec.style_layers if spec.style_kind.patch > 1 else ()
  return grid(image_hw, spec.tile, spec.layers, patch_layers)


def _cut(a: jax.Array, start: tuple[jax.Array, jax.Array], size: tuple[int, int]) -> jax.Array:
  """a[:, start[0]:+size[0], start[1]:+size[1]], zero where it runs past a's end."""
  rows = start[0] + jnp.arange(size[0])
  cols = start[1] + jnp.arange(size[1])
  return a.at[:, rows[:, None], cols[None, :]].get(mode='fill', fill_value=0)


def _interior(plan: tuple[Spec, Grid], features: jax.Array, t: jax.Array, layer: str,
              border: int = 0) -> tuple[jax.Array, jax.Array, tuple[jax.Array, jax.Array],
                                        tuple[int, int]]:
  """Tile t's positions at `layer`, `border` positions more on each side, of
  features of the tile and as many positions or more on each side
  (`_features_of`): the features, which of them lie in the image `border`
  positions or more from its edge, the tile's first position and its size
  in positions."""
  _, g = plan
  k = vgg.downsampling(layer)
  size = g.tile_hw[0] // 2**k, g.tile_hw[1] // 2**k
  reach = (features.shape[1] - size[0]) // 2  # the features' positions beyond the tile
  first = reach - border
  rows = slice(first, first + size[0] + 2 * border)
  cols = slice(first, first + size[1] + 2 * border)
  top, left, height, width = g.valid(t)
  shift = g.halo - reach * 2**k  # the features' first position, in window pixels
  shrunk = (top - shift + border * 2**k, left - shift + border * 2**k,
            height - 2 * border * 2**k, width - 2 * border * 2**k)
  inside = windows.inside(shrunk, features.shape[1:3], k)[rows, cols]
  corner = tuple(c // 2**k for c in g.corner(t))
  return features[:, rows, cols], inside, corner, size


def _features_of(plan: tuple[Spec, Grid], variables: Any, window: jax.Array, t: jax.Array,
                 border: int = 0) -> dict[str, jax.Array]:
  """The features of tile t's positions, from its window: at the style
  layers `border` more on each side."""
  spec, g = plan
  return spec.features(variables, window, valid=g.valid(t), halo=g.halo,
                       border=dict.fromkeys(spec.style_layers, border))


def _tile_sums(plan: tuple[Spec, Grid], parts: Any, window: jax.Array,
               t: jax.Array) -> dict[str, dict[str, Any]]:
  """Tile t's sums: {'content': {layer: Σ(F − P)²}, 'style': {layer: the
  kind's sums, one per style image (leading axis S)}}. window: the tile's
  window of the padded image; parts: (variables, content features, style
  statistics, style masks or None) of an objective, statistics None for the
  unweighted sums of a style image's own features (no leading axis)."""
  spec, g = plan
  variables, content, stats, masks = parts
  kind = spec.style_kind
  border = kind.patch // 2
  features = _features_of(plan, variables, window, t, border)
  out = {'content': {}, 'style': {}}
  for l in spec.content_layers:
    f, inside, corner, size = _interior(plan, features[l], t, l)
    difference = f - _cut(content[l], corner, size)
    out['content'][l] = jnp.sum(jnp.square(jnp.where(inside[None, :, :, None], difference, 0)))
  for l in spec.style_layers:
    f, inside, corner, size = _interior(plan, features[l], t, l, border)
    if border:  # the kind has no masks: the weights pick the patches centred in the tile
      weights = inside.astype(f.dtype)
    else:
      weights = None if masks is None else jnp.where(inside, _cut(masks[l], corner, size), 0)
      f = jnp.where(inside[None, :, :, None], f, 0)
    if stats is None:
      out['style'][l] = kind.sums(f, None, None)
    else:
      per_style = lambda target, w, f=f: kind.sums(f, target, w)
      axes = (0, None if weights is None or border else 0)
      out['style'][l] = jax.vmap(per_style, in_axes=axes)(stats[l], weights)
  return out


def _accumulate(step: Any, init: Any, count: int, operands: Any) -> Any:
  """init plus step's additions over tiles 0..count-1: step(total, t,
  operands) -> total. With several devices each scans its share of the tiles
  (padded with tiles ≥ count, which add nothing) and the totals are summed
  across them; the operands, passed in whole, go to each."""
  def scan(init, operands, ts):
    return jax.lax.scan(lambda total, t: (step(total, t, operands), None), init, ts)[0]

  devices = jax.device_count()
  if devices == 1:
    return scan(init, operands, jnp.arange(count))
  mesh = jax.make_mesh((devices,), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
  share = -(-count // devices)

  def shared(init, operands):
    ts = jax.lax.axis_index(AXIS) * share + jnp.arange(share)
    return jax.lax.psum(scan(init, operands, ts), AXIS)

  whole = jax.sharding.PartitionSpec()
  return jax.shard_map(shared, mesh=mesh, in_specs=(whole, whole), out_specs=whole,
                       check_vma=False)(init, operands)


def _window(g: Grid, padded: jax.Array, t: jax.Array) -> jax.Array:
  top, left = g.corner(t)
  return jax.lax.dynamic_slice(padded, (0, top, left, 0), (1, *g.window_hw, padded.shape[3]))


def _forward(plan: tuple[Spec, Grid], x: jax.Array, parts: Any) -> Any:
  spec, g = plan
  one = lambda t, padded, parts: _tile_sums(plan, parts, _window(g, padded, t), t)
  step = lambda total, t, operands: jax.tree.map(jnp.add, total, one(t, *operands))
  operands = g.padded(x), parts
  with spec.matmul_precision():
    zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(one, jnp.int32(0), *operands))
    return _accumulate(step, zeros, g.count, operands)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _sums(plan: tuple[Spec, Grid], x: jax.Array, parts: Any) -> Any:
  return _forward(plan, x, parts)


def _sums_forward(plan, x, parts):
  return _forward(plan, x, parts), (x, parts)


def _sums_backward(plan, residuals, cotangents):
  """The image's gradient, tile by tile: each window's VJP of its tile's sums
  with the sums' cotangents, added into the padded image's gradient."""
  spec, g = plan
  x, parts = residuals

  def step(gradient, t, operands):
    padded, parts, cotangents = operands
    window = _window(g, padded, t)
    _, vjp = jax.vjp(lambda w: _tile_sums(plan, parts, w, t), window)
    top, left = g.corner(t)
    here = jax.lax.dynamic_slice(gradient, (0, top, left, 0), window.shape)
    return jax.lax.dynamic_update_slice(gradient, here + vjp(cotangents)[0], (0, top, left, 0))

  padded = g.padded(x)
  with spec.matmul_precision():
    gradient = _accumulate(step, jnp.zeros_like(padded), g.count, (padded, parts, cotangents))
  h, w = g.image_hw
  return gradient[:, g.halo:g.halo + h, g.halo:g.halo + w], None


_sums.defvjp(_sums_forward, _sums_backward)


def sums(x: jax.Array, obj: Any) -> dict[str, dict[str, Any]]:
  """The sums over every position of x (1, H, W, 3) that obj (an
  objective.Objective with spec.tile > 0) compares, computed tile by tile:
  {'content': {layer: Σ(F − P)²}, 'style': {layer: the style kind's sums,
  leading axis S}}. Differentiable in x (its gradient tile by tile too)."""
  plan = obj.spec, grid_of(x.shape[1:3], obj.spec)
  return _sums(plan, x, (obj.variables, obj.content, obj.style.stats, obj.style.masks))


def _features(spec: Spec, variables: Any, x: jax.Array) -> dict[str, jax.Array]:
  """x's features at spec.layers, computed tile by tile into whole feature maps."""
  layers = spec.layers
  g = grid_of(x.shape[1:3], spec)
  padded = g.padded(x)

  def step(maps, t):
    features = _features_of((spec, g), variables, _window(g, padded, t), t)
    for l in layers:
      f, _, (top, left), size = _interior((spec, g), features[l], t, l)
      rows, cols = top + jnp.arange(size[0]), left + jnp.arange(size[1])
      maps[l] = maps[l].at[:, rows[:, None], cols[None, :]].set(f, mode='drop')
    return maps

  shapes = jax.eval_shape(lambda: spec.features(variables, x))
  maps = {l: jnp.zeros(shapes[l].shape, shapes[l].dtype) for l in layers}
  return jax.lax.fori_loop(0, g.count, lambda t, maps: step(maps, t), maps)


def _statistics(spec: Spec, variables: Any, x: jax.Array) -> dict[str, Any]:
  """The style kind's target of x at each style layer, tile by tile: from
  the sums over the tiles where the kind has that form, else from the
  features computed tile by tile."""
  kind = spec.style_kind
  spec = dataclasses.replace(spec, content_layers=(), extra_layers=())
  if kind.target_from_sums is None:
    return {l: kind.target(f) for l, f in _features(spec, variables, x).items()}
  plan = spec, grid_of(x.shape[1:3], spec)
  totals = _forward(plan, x, (variables, {}, None, None))['style']
  return {l: kind.target_from_sums(totals[l], tuple(side // 2**vgg.downsampling(l)
                                                    for side in x.shape[1:3]))
          for l in spec.style_layers}


@functools.partial(jax.jit, static_argnames='spec')
def targets(variables: Any, content: jax.Array, styles: list[jax.Array],
            spec: Spec) -> tuple[dict[str, jax.Array], list[dict[str, Any]]]:
  """objective.make's targets tile by tile: the content's features at the
  content layers, and each style's statistics at the style layers. Images
  HWC RGB 0..255."""
  x = lambda rgb: image.preprocess(rgb, spec.preprocessing)
  with spec.matmul_precision():
    stats = [_statistics(spec, variables, x(rgb)) for rgb in styles]
    features = _features(dataclasses.replace(spec, style_layers=(), extra_layers=()),
                         variables, x(content))
  return features, stats
