"""Tests for jaxstyle.samples: the default content photo and style painting."""

import sys

import numpy as np
import pytest

from jaxstyle import image
from jaxstyle import samples
from jaxstyle.errors import InputError


def test_content_exists_and_loads():
  pytest.importorskip('matplotlib')
  path = samples.content()
  assert path.is_file()
  rgb = image.load(path, height=64)
  assert rgb.shape[0] == 64 and rgb.shape[2] == 3
  assert rgb.std() > 10


def test_content_without_matplotlib(monkeypatch):
  monkeypatch.setitem(sys.modules, 'matplotlib', None)
  with pytest.raises(InputError) as e:
    samples.content()
  msg = str(e.value)
  assert '\n' not in msg
  assert 'pip install matplotlib' in msg and '--config.content=PATH' in msg


def test_style_is_deterministic_for_a_seed(tmp_path):
  a = samples.style(tmp_path / 'a.png', size=96, seed=3)
  b = samples.style(tmp_path / 'b.png', size=96, seed=3)
  c = samples.style(tmp_path / 'c.png', size=96, seed=4)
  assert a == tmp_path / 'a.png'
  assert a.read_bytes() == b.read_bytes()
  assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize('size', [64, 130])
def test_style_has_requested_size(tmp_path, size):
  path = samples.style(tmp_path / 's.png', size=size)
  assert image.load(path).shape == (size, size, 3)


def test_default_style_is_colourful_and_structured():
  rgb = samples.paint().astype(np.float64)
  assert rgb.shape == (512, 512, 3)
  assert np.all(rgb.std((0, 1)) > 40)
  r, g, b = np.moveaxis(rgb, -1, 0)
  blue = np.mean((b > r + 60) & (b > g))
  warm = np.mean((r > b + 80) & (g > b + 20))
  assert blue > 0.4 and warm > 0.03
  gray = rgb.mean(-1)
  for x, y in ((gray[:, :-1], gray[:, 1:]), (gray[:-1], gray[1:])):
    assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.35  # Noise: ~0.


@pytest.mark.parametrize('size', [8, 2.5, True, 10**6])
def test_paint_rejects_bad_size(size):
  with pytest.raises(InputError):
    samples.paint(size)
