"""Winograd F(4x4, 3x3) against lax.conv on tiny random arrays, and the
kernel transform's known answer."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import vgg, winograd


def _direct(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', precision='highest',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _random(shape, seed):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_transform_of_a_centre_tap_is_the_outer_product_of_g_middle_column():
  kernel = np.zeros((3, 3, 1, 1), np.float32)
  kernel[1, 1] = 2.0
  u = winograd.transform_kernel(kernel)[..., 0, 0]
  np.testing.assert_allclose(u, 2.0 * np.outer(winograd.G[:, 1], winograd.G[:, 1]), rtol=1e-6)


@pytest.mark.parametrize('n, h, w, c, k', [
    (1, 1, 1, 2, 3),  # one partial tile
    (1, 4, 4, 3, 5),  # exactly one tile
    (2, 5, 7, 4, 6),  # partial tiles on both axes, a batch
    (1, 13, 9, 8, 8),
])
def test_matches_the_direct_convolution(n, h, w, c, k):
  x, kernel = _random((n, h, w, c), 0), _random((3, 3, c, k), 1)
  got = winograd.conv3x3(jnp.asarray(x), jnp.asarray(winograd.transform_kernel(kernel)),
                         'highest')
  want = _direct(x, kernel)
  assert got.shape == want.shape == (n, h, w, k)
  np.testing.assert_allclose(got, want, atol=1e-5 * float(jnp.max(jnp.abs(want))))


def test_flipped_is_the_convolution_with_the_flipped_kernel():
  g, kernel = _random((1, 9, 6, 5), 2), _random((3, 3, 4, 5), 3)
  got = winograd.conv3x3(jnp.asarray(g), jnp.asarray(winograd.transform_kernel(kernel)),
                         'highest', flipped=True)
  want = _direct(g, vgg.flip(kernel))
  assert got.shape == want.shape == (1, 9, 6, 4)
  np.testing.assert_allclose(got, want, atol=1e-5 * float(jnp.max(jnp.abs(want))))


def test_rejects_a_transform_of_another_width():
  with pytest.raises(AssertionError, match='does not fit input'):
    winograd.conv3x3(jnp.zeros((1, 4, 4, 3)), jnp.zeros((6, 6, 2, 5)))
