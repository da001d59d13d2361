"""VGG19 feature extractor (Simonyan & Zisserman 2014) in Flax.

Input: NHWC, BGR, Caffe preprocessing (`jaxstyle.image.preprocess`). Output:
post-ReLU activations by Keras layer name. Only the convolutional trunk exists
here (no classifier), and a call computes only up to the deepest layer asked for.
"""
from collections.abc import Mapping, Sequence
import functools
import os
from typing import Any

import flax.linen as nn
from flax.linen.dtypes import promote_dtype
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name
import numpy as np

from jaxstyle import pooling, weights, windows, winograd
from jaxstyle.errors import InputError

LAYER_NAMES: tuple[str, ...] = tuple(name for name, _, _ in weights.LAYERS)
# Name of each block's last activation: what jax.checkpoint keeps under remat.
BLOCK_OUTPUT = 'vgg_block_output'
# Collection a call records its masks in when it is mutable (VGG19's `masks`).
MASKS = 'masks'
# Variable collection of the kernels the input gradient convolves with.
FLIPPED = 'flipped'
# Variable collection of the kernels' Winograd transforms (winograd.transform_kernel),
# which the Winograd convolutions read, forward and input gradient.
WINOGRAD = 'winograd'
# Winograd is used on layers with at least this many output channels (blocks 3
# to 5), where XLA:CPU runs it faster than lax.conv; blocks 1 and 2 it slows
# (docs/performance.md).
WINOGRAD_MIN_FEATURES = 256


def block(name: str) -> str:
  return name.split('_')[0]


def paper_name(layer: str) -> str:
  """'block3_conv2' -> 'conv3_2', the paper's name for the layer."""
  b, c = layer.removeprefix('block').split('_conv')
  return f'conv{b}_{c}'


def downsampling(layer: str) -> int:
  """How many 2x poolings lie before `layer`: 2**n is its stride in pixels."""
  names = LAYER_NAMES[:LAYER_NAMES.index(layer) + 1]
  return len({block(n) for n in names}) - 1


def flip(kernel: jax.Array | np.ndarray) -> jax.Array | np.ndarray:
  """HWIO kernel of a stride-1 SAME convolution -> the kernel whose SAME
  convolution with the output's cotangent is the input's: spatially reversed,
  input and output channels swapped."""
  return kernel[::-1, ::-1].swapaxes(2, 3)


def with_flipped_kernels(variables: dict[str, Any]) -> dict[str, Any]:
  """`variables` plus the FLIPPED collection: every kernel flipped once here.

  Without it, every backward pass reverses and transposes all the kernels
  again (docs/performance.md has the cost); VGG19 applies
  with or without it, and its gradients are the same.
  """
  flipped = {name: {'kernel': flip(layer['kernel'])}
             for name, layer in variables['params'].items()}
  return {**variables, FLIPPED: flipped}


def with_winograd_kernels(variables: dict[str, Any],
                          layers: Sequence[str] = LAYER_NAMES) -> dict[str, Any]:
  """`variables` plus the WINOGRAD collection for the layers up to the deepest
  of `layers` with at least WINOGRAD_MIN_FEATURES outputs: each kernel
  transformed once here (4x its size), for the forward and the input gradient,
  in place of its FLIPPED kernel. Layers the collection already holds are kept."""
  deepest = max(LAYER_NAMES.index(l) for l in layers)
  have = dict(variables.get(WINOGRAD, {}))
  todo = [name for name, _, features in weights.LAYERS[:deepest + 1]
          if features >= WINOGRAD_MIN_FEATURES and name not in have]
  if not todo:
    return variables
  new = {name: {'kernel': winograd.transform_kernel(
      np.asarray(variables['params'][name]['kernel']))} for name in todo}
  flipped = {name: k for name, k in variables.get(FLIPPED, {}).items() if name not in new}
  return {**variables, FLIPPED: flipped, WINOGRAD: {**have, **jax.device_put(new)}}


def up_to(variables: dict[str, Any], layers: Sequence[str]) -> dict[str, Any]:
  """`variables` holding only the layers up to the deepest of `layers`, all a
  call for `layers` reads: the deeper ones' weights would only take memory
  (most of the weights when only blocks 1 and 2 are used). `variables` itself if nothing is deeper."""
  keep = LAYER_NAMES[:max((LAYER_NAMES.index(l) for l in layers), default=-1) + 1]
  missing = [name for name in keep if name not in variables['params']]
  if missing:
    raise ValueError(f'the variables hold no {", ".join(missing)}, which layers '
                     f'{", ".join(layers)} need: they were cut for shallower layers; '
                     'pass them as vgg.load_variables() gives them')
  if all(set(layers_of) <= set(keep) for layers_of in variables.values()):
    return variables
  return {collection: {name: layer for name, layer in layers_of.items() if name in keep}
          for collection, layers_of in variables.items()}


