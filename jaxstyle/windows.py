"""A window of a larger image, as jaxstyle.tiles cuts them and VGG19 computes
on them: which of its positions lie in the image, and cutting its centre out."""
import jax
import jax.numpy as jnp

# An image's (top, left, height, width) in a window's pixels: VGG19's `valid`.
Valid = tuple[jax.Array | int, jax.Array | int, jax.Array | int, jax.Array | int]


def inside(valid: Valid, shape: tuple[int, int], level: int) -> jax.Array:
  """(h, w) bool: which positions of a window's features `level` poolings
  deep, shape (h, w), lie in the image (`valid`, at input resolution). The
  image has floor(height / 2^level) rows there, as VALID poolings drop an
  odd last row."""
  top, left, height, width = (jnp.asarray(v) // 2**level for v in valid)
  rows = (jnp.arange(shape[0]) >= top) & (jnp.arange(shape[0]) < top + height)
  cols = (jnp.arange(shape[1]) >= left) & (jnp.arange(shape[1]) < left + width)
  return rows[:, None] & cols[None, :]


def cropped(x: jax.Array, reach: int, keep: int) -> jax.Array:
  """x (N, h, w, C), a centre region and `reach` positions around it, cut to
  the centre and `keep` around it."""
  cut = reach - keep
  assert cut >= 0, (reach, keep)
  return x[:, cut:x.shape[1] - cut, cut:x.shape[2] - cut] if cut else x
