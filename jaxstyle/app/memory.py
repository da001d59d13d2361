"""Memory preflight: refuse a request the device cannot hold before compiling it.

`estimate` predicts the peak device memory of one optimisation step from layer
shapes alone, for XLA's CPU or GPU compiler, at once or tile by tile
(jaxstyle.tiles); `preflight` compares it with the device's free memory and,
when it does not fit, names the largest height that would; `choose_tile`
picks the tile of config.tile 'auto'.
"""
from collections.abc import Sequence
from typing import Any, NamedTuple

from absl import logging
import jax

from jaxstyle import objective, tiling, vgg, weights
from jaxstyle.errors import ResourceError

GIB = 2**30  # bytes
_FLOAT32 = 4  # bytes
_BFLOAT16 = 2  # bytes
# Buffer counts fitted to XLA's memory_analysis() of the compiled objective and
# solver (tests/test_memory.py; on a GPU, benchmarks/memory_fit.py --target); see `estimate`.
_BACKWARD = 4  # buffers the size of the largest activation
_MAX_POOL = 4  # buffers per max-pooling input (CPU)
_GPU_FIXED = 128 * 2**20  # bytes of XLA:GPU temporaries that do not grow with the image
_IMAGES = 4  # image, gradient, two optimiser buffers
_PER_HISTORY = 4  # L-BFGS s and y, and the fresh copies the update writes
_PER_MASKED_STYLE = 3  # masked features and their gradient, per further masked style
_TILED = 3  # the padded image, its gradient and a copy, per tiled image
_SUMS = 2  # the per-layer sums of a tiled image and the sums they add to


class _Shapes(NamedTuple):
  """Element counts of VGG19's buffers up to a depth at one image size."""
  kept: int  # every conv and pooling output
  largest: int  # the largest activation
  pool_inputs: int  # the poolings' inputs
  kernels: int  # conv weights and biases
  cached: int  # flipped or Winograd-transformed kernels
  targets: int  # content features and a C x C matrix per layer of `layers`
  outputs: int  # activations of `layers`
  squares: int  # a C x C matrix per layer of `layers`


def _shapes(layers: Sequence[str], height: int, width: int, content_layers: Sequence[str],
            winograd: bool) -> _Shapes:
  deepest = max((vgg.LAYER_NAMES.index(l) for l in layers), default=-1)
  h, w = height, width
  kept = largest = pool_inputs = kernels = cached = targets = outputs = squares = 0
  for i, (name, cin, cout) in enumerate(weights.LAYERS[:deepest + 1]):
    if i and vgg.block(name) != vgg.block(vgg.LAYER_NAMES[i - 1]):
      pool_inputs += h * w * cin
      h, w = h // 2, w // 2
      kept += h * w * cin
    kept += h * w * cout
    largest = max(largest, h * w * cout)
    kernels += 9 * cin * cout + cout
    transformed = winograd and cout >= vgg.WINOGRAD_MIN_FEATURES
    cached += (36 if transformed else 9) * cin * cout
    if name in layers:
      squares += cout**2
      targets += cout**2 + (h * w * cout if name in content_layers else 0)
      outputs += h * w * cout
  return _Shapes(kept, largest, pool_inputs, kernels, cached, targets, outputs, squares)


