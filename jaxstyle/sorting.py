"""Sorting for the quantile losses ('histogram', 'sliced').

XLA:CPU sorts by a generic comparison sort: about 20x slower than numpy's
vectorised sort on the same 2-core CPU (64 rows of 87,296 float32 values,
one VGG layer at 256x341 px: 2.2 s against 0.08 s). On a CPU, `sort`,
`order_and_ranks` and `matched` therefore run on the host with numpy, on
XLA's own buffers (`jax.experimental.buffer_callback`: neither arguments
nor results copied), rows split over threads; an order sorts packed 64-bit
keys (the float's order-preserving bits above the position); short rows
are sorted together, long rows one by one, leaving their zeros (about half
of a ReLU's outputs, all tied) out of the sort and placing them in position
order by their mask. Other backends sort with XLA. Both order equal values
by position.
"""
from collections.abc import Callable, Iterator
import concurrent.futures
import functools
import os
import sys
from typing import Any

import jax
from jax.experimental import buffer_callback
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


def _key_buffers(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
  """int64 keys (..., M) whose lower 32 bits hold each one's position
  (`_set_keys` fills the upper), and `_set_keys`'s int32 scratch (2, ..., M)."""
  keys = np.empty(shape, np.int64)
  keys.view(np.int32)[..., 1 - _HIGH::2] = np.arange(shape[-1], dtype=np.int32)
  return keys, np.empty((2, *shape), np.int32)


def _set_keys(keys: np.ndarray, x: np.ndarray, scratch: np.ndarray) -> None:
  """keys' upper 32 bits := float32 x's bits in an order-preserving form, so
  that the keys order by (value, position); -0 and 0 are equal. The bits are
  made in contiguous scratch and stored once (the keys' halves are strided)."""
  bits, flip = scratch
  np.add(x, np.float32(0), out=bits.view(np.float32))
  if np.signbit(x).any():  # negative floats: reverse their order
    np.right_shift(bits, 31, out=flip)
    flip &= np.int32(0x7FFFFFFF)
    bits ^= flip
  keys.view(np.int32)[..., _HIGH::2] = bits


def _short_orders(rows: np.ndarray) -> np.ndarray:
  """The stable argsort of each row of (R, M) float32, int64 (R, M): short
  rows, sorted together and whole."""
  keys, scratch = _key_buffers(rows.shape)
  _set_keys(keys, rows, scratch)
  keys.sort(axis=-1)
  keys &= 0xFFFFFFFF
  return keys


def _each_long_sorted(rows: np.ndarray) -> Iterator[tuple[np.ndarray, int, np.ndarray | None]]:
  """Each long row of (R, M) float32 in stable order, one at a time (each
  valid until the next), in three parts: the positions (int64) of its values
  by (value, position) with the zeros left out, how many of them are
  negative, and where the zeros left out are (a mask; they go between, in
  position order; None where none are)."""
  keys, scratch = _key_buffers(rows.shape[-1:])
  for x in rows:
    _set_keys(keys, x, scratch)
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
  """row's element of rank i := values[i], given row's `_each_long_sorted` parts."""
  positive = negative + row.size - positions.size
  if zeros is not None:
    row[zeros] = values[negative:positive]
  row[positions[:negative]] = values[:negative]
  row[positions[negative:]] = values[positive:]


def _each_order(rows: np.ndarray) -> Iterator[np.ndarray]:
  """The stable argsort of each row of (R, M) float32, int64, in turn."""
  if rows.shape[-1] < _LONG:
    yield from _short_orders(rows)
    return
  order = np.empty(rows.shape[-1], np.int64)
  for positions, negative, zeros in _each_long_sorted(rows):
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


def _on_host(fill: Callable[..., None], out: Any, *args: jax.Array) -> Any:
  """Outputs shaped as `out` (ShapeDtypeStructs), made by fill(*outputs,
  *args) on numpy views of XLA's own buffers: no copy of the arguments or
  the results (the results written in place)."""
  def callback(context: Any, outputs: Any, *inputs: Any) -> None:
    del context
    fill(*(np.from_dlpack(b) for b in jax.tree.leaves(outputs)), *map(np.from_dlpack, inputs))

  return buffer_callback.buffer_callback(callback, out, vmap_method='expand_dims')(*args)


def _host_order_and_ranks(order: np.ndarray, ranks: np.ndarray, x: np.ndarray) -> None:
  """order, ranks := np.argsort(x, axis=-1, kind='stable') of (..., M)
  float32, and its inverse permutation, both int32."""
  m = x.shape[-1]
  rows, order, ranks = x.reshape(-1, m), order.reshape(-1, m), ranks.reshape(-1, m)

  def fill(chunk: slice) -> None:
    for o, each in zip(order[chunk], _each_order(rows[chunk])):
      o[...] = each

  _in_chunks(fill, len(rows))
  np.put_along_axis(ranks, order, np.arange(m, dtype=np.int32)[None], axis=-1)


def _host_sort(out: np.ndarray, x: np.ndarray) -> None:
  """out := np.sort(x, axis=-1) of (..., M) float32."""
  rows, out = x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])

  def fill(chunk: slice) -> None:
    out[chunk] = rows[chunk]
    out[chunk].sort(axis=-1)

  _in_chunks(fill, len(rows))


