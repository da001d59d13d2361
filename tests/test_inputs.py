"""The pictures a run reads: sizes, filters and the style's resizing as the
config asks, against image.load's own answers."""

import numpy as np
from PIL import Image
import pytest

from configs import default
from jaxstyle import image
from jaxstyle.app import inputs


@pytest.fixture(scope='module')
def paths(tmp_path_factory):
  d = tmp_path_factory.mktemp('images')
  rng = np.random.default_rng(0)
  out = {}
  for name, (h, w) in (('content', (30, 40)), ('style', (50, 20))):
    out[name] = str(d / f'{name}.png')
    Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(out[name])
  return out


def _config(paths, **fields):
  config = default.get_config()
  config.update(dict(content=paths['content'], style=paths['style'], height=24, **fields))
  return config


def test_defaults_keep_both_aspect_ratios_with_lanczos(paths, tmp_path):
  content, style = inputs.load_inputs(_config(paths), tmp_path)
  np.testing.assert_array_equal(content, image.load(paths['content'], 24, 32))
  np.testing.assert_array_equal(style, image.load(paths['style'], 24, 10))


@pytest.mark.parametrize('resample', sorted(image.RESAMPLES))
def test_width_squashes_the_content_and_style_resize_content_the_style(paths, tmp_path,
                                                                      resample):
  config = _config(paths, width=20, resample=resample, style_resize='content')
  content, style = inputs.load_inputs(config, tmp_path)
  np.testing.assert_array_equal(content, image.load(paths['content'], 24, 20, resample))
  np.testing.assert_array_equal(style, image.load(paths['style'], 24, 20, resample))


def test_style_scale_scales_both_sides_of_a_squashed_style(paths, tmp_path):
  config = _config(paths, style_resize='content', style_scale=0.5)
  _, style = inputs.load_inputs(config, tmp_path)
  assert style.shape == (12, 16, 3)
  config.style_resize = 'aspect'
  assert inputs.load_inputs(config, tmp_path)[1].shape == (12, 5, 3)
