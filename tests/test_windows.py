import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import windows


def test_inside_counts_floor_halved_sizes():
  inside = windows.inside((-4, 2, 11, 6), (8, 8), 1)
  np.testing.assert_array_equal(np.flatnonzero(inside.any(1)), [0, 1, 2])  # rows -2..2 of 5
  np.testing.assert_array_equal(np.flatnonzero(inside.any(0)), [1, 2, 3])


def test_cropped_keeps_the_centre_and_the_border_asked_for():
  x = jnp.arange(2 * 9 * 7 * 1).reshape(2, 9, 7, 1)  # a centre of 5 x 3 and 2 around it
  np.testing.assert_array_equal(windows.cropped(x, 2, 1), x[:, 1:8, 1:6])
  assert windows.cropped(x, 2, 2) is x
  with pytest.raises(AssertionError):
    windows.cropped(x, 1, 2)
