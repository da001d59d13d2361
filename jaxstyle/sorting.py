"""Sorting for the quantile losses ('histogram', 'sliced').

XLA:CPU sorts by a generic comparison sort: about 20x slower than numpy's
vectorised sort on the same 2-core CPU (64 rows of 87,296 float32 values,
one VGG layer at 256x341 px: 2.2 s against 0.08 s). On a CPU, `sort`,
`order_and_ranks` and `matched` therefore run on the host with numpy,
through `jax.pure_callback`, rows split over threads; an order sorts packed
64-bit keys (the float's order-preserving bits above the position), and in
long rows leaves the zeros (about half of a ReLU's outputs, all tied) out
of the sort, placing them in position order by their mask. Other backends
sort with XLA. Both order equal values by position.
"""
from collections.abc import Callable, Iterator
import concurrent.futures
import functools
import os
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_THREADS = max(1, min(8, os.cpu_count() or 1))
_LONG = 16384  # rows at least this long sort their nonzero values alone, one row at a time
_BLOCK = 1024  # positions per step of a transposing copy


def _between(at: Any, m_s: int, xp: Any) -> tuple[Any, Any, Any]:
  """Where each of `at` (0..1) falls among M_s values placed at (j + ½)/M_s:
  the index of the value below and above (clamped at the ends) and the
  fraction of the way from one to the other, float32."""
  t = xp.clip(at * np.float32(m_s) - np.float32(0.5), np.float32(0), np.float32(m_s - 1))
  low = t.astype(np.int32)  # t ≥ 0: truncation is the floor
  return low, xp.minimum(low + 1, m_s - 1), t - low.astype(np.float32)


def interpolate(values_sorted: jax.Array, at: jax.Array) -> jax.Array:
  """Q(at) per row, Q the quantile function of values_sorted (K, M_s)
  ascending: linear between them placed at (j + ½)/M_s, constant beyond the
  first and last (as np.interp). at: (K or 1, M) in 0..1. Index
  arithmetic, not a search: O(M·K)."""
  low, high, frac = _between(at, values_sorted.shape[-1], jnp)
  if at.shape[0] == 1:  # one set of positions for every row
    take = lambda i: jnp.take(values_sorted, i[0], axis=-1)
  else:
    take = lambda i: jnp.take_along_axis(values_sorted, i, axis=-1)
  below = take(low)
  return below + frac * (take(high) - below)


def uniform_positions(m: int, xp: Any = jnp) -> Any:
  """(i + ½)/M for i < M, (1, M) float32: where the i-th smallest of M
  equally weighted values sits."""
  return (xp.arange(m, dtype=np.float32)[None] + np.float32(0.5)) / np.float32(m)


_HIGH = 1 if sys.byteorder == 'little' else 0  # the int32 holding an int64's upper half


def _key_buffer(shape: tuple[int, ...]) -> np.ndarray:
  """int64 keys (..., M) whose lower 32 bits hold each one's position; `_set_keys`
  fills the upper."""
  keys = np.empty(shape, np.int64)
  keys.view(np.int32)[..., 1 - _HIGH::2] = np.arange(shape[-1], dtype=np.int32)
  return keys


def _set_keys(keys: np.ndarray, x: np.ndarray) -> None:
  """keys' upper 32 bits := float32 x's bits in an order-preserving form, so
  that the keys order by (value, position); -0 and 0 are equal."""
  np.add(x, np.float32(0), out=keys.view(np.float32)[..., _HIGH::2])
  if np.signbit(x).any():  # negative floats: reverse their order
    bits = keys.view(np.int32)[..., _HIGH::2]
    bits ^= (bits >> 31) & np.int32(0x7FFFFFFF)


