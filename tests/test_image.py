"""Tests for jaxstyle.image: odd files, VGG pre/post-processing, save."""

import builtins
import os
import pathlib
import struct
import zlib

import jax
import numpy as np
from PIL import Image
import pytest

from jaxstyle import image
from jaxstyle.errors import InputError


def _rgb(h, w, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def _png(tmp_path, img, name='x.png', **kwargs):
  path = tmp_path / name
  img.save(path, **kwargs)
  return path


def _assert_image_error(excinfo, path):
  msg = str(excinfo.value)
  assert isinstance(excinfo.value, InputError)
  assert '\n' not in msg
  assert os.fspath(path) in msg
  return msg


# -- load: sizes ---------------------------------------------------------------


def test_load_native_is_exact_float32_rgb(tmp_path):
  a = _rgb(5, 7)
  out = image.load(_png(tmp_path, Image.fromarray(a)))
  assert out.dtype == np.float32 and out.shape == (5, 7, 3)
  np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize('height,width,shape', [
    (10, None, (10, 20, 3)),
    (None, 10, (5, 10, 3)),
    (7, 9, (7, 9, 3)),
    (None, None, (20, 40, 3)),
])
def test_load_resize_keeps_aspect(tmp_path, height, width, shape):
  path = _png(tmp_path, Image.fromarray(_rgb(20, 40)))
  out = image.load(path, height=height, width=width)
  assert out.shape == shape
  assert out.min() >= 0 and out.max() <= 255


def test_load_derived_side_is_at_least_one(tmp_path):
  path = _png(tmp_path, Image.fromarray(_rgb(1, 100)))
  assert image.load(path, width=10).shape == (1, 10, 3)


def test_load_resize_of_constant_image_is_constant(tmp_path):
  path = _png(tmp_path, Image.new('RGB', (30, 20), (10, 200, 90)))
  out = image.load(path, height=7)
  np.testing.assert_allclose(out, np.broadcast_to([10, 200, 90], out.shape))


# -- load: modes ---------------------------------------------------------------


def test_rgba_is_composited_over_white(tmp_path):
  a = np.zeros((1, 3, 4), np.uint8)
  a[0, 0] = (255, 0, 0, 0)
  a[0, 1] = (0, 0, 255, 255)
  a[0, 2] = (0, 0, 0, 128)
  out = image.load(_png(tmp_path, Image.fromarray(a, 'RGBA')))
  np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
  np.testing.assert_array_equal(out[0, 1], [0, 0, 255])
  np.testing.assert_allclose(out[0, 2], [127, 127, 127], atol=1)


def test_grayscale_is_replicated(tmp_path):
  g = np.array([[0, 50, 255]], np.uint8)
  out = image.load(_png(tmp_path, Image.fromarray(g, 'L')))
  np.testing.assert_array_equal(out, np.repeat(g[..., None], 3, -1))


def test_la_is_composited_over_white(tmp_path):
  la = np.array([[[40, 255], [40, 0]]], np.uint8)
  out = image.load(_png(tmp_path, Image.fromarray(la, 'LA')))
  np.testing.assert_array_equal(out[0], [[40, 40, 40], [255, 255, 255]])


def test_load_mask_is_luminance_in_0_to_1_at_the_size_asked(tmp_path):
  rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]]], np.uint8)
  mask = image.load_mask(_png(tmp_path, Image.fromarray(rgb)), 1, 4)
  assert mask.dtype == np.float32 and mask.shape == (1, 4)
  np.testing.assert_allclose(mask[0], [0.0, 1.0, 0.299, 0.114], atol=1e-6)
  gray = Image.fromarray(np.full((8, 12), 128, np.uint8), 'L')
  np.testing.assert_allclose(image.load_mask(_png(tmp_path, gray), 4, 9), 128 / 255, atol=1e-6)


def test_bilevel(tmp_path):
  img = Image.fromarray(np.array([[0, 255]], np.uint8)).convert('1')
  out = image.load(_png(tmp_path, img))
  np.testing.assert_array_equal(out[0], [[0, 0, 0], [255, 255, 255]])


