"""Colour preservation: luminance-only transfer keeps the content's chroma,
colour matching gives the style the content's mean and covariance, and the
CLI's load_inputs/output_rgb apply them when configured (to every style image,
each at its style_scale)."""
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from configs import default
from jaxstyle import color, image
from jaxstyle.app import inputs


def _rgb(seed, h=32, w=32, low=0.0, high=255.0):
  return np.random.default_rng(seed).uniform(low, high, (h, w, 3)).astype(np.float32)


def _correlated(seed, h, w, mean, mix):
  """Pixels mean + N(0, 1) @ mix.T: a colour cloud with covariance mix mix^T."""
  z = np.random.default_rng(seed).normal(size=(h, w, 3))
  return (np.asarray(mean) + z @ np.asarray(mix).T).astype(np.float32)


def _stats(rgb):
  pixels = np.asarray(rgb, np.float64).reshape(-1, 3)
  return pixels.mean(axis=0), np.cov(pixels, rowvar=False, bias=True)


def test_ycbcr_is_bt601_full_range_and_inverts():
  ycbcr = color.rgb_to_ycbcr(np.array([[255.0, 255.0, 255.0], [0.0, 0.0, 0.0],
                                       [255.0, 0.0, 0.0]]))
  np.testing.assert_allclose(ycbcr[:2], [[255.0, 128.0, 128.0], [0.0, 128.0, 128.0]],
                             atol=1e-3)
  np.testing.assert_allclose(ycbcr[2], [76.245, 84.972, 255.5], atol=1e-3)
  rgb = _rgb(0)
  np.testing.assert_allclose(color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb)), rgb, atol=1e-9)


def test_transfer_luminance_keeps_content_chroma_and_output_luminance():
  # Mid-range images, so that clipping to 0..255 does not change the result.
  stylised, content = _rgb(1, low=96, high=160), _rgb(2, low=96, high=160)
  out = color.transfer_luminance(stylised, content)
  assert out.dtype == np.float32 and out.shape == content.shape
  assert 0 < out.min() and out.max() < 255
  got, want_chroma, want_y = (color.rgb_to_ycbcr(a) for a in (out, content, stylised))
  np.testing.assert_allclose(got[..., 1:], want_chroma[..., 1:], atol=1e-3)
  np.testing.assert_allclose(got[..., 0], want_y[..., 0], atol=1e-3)


def test_transfer_luminance_clips_to_the_image_range():
  dark, saturated = np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.float32)
  saturated[..., 0] = 255.0
  out = color.transfer_luminance(dark, saturated)
  assert out.min() == 0.0 and out.max() <= 255.0


def test_match_colors_gives_the_content_mean_and_covariance():
  style = _correlated(3, 24, 40, (90, 140, 110), [[20, 5, 0], [8, 15, 3], [0, 4, 12]])
  content = _correlated(4, 32, 32, (150, 120, 100), [[25, 0, 10], [0, 18, 0], [6, 6, 14]])
  out = color.match_colors(style, content)
  assert out.shape == style.shape and out.dtype == np.float32
  assert 0 < out.min() and out.max() < 255, 'clipping would change the statistics'
  mean, cov = _stats(out)
  content_mean, content_cov = _stats(content)
  np.testing.assert_allclose(mean, content_mean, atol=1e-3)
  np.testing.assert_allclose(cov, content_cov, rtol=1e-4, atol=1e-2)
  style_mean, _ = _stats(style)
  assert np.abs(style_mean - content_mean).max() > 20


@pytest.mark.parametrize('style', [
    np.full((16, 16, 3), (200.0, 30.0, 90.0), np.float32),
    np.repeat(_rgb(5, 16, 16)[..., :1], 3, axis=-1),  # grey: rank-1 covariance
], ids=['constant', 'grey'])
def test_match_colors_on_degenerate_styles_is_finite(style):
  content = _rgb(6)
  out = color.match_colors(style, content)
  assert np.isfinite(out).all() and 0 <= out.min() and out.max() <= 255
  if np.ptp(style) == 0:
    np.testing.assert_allclose(out, np.broadcast_to(_stats(content)[0], out.shape), atol=1e-3)


def _png(path, rgb):
  Image.fromarray(np.asarray(rgb, np.uint8)).save(path)
  return str(path)


def test_load_inputs_matches_style_colors_only_when_asked(tmp_path):
  config = default.get_config()
  config.height = 32
  config.content = _png(tmp_path / 'c.png', _correlated(7, 32, 40, (150, 120, 100), np.eye(3) * 15))
  config.style = _png(tmp_path / 's.png', _correlated(8, 32, 32, (80, 140, 110), np.eye(3) * 20))
  content, style = inputs.load_inputs(config, tmp_path)
  np.testing.assert_array_equal(style, image.load(config.style, height=32))
  config.color_transfer = True
  content2, matched = inputs.load_inputs(config, tmp_path)
  np.testing.assert_array_equal(content2, content)
  np.testing.assert_allclose(matched, color.match_colors(style, content))
  np.testing.assert_allclose(_stats(matched)[0], _stats(content)[0], atol=1.0)


def test_load_inputs_scales_and_matches_every_style(tmp_path):
  config = default.get_config()
  config.height = 32
  config.content = _png(tmp_path / 'c.png', _correlated(7, 32, 40, (150, 120, 100), np.eye(3) * 15))
  config.style = _png(tmp_path / 's.png', _correlated(8, 48, 64, (80, 140, 110), np.eye(3) * 20))
  config.style_scale = 0.5
  _, style = inputs.load_inputs(config, tmp_path)
  assert style.shape == (16, 21, 3)
  config.style, config.styles = None, (config.style, config.content)
  config.style_scale = (0.5, 2.0)
  config.color_transfer = True
  content, styles = inputs.load_inputs(config, tmp_path)
  assert [s.shape for s in styles] == [(16, 21, 3), (64, 80, 3)]
  for path, matched in zip(config.styles, styles):
    plain = image.load(path, height=matched.shape[0])
    np.testing.assert_allclose(matched, color.match_colors(plain, content))


def test_output_rgb_applies_original_colors_when_asked():
  config = default.get_config()
  content, stylised = _rgb(9, 16, 24, 96, 160), _rgb(10, 16, 24, 96, 160)
  x = image.preprocess(stylised)
  plain = inputs.output_rgb(config, x, content)
  assert plain.dtype == np.float32 and plain.shape == (16, 24, 3)
  np.testing.assert_allclose(plain, stylised, atol=1e-3)  # unrounded
  config.original_colors = True
  kept = inputs.output_rgb(config, jnp.asarray(x), content)
  np.testing.assert_allclose(kept, color.transfer_luminance(plain, content))
  np.testing.assert_allclose(color.rgb_to_ycbcr(kept)[..., 1:],
                             color.rgb_to_ycbcr(content)[..., 1:], atol=1e-3)
