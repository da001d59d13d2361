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
   into the image's gradient. Where the forward pass kept each tile's ReLU
   masks and features (tiling.keeps), the network given its masks is linear
   in the window, and this runs no forward pass; else each tile's forward
   pass is run again.

Tile corners are multiples of the deepest layer's stride, so each window's
poolings pair the pixels the whole image's do, and VGG19's `valid` zeroes
the positions outside the image in every layer, as the whole image's zero
padding does (jaxstyle.tiling has the geometry). Edge tiles are padded:
one program serves every tile (`lax.scan`); with several devices each takes
a share of the tiles and the sums and gradients are summed across them
(`jax.shard_map`).
"""
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import image, tiling, vgg, windows
from jaxstyle.spec import Spec
from jaxstyle.tiling import Grid, grid_of

AXIS = 'tiles'


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
                 border: int = 0, **kwargs: Any) -> Any:
  """The features of tile t's positions, from its window: at the style
  layers `border` more on each side. kwargs: Spec.features' masks or keep_masks."""
  spec, g = plan
  return spec.features(variables, window, valid=g.valid(t), halo=g.halo,
                       border=dict.fromkeys(spec.style_layers, border), **kwargs)


def _tile_sums(plan: tuple[Spec, Grid], parts: Any, window: jax.Array,
               t: jax.Array) -> dict[str, dict[str, Any]]:
  """Tile t's sums (`_sums_of`) from its window of the padded image."""
  features = _features_of(plan, parts[0], window, t, plan[0].style_kind.patch // 2)
  return _sums_of(plan, parts, features, t)


def _sums_of(plan: tuple[Spec, Grid], parts: Any, features: dict[str, jax.Array],
             t: jax.Array) -> dict[str, dict[str, Any]]:
  """Tile t's sums: {'content': {layer: Σ(F − P)²}, 'style': {layer: the
  kind's sums, one per style image (leading axis S)}}, from its features
  (`_features_of`). parts: (variables, content features, style statistics,
  style masks or None) of an objective, statistics None for the unweighted
  sums of a style image's own features (no leading axis)."""
  spec, g = plan
  _, content, stats, masks = parts
  kind = spec.style_kind
  border = kind.patch // 2
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


def _accumulate(step: Any, init: Any, count: int, operands: Any, per_tile: Any = None) -> Any:
  """init plus step's additions over tiles 0..count-1, and what step keeps
  of each tile: step(total, t, operands, tile's per_tile) -> (total, kept).
  per_tile: arrays with a leading axis of tiles, as a previous call's kept
  (or None). With several devices each scans its share of the tiles (padded
  with tiles ≥ count, which add nothing) and the totals are summed across
  them; the operands, passed in whole, go to each."""
  def scan(init, operands, ts, per_tile):
    return jax.lax.scan(lambda total, tile: step(total, tile[0], operands, tile[1]), init,
                        (ts, per_tile))

  devices = jax.device_count()
  if devices == 1:
    return scan(init, operands, jnp.arange(count), per_tile)
  mesh = jax.make_mesh((devices,), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
  share = -(-count // devices)

  def shared(init, operands, per_tile):
    ts = jax.lax.axis_index(AXIS) * share + jnp.arange(share)
    total, kept = scan(init, operands, ts, per_tile)
    return jax.lax.psum(total, AXIS), kept

  whole, split = jax.sharding.PartitionSpec(), jax.sharding.PartitionSpec(AXIS)
  return jax.shard_map(shared, mesh=mesh, in_specs=(whole, whole, split),
                       out_specs=(whole, split), check_vma=False)(init, operands, per_tile)


def _window(g: Grid, padded: jax.Array, t: jax.Array) -> jax.Array:
  top, left = g.corner(t)
  return jax.lax.dynamic_slice(padded, (0, top, left, 0), (1, *g.window_hw, padded.shape[3]))


def _forward(plan: tuple[Spec, Grid], x: jax.Array, parts: Any, keep: bool = False) -> Any:
  """The sums over the tiles; keep: and each tile's features and masks, stacked."""
  spec, g = plan
  border = spec.style_kind.patch // 2

  def one(t, padded, parts):
    features = _features_of(plan, parts[0], _window(g, padded, t), t, border, keep_masks=keep)
    if not keep:
      return _sums_of(plan, parts, features, t), ()
    features, masks = features
    kept = {l: f for l, f in features.items() if l != vgg.LAYER_NAMES[0]}
    bits = {k: _pack(m) for k, m in masks.items() if m.dtype == jnp.bool_}
    choices = {k: m for k, m in masks.items() if m.dtype != jnp.bool_}
    return _sums_of(plan, parts, features, t), (kept, bits, choices)

  def step(total, t, operands, _):
    sums, kept = one(t, *operands)
    return jax.tree.map(jnp.add, total, sums), kept

  operands = g.padded(x), parts
  with spec.matmul_precision():
    zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(one, jnp.int32(0), *operands)[0])
    total, kept = _accumulate(step, zeros, g.count, operands)
  return (total, kept) if keep else total


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _sums(plan: tuple[Spec, Grid], x: jax.Array, parts: Any) -> Any:
  return _forward(plan, x, parts)


def _sums_forward(plan, x, parts):
  if not tiling.keeps_of(x.shape[1:3], plan[0]):
    return _forward(plan, x, parts), (x, parts, None)
  total, kept = _forward(plan, x, parts, keep=True)
  return total, (x, parts, kept)


_BITS = (1 << np.arange(8, dtype=np.uint8))[:, None]  # bit k of a byte: block k of channels


def _pack(mask: jax.Array) -> jax.Array:
  """A ReLU's bool mask (..., C) as bits (..., C/8) uint8, bit k of byte j
  channel k·C/8 + j (whole blocks of channels, which vectorise)."""
  blocks = mask.reshape(*mask.shape[:-1], 8, mask.shape[-1] // 8).astype(jnp.uint8)
  return jnp.sum(blocks * _BITS, axis=-2, dtype=jnp.uint8)


def _unpack(packed: jax.Array) -> jax.Array:
  return ((packed[..., None, :] & _BITS) != 0).reshape(*packed.shape[:-1], 8 * packed.shape[-1])


def _sums_backward(plan, residuals, cotangents):
  """The image's gradient, tile by tile: each window's VJP of its tile's sums
  with the sums' cotangents, added into the padded image's gradient. Where
  the forward pass kept each tile's masks and features, the network given
  its masks is linear in the window: its VJP runs no forward pass but the
  first convolution's, whose features were not kept."""
  spec, g = plan
  x, parts, kept = residuals
  border = spec.style_kind.patch // 2

  def tile_vjp(window, t, parts, kept):
    if kept is None:
      return jax.vjp(lambda w: _tile_sums(plan, parts, w, t), window)[1]
    features, bits, choices = kept
    masks = {**{k: _unpack(b) for k, b in bits.items()}, **choices}
    first, net_vjp = jax.vjp(
        lambda w: _features_of(plan, parts[0], w, t, border, masks=masks), window)
    features = {**first, **features}
    _, sums_vjp = jax.vjp(lambda f: _sums_of(plan, parts, f, t), features)
    return lambda cotangents: net_vjp(sums_vjp(cotangents)[0])

  def step(gradient, t, operands, kept):
    padded, parts, cotangents = operands
    window = _window(g, padded, t)
    top, left = g.corner(t)
    here = jax.lax.dynamic_slice(gradient, (0, top, left, 0), window.shape)
    gradient = jax.lax.dynamic_update_slice(
        gradient, here + tile_vjp(window, t, parts, kept)(cotangents)[0], (0, top, left, 0))
    return gradient, ()

  padded = g.padded(x)
  with spec.matmul_precision():
    gradient, _ = _accumulate(step, jnp.zeros_like(padded), g.count,
                              (padded, parts, cotangents), kept)
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