def test_sixteen_bit_png_keeps_precision(tmp_path):
  v = np.array([[0, 257 * 3, 257 * 200, 300, 65535]], np.uint16)
  img = Image.fromarray(v)
  assert img.mode == 'I;16'
  out = image.load(_png(tmp_path, img))
  np.testing.assert_array_equal(out[0, :3, 0], [0, 3, 200])
  np.testing.assert_allclose(out[0, 3], 300 / 257, rtol=1e-6)
  assert out[0, 4, 0] == 255
  assert np.all(out[..., 0] == out[..., 2])


def test_sixteen_bit_big_endian_tiff(tmp_path):
  v = np.array([[257 * 9, 300]], '>u2')
  img = Image.frombytes('I;16B', (2, 1), v.tobytes())
  out = image.load(_png(tmp_path, img, 'x.tif'))
  np.testing.assert_allclose(out[0, :, 1], [9, 300 / 257], rtol=1e-6)


def test_int32_and_float_modes(tmp_path):
  i = Image.fromarray(np.array([[257 * 7, 70000, -5]], np.int32))
  out = image.load(_png(tmp_path, i, 'i.tif'))
  np.testing.assert_array_equal(out[0, :, 0], [7, 255, 0])
  f = Image.fromarray(np.array([[12.5, 300.0, -3.0]], np.float32))
  out = image.load(_png(tmp_path, f, 'f.tif'))
  np.testing.assert_array_equal(out[0, :, 2], [12.5, 255, 0])


def test_sixteen_bit_resize_is_not_quantized(tmp_path):
  v = np.full((8, 8), 300, np.uint16)
  out = image.load(_png(tmp_path, Image.fromarray(v)), height=4)
  np.testing.assert_allclose(out, 300 / 257, rtol=1e-5)


def test_palette_with_and_without_transparency(tmp_path):
  img = Image.fromarray(np.array([[0, 1]], np.uint8), 'P')
  img.putpalette([10, 20, 30, 200, 0, 0])
  out = image.load(_png(tmp_path, img, 'opaque.png'))
  np.testing.assert_array_equal(out[0], [[10, 20, 30], [200, 0, 0]])
  out = image.load(_png(tmp_path, img, 'trns.png', transparency=0))
  np.testing.assert_array_equal(out[0], [[255, 255, 255], [200, 0, 0]])


def test_cmyk(tmp_path):
  img = Image.new('CMYK', (3, 2), (0, 255, 255, 0))
  out = image.load(_png(tmp_path, img, 'x.tif'))
  np.testing.assert_array_equal(out, np.broadcast_to([255, 0, 0], (2, 3, 3)))


def test_animated_gif_gives_first_frame(tmp_path):
  red = Image.new('RGB', (4, 4), (255, 0, 0))
  blue = Image.new('RGB', (4, 4), (0, 0, 255))
  path = tmp_path / 'anim.gif'
  red.save(path, save_all=True, append_images=[blue], duration=100, loop=0)
  assert Image.open(path).n_frames == 2
  out = image.load(path)
  np.testing.assert_array_equal(out, np.broadcast_to([255, 0, 0], (4, 4, 3)))


def test_exif_orientation_is_applied(tmp_path):
  a = np.zeros((16, 32, 3), np.uint8)
  a[:, :16] = (255, 0, 0)
  a[:, 16:] = (0, 0, 255)
  exif = Image.Exif()
  exif[0x0112] = 6  # Rotate 90 degrees clockwise to display.
  path = _png(tmp_path, Image.fromarray(a), 'x.jpg', exif=exif, quality=95)
  out = image.load(path)
  assert out.shape == (32, 16, 3)
  top, bottom = out[:12].mean((0, 1)), out[-12:].mean((0, 1))
  assert top[0] > 200 and top[2] < 60
  assert bottom[2] > 200 and bottom[0] < 60


# -- load: bad input -----------------------------------------------------------


def test_missing_file(tmp_path):
  path = tmp_path / 'nope.png'
  with pytest.raises(image.ImageError) as e:
    image.load(path)
  assert 'no such file' in _assert_image_error(e, path)


def test_directory(tmp_path):
  with pytest.raises(image.ImageError) as e:
    image.load(tmp_path)
  assert 'directory' in _assert_image_error(e, tmp_path)


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='needs mkfifo')
def test_fifo_is_not_a_regular_file(tmp_path):
  path = tmp_path / 'fifo.png'
  os.mkfifo(path)
  with pytest.raises(image.ImageError) as e:
    image.load(path)
  assert 'regular file' in _assert_image_error(e, path)


