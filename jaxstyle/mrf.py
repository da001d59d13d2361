"""The 'mrf' style loss (Li & Wand 2016): every 3x3 patch of the output's
features against the style patch of highest normalised cross-correlation
(style.KINDS holds it)."""
import jax
import jax.numpy as jnp

from jaxstyle import losses

CHUNK = 512  # style patches matched at once: memory N_F x CHUNK


def patches(features: jax.Array) -> jax.Array:
  """Every 3x3 patch (stride 1, inside the image) of (1, H, W, C): ((H-2)(W-2), 9C)."""
  p = jax.lax.conv_general_dilated_patches(features, (3, 3), (1, 1), 'VALID',
                                           dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return p.reshape(-1, p.shape[-1])


def target(features: jax.Array) -> dict[str, jax.Array]:
  losses.check_one_image(features)
  p = patches(features)
  norm = jnp.linalg.norm(p, axis=1, keepdims=True)
  return {'patches': p, 'normalized': p / jnp.maximum(norm, 1e-12)}


def nearest_patches(out: jax.Array, normalized: jax.Array, chunk: int = CHUNK) -> jax.Array:
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


def sums(features, statistics, weights):
  """Σ over the 3x3 patches of ‖patch − its nearest style patch‖², each
  weighted by its centre position's weight."""
  losses.check_one_image(features)
  p = patches(features)
  index = nearest_patches(jax.lax.stop_gradient(p), statistics['normalized'])
  squares = jnp.sum(jnp.square(p - statistics['patches'][index]), axis=1)
  if weights is not None:
    squares = weights[1:-1, 1:-1].reshape(-1) * squares
  return {'squares': jnp.sum(squares)}


def from_sums(sums, statistics, normalization, image_hw, layer_hw):
  """(1 / (N_F·9C)) Σ_i ‖Ψ_i(F) − Ψ_NN(i)(S)‖², N_F = (H_l − 2)(W_l − 2) patches."""
  del normalization, image_hw
  count = (layer_hw[0] - 2) * (layer_hw[1] - 2)
  return sums['squares'] / (count * statistics['patches'].shape[1])
