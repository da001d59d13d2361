"""How tiles cut an image (jaxstyle.tiles): the receptive fields of VGG19's
layers, the halo a tile's window needs, the grid of tiles, and what a
tile's forward pass keeps for its backward pass."""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxstyle import vgg, weights, windows
from jaxstyle.spec import Spec


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


def patch_layers(spec: Spec) -> tuple[str, ...]:
  """The layers whose 3x3 patches spec's style loss compares ('mrf')."""
  return spec.style_layers if spec.style_kind.patch > 1 else ()


def grid_of(image_hw: tuple[int, int], spec: Spec) -> Grid:
  """The grid of spec.tile for an image of image_hw."""
  return grid(image_hw, spec.tile, spec.layers, patch_layers(spec))


def kept_bytes(g: Grid, layers: tuple[str, ...], pooling: str,
               patch_layers: tuple[str, ...] = ()) -> tuple[int, int]:
  """(bytes the forward pass keeps of all tiles for the backward pass: the
  ReLUs' masks as bits, max pooling's choices as bytes, the features at
  `layers` but the first convolution's, which the backward pass recomputes;
  bytes of one window's activations, float32)."""
  names = vgg.LAYER_NAMES[:max(vgg.LAYER_NAMES.index(l) for l in layers) + 1]
  border = {l: 1 if l in patch_layers else 0 for l in layers}
  needed = vgg.reaches(names, border)
  kept = activations = 0
  for i, (name, cin, cout) in enumerate(weights.LAYERS[:len(names)]):
    k = vgg.downsampling(name)
    area = lambda r: (g.tile_hw[0] // 2**k + 2 * r) * (g.tile_hw[1] // 2**k + 2 * r)
    window = area(needed[i] + 1)
    activations += 4 * window * cout
    kept += window * cout // 8
    if pooling == 'max' and i and vgg.block(name) != vgg.block(names[i - 1]):
      kept += window * cin
    if name in layers and i:
      kept += 4 * area(border[name]) * cout
  return g.count * kept, activations


def keeps(g: Grid, layers: tuple[str, ...], pooling: str, tile_remat: bool | str,
          patch_layers: tuple[str, ...] = ()) -> bool:
  """Whether the forward pass keeps each tile's masks and features for the
  backward pass, which then runs no forward pass (tile_remat False; 'auto':
  where they take at most twice one window's activations, the memory of its
  forward and backward pass), or the backward pass recomputes them tile by
  tile (True)."""
  if tile_remat != 'auto':
    return not tile_remat
  kept, activations = kept_bytes(g, layers, pooling, patch_layers)
  return kept <= 2 * activations


def keeps_of(image_hw: tuple[int, int], spec: Spec) -> bool:
  """`keeps` for spec's tiles of an image of image_hw."""
  return keeps(grid_of(image_hw, spec), spec.layers, spec.pooling, spec.tile_remat,
               patch_layers(spec))
