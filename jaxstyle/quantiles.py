"""The style losses of sorted features, 'histogram' (Risser et al. 2017) and
'sliced' (Heitz et al. 2021): each channel, or each random projection, of
the output's features matched to the style's quantile function
(style.KINDS holds them)."""
import jax
import jax.numpy as jnp

from jaxstyle import losses, sorting


def _quantiles(style_sorted: jax.Array, at: jax.Array) -> jax.Array:
  """Q(at) per row: linear between the sorted values (K, M_s), placed at
  (j + ½)/M_s, and constant beyond the first and last (as np.interp).
  at: (K, M) in 0..1. Index arithmetic, not a search: O(M·K)."""
  m_s = style_sorted.shape[-1]
  t = jnp.clip(at * m_s - 0.5, 0.0, m_s - 1.0)
  low = jnp.floor(t)
  frac = t - low
  low = low.astype(jnp.int32)
  take = lambda i: jnp.take_along_axis(style_sorted, i, axis=-1)
  return (1.0 - frac) * take(low) + frac * take(jnp.minimum(low + 1, m_s - 1))


def _quantile_distance(f: jax.Array, mask: jax.Array | None,
                       style_sorted: jax.Array) -> jax.Array:
  """Σ_i w_i (f_(i) - Q(position of f_(i)))² per row, averaged over the rows:
  f (K, M); the position of the i-th smallest is the weight below it plus
  half its own (w uniform without a mask: (i + ½)/M); style_sorted (K, M_s)
  ascending. The matched quantiles are a constant, each compared with the
  element of its rank where it is, so the gradient needs no permutation."""
  m = f.shape[-1]
  if mask is None:
    w = jnp.full((1, m), 1.0 / m)
    at = (jnp.arange(m, dtype=jnp.float32)[None] + 0.5) / m
    target = sorting.matched(f, _quantiles(style_sorted, jnp.broadcast_to(at, f.shape)))
  else:
    w = losses.position_weights(mask, m)[None]
    order, rank = sorting.order_and_ranks(f)
    w_sorted = w[0][order]
    at = jnp.take_along_axis(jnp.cumsum(w_sorted, axis=-1) - w_sorted / 2, rank, axis=-1)
    target = _quantiles(style_sorted, at)
  return jnp.mean(jnp.sum(w * jnp.square(f - jax.lax.stop_gradient(target)), axis=-1))


def histogram_target(features: jax.Array) -> jax.Array:
  """Each channel's values in ascending order, (C, M_s)."""
  return sorting.sort(losses.positions(features).T)


def histogram_distance(features, target, mask, key, normalization, image_hw):
  del key, normalization, image_hw
  return _quantile_distance(losses.positions(features).T, mask, target)


def directions(key: jax.Array, channels: int, count: int) -> jax.Array:
  """count random unit directions in R^channels, as columns (channels, count)."""
  d = jax.random.normal(key, (channels, count))
  return d / jnp.linalg.norm(d, axis=0, keepdims=True)


def sliced_target(features: jax.Array) -> jax.Array:
  return losses.positions(features)


def sliced_distance(features, target, mask, key, normalization, image_hw, projections=None):
  del normalization, image_hw
  f = losses.positions(features)
  d = directions(key, f.shape[1], projections or f.shape[1])
  project = lambda x: jnp.einsum('cp,mc->pm', d, x)
  return _quantile_distance(project(f), mask, sorting.sort(project(target)))