def estimate(layers: Sequence[str], height: int, width: int, batch: int = 1,
             history_size: int = 10, pooling: str = 'max',
             content_layers: Sequence[str] | None = None,
             masked_styles: int = 0, winograd: bool = False,
             platform: str | None = None, precision: str = 'highest', tile: int = 0,
             tile_remat: bool | str = 'auto') -> int:
  """Peak device memory (bytes) of one loss-and-gradient step plus optimiser state.

  A sum of buffers (float32 unless noted), from VGG19's layer shapes up to
  the deepest of `layers` at height x width px:

    batch · (B + (4 + 4·history_size)·I + 3·(S − 1)·F) + W + K + T (+ 128 MiB)

  with B, the activations and the backward pass's buffers, by `platform`
  (default: JAX's default backend):

    'cpu':  B = A + 4·L + 4·P
    other:  B = max(A, 4·L), in bfloat16 (half the bytes) at precision 'bf16',
            and 128 MiB of temporaries that do not grow with the image

  A: every conv and pooling output, kept once for the backward pass (the
     ReLU output; XLA keeps no separate pre-ReLU copy).
  L: the largest activation (block1, 64·H·W): the backward pass's transient
     buffers (gradients into and out of a layer, loss gradients).
  P: the inputs of max poolings, whose gradient takes about 4 buffers each
     on a CPU; 0 for pooling='avg'. The default 'max' is the upper bound.
  I: the image, H·W·3. Four: the image, its gradient and two optimiser
     buffers; four per L-BFGS history entry (s and y, and the copies the
     update writes before it replaces them).
  F: the activations of `layers` (standing in for the style layers'): with
     S = masked_styles > 1 style images under masks, each after the first
     keeps its masked features and their gradient (one masked style costs
     what an unmasked one does; unmasked styles share one Gram).
  W: the conv weights of the layers used.
  K: the kernels the convolutions read besides: each kernel flipped for
     the input gradient (its size), or with `winograd`, on layers with at
     least vgg.WINOGRAD_MIN_FEATURES outputs, its Winograd transform (4x).
     At `precision` 'bf16', W and K have a bfloat16 copy besides (half the
     bytes).
  T: targets, shared by the batch: the features of each of `content_layers`
     (default: every layer, an upper bound) and a C x C Gram per layer.

  With `tile` (px, jaxstyle.tiles), B and F are those of one tile's window
  (the tile and its halo), and the tiles take 3·I' more, I' the image padded
  to whole tiles and the halo: the padded image, the gradient the tiles add
  into and a copy; T counts the per-layer sums and their total besides
  (2·C² a layer and style); where the tiles keep their masks and features
  for the backward pass (tiling.keeps by `tile_remat`), tiling.kept_bytes
  more. Fitted to XLA:CPU's compiled peaks at block 2
  and block 5 depths (tests/test_memory.py); the GPU form is unmeasured tiled.

  XLA:CPU keeps the backward pass's buffers beside the activations, so their
  sizes add up. XLA:GPU's buffer plan reuses the activations' memory for the
  backward pass as it goes, and max pooling's gradient costs nothing extra
  there, so its peak is the larger of the two. `config.remat` is not counted:
  XLA:CPU merges its recomputation back into the forward pass, and on XLA:GPU
  it moves the compiled peak either way (docs/performance.md).

  Fitted to XLA:CPU's compiled peaks across depths, sizes, poolings and
  precisions, and to XLA:GPU's compiler for an H200 (sm_90), float32 and
  bfloat16, with and without remat; tests/test_memory.py holds the bands and
  docs/performance.md the fit. TPUs take the GPU counts, unmeasured.
  """
  vgg.check_layers(layers)
  content_layers = layers if content_layers is None else content_layers
  whole = _shapes(layers, height, width, content_layers, winograd)
  padded = kept = 0
  if tile:
    g = tiling.grid((height, width), tile, tuple(layers))
    padded = _TILED * 3 * (g.shape[0] * g.tile_hw[0] + 2 * g.halo) * (
        g.shape[1] * g.tile_hw[1] + 2 * g.halo)
    if tiling.keeps(g, tuple(layers), pooling, tile_remat):
      kept = tiling.kept_bytes(g, tuple(layers), pooling)[0]
  net = _shapes(layers, *g.window_hw, content_layers, winograd) if tile else whole
  bf16 = precision == 'bf16'
  on_cpu = (platform or jax.default_backend()) == 'cpu'
  if on_cpu:
    pooling_grad = _MAX_POOL * net.pool_inputs if pooling == 'max' else 0
    activations = net.kept + _BACKWARD * net.largest + pooling_grad
  else:
    activations = max(net.kept, _BACKWARD * net.largest) * (_BFLOAT16 / _FLOAT32 if bf16 else 1)
  images = (_IMAGES + _PER_HISTORY * history_size) * height * width * 3 + padded
  masked = _PER_MASKED_STYLE * max(masked_styles - 1, 0) * net.outputs
  per_image = activations + images + masked
  kernels, cached = whole.kernels, whole.cached
  if bf16:
    kernels, cached = (x * (1 + _BFLOAT16 / _FLOAT32) for x in (kernels, cached))
  targets = whole.targets + (_SUMS * max(masked_styles, 1) * whole.squares if tile else 0)
  fixed = 0 if on_cpu else _GPU_FIXED
  return int(_FLOAT32 * (batch * per_image + kernels + cached + targets)) + batch * kept + fixed


def _mem_available(path: str = '/proc/meminfo') -> int | None:
  """MemAvailable of Linux's meminfo (bytes); None without one."""
  try:
    with open(path) as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024  # kB
  except OSError:
    return None
  return None


def available(device: jax.Device | None = None) -> int | None:
  """Free bytes on `device` (default: JAX's first device); None if unknown.

  GPU/TPU: the allocator's bytes_limit - bytes_in_use. CPU: the host's
  MemAvailable.
  """
  device = device or jax.devices()[0]
  if device.platform == 'cpu':
    return _mem_available()
  stats = device.memory_stats()
  if not stats or 'bytes_limit' not in stats:
    return None
  return stats['bytes_limit'] - stats.get('bytes_in_use', 0)


