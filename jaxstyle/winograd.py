"""Winograd F(4x4, 3x3) convolution (Lavin & Gray 2016, "Fast Algorithms for
Convolutional Neural Networks").

A 3x3 stride-1 SAME convolution computed on 6x6 input tiles that overlap by
2 px: each tile and the kernel are moved into a 6x6 transform space, where
the convolution is 36 matrix products over channels, and the products are
moved back to 4x4 output tiles. That is 36 multiplies per 16 outputs where a
direct convolution needs 144: 4x fewer, paid for with the transforms. On
XLA:CPU it is faster than `lax.conv` on VGG19's blocks 3 to 5 (256 and 512
channels) and slower on blocks 1 and 2 (docs/performance.md). Its float32
error is larger than a direct convolution's (docs/faithfulness.md).
"""
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

TILE = 6  # input tile side
OUT = 4  # output tile side: tiles step by OUT and overlap by TILE - OUT

# Lavin & Gray's transforms for the interpolation points 0, 1, -1, 2, -2, inf:
# output tile = A_T [(G k G_T) * (B_T d B)] A for a 6x6 input tile d.
B_T = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], np.float64)
# G ⊗ G: the kernel transform as one matrix on the flattened 3x3 kernel.
_G_KRON = np.kron(G, G).astype(np.float32)


def transform_kernel(kernel: np.ndarray) -> np.ndarray:
  """HWIO (3, 3, C, K) kernel -> (6, 6, C, K) float32 = G kernel G_T, on the host.

  One matrix product, (G ⊗ G) (36 x 9) with the kernel as (9, C·K): a third
  of the time of G k and then (G k) G_T, which also write an intermediate
  as large as the kernel twice over.
  """
  assert kernel.shape[:2] == (3, 3), f'expected a 3x3 HWIO kernel, got {kernel.shape}'
  flat = np.asarray(kernel, np.float32).reshape(9, -1)
  return (_G_KRON @ flat).reshape(6, 6, *kernel.shape[2:])


def _tiles(x: jax.Array, count: int, axis: int) -> jax.Array:
  """x, of length OUT * (count + 1) along `axis` -> `count` windows of TILE
  there, stepping by OUT and overlapping: (..., count, TILE, ...).

  Two reshapes and a concatenation: strided slices, one per tile row,
  compile to a larger XLA graph.
  """
  shape = x.shape[:axis] + (count, OUT) + x.shape[axis + 1:]
  starts = jax.lax.slice_in_dim(x, 0, OUT * count, axis=axis).reshape(shape)
  ends = jax.lax.slice_in_dim(x, OUT, OUT * count + OUT, axis=axis).reshape(shape)
  return jnp.concatenate(
      [starts, jax.lax.slice_in_dim(ends, 0, TILE - OUT, axis=axis + 1)], axis=axis + 1)


def conv3x3(x: jax.Array, transformed: jax.Array, precision: Any = None,
            flipped: bool = False) -> jax.Array:
  """Stride-1 SAME convolution of NHWC x with a kernel given as
  transform_kernel(kernel), (6, 6, C, K): x (N, H, W, C) -> (N, H, W, K).
  With `flipped`, the convolution with flip(kernel) (`vgg.flip`), the input
  gradient's: x (N, H, W, K) -> (N, H, W, C).

  The tile transforms are matrix products too (36x36 and 16x36 over the
  tiles): XLA compiles them several times faster than the same sums written
  elementwise, at a few per cent of the convolution's time. `precision` is
  that of the 36 channel contractions; the transforms are float32.
  """
  n, h, w, c = x.shape
  contract = 3 if flipped else 2
  assert transformed.shape[:2] == (TILE, TILE) and transformed.shape[contract] == c, (
      f'transformed kernel {transformed.shape} does not fit input {x.shape}')
  k = transformed.shape[5 - contract]
  # Correlating a tile with the flipped kernel is correlating the reversed
  # tile with the kernel and reversing the result: the same transformed
  # kernel, with B_T's columns and A_T's rows reversed.
  b_t, a_t = (B_T[:, ::-1], A_T[::-1]) if flipped else (B_T, A_T)
  th, tw = -(-h // OUT), -(-w // OUT)
  # 1 px of SAME padding before; after, enough for whole tiles and _tiles' second view.
  x = jnp.pad(x, ((0, 0), (1, OUT * th + 3 - h), (1, OUT * tw + 3 - w), (0, 0)))
  tiles = _tiles(_tiles(x, th, 1), tw, 3).transpose(2, 4, 0, 1, 3, 5)  # (6, 6, N, th, tw, C)
  tiles = jnp.dot(np.kron(b_t, b_t).astype(np.float32), tiles.reshape(TILE * TILE, -1),
                  precision='highest').reshape(TILE * TILE, n * th * tw, c)
  products = jnp.einsum('spk,sck->spc' if flipped else 'spc,sck->spk', tiles,
                        transformed.reshape(TILE * TILE, *transformed.shape[2:]),
                        precision=precision)
  out = jnp.dot(np.kron(a_t, a_t).astype(np.float32), products.reshape(TILE * TILE, -1),
                precision='highest').reshape(OUT, OUT, n, th, tw, k)
  return out.transpose(2, 3, 0, 4, 1, 5).reshape(n, OUT * th, OUT * tw, k)[:, :h, :w]
