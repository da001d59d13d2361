"""Property tests of jaxstyle.image.load on random, corrupt and odd files.

Whatever the bytes and the requested size, load returns a float32 (H, W, 3)
array of finite values in [0, 255] or raises ImageError with one line that
names the file; no other exception and no warning gets out.
"""

import io
import os
import pathlib
import tempfile
import warnings

from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
from PIL import Image
import pytest

from jaxstyle import image

FORMATS = ('PNG', 'JPEG', 'GIF', 'BMP', 'TIFF', 'WEBP')
MODES = ('1', 'L', 'LA', 'P', 'PT', 'RGB', 'RGBA', 'CMYK', 'I;16', 'I', 'F')
EXTENSIONS = {'PNG': '.png', 'JPEG': '.jpg', 'GIF': '.gif', 'BMP': '.bmp',
              'TIFF': '.tif', 'WEBP': '.webp'}
# Starts of real headers, so random tails reach the format parsers.
MAGICS = (b'', b'\x89PNG\r\n\x1a\n', b'\xff\xd8\xff', b'GIF89a', b'BM',
          b'II*\x00', b'MM\x00*', b'RIFF\x00\x00\x00\x00WEBPVP8 ', b'P6\n')
BAD_SIDES = (0, -1, -256, image.MAX_SIDE + 1, 2**31, 10**30, 2.0, True, '8')

# No database: a failure prints its seed and blob instead of leaving
# a .hypothesis/ folder in the checkout.
_SETTINGS = dict(deadline=None, database=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow])


def _new(mode, size):
  img = Image.new('P' if mode == 'PT' else mode, size)
  if mode == 'PT':
    img.info['transparency'] = 0
  return img


def _saves(fmt, mode):
  try:
    _new(mode, (2, 2)).save(io.BytesIO(), format=fmt)
  except (OSError, ValueError):
    return False
  return True


# (format, mode) pairs this Pillow can write, e.g. not CMYK as PNG.
ENCODINGS = tuple((f, m) for f in FORMATS for m in MODES if _saves(f, m))


def _valid_side(side):
  return (side is None or (isinstance(side, int) and not isinstance(side, bool)
                           and 1 <= side <= image.MAX_SIDE))


def _load_checked(path, height=None, width=None):
  """Loads and checks the contract; returns the array or None on ImageError."""
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    try:
      out = image.load(path, height=height, width=width)
    except image.ImageError as e:
      msg = str(e)
      assert msg.splitlines() == [msg], repr(msg)
      assert os.fspath(path) in msg, msg
      out = None
  assert not caught, [f'{w.category.__name__}: {w.message}' for w in caught]
  if out is None:
    return None
  assert isinstance(out, np.ndarray)
  assert out.dtype == np.float32 and out.ndim == 3 and out.shape[-1] == 3
  assert np.isfinite(out).all()
  assert out.min() >= 0.0 and out.max() <= 255.0
  if height is not None:
    assert out.shape[0] == height, (out.shape, height)
  if width is not None:
    assert out.shape[1] == width, (out.shape, width)
  return out


def _load_bytes(data, suffix, height=None, width=None):
  with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / f'fuzz{suffix}'
    path.write_bytes(data)
    return _load_checked(path, height, width)


sides = st.one_of(st.none(), st.integers(1, 40), st.sampled_from(BAD_SIDES))


@st.composite
def pil_images(draw, mode, fmt):
  """A tiny Pillow image of `mode` ('PT': palette with transparency)."""
  h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
  if mode in ('P', 'PT'):
    img = Image.frombytes('P', (w, h), draw(st.binary(min_size=h * w,
                                                      max_size=h * w)))
    img.putpalette(draw(st.binary(min_size=3, max_size=768)))
    if mode == 'PT':
      alphas = st.binary(min_size=1, max_size=256)  # Per-entry (tRNS).
      if fmt == 'GIF':  # Pillow's GIF writer takes one transparent index.
        alphas = st.nothing()
      img.info['transparency'] = draw(st.integers(0, 255) | alphas)
    return img
  if mode == 'CMYK':
    data = draw(st.binary(min_size=h * w * 4, max_size=h * w * 4))
    return Image.frombytes('CMYK', (w, h), data)
  dtype, channels = {'1': (bool, 1), 'L': (np.uint8, 1), 'LA': (np.uint8, 2),
                     'RGB': (np.uint8, 3), 'RGBA': (np.uint8, 4),
                     'I;16': (np.uint16, 1), 'I': (np.int32, 1),
                     'F': (np.float32, 1)}[mode]
  shape = (h, w) if channels == 1 else (h, w, channels)
  a = draw(hnp.arrays(dtype, shape))  # F includes NaN, ±inf and subnormals.
  img = Image.fromarray(a)
  assert img.mode == mode, (img.mode, mode)
  return img