def _conv(x: jax.Array, kernel: jax.Array, precision: Any) -> jax.Array:
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', precision=precision,
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 6))
def _conv_cached(apply: Any, apply_backward: Any, x: jax.Array, kernel: jax.Array,
                 forward: jax.Array, backward: jax.Array, precision: Any) -> jax.Array:
  """apply(x, forward): the SAME convolution of x with `kernel`, whose input
  gradient is apply_backward(cotangent, backward). `forward` and `backward`
  are caches of the kernel, not parameters: their gradients are zero."""
  return apply(x, forward, precision)


def _cached_forward(apply, apply_backward, x, kernel, forward, backward, precision):
  return apply(x, forward, precision), (x, kernel, forward, backward)


def _cached_backward(apply, apply_backward, precision, residuals, cotangent):
  x, kernel, forward, backward = residuals
  _, kernel_vjp = jax.vjp(lambda k: _conv(x, k, precision), kernel)
  return (apply_backward(cotangent, backward, precision), kernel_vjp(cotangent)[0],
          jnp.zeros_like(forward), jnp.zeros_like(backward))


_conv_cached.defvjp(_cached_forward, _cached_backward)


def conv_with_flipped(x: jax.Array, kernel: jax.Array, flipped: jax.Array,
                      precision: Any = None) -> jax.Array:
  """Stride-1 SAME convolution of NHWC x with an HWIO kernel whose input
  gradient convolves with `flipped` = flip(kernel)."""
  return _conv_cached(_conv, _conv, x, kernel, kernel, flipped, precision)


def _winograd_flipped(cotangent: jax.Array, transformed: jax.Array, precision: Any) -> jax.Array:
  return winograd.conv3x3(cotangent, transformed, precision, flipped=True)


def conv_winograd(x: jax.Array, kernel: jax.Array, transformed: jax.Array,
                  precision: Any = None) -> jax.Array:
  """conv_with_flipped computed by Winograd F(4x4, 3x3), forward and input
  gradient, from the kernel's winograd.transform_kernel."""
  return _conv_cached(winograd.conv3x3, _winograd_flipped, x, kernel, transformed, transformed,
                      precision)


class Conv3x3(nn.Module):
  """3x3 stride-1 SAME convolution and bias (the parameters of flax's nn.Conv).

  Computed by Winograd when the variables' WINOGRAD collection has this
  layer; else its input gradient takes the flipped kernel from the FLIPPED
  collection when the variables have one.
  """
  features: int
  precision: Any = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (3, 3, x.shape[-1], self.features)
    if self.has_variable('params', 'kernel'):
      # Read directly: flax's `param` would trace the initialiser to check the
      # shape, a fifth of the network's tracing time.
      kernel, bias = self.get_variable('params', 'kernel'), self.get_variable('params', 'bias')
      if kernel.shape != shape or bias.shape != shape[3:]:
        raise ValueError(f'{self.name}: kernel {kernel.shape} and bias {bias.shape} do not fit '
                         f'input {x.shape} and {self.features} features')
    else:
      kernel = self.param('kernel', nn.initializers.lecun_normal(), shape)
      bias = self.param('bias', nn.initializers.zeros_init(), shape[3:])
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    if self.has_variable(WINOGRAD, 'kernel'):
      transformed = self.get_variable(WINOGRAD, 'kernel').astype(kernel.dtype)
      return conv_winograd(x, kernel, transformed, self.precision) + bias
    if self.has_variable(FLIPPED, 'kernel'):
      flipped = self.get_variable(FLIPPED, 'kernel').astype(kernel.dtype)
      return conv_with_flipped(x, kernel, flipped, self.precision) + bias
    return _conv(x, kernel, self.precision) + bias


def check_layers(layers: Sequence[str]) -> None:
  unknown = [l for l in layers if l not in LAYER_NAMES]
  if unknown:
    raise InputError(f'unknown VGG19 layer(s) {", ".join(unknown)}; '
                     f'valid names: {", ".join(LAYER_NAMES)}')


