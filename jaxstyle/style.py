"""Style losses: one layer's distance between an output's features F and a
style image's S, for each kind a researcher compares (`KINDS`).

Per layer, F is the output's activations as M x C (M positions, C channels),
S the style image's, M_s x C. Each kind is a `StyleLoss`: `target` computes
the style image's statistics once, `distance` compares the output's features
with them at every evaluation. Masks (H_l, W_l) in 0..1 weight the output's
positions (masked means, covariances and quantiles); `key` seeds the random
projections of 'sliced'.

- 'gram': Gatys et al. (2015), in losses.py: Σ(G - A)² / (4 N² M²).
- 'mean_std': Huang & Belongie (2017): (1/C) Σ_c (μ_c(F) - μ_c(S))² + (σ_c(F) - σ_c(S))²,
  σ = sqrt(biased variance + 1e-5).
- 'w2': the Wasserstein-2 distance of Gaussian fits: (1/C) [|μ_F - μ_S|² +
  tr(Σ_F + Σ_S - 2 (Σ_S^½ Σ_F Σ_S^½)^½)], biased covariances; matrix square
  roots by symmetric eigendecomposition, eigenvalues below the decomposition's
  rounding floor C·ε·λ_max counted as 0 (`trace_sqrt`).
- 'histogram': Risser et al. (2017): (1/C) Σ_c (1/M) Σ_i (sort(F_c)_i - Q_c((i + ½)/M))²,
  Q_c the style channel's quantile function, linear between its sorted values
  placed at (j + ½)/M_s; the matched target is a constant.
- 'sliced': Heitz et al. (2021): 'histogram' of F and S projected on P random
  unit directions, averaged over the directions.
- 'mrf': Li & Wand (2016): every 3x3 patch of F takes the style patch of
  highest normalised cross-correlation; (1 / (N_F 9C)) Σ_i |Ψ_i(F) - Ψ_NN(i)(S)|².
"""
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxstyle import losses, sorting

MEAN_STD_EPS = 1e-5  # added to the variance before its square root ('mean_std')
MRF_CHUNK = 512  # style patches matched at once ('mrf'): memory N_F x MRF_CHUNK


class StyleLoss(NamedTuple):
  """One kind of style loss, as pure functions of one image's features."""
  # (1, H_s, W_s, C) style features -> statistics (a pytree of arrays).
  target: Callable[[jax.Array], Any]
  # (features (1, H, W, C), statistics, mask (H, W) in 0..1 or None, key or None,
  #  normalization, image_hw) -> the layer's term, a scalar.
  distance: Callable[..., jax.Array]
  masks: bool  # whether masks are defined for it
  random: bool  # whether it draws from `key` (a fresh key per step)
  # β when none is given: its style gradient at the content image about as
  # strong as 'gram' at 1e4 (Tübingen x The Starry Night and The Scream,
  # 128 px, default layers; docs/performance.md).
  weight: float


def _flat(features: jax.Array) -> jax.Array:
  losses.check_one_image(features)
  return features.reshape(-1, features.shape[-1])


def _weights(mask: jax.Array | None, m: int) -> jax.Array:
  """Per-position weights (M,) summing to 1."""
  w = jnp.ones((m,), jnp.float32) if mask is None else mask.reshape(m).astype(jnp.float32)
  return w / jnp.sum(w)