def test_unreadable_file(tmp_path, monkeypatch):
  path = _png(tmp_path, Image.new('RGB', (2, 2)))
  real_open = builtins.open

  def fake_open(file, *args, **kwargs):
    if os.fspath(file) == os.fspath(path):
      raise PermissionError(13, 'Permission denied', os.fspath(path))
    return real_open(file, *args, **kwargs)

  monkeypatch.setattr(builtins, 'open', fake_open)
  with pytest.raises(image.ImageError) as e:
    image.load(path)
  assert 'permission denied' in _assert_image_error(e, path)


@pytest.mark.skipif(
    not hasattr(os, 'geteuid') or os.geteuid() == 0,
    reason='root can read any file')
def test_unreadable_file_chmod(tmp_path):
  path = _png(tmp_path, Image.new('RGB', (2, 2)))
  path.chmod(0)
  with pytest.raises(image.ImageError) as e:
    image.load(path)
  assert 'permission denied' in _assert_image_error(e, path)


@pytest.mark.parametrize('name,data', [
    ('notes.txt', b'hello, not an image\n'),
    ('fake.png', bytes(range(256)) * 4),
    ('empty.jpg', b''),
])
def test_not_an_image(tmp_path, name, data):
  path = tmp_path / name
  path.write_bytes(data)
  with pytest.raises(image.ImageError) as e:
    image.load(path)
  assert 'not a recognised image' in _assert_image_error(e, path)


@pytest.mark.parametrize('name', ['cut.png', 'cut.jpg'])
def test_truncated_file(tmp_path, name):
  path = _png(tmp_path, Image.fromarray(_rgb(64, 64)), name)
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(image.ImageError) as e:
    image.load(path)
  _assert_image_error(e, path)


def _chunk(kind, data):
  return (struct.pack('>I', len(data)) + kind + data +
          struct.pack('>I', zlib.crc32(kind + data)))


def test_zero_size_png(tmp_path):
  path = tmp_path / 'zero.png'
  path.write_bytes(
      b'\x89PNG\r\n\x1a\n' +
      _chunk(b'IHDR', struct.pack('>IIBBBBB', 0, 5, 8, 2, 0, 0, 0)) +
      _chunk(b'IDAT', zlib.compress(b'')) + _chunk(b'IEND', b''))
  with pytest.raises(image.ImageError) as e:
    image.load(path)
  _assert_image_error(e, path)


