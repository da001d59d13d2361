"""Style losses: one layer's distance between an output's features F and a
style image's S, for each kind a researcher compares (`KINDS`).

Per layer, F is the output's activations as M x C (M positions, C channels),
S the style image's, M_s x C. Each kind is a `StyleLoss`: `target` computes
the style image's statistics once, `distance` compares the output's features
with them at every evaluation. Masks (H_l, W_l) in 0..1 weight the output's
positions (masked means, covariances and quantiles); `key` seeds the random
projections of 'sliced'. Where a term is a function of sums over positions
('gram', 'mean_std', 'w2', 'mrf'), `sums` and `from_sums` split it there,
so that jaxstyle.tiles can add the sums up tile by tile; 'histogram' and
'sliced' (jaxstyle.quantiles) sort the whole image's features.

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
- 'mrf' (jaxstyle.mrf): Li & Wand (2016): every 3x3 patch of F takes the style patch of
  highest normalised cross-correlation; (1 / (N_F 9C)) Σ_i |Ψ_i(F) - Ψ_NN(i)(S)|².
"""
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxstyle import losses, mrf, quantiles

MEAN_STD_EPS = 1e-5  # added to the variance before its square root ('mean_std')


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
  # Where the term is a function of sums over positions, which jaxstyle.tiles
  # adds up tile by tile: (features (1, h, w, C), statistics, weights (h, w) or
  # None) -> a pytree of sums, additive over disjoint sets of positions.
  # weights: a mask's weight of each position (None: every position, unweighted);
  # with `patch` > 1, the weight of the patch centred there. None: no such form.
  sums: Callable[..., Any] | None = None
  # (sums, statistics, normalization, image_hw, layer_hw) -> the layer's term,
  # `distance` of features whose sums these are, layer_hw their (H_l, W_l).
  from_sums: Callable[..., jax.Array] | None = None
  # (unweighted sums of a style image's features, layer_hw) -> `target`;
  # None: the target needs the features themselves.
  target_from_sums: Callable[[Any, tuple[int, int]], Any] | None = None
  patch: int = 1  # side of the patch of positions the term compares at each one


def _column(weights: jax.Array, f: jax.Array) -> jax.Array:
  """weights (h, w) as a column (M, 1) of f's dtype."""
  return weights.reshape(-1, 1).astype(f.dtype)


def _count(sums: dict[str, jax.Array], layer_hw: tuple[int, int]) -> jax.Array | int:
  """The positions' total weight: the weights' sum, or without weights H_l·W_l."""
  return sums['weight'] if 'weight' in sums else layer_hw[0] * layer_hw[1]


def _products(features: jax.Array, weights: jax.Array | None) -> dict[str, jax.Array]:
  """Σ w·F·Fᵀ (C, C) over the positions as 'outer', and Σ w as 'weight';
  without weights the Gram (losses.gram, whose gradient is one product) and no 'weight'."""
  if weights is None:
    return {'outer': losses.gram(features)}
  f = losses.positions(features)
  w = _column(weights, f)
  return {'outer': (w * f).T @ f, 'weight': jnp.sum(w)}


def _distance_of(sums: Callable[..., Any], from_sums: Callable[..., jax.Array]) -> Callable:
  """The distance that is `from_sums` of the `sums` over every position."""
  def distance(features, statistics, mask, key, normalization, image_hw):
    del key
    return from_sums(sums(features, statistics, mask), statistics, normalization, image_hw,
                     features.shape[-3:-1])
  return distance


def _decomposed(sums: Callable[..., Any], from_sums: Callable[..., jax.Array],
                target_from_sums: Callable[..., Any], **fields: Any) -> StyleLoss:
  """A StyleLoss whose target and distance are its from-sums forms of the sums
  over every position: one definition of each formula."""
  def target(features: jax.Array) -> Any:
    return target_from_sums(sums(features, None, None), features.shape[-3:-1])

  return StyleLoss(target, _distance_of(sums, from_sums), sums=sums, from_sums=from_sums,
                   target_from_sums=target_from_sums, **fields)


# 'gram'


def _gram_sums(features, statistics, weights):
  del statistics
  return _products(features, weights)


def _gram_from_sums(sums, statistics, normalization, image_hw, layer_hw):
  """losses.gram_distance of the Gram; weighted, M times the Gram per unit
  weight (losses.guided_gram), M = H_l·W_l."""
  m = layer_hw[0] * layer_hw[1]
  g = sums['outer'] if 'weight' not in sums else m * (sums['outer'] / sums['weight'])
  return losses.gram_distance(g, statistics, m, statistics.shape[0], normalization, image_hw)


def _gram_target(sums, layer_hw):
  return sums['outer'] / (layer_hw[0] * layer_hw[1])


# 'mean_std'