def mean_cov(f: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Weighted mean (C,) and biased covariance (C, C) of f (M, C); w (M,) sums to 1."""
  mu = w @ f
  centred = f - mu
  return mu, (centred * w[:, None]).T @ centred


# 'gram'


def _gram_target(features: jax.Array) -> jax.Array:
  return losses.style_target(features)


def _gram_distance(features, target, mask, key, normalization, image_hw):
  del key
  return losses.style_loss(features, target, normalization, image_hw, mask)


# 'mean_std'


def _moments(f: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
  mu = w @ f
  return mu, jnp.sqrt(w @ jnp.square(f - mu) + MEAN_STD_EPS)


def _mean_std_target(features: jax.Array) -> tuple[jax.Array, jax.Array]:
  f = _flat(features)
  return _moments(f, _weights(None, f.shape[0]))


def _mean_std_distance(features, target, mask, key, normalization, image_hw):
  del key, normalization, image_hw
  f = _flat(features)
  mu, sigma = _moments(f, _weights(mask, f.shape[0]))
  return jnp.mean(jnp.square(mu - target[0]) + jnp.square(sigma - target[1]))


# 'w2'


def _kept(w: jax.Array) -> jax.Array:
  """Eigenvalues w of a symmetric positive semi-definite matrix, those below
  its rounding floor C·ε·max|w| (float32: the decomposition's own error)
  set to 0: rank-deficient covariances (dead ReLU channels, fewer positions
  than channels) have exact zeros there, and the square root of rounding
  noise would add C·sqrt(ε·max|w|) to a trace."""
  floor = w.shape[-1] * jnp.finfo(w.dtype).eps * jnp.max(jnp.abs(w))
  return jnp.where(w > floor, w, 0.0)


def _sqrt_psd(m: jax.Array) -> jax.Array:
  """Square root of a symmetric positive semi-definite matrix (eigh)."""
  w, v = jnp.linalg.eigh(m)
  return (v * jnp.sqrt(_kept(w))) @ v.T


@jax.custom_jvp
def trace_sqrt(m: jax.Array) -> jax.Array:
  """tr(m^½) of a symmetric positive semi-definite (C, C) matrix: Σ sqrt(λ_i),
  eigenvalues below the rounding floor counted as 0 (`_kept`)."""
  return jnp.sum(jnp.sqrt(_kept(jnp.linalg.eigvalsh(m))))


@trace_sqrt.defjvp
def _trace_sqrt_jvp(primals, tangents):
  """d tr(m^½) = tr(V diag(1 / (2 sqrt λ)) Vᵀ dm) over the kept eigenvalues:
  the eigenvalues alone, so no 1/(λ_i - λ_j) of eigenvector derivatives
  (infinite at repeated ones), and finite where m is rank-deficient."""
  (m,), (dm,) = primals, tangents
  w, v = jnp.linalg.eigh(m)
  kept = _kept(w)
  d = jnp.where(kept > 0, 0.5 / jnp.sqrt(jnp.where(kept > 0, kept, 1.0)), 0.0)
  g = (v * d) @ v.T
  return jnp.sum(jnp.sqrt(kept)), jnp.sum(g * (dm + dm.T) / 2)


def _w2_target(features: jax.Array) -> dict[str, jax.Array]:
  f = _flat(features)
  mu, cov = mean_cov(f, _weights(None, f.shape[0]))
  return {'mean': mu, 'cov': cov, 'cov_sqrt': _sqrt_psd(cov)}


def _w2_distance(features, target, mask, key, normalization, image_hw):
  """With Y the weighted, centred features (YᵀY = Σ_F) and Z = Y Σ_S^½,
  tr((Σ_S^½ Σ_F Σ_S^½)^½) = tr((ZᵀZ)^½) = tr((ZZᵀ)^½): the smaller of the
  C x C and M x M matrices is decomposed (M < C in deep layers of small images)."""
  del key, normalization, image_hw
  f = _flat(features)
  m, c = f.shape
  w = _weights(mask, m)
  mu = w @ f
  y = jnp.sqrt(w)[:, None] * (f - mu)
  z = y @ target['cov_sqrt']
  cross = z @ z.T if m < c else z.T @ z
  value = (jnp.sum(jnp.square(mu - target['mean'])) + jnp.sum(jnp.square(y))
           + jnp.trace(target['cov']) - 2.0 * trace_sqrt(cross))
  return value / c


# 'histogram' and 'sliced'


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
    w = _weights(mask, m)[None]
    order, rank = sorting.order_and_ranks(f)
    w_sorted = w[0][order]
    at = jnp.take_along_axis(jnp.cumsum(w_sorted, axis=-1) - w_sorted / 2, rank, axis=-1)
    target = _quantiles(style_sorted, at)
  return jnp.mean(jnp.sum(w * jnp.square(f - jax.lax.stop_gradient(target)), axis=-1))


def _histogram_target(features: jax.Array) -> jax.Array:
  """Each channel's values in ascending order, (C, M_s)."""
  return sorting.sort(_flat(features).T)


def _histogram_distance(features, target, mask, key, normalization, image_hw):
  del key, normalization, image_hw
  return _quantile_distance(_flat(features).T, mask, target)


def directions(key: jax.Array, channels: int, count: int) -> jax.Array:
  """count random unit directions in R^channels, as columns (channels, count)."""
  d = jax.random.normal(key, (channels, count))
  return d / jnp.linalg.norm(d, axis=0, keepdims=True)


def _sliced_target(features: jax.Array) -> jax.Array:
  return _flat(features)


def _sliced_distance(features, target, mask, key, normalization, image_hw, projections=None):
  del normalization, image_hw
  f = _flat(features)
  d = directions(key, f.shape[1], projections or f.shape[1])
  project = lambda x: jnp.einsum('cp,mc->pm', d, x)
  return _quantile_distance(project(f), mask, sorting.sort(project(target)))


# 'mrf'


def patches(features: jax.Array) -> jax.Array:
  """Every 3x3 patch (stride 1, inside the image) of (1, H, W, C): ((H-2)(W-2), 9C)."""
  p = jax.lax.conv_general_dilated_patches(features, (3, 3), (1, 1), 'VALID',
                                           dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return p.reshape(-1, p.shape[-1])


def _mrf_target(features: jax.Array) -> dict[str, jax.Array]:
  losses.check_one_image(features)
  p = patches(features)
  norm = jnp.linalg.norm(p, axis=1, keepdims=True)
  return {'patches': p, 'normalized': p / jnp.maximum(norm, 1e-12)}


def nearest_patches(out: jax.Array, normalized: jax.Array, chunk: int = MRF_CHUNK) -> jax.Array:
  """For each row of out (N, D), the index of the row of `normalized` (N_s, D)
  of highest dot product (normalised cross-correlation, since out's own norm
  does not change the argmax), in chunks of `chunk` style patches."""
  n_s = normalized.shape[0]
  pad = -n_s % chunk
  padded = jnp.pad(normalized, ((0, pad), (0, 0))).reshape(-1, chunk, normalized.shape[1])
  valid = (jnp.arange(n_s + pad) < n_s).reshape(-1, chunk)

  def scan(best, block):
    rows, ok = block
    scores = jnp.where(ok[None, :], out @ rows.T, -jnp.inf)
    top, at = jnp.max(scores, axis=1), jnp.argmax(scores, axis=1).astype(jnp.int32)
    offset = best[2]
    better = top > best[0]
    return (jnp.where(better, top, best[0]), jnp.where(better, at + offset, best[1]),
            offset + chunk), None

  start = (jnp.full(out.shape[0], -jnp.inf, out.dtype), jnp.zeros(out.shape[0], jnp.int32),
           jnp.int32(0))
  (_, index, _), _ = jax.lax.scan(scan, start, (padded, valid))
  return index


def _mrf_distance(features, target, mask, key, normalization, image_hw):
  del mask, key, normalization, image_hw
  losses.check_one_image(features)
  p = patches(features)
  index = nearest_patches(jax.lax.stop_gradient(p), target['normalized'])
  return jnp.sum(jnp.square(p - target['patches'][index])) / p.size


KINDS: dict[str, StyleLoss] = {
    'gram': StyleLoss(_gram_target, _gram_distance, masks=True, random=False, weight=1e4),
    'mean_std': StyleLoss(_mean_std_target, _mean_std_distance, masks=True, random=False,
                          weight=2e8),
    'w2': StyleLoss(_w2_target, _w2_distance, masks=True, random=False, weight=1e8),
    'histogram': StyleLoss(_histogram_target, _histogram_distance, masks=True, random=False,
                           weight=2e8),
    'sliced': StyleLoss(_sliced_target, _sliced_distance, masks=True, random=True, weight=2e8),
    'mrf': StyleLoss(_mrf_target, _mrf_distance, masks=False, random=False, weight=1e8),
}


def sliced(projections: int | None) -> StyleLoss:
  """'sliced' with `projections` directions per evaluation (None: C, the layer's channels)."""
  distance = functools.partial(_sliced_distance, projections=projections)
  return KINDS['sliced']._replace(distance=distance)
