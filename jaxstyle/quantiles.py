"""The style losses of sorted features, 'histogram' (Risser et al. 2017) and
'sliced' (Heitz et al. 2021): each channel, or each random projection, of
the output's features matched to the style's quantile function
(style.KINDS holds them)."""
import jax
import jax.numpy as jnp

from jaxstyle import losses


def _quantiles(style_sorted: jax.Array, at: jax.Array) -> jax.Array:
  """Q(at) per column: linear between the sorted values (M_s, K), placed at
  (j + ½)/M_s, and constant beyond the first and last (as np.interp).
  at: (M, K) or (M, 1), in 0..1. Index arithmetic, not a search: O(M·K)."""
  m_s = style_sorted.shape[0]
  t = jnp.clip(at * m_s - 0.5, 0.0, m_s - 1.0)
  low = jnp.floor(t)
  frac = t - low
  low = low.astype(jnp.int32)
  high = jnp.minimum(low + 1, m_s - 1)
  take = lambda i: jnp.take_along_axis(style_sorted, jnp.broadcast_to(
      i, (i.shape[0], style_sorted.shape[1])), axis=0)
  return (1.0 - frac) * take(low) + frac * take(high)


def _quantile_distance(f: jax.Array, mask: jax.Array | None,
                       style_sorted: jax.Array) -> jax.Array:
  """Σ_i w_i (f_(i) - Q(position of f_(i)))² per column, averaged over the
  columns: f (M, K); the position of the i-th smallest is the weight below it
  plus half its own (w uniform without a mask: (i + ½)/M); style_sorted
  (M_s, K) ascending. The matched quantiles are a constant."""
  m = f.shape[0]
  if mask is None:
    f_sorted = jnp.sort(f, axis=0)
    w_sorted = jnp.full((m, 1), 1.0 / m)
  else:
    order = jnp.argsort(f, axis=0)
    f_sorted = jnp.take_along_axis(f, order, axis=0)
    w_sorted = losses.position_weights(mask, m)[order]
  at = jnp.cumsum(w_sorted, axis=0) - w_sorted / 2
  target = jax.lax.stop_gradient(_quantiles(style_sorted, at))
  return jnp.mean(jnp.sum(w_sorted * jnp.square(f_sorted - target), axis=0))


def histogram_target(features: jax.Array) -> jax.Array:
  return jnp.sort(losses.positions(features), axis=0)


def histogram_distance(features, target, mask, key, normalization, image_hw):
  del key, normalization, image_hw
  return _quantile_distance(losses.positions(features), mask, target)


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
  return _quantile_distance(f @ d, mask, jnp.sort(target @ d, axis=0))
