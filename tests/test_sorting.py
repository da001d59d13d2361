import functools

import jax
import numpy as np
import pytest

from jaxstyle import sorting


@pytest.fixture(params=['cpu', 'other'], autouse=True)
def backend(request, monkeypatch):
  """Every test on both paths: numpy on the host (a CPU) and XLA's sort (other backends),
  each traced anew (jit's cache does not see the backend's name)."""
  jax.clear_caches()
  if request.param == 'other':
    monkeypatch.setattr(sorting.jax, 'default_backend', lambda: 'gpu')


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


def _long(rows):
  """rows tiled past sorting._LONG, one of them without zeros and one all zeros."""
  long = np.tile(rows, (1, sorting._LONG // rows.shape[1] + 1))
  long[0] = np.random.default_rng(3).standard_normal(long.shape[1])
  long[4] = 0.0
  return long


@pytest.mark.parametrize('m_s', [300, 77])
def test_interpolate_is_numpys_interp_between_values_placed_at_their_quantiles(m_s):
  style = np.sort(np.random.default_rng(1).standard_normal((5, m_s)), axis=-1)
  at = np.random.default_rng(2).uniform(size=(5, 40))
  at[:, :2] = 0.0, 1.0  # beyond the first and last: constant
  want = np.stack([np.interp(a, (np.arange(m_s) + 0.5) / m_s, s) for a, s in zip(at, style)])
  style, at = style.astype(np.float32), at.astype(np.float32)
  np.testing.assert_allclose(jax.jit(sorting.interpolate)(style, at), want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(sorting.interpolate(style, sorting.uniform_positions(40)),
                             np.stack([np.interp((np.arange(40) + 0.5) / 40,
                                                 (np.arange(m_s) + 0.5) / m_s, s)
                                       for s in style]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('long', [False, True])
@pytest.mark.parametrize('m_s', [300, 77])
def test_matched_places_the_style_quantile_of_each_rank_where_that_rank_is(rows, m_s, long):
  if long:
    rows = _long(rows)
  style = np.sort(np.random.default_rng(1).standard_normal((5, m_s)), axis=-1)
  at = (np.arange(rows.shape[1]) + 0.5) / rows.shape[1]
  q = np.stack([np.interp(at, (np.arange(m_s) + 0.5) / m_s, s) for s in style])
  want = np.empty_like(q)
  np.put_along_axis(want, np.argsort(rows, axis=-1, kind='stable'), q, axis=-1)
  style = style.astype(np.float32)
  check = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)
  check(jax.jit(sorting.matched)(rows.T, style), want.T)
  check(jax.vmap(sorting.matched, (0, None))(rows.T[None], style)[0], want.T)
  shuffled = np.random.default_rng(2).permuted(style, axis=-1)
  check(jax.jit(sorting.matched, static_argnums=2)(rows.T, shuffled, False), want.T)


def test_long_rows_sorted_without_their_zeros_order_as_the_short_do(rows):
  long = _long(rows)
  order, _ = jax.jit(sorting.order_and_ranks)(long)
  np.testing.assert_array_equal(order, np.argsort(long, axis=-1, kind='stable'))