@st.composite
def corruptions(draw, data):
  """`data` truncated, with bytes flipped or spans overwritten, 0-3 times."""
  data = bytearray(data)
  for _ in range(draw(st.integers(0, 3))):
    if not data:
      break
    i = draw(st.integers(0, len(data) - 1))
    kind = draw(st.sampled_from(('truncate', 'flip', 'overwrite')))
    if kind == 'truncate':
      del data[i:]
    elif kind == 'flip':
      data[i] ^= draw(st.integers(1, 255))
    else:
      data[i:i + 8] = draw(st.binary(min_size=1, max_size=8))
  return bytes(data)


@settings(max_examples=1500, **_SETTINGS)
@given(magic=st.sampled_from(MAGICS), tail=st.binary(max_size=600),
       suffix=st.sampled_from(('.png', '.jpg', '')), height=sides, width=sides)
def test_random_bytes(magic, tail, suffix, height, width):
  out = _load_bytes(magic + tail, suffix, height, width)
  if not (_valid_side(height) and _valid_side(width)):
    assert out is None


@settings(max_examples=3000, **_SETTINGS)
@given(data=st.data(), encoding=st.sampled_from(ENCODINGS), height=sides,
       width=sides)
def test_encoded_and_corrupted_images(data, encoding, height, width):
  fmt, mode = encoding
  img = data.draw(pil_images(mode, fmt), label='image')
  buf = io.BytesIO()
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # Pillow warns about odd palettes here.
    img.save(buf, format=fmt)
  encoded = buf.getvalue()
  corrupted = data.draw(corruptions(encoded), label='file')
  out = _load_bytes(corrupted, EXTENSIONS[fmt], height, width)
  if not (_valid_side(height) and _valid_side(width)):
    assert out is None
  elif corrupted == encoded:
    # An intact file always loads, at its own size unless one was asked for.
    assert out is not None
    if height is None and width is None:
      assert out.shape == (img.height, img.width, 3)
      if mode == 'RGB' and fmt in ('PNG', 'BMP', 'TIFF'):
        np.testing.assert_array_equal(out, np.asarray(img))


# -- explicit odd files ---------------------------------------------------------


def _save(tmp_path, img, name, **kwargs):
  path = tmp_path / name
  img.save(path, **kwargs)
  return path


@pytest.mark.parametrize('fmt,mode', ENCODINGS)
def test_one_pixel_image(tmp_path, fmt, mode):
  img = _new(mode, (1, 1))
  path = _save(tmp_path, img, f'one{EXTENSIONS[fmt]}', format=fmt)
  out = _load_checked(path)
  assert out.shape == (1, 1, 3)
  assert _load_checked(path, height=3).shape == (3, 3, 3)


def test_one_pixel_rgb_colour_is_exact(tmp_path):
  path = _save(tmp_path, Image.new('RGB', (1, 1), (12, 200, 77)), 'one.png')
  np.testing.assert_array_equal(_load_checked(path), [[[12, 200, 77]]])


def test_zero_byte_file(tmp_path):
  path = tmp_path / 'empty.png'
  path.write_bytes(b'')
  with pytest.raises(image.ImageError, match='not a recognised image') as e:
    image.load(path)
  assert str(path) in str(e.value) and '\n' not in str(e.value)


@pytest.mark.parametrize('pixels', [12 * 12, 20 * 20])  # Warning / error zone.
def test_decompression_bomb(tmp_path, monkeypatch, pixels):
  side = int(pixels**0.5)
  path = _save(tmp_path, Image.new('RGB', (side, side)), 'bomb.png')
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)
  with warnings.catch_warnings(), pytest.raises(image.ImageError) as e:
    warnings.simplefilter('error')
    image.load(path)
  msg = str(e.value)
  assert 'decompression-bomb' in msg and 'MAX_IMAGE_PIXELS=100' in msg, msg
  assert str(path) in msg and '\n' not in msg


def test_animated_gif_gives_first_frame(tmp_path):
  colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
  frames = [Image.new('RGB', (4, 3), c) for c in colours]
  path = _save(tmp_path, frames[0], 'anim.gif', save_all=True,
               append_images=frames[1:], duration=50, loop=0)
  with Image.open(path) as check:
    assert check.n_frames == 3
  out = _load_checked(path)
  np.testing.assert_array_equal(out, np.full((3, 4, 3), colours[0]))


@pytest.mark.parametrize('orientation,shape', [(1, (16, 32, 3)),
                                               (6, (32, 16, 3)),
                                               (8, (32, 16, 3))])
def test_exif_rotated_jpeg(tmp_path, orientation, shape):
  a = np.zeros((16, 32, 3), np.uint8)
  a[:, 16:] = 255  # Left half black, right half white.
  exif = Image.Exif()
  exif[0x0112] = orientation
  path = _save(tmp_path, Image.fromarray(a), 'exif.jpg', exif=exif,
               quality=95)
  out = _load_checked(path)
  assert out.shape == shape
  if orientation == 6:  # Rotated 90° clockwise: the left edge is on top.
    assert out[:8].mean() < 20 and out[-8:].mean() > 235
  elif orientation == 8:  # Counter-clockwise: the left edge is at the bottom.
    assert out[:8].mean() > 235 and out[-8:].mean() < 20