def _copy_transposed(dst: np.ndarray, src: np.ndarray) -> None:
  """dst[...] = src.T for 2-D arrays, in blocks along src's longer axis: numpy's
  own strided copy of a long, narrow transpose misses the cache (3x slower)."""
  if src.shape[0] >= src.shape[1]:
    for i in range(0, src.shape[0], _BLOCK):
      dst[:, i:i + _BLOCK] = src[i:i + _BLOCK].T
  else:
    for i in range(0, src.shape[1], _BLOCK):
      dst[i:i + _BLOCK] = src[:, i:i + _BLOCK].T


def _host_matched(out: np.ndarray, x: np.ndarray, values: np.ndarray, values_sorted: bool) -> None:
  """out := `matched` of (..., M, K) and (..., K, M_s) float32 arrays: blocks
  of columns, each transposed into rows on its thread, ordered, and
  overwritten by the style's values (sorted and interpolated as needed)."""
  shape, (m, k) = x.shape, x.shape[-2:]
  x, out = x.reshape(-1, m, k), out.reshape(-1, m, k)
  values = np.broadcast_to(values, (*shape[:-2], k, values.shape[-1])).reshape(len(x), k, -1)
  low, high, frac = _between(uniform_positions(m, np)[0], values.shape[-1], np)
  low, high = low.astype(np.intp), high.astype(np.intp)
  at_positions = values.shape[-1] == m  # Q((i + ½)/M) is the i-th value itself

  def fill(block: tuple[int, slice]) -> None:
    b, columns = block
    rows = np.empty((columns.stop - columns.start, m), np.float32)
    _copy_transposed(rows, x[b, :, columns])
    v = values[b, columns] if values_sorted else np.sort(values[b, columns], axis=-1)
    if not at_positions:
      below = np.take(v, low, axis=-1, mode='clip')  # 'raise' checks every index
      v = np.take(v, high, axis=-1, mode='clip')
      v -= below
      v *= frac
      v += below
    if m < _LONG:
      np.put_along_axis(rows, _short_orders(rows), v, axis=-1)
    else:  # each row is ordered before it is overwritten
      for parts, q, row in zip(_each_long_sorted(rows), v, rows):
        _place(row, q, *parts)
    _copy_transposed(out[b, :, columns], rows)

  blocks = [(b, slice(c[0], c[-1] + 1)) for b in range(len(x))
            for c in np.array_split(np.arange(k), 2 * _THREADS) if c.size]
  list(_pool().map(fill, blocks))


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
  return _on_host(functools.partial(_host_matched, values_sorted=values_sorted),
                  jax.ShapeDtypeStruct(x.shape, jnp.float32), x, values)


def order_and_ranks(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The stable argsort of x (..., M) along its last axis, and each element's
  rank (the inverse permutation), int32; no gradient."""
  x = jax.lax.stop_gradient(x).astype(jnp.float32)
  if jax.default_backend() != 'cpu':
    order = jnp.argsort(x, axis=-1, stable=True).astype(jnp.int32)
    return order, jnp.argsort(order, axis=-1).astype(jnp.int32)
  out = jax.ShapeDtypeStruct(x.shape, jnp.int32)
  return _on_host(_host_order_and_ranks, (out, out), x)


def sort(x: jax.Array) -> jax.Array:
  """x (..., M) float32 sorted along its last axis; no gradient."""
  x = jax.lax.stop_gradient(x).astype(jnp.float32)
  if jax.default_backend() != 'cpu':
    return jnp.sort(x, axis=-1)
  return _on_host(_host_sort, jax.ShapeDtypeStruct(x.shape, jnp.float32), x)