def _each_sorted(rows: np.ndarray) -> Iterator[tuple[np.ndarray, int, np.ndarray | None]]:
  """Each row of (R, M) float32 in stable order, in three parts: the
  positions (int64) of its values by (value, position) with the zeros left
  out, how many of them are negative, and where the zeros left out are
  (a mask; they go between, in position order; None where none are). Long
  rows one at a time (each valid until the next), their zeros left out;
  short ones sorted together, whole."""
  m = rows.shape[-1]
  keys = _key_buffer(rows.shape if m < _LONG else (m,))
  if m < _LONG:
    _set_keys(keys, rows)
    keys.sort(axis=-1)
    keys &= 0xFFFFFFFF
    for each in keys:
      yield each, m, None
    return
  for x in rows:
    _set_keys(keys, x)
    zeros = x == 0
    if zeros.any():
      each = keys[~zeros]
    else:
      each, zeros = keys.copy(), None
    each.sort()
    negative = int(np.searchsorted(each, 0))
    each &= 0xFFFFFFFF
    yield each, negative, zeros


def _place(row: np.ndarray, values: np.ndarray, positions: np.ndarray, negative: int,
           zeros: np.ndarray | None) -> None:
  """row's element of rank i := values[i], given row's `_each_sorted` parts."""
  positive = negative + row.size - positions.size
  if zeros is not None:
    row[zeros] = values[negative:positive]
  row[positions[:negative]] = values[:negative]
  row[positions[negative:]] = values[positive:]


def _each_order(rows: np.ndarray) -> Iterator[np.ndarray]:
  """The stable argsort of each row of (R, M) float32, int64, in turn."""
  order = np.empty(rows.shape[-1], np.int64)
  for positions, negative, zeros in _each_sorted(rows):
    if zeros is None:
      yield positions
      continue
    positive = negative + order.size - positions.size
    order[:negative] = positions[:negative]
    order[negative:positive] = np.flatnonzero(zeros)
    order[positive:] = positions[negative:]
    yield order


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
  return concurrent.futures.ThreadPoolExecutor(_THREADS)


def _in_chunks(work: Callable[[slice], None], rows: int) -> None:
  """work(chunk) for contiguous chunks of `rows` rows, on the pool's threads
  (numpy's sorts release the GIL)."""
  chunks = [slice(c[0], c[-1] + 1) for c in np.array_split(np.arange(rows), 2 * _THREADS)
            if c.size]
  list(_pool().map(work, chunks))


def _view(x: Any) -> np.ndarray:
  """A callback's argument as a numpy array without a copy (np.asarray copies
  a jax.Array: 22 MB for the first layer's features at 256 px)."""
  return np.from_dlpack(x)


def _host_order_and_ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """np.argsort(x, axis=-1, kind='stable') of (..., M) float32, and its
  inverse permutation, both int32."""
  m = x.shape[-1]
  rows = _view(x).reshape(-1, m)
  order = np.empty(rows.shape, np.int32)

  def fill(chunk: slice) -> None:
    for o, each in zip(order[chunk], _each_order(rows[chunk])):
      o[...] = each

  _in_chunks(fill, len(rows))
  ranks = np.empty_like(order)
  np.put_along_axis(ranks, order, np.arange(m, dtype=np.int32)[None], axis=-1)
  return order.reshape(x.shape), ranks.reshape(x.shape)


def _host_sort(x: np.ndarray) -> np.ndarray:
  """np.sort(x, axis=-1) of (..., M) float32."""
  rows = _view(x).reshape(-1, x.shape[-1]).copy()
  _in_chunks(lambda chunk: rows[chunk].sort(axis=-1), len(rows))
  return rows.reshape(x.shape)


def _copy_transposed(dst: np.ndarray, src: np.ndarray) -> None:
  """dst[...] = src.T for 2-D arrays, in blocks along src's longer axis: numpy's
  own strided copy of a long, narrow transpose misses the cache (3x slower)."""
  if src.shape[0] >= src.shape[1]:
    for i in range(0, src.shape[0], _BLOCK):
      dst[:, i:i + _BLOCK] = src[i:i + _BLOCK].T
  else:
    for i in range(0, src.shape[1], _BLOCK):
      dst[i:i + _BLOCK] = src[:, i:i + _BLOCK].T


