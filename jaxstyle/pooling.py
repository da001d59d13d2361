"""VGG19's 2x2 pooling between blocks: max or average, NHWC, with the
gradient rule for tied maxima that torch and cuDNN use."""
import jax
import jax.numpy as jnp

from jaxstyle.errors import InputError

KINDS = ('max', 'avg')


def check(kind: str) -> None:
  if kind not in KINDS:
    raise InputError(f'pooling must be one of {KINDS}, got {kind!r}')


@jax.custom_jvp
def _max_of_windows(windows: jax.Array) -> jax.Array:
  return windows.max(axis=(2, 4))


@_max_of_windows.defjvp
def _max_of_windows_jvp(primals, tangents):
  """The tangent of each window's first maximum in row-major order, torch's
  and cuDNN's choice: one select per window element, where JAX's rule for
  max (ties share) also counts the ties and divides."""
  (windows,), (tangent,) = primals, tangents
  top = windows.max(axis=(2, 4))
  out = tangent[:, :, 1, :, 1]
  for i, j in ((1, 0), (0, 1), (0, 0)):
    out = jnp.where(windows[:, :, i, :, j] == top, tangent[:, :, i, :, j], out)
  return top, out


def _windows(x: jax.Array) -> jax.Array:
  """NHWC x -> (N, H/2, 2, W/2, 2, C), its 2x2 windows; an odd last row or column dropped."""
  n, h, w, c = x.shape
  return x[:, :h - h % 2, :w - w % 2].reshape(n, h // 2, 2, w // 2, 2, c)


def choices(x: jax.Array) -> jax.Array:
  """(N, H/2, W/2, C) uint8: which element of each 2x2 window of NHWC x
  (row-major, 0..3) max pooling takes, the first of tied maxima."""
  windows = _windows(x)
  top = windows.max(axis=(2, 4))
  out = jnp.full(top.shape, 3, jnp.uint8)
  for k in (2, 1, 0):
    out = jnp.where(windows[:, :, k // 2, :, k % 2] == top, jnp.uint8(k), out)
  return out


def pick(x: jax.Array, choice: jax.Array) -> jax.Array:
  """Max pooling of NHWC x with its windows' choices given (`choices`):
  linear in x, so its gradient needs only `choice`."""
  windows = _windows(x)
  out = windows[:, :, 1, :, 1]
  for k in (2, 1, 0):
    out = jnp.where(choice == k, windows[:, :, k // 2, :, k % 2], out)
  return out


def pool2x2(x: jax.Array, kind: str) -> jax.Array:
  """2x2 stride-2 max or average pooling of NHWC x; an odd last row or column is dropped.

  A reshape and a reduction rather than reduce_window, whose max gradient
  (select-and-scatter) is slower on XLA:CPU (docs/performance.md).
  Of tied maxima the first, row by row, takes the gradient.
  """
  check(kind)
  windows = _windows(x)
  return _max_of_windows(windows) if kind == 'max' else windows.mean(axis=(2, 4))