@pytest.mark.parametrize('pixels', [110, 300])
def test_decompression_bomb(tmp_path, monkeypatch, pixels):
  """110 px: Pillow's warning; 300 px (over twice the limit): its error."""
  path = _png(tmp_path, Image.fromarray(_rgb(pixels // 10, 10)))
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)
  with pytest.raises(image.ImageError) as e:
    image.load(path)
  msg = _assert_image_error(e, path)
  assert 'MAX_IMAGE_PIXELS=100' in msg and 'decompression' in msg


@pytest.mark.parametrize('kwargs', [
    {'height': 0},
    {'width': -3},
    {'height': image.MAX_SIDE + 1},
    {'height': 10, 'width': image.MAX_SIDE + 1},
    {'height': 2.5},
    {'width': '10'},
    {'height': True},
])
def test_bad_requested_size(tmp_path, kwargs):
  path = _png(tmp_path, Image.new('RGB', (4, 4)))
  with pytest.raises(image.ImageError) as e:
    image.load(path, **kwargs)
  _assert_image_error(e, path)


def test_derived_side_over_max(tmp_path):
  path = _png(tmp_path, Image.new('RGB', (1000, 1)))
  with pytest.raises(image.ImageError) as e:
    image.load(path, height=100)
  assert 'aspect' in _assert_image_error(e, path)


def test_numpy_integer_sizes_are_accepted(tmp_path):
  path = _png(tmp_path, Image.new('RGB', (4, 4)))
  assert image.load(path, height=np.int64(2)).shape == (2, 2, 3)


PILLOW_FILTERS = {'lanczos': Image.Resampling.LANCZOS, 'nearest': Image.Resampling.NEAREST,
                  'bilinear': Image.Resampling.BILINEAR, 'bicubic': Image.Resampling.BICUBIC}


@pytest.mark.parametrize('resample', sorted(PILLOW_FILTERS))
@pytest.mark.parametrize('height, width', [(2, 3), (7, 6)])
def test_load_resamples_a_4x4_image_as_pillow_does(tmp_path, resample, height, width):
  rgb = _rgb(4, 4)
  path = _png(tmp_path, Image.fromarray(rgb))
  expected = Image.fromarray(rgb).resize((width, height), PILLOW_FILTERS[resample])
  np.testing.assert_array_equal(image.load(path, height, width, resample=resample),
                                np.asarray(expected, np.float32))


def test_nearest_keeps_every_other_pixel_down_and_repeats_each_up(tmp_path):
  rgb = _rgb(4, 4)
  path = _png(tmp_path, Image.fromarray(rgb))
  np.testing.assert_array_equal(image.load(path, 2, 2, resample='nearest'), rgb[1::2, 1::2])
  np.testing.assert_array_equal(image.load(path, 8, 8, resample='nearest'),
                                rgb.repeat(2, axis=0).repeat(2, axis=1))
  filtered = {r: image.load(path, 2, 3, resample=r) for r in PILLOW_FILTERS}
  assert len({a.tobytes() for a in filtered.values()}) == len(PILLOW_FILTERS)


def test_unknown_resample_is_an_image_error(tmp_path):
  path = _png(tmp_path, Image.new('RGB', (4, 4)))
  with pytest.raises(image.ImageError) as e:
    image.load(path, height=2, resample='box')
  assert "resample must be one of lanczos, nearest, bilinear, bicubic; got 'box'" in (
      _assert_image_error(e, path))


# -- preprocess / deprocess ----------------------------------------------------


def test_preprocess_known_values():
  x = image.preprocess(np.array([[[10, 20, 30]]], np.uint8))
  assert x.shape == (1, 1, 1, 3) and x.dtype == np.float32
  np.testing.assert_allclose(
      x[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


def test_swapped_means_is_the_aalborg_notebooks_arithmetic():
  rgb = _rgb(3, 4)
  # The notebook, written out: the means in BGR order from the RGB channels, then the flip.
  array = np.asarray(Image.fromarray(rgb), dtype='float32')
  array = np.expand_dims(array, axis=0)
  array[:, :, :, 0] -= 103.939
  array[:, :, :, 1] -= 116.779
  array[:, :, :, 2] -= 123.68
  array = array[:, :, :, ::-1]
  swapped = image.preprocess(rgb, 'swapped_means')
  np.testing.assert_array_equal(swapped, array)
  np.testing.assert_allclose(image.offset('swapped_means'), [-19.741, 0.0, 19.741], rtol=1e-5)
  np.testing.assert_allclose(swapped, image.preprocess(rgb) + image.offset('swapped_means'),
                             atol=1e-4)
  np.testing.assert_array_equal(image.offset('caffe'), [0.0, 0.0, 0.0])


def test_preprocess_keeps_batch_and_jits():
  rgb = _rgb(3, 4).astype(np.float32)[None].repeat(2, 0)
  x = jax.jit(image.preprocess)(rgb)
  assert x.shape == (2, 3, 4, 3)
  np.testing.assert_allclose(x, image.preprocess(rgb), rtol=1e-6)


@pytest.mark.parametrize('batched', [False, True])
def test_round_trip_is_exact_on_uint8(batched):
  rgb = np.random.default_rng(1).integers(0, 256, (6, 5, 3), np.uint8)
  x = image.preprocess(rgb[None] if batched else rgb)
  out = image.deprocess(x)
  assert out.dtype == np.uint8 and out.shape == (6, 5, 3)
  np.testing.assert_array_equal(out, rgb)
  np.testing.assert_array_equal(image.deprocess(x[0]), rgb)


def test_deprocess_rounds_and_clips():
  rgb = np.array([[[-20.0, 10.4, 300.0]]], np.float32)
  bgr = rgb[..., ::-1] - np.array(image.BGR_MEANS, np.float32)
  np.testing.assert_array_equal(image.deprocess(bgr), [[[0, 10, 255]]])


# -- save ----------------------------------------------------------------------


def test_save_png_round_trip_creates_dirs_and_leaves_no_temp(tmp_path):
  a = _rgb(5, 6)
  path = tmp_path / 'a' / 'b' / 'out.png'
  image.save(path, a)
  np.testing.assert_array_equal(image.load(path), a)
  assert os.listdir(path.parent) == ['out.png']


def test_save_rounds_and_clips_floats(tmp_path):
  path = tmp_path / 'f.png'
  image.save(path, np.array([[[-5.0, 127.6, 400.0]]]))
  np.testing.assert_array_equal(image.load(path), [[[0, 128, 255]]])


def read_png16(path):
  """The samples of a 48-bit RGB PNG with unfiltered rows (as image.save
  writes it), uint16 (H, W, 3)."""
  data = pathlib.Path(path).read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n'
  chunks, pos = {}, 8
  while pos < len(data):
    size, kind = struct.unpack('>I4s', data[pos:pos + 8])
    chunks[kind] = chunks.get(kind, b'') + data[pos + 8:pos + 8 + size]
    pos += size + 12
  width, height, depth, color_type = struct.unpack('>IIBB', chunks[b'IHDR'][:10])
  assert (depth, color_type) == (16, 2)
  rows = np.frombuffer(zlib.decompress(chunks[b'IDAT']), np.uint8).reshape(height, -1)
  assert not rows[:, 0].any()
  return rows[:, 1:].copy().view('>u2').reshape(height, width, 3).astype(np.uint16)


def test_save_16_bit_png_keeps_the_unrounded_values(tmp_path):
  rgb = np.random.default_rng(3).uniform(-10, 265, (5, 7, 3)).astype(np.float32)
  path = tmp_path / 'deep.png'
  image.save(path, rgb, bits=16)
  got = read_png16(path)
  want = np.rint(np.clip(rgb.astype(np.float64), 0, 255) / 255 * 65535)
  np.testing.assert_array_equal(got, want)
  assert np.mean(got % 257 != 0) > 0.9  # not an 8-bit image scaled
  with Image.open(path) as img:  # Pillow decodes it too, keeping the high bytes
    assert img.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(img), got >> 8)


def test_save_16_bit_is_png_or_tiff_only(tmp_path):
  with pytest.raises(image.ImageError) as e:
    image.save(tmp_path / 'x.jpg', _rgb(2, 2), bits=16)
  assert 'use .png or .tif' in _assert_image_error(e, tmp_path / 'x.jpg')
  assert os.listdir(tmp_path) == []
  assert image.writes_16_bit('a.PNG') and image.writes_16_bit('a.tiff')
  assert not image.writes_16_bit('a.jpeg')


def read_tiff16(path):
  """The samples of a 48-bit RGB TIFF, uint16 (H, W, 3): Pillow reads the
  tags (it decodes the pixels only to 8 bits), numpy the one strip."""
  with Image.open(path) as img:
    tags = img.tag_v2
    assert (tags[258], tags[259], tags[262], tags[277]) == ((16, 16, 16), 1, 2, 3)
    (offset,), (count,) = tags[273], tags[279]
    width, height = img.size
  assert count == width * height * 6
  data = pathlib.Path(path).read_bytes()[offset:offset + count]
  return np.frombuffer(data, '<u2').reshape(height, width, 3)


def test_save_16_bit_tiff_keeps_the_unrounded_values(tmp_path):
  rgb = np.random.default_rng(4).uniform(-10, 265, (5, 7, 3)).astype(np.float32)
  path = tmp_path / 'deep.tif'
  image.save(path, rgb, bits=16)
  got = read_tiff16(path)
  np.testing.assert_array_equal(got, np.rint(np.clip(rgb.astype(np.float64), 0, 255) / 255 * 65535))
  assert np.mean(got % 257 != 0) > 0.9
  with Image.open(path) as img:  # Pillow decodes it too, keeping the high bytes
    np.testing.assert_array_equal(np.asarray(img), got >> 8)


# Any bytes: Pillow neither checks a profile it writes nor one it reads. Odd
# length, as a TIFF value that must be padded to a word boundary.
ICC = b'made-up ICC profile ' * 40 + b'!'
PRINT_FILES = [('x.png', 8), ('x.png', 16), ('x.jpg', 8), ('x.tif', 8), ('x.tiff', 16)]


@pytest.mark.parametrize('name, bits', PRINT_FILES)
def test_profile_and_dpi_round_trip(tmp_path, name, bits):
  rgb = _rgb(6, 5, seed=5)
  path = tmp_path / name
  image.save(path, rgb, bits, icc_profile=ICC, dpi=(300, 150))
  got = image.metadata(path)
  assert got.icc_profile == ICC
  assert got.dpi == (300, 150)  # in a PNG 11811 and 5906 pixels per metre
  if name != 'x.jpg':
    np.testing.assert_array_equal(image.load(path), rgb)
  image.save(path, image.load(path), bits, **got._asdict())  # again, from what was read
  assert image.metadata(path) == got


@pytest.mark.parametrize('name, bits', PRINT_FILES)
def test_save_without_profile_or_dpi_states_none(tmp_path, name, bits):
  path = tmp_path / name
  image.save(path, _rgb(3, 4), bits)
  assert image.metadata(path) == (None, None)


def test_png_dpi_is_the_whole_dpi_within_half_a_pixel_per_metre(tmp_path):
  path = _png(tmp_path, Image.fromarray(_rgb(2, 2)), dpi=(72.0127, 299.9))
  assert image.metadata(path).dpi == (72.0, pytest.approx(299.9, abs=0.0127))


def test_metadata_follows_the_exif_orientation(tmp_path):
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: turned 90 degrees
  path = _png(tmp_path, Image.fromarray(_rgb(4, 8)), 'turned.jpg', exif=exif, dpi=(100, 200))
  assert image.load(path).shape == (8, 4, 3)
  assert image.metadata(path).dpi == (200, 100)


def test_metadata_of_a_bad_file_is_an_image_error(tmp_path):
  path = tmp_path / 'notes.png'
  path.write_text('not an image')
  with pytest.raises(image.ImageError) as e:
    image.metadata(path)
  _assert_image_error(e, path)


@pytest.mark.parametrize('dpi', [(0, 300), (300,), (300, 70000), ('300', '300')])
def test_bad_dpi_is_refused_before_writing(tmp_path, dpi):
  with pytest.raises(image.ImageError) as e:
    image.save(tmp_path / 'x.png', _rgb(2, 2), dpi=dpi)
  assert 'dpi must be' in _assert_image_error(e, tmp_path / 'x.png')
  assert os.listdir(tmp_path) == []


def test_save_jpeg_by_extension(tmp_path):
  path = tmp_path / 'out.JPEG'
  image.save(path, np.full((8, 8, 3), 120, np.uint8))
  assert Image.open(path).format == 'JPEG'
  np.testing.assert_allclose(image.load(path), 120, atol=2)


def test_save_unsupported_extension_keeps_existing_file(tmp_path):
  path = tmp_path / 'out.xyz'
  path.write_bytes(b'precious')
  with pytest.raises(image.ImageError) as e:
    image.save(path, _rgb(2, 2))
  _assert_image_error(e, path)
  assert path.read_bytes() == b'precious'
  assert os.listdir(tmp_path) == ['out.xyz']


@pytest.mark.parametrize('error', [OSError(28, 'No space left on device'),
                                   KeyboardInterrupt()])
def test_failed_save_is_atomic(tmp_path, monkeypatch, error):
  path = tmp_path / 'out.png'
  image.save(path, _rgb(4, 4, seed=1))
  before = path.read_bytes()

  def broken_save(self, fp, *args, **kwargs):
    fp.write(b'\x89PNG half')
    raise error

  monkeypatch.setattr(Image.Image, 'save', broken_save)
  with pytest.raises(image.ImageError if isinstance(error, OSError)
                     else KeyboardInterrupt) as e:
    image.save(path, _rgb(4, 4, seed=2))
  if isinstance(error, OSError):
    assert 'No space left' in _assert_image_error(e, path)
  assert path.read_bytes() == before
  assert os.listdir(tmp_path) == ['out.png']


def test_save_into_a_file_as_directory(tmp_path):
  (tmp_path / 'file').write_text('x')
  path = tmp_path / 'file' / 'out.png'
  with pytest.raises(image.ImageError) as e:
    image.save(path, _rgb(2, 2))
  _assert_image_error(e, path)
