"""The static structure of an objective (`Spec`): its layers and how it
computes, built from checked settings. Changing it means a new compile."""
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import image, style, vgg, windows

# Each precision as jax names it. It applies to the Gram matrices too: left to
# JAX's default, a float32 matrix product runs on TF32 tensor cores on recent GPUs.
JAX_PRECISION = {'highest': 'highest', 'tf32': 'tensorfloat32', 'bf16': 'bfloat16'}

# An extra term: fn(features, x) -> scalar, features {layer: NHWC} of one forward pass.
TermFn = Callable[[dict[str, jax.Array], jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Spec:
  """Static structure of an objective: changing it means a new compile."""
  content_layers: tuple[str, ...]
  style_layers: tuple[str, ...]
  normalization: str = 'gatys'
  pooling: str = 'avg'
  precision: str = 'highest'  # one of PRECISIONS
  preprocessing: str = 'caffe'  # what the network sees of x (image.PREPROCESSINGS)
  remat: bool = False  # recompute each VGG block in the backward pass
  winograd: bool = False  # blocks 3 to 5 convolve by Winograd (vgg.WINOGRAD)
  # Each content and style term's gradient into its layer's features has L1
  # norm equal to the term's weight (losses.normalize_gradient).
  normalize_gradients: bool = False
  style_loss: str = 'gram'  # one of style.KINDS
  sliced_projections: int | None = None  # 'sliced': directions per evaluation (None: C)
  extra_layers: tuple[str, ...] = ()  # computed for the extra terms only
  extra_terms: tuple[tuple[str, TermFn], ...] = ()  # (name, fn), in report order
  tile: int = 0  # px: the loss and gradient computed tile by tile (jaxstyle.tiles); 0: at once
  tile_remat: bool | str = 'auto'  # tiling.keeps: the backward pass recomputes each tile's forward

  @property
  def min_side(self) -> int:
    """Smallest image side (px) the layers need: a position each, and a 3x3
    patch at the style layers for 'mrf'."""
    patch = min_side(self.style_layers, 3) if self.style_loss == 'mrf' else 1
    return max(min_side(self.layers), patch)

  @property
  def style_kind(self) -> style.StyleLoss:
    if self.style_loss == 'sliced':
      return style.sliced(self.sliced_projections)
    return style.KINDS[self.style_loss]

  @property
  def model(self) -> vgg.VGG19:
    return model(self.pooling, self.precision)

  def matmul_precision(self) -> Any:
    """Context in which the loss's own matrix products (the Grams and their
    gradients) are traced at the convolutions' precision."""
    return jax.default_matmul_precision(JAX_PRECISION[self.precision])

  @property
  def layers(self) -> tuple[str, ...]:
    return tuple(dict.fromkeys(self.content_layers + self.style_layers + self.extra_layers))

  def features(self, variables: Any, x: jax.Array, valid: windows.Valid | None = None,
               halo: int = 0, border: Mapping[str, int] | None = None,
               masks: Mapping[str, jax.Array] | None = None,
               keep_masks: bool = False) -> Any:
    """VGG activations at self.layers of x, 'caffe' input, which the network
    sees as `preprocessing` makes it; under remat only block outputs are kept.
    valid, halo, border, masks: x a window of an image, only its centre
    needed; the ReLUs' and poolings' masks given (vgg.VGG19's). keep_masks:
    (activations, the masks of this call)."""
    if self.preprocessing != 'caffe':
      x = x + jnp.asarray(image.offset(self.preprocessing))
    if keep_masks:
      out, kept = self.model.apply(variables, x, layers=self.layers, valid=valid, halo=halo,
                                   border=border, mutable=[vgg.MASKS])
      return out, kept[vgg.MASKS]
    apply = lambda v, x: self.model.apply(v, x, layers=self.layers, valid=valid, halo=halo,
                                          border=border, masks=masks)
    if self.remat and masks is None:
      policy = jax.checkpoint_policies.save_only_these_names(vgg.BLOCK_OUTPUT)
      apply = jax.checkpoint(apply, policy=policy)
    return apply(variables, x)

  def prepare(self, variables: Any) -> Any:
    """VGG19 variables as this spec computes with them, and only the layers
    up to its deepest (vgg.up_to): with the Winograd kernels of its layers
    when it uses Winograd (kept if already there), with the flipped kernels
    and no Winograd ones when it does not."""
    variables = vgg.up_to(variables, self.layers)
    if self.winograd:
      return vgg.with_winograd_kernels(variables, self.layers)
    if vgg.WINOGRAD not in variables:
      return variables
    return vgg.with_flipped_kernels({'params': variables['params']})


def model(pooling: str, precision: str) -> vgg.VGG19:
  """VGG19 pooling by `pooling` at `precision` (one of PRECISIONS)."""
  if precision == 'bf16':
    return vgg.VGG19(pooling=pooling, dtype=jnp.bfloat16)
  return vgg.VGG19(pooling=pooling, precision=JAX_PRECISION[precision])


def min_side(layers: Sequence[str], positions: int = 1) -> int:
  """Smallest image side (px) for which every layer keeps `positions` positions a side."""
  return max((positions * 2**vgg.downsampling(l) for l in layers), default=1)


def pooled_mask(mask: np.ndarray, layer: str) -> np.ndarray:
  """mask (H, W) at `layer`'s positions: 2x2 average poolings that drop an
  odd last row or column, as VGG19's poolings do."""
  for _ in range(vgg.downsampling(layer)):
    h, w = mask.shape[0] // 2, mask.shape[1] // 2
    mask = mask[:2 * h, :2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))
  return mask


def of_settings(s: dict[str, Any]) -> Spec:
  """The Spec of settings that settings.check returned."""
  return Spec(content_layers=tuple(s['content_layers']), style_layers=tuple(s['style_layers']),
              normalization=s['normalization'], pooling=s['pooling'], precision=s['precision'],
              preprocessing=s['preprocessing'],
              remat=s['remat'], winograd=_resolve_winograd(s['conv_algorithm'], s['precision']),
              normalize_gradients=s['normalize_gradients'], style_loss=s['style_loss'],
              sliced_projections=s['sliced_projections'],
              extra_layers=tuple(s['extra_layers']),
              extra_terms=tuple((n, fn) for n, (_, fn) in (s['extra_terms'] or {}).items()),
              tile=0 if s['tile'] == 'auto' else s['tile'], tile_remat=s['tile_remat'])


def _resolve_winograd(conv_algorithm: str, precision: str) -> bool:
  if conv_algorithm == 'auto':
    return jax.default_backend() == 'cpu' and precision == 'highest'
  return conv_algorithm == 'winograd'
