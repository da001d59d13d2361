"""pooling.pool2x2: known answers, its odd edge and its gradient rule."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import pooling
from jaxstyle.errors import InputError


def test_pool2x2_known_answer_drops_odd_edge_and_routes_max_gradient():
  x = jnp.arange(15.0).reshape(1, 3, 5, 1)  # rows 0..4, 5..9, 10..14
  np.testing.assert_array_equal(pooling.pool2x2(x, 'max')[0, ..., 0], [[6.0, 8.0]])
  np.testing.assert_array_equal(pooling.pool2x2(x, 'avg')[0, ..., 0], [[3.0, 5.0]])
  grad = jax.grad(lambda x: jnp.sum(pooling.pool2x2(x, 'max')))(x)[0, ..., 0]
  want = np.zeros((3, 5))
  want[1, 1] = want[1, 3] = 1.0
  np.testing.assert_array_equal(grad, want)
  with pytest.raises(InputError, match="pooling must be one of .*got 'sum'"):
    pooling.pool2x2(x, 'sum')


def test_max_pool_gradient_goes_to_the_first_of_tied_maxima():
  x = jnp.array([[1.0, 5.0, 2.0, 2.0], [5.0, 0.0, 2.0, 2.0]]).reshape(1, 2, 4, 1)
  np.testing.assert_array_equal(pooling.pool2x2(x, 'max')[0, ..., 0], [[5.0, 2.0]])
  grad = jax.grad(lambda x: jnp.sum(pooling.pool2x2(x, 'max') * jnp.array([1.0, 3.0])[:, None]))(x)
  np.testing.assert_array_equal(grad[0, ..., 0], [[0.0, 1.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]])


def test_pick_with_the_choices_is_max_pooling_and_its_gradient():
  x = jnp.array([[1.0, 5.0, 2.0, 2.0, 7.0], [5.0, 0.0, 2.0, 2.0, 7.0],
                 [0.0, -1.0, 3.0, 4.0, 9.0]]).reshape(1, 3, 5, 1)
  choice = pooling.choices(x)
  np.testing.assert_array_equal(choice[0, ..., 0], [[1, 0]])  # first of the tied maxima
  np.testing.assert_array_equal(pooling.pick(x, choice), pooling.pool2x2(x, 'max'))
  cotangent = jnp.array([[[[2.0], [3.0]]]])
  _, vjp_max = jax.vjp(lambda x: pooling.pool2x2(x, 'max'), x)
  _, vjp_pick = jax.vjp(lambda x: pooling.pick(x, choice), x)
  np.testing.assert_array_equal(vjp_pick(cotangent)[0], vjp_max(cotangent)[0])