def largest_height(layers: Sequence[str], aspect: float, batch: int,
                   history_size: int, budget_bytes: float, pooling: str = 'max',
                   content_layers: Sequence[str] | None = None,
                   masked_styles: int = 0, winograd: bool = False,
                   platform: str | None = None, precision: str = 'highest',
                   tile: int = 0, tile_remat: bool | str = 'auto') -> int:
  """Largest height (px) whose `estimate` at width round(aspect·height) fits
  `budget_bytes`; 0 if none does. aspect: width / height."""
  def fits(height: int) -> bool:
    width = max(1, round(aspect * height))
    return estimate(layers, height, width, batch=batch, history_size=history_size,
                    pooling=pooling, content_layers=content_layers,
                    masked_styles=masked_styles, winograd=winograd, platform=platform,
                    precision=precision, tile=tile, tile_remat=tile_remat) <= budget_bytes

  lo, hi = 0, 1  # fits(lo) or lo == 0; not fits(hi) once the doubling stops
  while fits(hi):
    lo, hi = hi, 2 * hi
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (mid, hi) if fits(mid) else (lo, mid)
  return lo


def of_spec(spec: objective.Spec) -> dict[str, Any]:
  """The keywords of `estimate` and `preflight` that an objective's Spec sets."""
  return dict(pooling=spec.pooling, content_layers=spec.content_layers,
              winograd=spec.winograd, precision=spec.precision, tile_remat=spec.tile_remat)


def preflight(layers: Sequence[str], height: int, width: int, batch: int = 1,
              history_size: int = 10, device: jax.Device | None = None,
              headroom: float = 0.9, pooling: str = 'max',
              content_layers: Sequence[str] | None = None,
              masked_styles: int = 0, winograd: bool = False,
              precision: str = 'highest', tile: int = 0,
              tile_remat: bool | str = 'auto') -> None:
  """Raises ResourceError if `estimate` for `device`'s platform (tiled with
  `tile` px) exceeds headroom x its free memory, naming the largest height
  that fits at that tile. Does nothing when the free memory is unknown."""
  device = device or jax.devices()[0]
  free = available(device)
  if free is None:
    return
  budget = headroom * free
  shape = dict(batch=batch, history_size=history_size, pooling=pooling,
               content_layers=content_layers, masked_styles=masked_styles, winograd=winograd,
               platform=device.platform, precision=precision, tile=tile,
               tile_remat=tile_remat)
  need = estimate(layers, height, width, **shape)
  if need <= budget:
    return
  fit = largest_height(layers, width / height, budget_bytes=budget, **shape)
  images = f' x {batch} images' if batch > 1 else ''
  tiled = f' in tiles of {tile} px' if tile else ''
  raise ResourceError(
      f'{width}x{height} px{images} needs about {need / GIB:.2f} GiB of device '
      f'memory{tiled} but {free / GIB:.2f} GiB is free ({headroom:.0%} of it may be '
      f'used); the largest height that fits at this aspect ratio{tiled} is {fit} px')


def fits(layers: Sequence[str], height: int, width: int, device: jax.Device | None = None,
         headroom: float = 0.9, **shape: Any) -> bool:
  """Whether `estimate` (with `shape`, its keywords) fits headroom x
  `device`'s free memory; True where that is unknown."""
  device = device or jax.devices()[0]
  free = available(device)
  return free is None or estimate(layers, height, width, platform=device.platform,
                                  **shape) <= headroom * free


def choose_tile(layers: Sequence[str], height: int, width: int, history_size: int = 10,
                device: jax.Device | None = None, headroom: float = 0.9,
                **shape: Any) -> int:
  """config.tile 'auto' at height x width px: 0 (untiled) where the untiled
  `estimate` fits headroom x `device`'s free memory or that is unknown, else
  the largest tile, a multiple of the deepest layer's stride, whose estimate
  fits (logged); the stride where none does, which `preflight` refuses.
  shape: estimate's pooling, content_layers, masked_styles, winograd,
  precision, tile_remat."""
  device = device or jax.devices()[0]
  free = available(device)
  need = lambda tile: estimate(layers, height, width, history_size=history_size,
                               platform=device.platform, tile=tile, **shape)
  if free is None or need(0) <= headroom * free:
    return 0
  stride = 2**max(vgg.downsampling(l) for l in layers)
  tile = next((t for t in range(-(-max(height, width) // stride) * stride, stride, -stride)
               if need(t) <= headroom * free), stride)
  logging.info('config.tile auto: %dx%d px needs about %.2f GiB untiled, %.2f GiB is free: '
               'tiles of %d px, about %.2f GiB', width, height, need(0) / GIB, free / GIB,
               tile, need(tile) / GIB)
  return tile