def _host_matched(x: np.ndarray, values: np.ndarray, values_sorted: bool) -> np.ndarray:
  """`matched` of (..., M, K) and (..., K, M_s) float32 arrays: blocks of
  columns, each transposed into rows on its thread, each row taken from the
  style's values to its placed targets while they are in cache."""
  shape, (m, k) = x.shape, x.shape[-2:]
  x = _view(x).reshape(-1, m, k)
  values = np.broadcast_to(_view(values), (*shape[:-2], k, values.shape[-1])).reshape(len(x), k, -1)
  low, high, frac = _between(uniform_positions(m, np)[0], values.shape[-1], np)
  low, high = low.astype(np.intp), high.astype(np.intp)
  at_positions = values.shape[-1] == m  # Q((i + ½)/M) is the i-th value itself
  out = np.empty(x.shape, np.float32)

  def fill(block: tuple[int, slice]) -> None:
    b, columns = block
    rows = np.empty((columns.stop - columns.start, m), np.float32)
    _copy_transposed(rows, x[b, :, columns])
    below, q = np.empty(m, np.float32), np.empty(m, np.float32)
    for parts, v, row in zip(_each_sorted(rows), values[b, columns], rows):
      v = v if values_sorted else np.sort(v)
      if not at_positions:
        np.take(v, low, out=below)
        np.take(v, high, out=q)
        q -= below
        q *= frac
        v = np.add(q, below, out=q)
      _place(row, v, *parts)  # the row is ordered before it is overwritten
    _copy_transposed(out[b, :, columns], rows)

  blocks = [(b, slice(c[0], c[-1] + 1)) for b in range(len(x))
            for c in np.array_split(np.arange(k), 2 * _THREADS) if c.size]
  list(_pool().map(fill, blocks))
  return out.reshape(shape)


def matched(x: jax.Array, values: jax.Array, values_sorted: bool = True) -> jax.Array:
  """x's histogram-matched target: x (..., M, K), each column's element of
  rank i (ties by position) replaced by Q((i + ½)/M), Q the quantile function
  (`interpolate`) of that column's row of values (..., K, M_s), ascending
  where values_sorted, else sorted here (with M_s = M, Q((i + ½)/M) is the
  i-th value itself: values already interpolated are placed as they are);
  float32, no gradient, no permutation kept. Columns, as losses.positions
  lays out features: the host transposes them, which measured no slower
  than XLA:CPU's transposes (sliced's projections made as rows instead were
  no faster either)."""
  x = jax.lax.stop_gradient(x).astype(jnp.float32)
  values = jax.lax.stop_gradient(values).astype(jnp.float32)
  if jax.default_backend() != 'cpu':
    rows = jnp.swapaxes(x, -1, -2)
    values = jnp.broadcast_to(values, (*rows.shape[:-1], values.shape[-1]))
    q = values if values_sorted else jnp.sort(values, axis=-1)
    if q.shape[-1] != rows.shape[-1]:
      q = interpolate(q, uniform_positions(rows.shape[-1]))
    return jnp.swapaxes(jnp.take_along_axis(q, order_and_ranks(rows)[1], axis=-1), -1, -2)
  return jax.pure_callback(functools.partial(_host_matched, values_sorted=values_sorted),
                           jax.ShapeDtypeStruct(x.shape, jnp.float32), x, values,
                           vmap_method='expand_dims')


def order_and_ranks(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The stable argsort of x (..., M) along its last axis, and each element's
  rank (the inverse permutation), int32; no gradient."""
  x = jax.lax.stop_gradient(x).astype(jnp.float32)
  if jax.default_backend() != 'cpu':
    order = jnp.argsort(x, axis=-1, stable=True).astype(jnp.int32)
    return order, jnp.argsort(order, axis=-1).astype(jnp.int32)
  out = jax.ShapeDtypeStruct(x.shape, jnp.int32)
  return jax.pure_callback(_host_order_and_ranks, (out, out), x, vmap_method='expand_dims')


def sort(x: jax.Array) -> jax.Array:
  """x (..., M) float32 sorted along its last axis; no gradient."""
  x = jax.lax.stop_gradient(x).astype(jnp.float32)
  if jax.default_backend() != 'cpu':
    return jnp.sort(x, axis=-1)
  return jax.pure_callback(_host_sort, jax.ShapeDtypeStruct(x.shape, jnp.float32), x,
                           vmap_method='expand_dims')
