"""The network's input: RGB images 0..255 <-> VGG19's preprocessed input.

Network inputs are float32 NHWC, BGR, with the Caffe/Keras ImageNet channel
means subtracted (the convention of the VGG19 weights we load).
"""
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

BGR_MEANS = (103.939, 116.779, 123.68)
# Network inputs, by what they do to RGB: 'caffe' flips to BGR and subtracts each
# channel's ImageNet mean; 'swapped_means' subtracts the means in BGR order from the
# RGB channels, then flips, so blue loses red's mean and red blue's (the Aalborg notebook).
PREPROCESSINGS = ('caffe', 'swapped_means')


def _means(preprocessing: str) -> np.ndarray:
  """What `preprocess` subtracts from the BGR channels, (3,) float32."""
  assert preprocessing in PREPROCESSINGS, preprocessing
  return np.asarray(BGR_MEANS if preprocessing == 'caffe' else BGR_MEANS[::-1], np.float32)


@functools.partial(jax.jit, static_argnames='preprocessing')
def preprocess(rgb: Any, preprocessing: str = 'caffe') -> jax.Array:
  """RGB 0..255, (H, W, 3) or (N, H, W, 3) -> float32 NHWC BGR minus means
  (PREPROCESSINGS: with 'swapped_means', B minus 123.68 and R minus 103.939).
  Jitted: one small program per shape, where its operations would be several."""
  x = jnp.asarray(rgb, jnp.float32)
  if x.ndim == 3:
    x = x[None]
  assert x.ndim == 4 and x.shape[-1] == 3, x.shape
  return x[..., ::-1] - jnp.asarray(_means(preprocessing))


def offset(preprocessing: str) -> np.ndarray:
  """preprocess(rgb, preprocessing) - preprocess(rgb), the same at every
  pixel: (3,) float32, BGR. An objective adds it to its input, which is
  always in plain 'caffe' space, so the rest (start images, outputs) is one."""
  return _means('caffe') - _means(preprocessing)


def deprocess_float(x: Any) -> np.ndarray:
  """Inverse of preprocess: (1, H, W, 3) or (H, W, 3) -> float32 (H, W, 3) RGB
  0..255, clipped, not rounded."""
  x = np.asarray(x, np.float32)
  if x.ndim == 4:
    assert x.shape[0] == 1, f'deprocess takes one image, got {x.shape}'
    x = x[0]
  assert x.ndim == 3 and x.shape[-1] == 3, x.shape
  return np.clip((x + np.asarray(BGR_MEANS, np.float32))[..., ::-1], 0.0, 255.0)


def deprocess(x: Any) -> np.ndarray:
  """Inverse of preprocess: (1, H, W, 3) or (H, W, 3) -> uint8 (H, W, 3) RGB."""
  return np.rint(deprocess_float(x)).astype(np.uint8)
