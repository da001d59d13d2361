"""Coarse to fine (`scales`): the solve at a few heights, each scale starting
from the previous scale's result, upsampled, as crowsonkb's
style-transfer-pytorch (`--min-scale`) and neural-style's multires scripts
do, so that the large structures settle at the cheap coarse scales (whether
it pays at a size: docs/performance.md).

Steps count on across scales: scale k runs the run's steps ends[k]..ends[k+1].
"""
from collections.abc import Iterable
import itertools

import jax
import jax.numpy as jnp

from jaxstyle import image, optimize
from jaxstyle.errors import InputError


def heights(height: int, scales: int, factor: float, min_side: int) -> list[int]:
  """Each scale's height (px), coarsest first: the last is `height`, each one
  before it the next divided by `factor`, rounded.

  Raises:
    InputError: naming config.scales, if there are several and the first is
      below `min_side` (objective.min_side of the layers).
  """
  out = [round(height / factor**(scales - 1 - k)) for k in range(scales)]
  if scales > 1 and out[0] < min_side:
    raise InputError(f'config.scales: {scales} scales a factor {factor:g} apart start at '
                     f'{out[0]} px, below the {min_side} px the layers need; use fewer scales, '
                     'a smaller scale_factor or a larger height')
  return out


def ends(steps: int, scale_steps: int | None, scales: int) -> list[int]:
  """The run's step at each scale's start and at the last one's end
  (scales + 1 values): `scale_steps` (unset: `steps`) at every scale but the
  last, which runs `steps`."""
  per_scale = [steps if scale_steps is None else scale_steps] * (scales - 1) + [steps]
  return list(itertools.accumulate(per_scale, initial=0))


def stops(first: int, last: int, periods: Iterable[int]) -> list[int]:
  """optimize.stops for the scale that runs the run's steps first..last,
  counted from the scale's start: its two ends and every multiple of each
  positive period of the run's step in between."""
  return [0] + [s - first for s in optimize.stops(last, periods) if s > first]


def resize(x: jax.Array, height: int, width: int) -> jax.Array:
  """x (1, h, w, 3), network input space, at (1, height, width, 3): bicubic in
  pixel space, clipped to the 0..255 that bicubic overshoots at edges."""
  means = jnp.asarray(image.BGR_MEANS, jnp.float32)
  pixels = jax.image.resize(x + means, (1, height, width, 3), 'cubic')
  return jnp.clip(pixels, 0.0, 255.0) - means