def _mean_std_sums(features, statistics, weights):
  """Σ w·F and Σ w·F² per channel (and Σ w)."""
  del statistics
  f = losses.positions(features)
  if weights is None:
    return {'sum': jnp.sum(f, axis=0), 'squares': jnp.sum(jnp.square(f), axis=0)}
  w = _column(weights, f)
  return {'sum': jnp.sum(w * f, axis=0), 'squares': jnp.sum(w * jnp.square(f), axis=0),
          'weight': jnp.sum(w)}


def _mean_std_target(sums, layer_hw):
  """(μ, σ) per channel, σ = sqrt(E[F²] − μ² + MEAN_STD_EPS)."""
  n = _count(sums, layer_hw)
  mu = sums['sum'] / n
  return mu, jnp.sqrt(jnp.maximum(sums['squares'] / n - jnp.square(mu), 0.0) + MEAN_STD_EPS)


def _mean_std_from_sums(sums, statistics, normalization, image_hw, layer_hw):
  del normalization, image_hw
  mu, sigma = _mean_std_target(sums, layer_hw)
  return jnp.mean(jnp.square(mu - statistics[0]) + jnp.square(sigma - statistics[1]))


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


def _w2_sums(features, statistics, weights):
  """Σ w·F (C,), Σ w·F·Fᵀ (C, C) (and Σ w)."""
  del statistics
  f = losses.positions(features)
  total = jnp.sum(f if weights is None else _column(weights, f) * f, axis=0)
  return {**_products(features, weights), 'sum': total}


def _mean_cov(sums, layer_hw):
  """Mean (C,) and biased covariance E[F·Fᵀ] − μ·μᵀ (C, C) of the sums' positions."""
  n = _count(sums, layer_hw)
  mu = sums['sum'] / n
  return mu, sums['outer'] / n - jnp.outer(mu, mu)


def _w2_target(sums, layer_hw):
  mu, cov = _mean_cov(sums, layer_hw)
  return {'mean': mu, 'cov': cov, 'cov_sqrt': _sqrt_psd(cov)}


def _w2(mu: jax.Array, trace_cov: jax.Array, cross: jax.Array, target: Any) -> jax.Array:
  """The distance from the output's mean, tr(Σ_F) and a matrix whose
  trace_sqrt is tr((Σ_S^½ Σ_F Σ_S^½)^½)."""
  value = (jnp.sum(jnp.square(mu - target['mean'])) + trace_cov + jnp.trace(target['cov'])
           - 2.0 * trace_sqrt(cross))
  return value / mu.shape[0]


def _w2_from_sums(sums, statistics, normalization, image_hw, layer_hw):
  del normalization, image_hw
  mu, cov = _mean_cov(sums, layer_hw)
  root = statistics['cov_sqrt']
  return _w2(mu, jnp.trace(cov), root @ cov @ root, statistics)


def _w2_distance(features, target, mask, key, normalization, image_hw):
  """From the sums where M ≥ C. Where M < C (deep layers of small images),
  with Y the weighted, centred features (YᵀY = Σ_F) and Z = Y Σ_S^½,
  tr((Σ_S^½ Σ_F Σ_S^½)^½) = tr((ZZᵀ)^½): the M x M matrix is decomposed."""
  del key
  f = losses.positions(features)
  m, c = f.shape
  if m >= c:
    return _w2_from_sums(_w2_sums(features, target, mask), target, normalization, image_hw,
                         features.shape[-3:-1])
  w = losses.position_weights(mask, m)
  mu = w @ f
  y = jnp.sqrt(w)[:, None] * (f - mu)
  z = y @ target['cov_sqrt']
  return _w2(mu, jnp.sum(jnp.square(y)), z @ z.T, target)


KINDS: dict[str, StyleLoss] = {
    'gram': _decomposed(_gram_sums, _gram_from_sums, _gram_target, masks=True, random=False,
                        weight=1e4),
    'mean_std': _decomposed(_mean_std_sums, _mean_std_from_sums, _mean_std_target, masks=True,
                            random=False, weight=2e8),
    'w2': _decomposed(_w2_sums, _w2_from_sums, _w2_target, masks=True, random=False,
                      weight=1e8)._replace(distance=_w2_distance),
    'histogram': StyleLoss(quantiles.histogram_target, quantiles.histogram_distance,
                           masks=True, random=False, weight=2e8),
    'sliced': StyleLoss(quantiles.sliced_target, quantiles.sliced_distance, masks=True,
                        random=True, weight=2e8),
    'mrf': StyleLoss(mrf.target, _distance_of(mrf.sums, mrf.from_sums), masks=False,
                     random=False, weight=1e8, sums=mrf.sums, from_sums=mrf.from_sums, patch=3),
}


def sliced(projections: int | None) -> StyleLoss:
  """'sliced' with `projections` directions per evaluation (None: C, the layer's channels)."""
  distance = functools.partial(quantiles.sliced_distance, projections=projections)
  return KINDS['sliced']._replace(distance=distance)
