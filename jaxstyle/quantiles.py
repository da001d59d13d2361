"""The style losses of sorted features, 'histogram' (Risser et al. 2017) and
'sliced' (Heitz et al. 2021): each channel, or each random projection, of
the output's features matched to the style's quantile function
(style.KINDS holds them)."""
import jax
import jax.numpy as jnp

from jaxstyle import losses, sorting


def _quantile_distance(f: jax.Array, mask: jax.Array | None, style: jax.Array,
                       style_sorted: bool = True) -> jax.Array:
  """Σ_i w_i (f_(i) - Q(position of f_(i)))² per column, averaged over the
  columns: f (M, K); the position of the i-th smallest is the weight below
  it plus half its own (w uniform without a mask: (i + ½)/M); Q the
  quantile function of each row of style (K, M_s), ascending where
  style_sorted. The matched quantiles are a constant, each compared with
  the element of its rank where it is, so the gradient needs no permutation."""
  m = f.shape[0]
  if mask is None:
    w = jnp.full((m, 1), 1.0 / m)
    if style_sorted:  # the quantiles at the sorted positions, on the device
      style = sorting.interpolate(style, sorting.uniform_positions(m))
    target = sorting.matched(f, style, style_sorted)
  else:
    w = losses.position_weights(mask, m)[:, None]
    order, rank = sorting.order_and_ranks(f.T)
    w_sorted = w[:, 0][order]
    at = jnp.take_along_axis(jnp.cumsum(w_sorted, axis=-1) - w_sorted / 2, rank, axis=-1)
    style = style if style_sorted else sorting.sort(style)
    target = sorting.interpolate(style, at).T
  return jnp.mean(jnp.sum(w * jnp.square(f - jax.lax.stop_gradient(target)), axis=0))


def histogram_target(features: jax.Array) -> jax.Array:
  """Each channel's values in ascending order, (C, M_s)."""
  return sorting.sort(losses.positions(features).T)


def histogram_distance(features, target, mask, key, normalization, image_hw):
  del key, normalization, image_hw
  return _quantile_distance(losses.positions(features), mask, target)


def directions(key: jax.Array, channels: int, count: int) -> jax.Array:
  """count random unit directions in R^channels, as columns (channels, count)."""
  d = jax.random.normal(key, (channels, count))
  return d / jnp.linalg.norm(d, axis=0, keepdims=True)


def sliced_target(features: jax.Array) -> jax.Array:
  """The style's features as rows, (C, M_s): their projections need no transpose."""
  return losses.positions(features).T


def sliced_distance(features, target, mask, key, normalization, image_hw, projections=None):
  del normalization, image_hw
  f = losses.positions(features)
  d = directions(key, f.shape[1], projections or f.shape[1])
  return _quantile_distance(f @ d, mask, d.T @ target, style_sorted=False)
