"""Loss terms against values worked out by hand on tiny arrays."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import losses

# Two positions (H=1, W=2), two channels.
F = jnp.array([[[1.0, 2.0], [3.0, 4.0]]])  # HWC
P = jnp.array([[[0.0, 2.0], [1.0, 1.0]]])


def test_gram_is_sum_over_positions_of_outer_products():
  # [1,2]⊗[1,2] + [3,4]⊗[3,4] = [[1+9, 2+12], [2+12, 4+16]]
  np.testing.assert_allclose(losses.gram(F), [[10.0, 14.0], [14.0, 20.0]])
  np.testing.assert_allclose(losses.gram(F[None]), losses.gram(F))


def test_gram_derivatives_known_answer():
  # d<W, FᵀF>/dF = F(W + Wᵀ); forward mode and second order keep working.
  w = jnp.array([[1.0, 2.0], [0.0, -1.0]])
  f = F.reshape(2, 2)
  loss = lambda features: jnp.sum(w * losses.gram(features))
  np.testing.assert_allclose(jax.grad(loss)(F), (f @ (w + w.T)).reshape(F.shape))
  direction = jnp.array([[[1.0, 0.0], [0.0, 2.0]]])
  d = direction.reshape(2, 2)
  _, tangent = jax.jvp(losses.gram, (F,), (direction,))
  np.testing.assert_allclose(tangent, f.T @ d + d.T @ f)
  hvp = jax.jvp(jax.grad(loss), (F,), (direction,))[1]
  np.testing.assert_allclose(hvp, (d @ (w + w.T)).reshape(F.shape))


def test_style_target_is_gram_per_position():
  np.testing.assert_allclose(losses.style_target(F), [[5.0, 7.0], [7.0, 10.0]])


def test_guided_gram_is_the_gram_per_position_of_the_masked_region():
  np.testing.assert_allclose(losses.guided_gram(F, jnp.ones((1, 2))), losses.style_target(F))
  np.testing.assert_allclose(losses.guided_gram(F, jnp.full((1, 2), 0.5)),
                             losses.style_target(F))
  # Only the second position, [3,4]: its outer product.
  np.testing.assert_allclose(losses.guided_gram(F, jnp.array([[0.0, 1.0]])),
                             [[9.0, 12.0], [12.0, 16.0]])


@pytest.mark.parametrize('normalization, expected', [('gatys', 0.5 * 14), ('keras', 14.0)])
def test_content_loss(normalization, expected):
  # (1-0)² + 0 + (3-1)² + (4-1)² = 1 + 4 + 9 = 14
  assert float(losses.content_loss(F, P, normalization)) == pytest.approx(expected)


def test_style_loss_gatys_is_paper_formula():
  target = losses.style_target(P)  # gram(P) = [[1,1],[1,5]], M = 2
  # G - A = [[9,13],[13,15]]; Σ² = 81+169+169+225 = 644; N=2, M=2: 4·4·4 = 64
  assert float(losses.style_loss(F, target, 'gatys')) == pytest.approx(644 / 64)


def test_masked_style_loss_compares_the_guided_gram():
  target = losses.style_target(P)
  # M·guided − gram(P) = 2·[[9,12],[12,16]] − [[1,1],[1,5]] = [[17,23],[23,27]];
  # Σ² = 289+529+529+729 = 2076; N=2, M=2: 64
  got = losses.style_loss(F, target, 'gatys', mask=jnp.array([[0.0, 1.0]]))
  assert float(got) == pytest.approx(2076 / 64)


@pytest.mark.parametrize('masks', [None, jnp.array([[[0.0, 1.0]], [[0.5, 0.25]]])])
def test_blended_style_loss_is_the_blend_of_the_style_losses(masks):
  targets = jnp.stack([losses.style_target(P), losses.style_target(F)])
  blend = jnp.array([0.3, 0.7])
  each = [losses.style_loss(P + 1.0, targets[s], 'keras', (3, 5),
                            None if masks is None else masks[s]) for s in range(2)]
  got = losses.blended_style_loss(P + 1.0, targets, blend, 'keras', (3, 5), masks)
  assert float(got) == pytest.approx(0.3 * float(each[0]) + 0.7 * float(each[1]), rel=1e-6)


def test_style_loss_keras_uses_image_size():
  target = losses.style_target(P)
  # 644 / (4·9·(H·W)²) with a 3x5 generated image.
  got = losses.style_loss(F, target, 'keras', (3, 5))
  assert float(got) == pytest.approx(644 / (36 * 15**2))


def test_style_loss_is_size_invariant_for_a_repeated_texture():
  """A style image tiled twice has the same target: sizes may differ."""
  tiled = jnp.concatenate([P, P], axis=1)
  np.testing.assert_allclose(losses.style_target(tiled), losses.style_target(P))
  assert float(losses.style_loss(P, losses.style_target(tiled))) == pytest.approx(0.0)


def test_tv_loss_known_value():
  x = jnp.array([[0.0, 1.0], [2.0, 4.0]])[..., None]  # HWC, one channel
  # Only pixel (0,0) has both neighbours: Δy = 0-2, Δx = 0-1 -> (4+1)^1.25
  assert float(losses.tv_loss(x, 1.25)) == pytest.approx(5**1.25)
  assert float(losses.tv_loss(x[None], 1.0)) == pytest.approx(5.0)


def test_tv_loss_of_flat_image_has_finite_zero_gradient():
  g = jax.grad(losses.tv_loss)(jnp.ones((4, 4, 3)), 1.25)
  assert bool(jnp.all(g == 0))


def _tv_gradient_by_hand(x: np.ndarray) -> np.ndarray:
  """Gradient of tv_loss at power 1, in float64: each difference d = x[i] − x[i+1]
  adds 2d to x[i] and −2d to x[i+1]."""
  g = np.zeros_like(x)
  dy, dx = x[:-1, :-1] - x[1:, :-1], x[:-1, :-1] - x[:-1, 1:]
  g[:-1, :-1] += 2 * (dy + dx)
  g[1:, :-1] -= 2 * dy
  g[:-1, 1:] -= 2 * dx
  return g


@pytest.mark.parametrize('height, width', [(91, 121), (86, 128), (64, 171), (90, 121)])
def test_tv_gradient_reduced_inside_jit_is_right(height, width):
  # Sizes where XLA:CPU got a slice-based TV gradient's fused norm wrong (NaN).
  x = np.random.default_rng(height).normal(size=(1, height, width, 3)).astype(np.float32)
  want = np.sum(_tv_gradient_by_hand(x[0].astype(np.float64)) ** 2)
  got = jax.jit(lambda x: jnp.sum(jax.grad(losses.tv_loss)(x, 1.0) ** 2))(x)
  assert float(got) == pytest.approx(want, rel=1e-4)


def test_total_weights_terms():
  assert float(losses.total(1.0, 2.0, 3.0, 10.0, 100.0, 1000.0)) == pytest.approx(3210.0)


def test_gradients_match_finite_differences():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 4, 2)))
  target = losses.style_target(jnp.asarray(rng.normal(size=(3, 4, 2))))
  p = jnp.asarray(rng.normal(size=(3, 4, 2)))
  mask = jnp.asarray(rng.uniform(size=(3, 4)))
  fns = [lambda v: losses.style_loss(v, target, 'gatys'),
         lambda v: losses.style_loss(v, target, 'gatys', mask=mask),
         lambda v: losses.content_loss(v, p, 'gatys'),
         lambda v: losses.tv_loss(v, 1.25)]
  with jax.enable_x64():
    x = x.astype(jnp.float64)
    target, p, mask = (a.astype(jnp.float64) for a in (target, p, mask))
    for fn in fns:
      grad = np.asarray(jax.grad(fn)(x))
      d = np.zeros(x.shape)
      d[1, 2, 1] = 1e-6
      numeric = (fn(x + d) - fn(x - d)) / 2e-6
      assert grad[1, 2, 1] == pytest.approx(float(numeric), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize('weight', [0.5, 30.0])
def test_normalize_gradient_keeps_the_value_and_gives_the_gradient_l1_norm_weight(weight):
  """A term weight·L(F): its gradient into F has the direction of ∇L and L1 norm `weight`."""
  target = losses.style_target(P)
  for loss in (lambda f: losses.content_loss(f, P), lambda f: losses.style_loss(f, target)):
    normalized = lambda f: weight * loss(losses.normalize_gradient(f, weight))
    assert float(normalized(F)) == pytest.approx(weight * float(loss(F)))
    grad, raw = jax.grad(normalized)(F), jax.grad(loss)(F)
    assert float(jnp.sum(jnp.abs(grad))) == pytest.approx(weight, rel=1e-6)
    np.testing.assert_allclose(grad, weight * raw / jnp.sum(jnp.abs(raw)), rtol=1e-6)
