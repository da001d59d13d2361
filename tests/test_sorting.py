import jax
import numpy as np
import pytest

from jaxstyle import sorting


@pytest.fixture
def rows():
  x = np.random.default_rng(0).standard_normal((5, 300)).astype(np.float32)
  x[:, ::3] = 0.0  # ties, as ReLU features have
  x[2, 4], x[1, 7], x[3, 8] = -0.0, np.inf, -np.inf
  return x


def test_order_is_numpys_stable_argsort_and_ranks_its_inverse(rows):
  order, ranks = jax.jit(sorting.order_and_ranks)(rows)
  np.testing.assert_array_equal(order, np.argsort(rows, axis=-1, kind='stable'))
  np.testing.assert_array_equal(np.take_along_axis(ranks, order, axis=-1),
                                np.broadcast_to(np.arange(rows.shape[1]), rows.shape))


def test_sort_is_numpys_sort(rows):
  np.testing.assert_array_equal(jax.jit(sorting.sort)(rows), np.sort(rows, axis=-1))


def test_both_map_over_a_batch(rows):
  batch = np.stack([rows, -rows])
  order, _ = jax.vmap(sorting.order_and_ranks)(batch)
  np.testing.assert_array_equal(order[1], np.argsort(-rows, axis=-1, kind='stable'))
  np.testing.assert_array_equal(jax.vmap(sorting.sort)(batch)[1], np.sort(-rows, axis=-1))


def test_matched_places_each_value_at_the_position_of_its_rank(rows):
  q = np.sort(np.random.default_rng(1).standard_normal(rows.shape).astype(np.float32), axis=-1)
  want = np.empty_like(q)
  np.put_along_axis(want, np.argsort(rows, axis=-1, kind='stable'), q, axis=-1)
  np.testing.assert_array_equal(jax.jit(sorting.matched)(rows, q), want)
  np.testing.assert_array_equal(jax.vmap(sorting.matched, (0, None))(rows[None], q)[0], want)