class VGG19(nn.Module):
  """The 16 convolutions of VGG19; 2x2 stride-2 max or average pooling between blocks.

  Average pooling by default, as the paper ("slightly more appealing results")
  and `objective.make`; Keras and most ports use max.
  """
  pooling: str = 'avg'
  precision: Any = None  # of the convolutions: a jax.lax.Precision or its name
  dtype: Any = jnp.float32  # computation dtype, e.g. jnp.bfloat16; outputs float32

  @nn.compact
  def __call__(self, x: jax.Array, layers: Sequence[str] = LAYER_NAMES,
               valid: windows.Valid | None = None, halo: int = 0,
               border: Mapping[str, int] | None = None,
               masks: Mapping[str, jax.Array] | None = None) -> dict[str, jax.Array]:
    """x: (N, H, W, 3) preprocessed BGR -> {layer: (N, H/2^k, W/2^k, C)}.

    valid: where x is a window of a larger image, the image's (top, left,
    height, width) in x's pixels (ints, may be traced; top and left multiples
    of 2^k for the deepest layer's k): x and each layer's output (in the
    ReLU's pass) are zeroed outside the image (windows.inside), so every
    convolution's input is zero there and every position whose receptive
    field lies in x has the features it has in the whole image.
    halo: where only the features of x's centre are needed (a tile, `halo`
    px from each edge, a multiple of the deepest layer's 2^k): each
    convolution computes only the positions that the layers after it need,
    and each layer comes back as the centre's positions and border[layer]
    (default 0) more on each side.
    masks: each convolution's (output > 0) by f'{layer}_relu' and each max
    pooling's pooling.choices by f'{block}_pool', as a call records them in
    the MASKS collection when that is mutable: given, each ReLU keeps the
    positions of its mask and each max pooling takes its choices, so the
    network is linear in x and its input gradient needs none of its forward
    pass's values.
    """
    assert x.ndim == 4 and x.shape[-1] == 3, f'expected NHWC BGR, got {x.shape}'
    pooling.check(self.pooling)
    check_layers(layers)
    if not layers:
      return {}
    names = LAYER_NAMES[:max(LAYER_NAMES.index(l) for l in layers) + 1]
    border = {l: (border or {}).get(l, 0) for l in layers}
    needed = reaches(names, border) if halo else None
    out = {}
    level = 0
    reach = halo  # positions of x beyond the centre on each side, at x's level

    def zero_outside(x: jax.Array) -> jax.Array:
      """x with its positions outside the image zeroed, where x is a window."""
      if valid is None:
        return x
      shift = halo - reach * 2**level  # x's first pixel in the window
      shifted = (valid[0] - shift, valid[1] - shift, valid[2], valid[3])
      return jnp.where(windows.inside(shifted, x.shape[1:3], level)[None, :, :, None], x, 0)

    recording = masks is None and self.is_mutable_collection(MASKS)
    x = zero_outside(x)
    for i, name in enumerate(names):
      if i and block(name) != block(names[i - 1]):
        if needed:
          x, reach = windows.cropped(x, reach, 2 * (needed[i] + 1)), 2 * (needed[i] + 1)
        x = checkpoint_name(x, BLOCK_OUTPUT)
        pool = f'{block(names[i - 1])}_pool'
        if self.pooling == 'max' and recording:
          self.sow(MASKS, pool, pooling.choices(x), reduce_fn=_last)
        x = (pooling.pick(x, masks[pool]) if self.pooling == 'max' and masks is not None
             else pooling.pool2x2(x, self.pooling))
        level, reach = level + 1, reach // 2
        x = zero_outside(x)  # a pooling over the image's odd last row or column
      if needed:
        x, reach = windows.cropped(x, reach, needed[i] + 1), needed[i] + 1
      z = Conv3x3(weights.LAYERS[i][2], self.precision, self.dtype, name=name)(x)
      if masks is None:
        x = zero_outside(nn.relu(z))
        if recording:
          self.sow(MASKS, f'{name}_relu', x > 0, reduce_fn=_last)
      else:
        x = zero_outside(jnp.where(masks[f'{name}_relu'], z, 0))
      if name in layers:
        out[name] = (windows.cropped(x, reach, border[name]) if needed else x).astype(jnp.float32)
    return out


def _last(_: Any, new: Any) -> Any:
  return new


def reaches(names: Sequence[str], border: Mapping[str, int]) -> list[int]:
  """Per convolution of `names` (VGG19's first ones), how many positions
  beyond a centre region its output is needed on each side: border[layer]
  at the layers returned, and what the convolutions and poolings after it
  need (a 3x3 convolution one position more than its output; a pooling
  twice its output's); -1 where none is."""
  needed, after = [], -1
  for i in reversed(range(len(names))):
    needed.insert(0, max(border.get(names[i], -1), after))
    after = needed[0] + 1
    if i and block(names[i]) != block(names[i - 1]):
      after *= 2
  return needed


def load_variables(path: str | os.PathLike | None = None) -> dict[str, Any]:
  """Flax variables {'params': ..., FLIPPED: ...} of the converted ImageNet
  weights (fetched if missing)."""
  params, _ = weights.load(weights.ensure(path))
  # Flipped on the host, where flipping is a view (on jax arrays, each kernel
  # shape compiles its own flip), and put on the device in one transfer.
  return jax.device_put(with_flipped_kernels({'params': params}))
