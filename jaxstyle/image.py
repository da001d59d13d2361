"""Image I/O: reading, resizing and writing image files.

Images outside the network are float32 or uint8 arrays, HWC, RGB, 0..255.
The network's input (`preprocess`, `deprocess`) is in jaxstyle.network_input,
re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
import pathlib
import stat
from typing import Any
import warnings

import numpy as np
from PIL import Image
from PIL import ExifTags, ImageOps

from jaxstyle import color, files, printing
from jaxstyle.network_input import (BGR_MEANS, PREPROCESSINGS, deprocess,  # noqa: F401
                                    deprocess_float, offset, preprocess)
from jaxstyle.errors import InputError

MAX_SIDE = 16384
# `load`'s resampling filters, by name: Pillow's.
RESAMPLES = {'lanczos': Image.Resampling.LANCZOS, 'nearest': Image.Resampling.NEAREST,
             'bilinear': Image.Resampling.BILINEAR, 'bicubic': Image.Resampling.BICUBIC}

PathLike = str | os.PathLike[str]
_X_RESOLUTION = 282  # TIFF tag


class ImageError(InputError):
  """An image file that cannot be read or written; the message is one line."""


def _error(path: PathLike, problem: Any) -> ImageError:
  line = ' '.join(str(problem).split())
  return ImageError(f'{os.fspath(path)}: {line}')


def _check_side(path: PathLike, name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise _error(path, f'{name} must be an integer, got {value!r}')
  if not 1 <= value <= MAX_SIDE:
    raise _error(path, f'{name} must be in [1, {MAX_SIDE}], got {value}')


def _target_size(
    path: PathLike, size: tuple[int, int], height: int | None,
    width: int | None) -> tuple[int, int]:
  """Returns (width, height) in pixels; a missing side keeps the aspect."""
  w, h = size
  if height is None and width is None:
    return w, h
  if width is None:
    width = max(1, round(w * height / h))
    _check_side(path, 'width derived from the aspect ratio', width)
  if height is None:
    height = max(1, round(h * width / w))
    _check_side(path, 'height derived from the aspect ratio', height)
  return int(width), int(height)


@contextlib.contextmanager
def _opened(path: PathLike) -> Iterator[Image.Image]:
  """The file opened by Pillow, pixels not yet decoded; what fails within -> ImageError."""
  try:
    st_mode = os.stat(path).st_mode
  except FileNotFoundError:
    raise _error(path, 'no such file') from None
  except OSError as e:
    raise _error(path, f'cannot access: {e.strerror or e}') from None
  if stat.S_ISDIR(st_mode):
    raise _error(path, 'is a directory, not an image file')
  if not stat.S_ISREG(st_mode):
    raise _error(path, 'is not a regular file')
  try:
    f = open(path, 'rb')
  except PermissionError:
    raise _error(path, 'permission denied (cannot read the file)') from None
  except OSError as e:
    raise _error(path, f'cannot open: {e.strerror or e}') from None
  with f, warnings.catch_warnings():
    # Pillow warns about corrupt metadata (TIFF tags, EXIF) that it skips;
    # the file still either decodes or raises ImageError below.
    warnings.simplefilter('ignore', UserWarning)
    warnings.simplefilter('error', Image.DecompressionBombWarning)
    try:
      yield Image.open(f)
    except (Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
      raise _error(
          path, f'refusing to decode: {e} (Pillow decompression-bomb guard, '
          f'PIL.Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS})') from None
    except Image.UnidentifiedImageError:
      raise _error(
          path, 'not a recognised image (unknown format, corrupt header '
          'or zero width/height)') from None
    except Exception as e:  # Pillow raises many types for corrupt data.
      raise _error(
          path, f'cannot decode image, truncated or corrupt '
          f'({type(e).__name__}: {e})') from None


def _decode(path: PathLike) -> Image.Image:
  """Fully decodes the first frame, EXIF-oriented; bad files -> ImageError."""
  with _opened(path) as img:
    img.load()
    img = ImageOps.exif_transpose(img)
  if img.width < 1 or img.height < 1:
    raise _error(path, f'image has zero size {img.width}x{img.height}')
  return img


def metadata(path: PathLike) -> printing.Metadata:
  """The ICC profile and resolution that an image file states (None where it
  states none, or a resolution outside [1, 65535] dpi), x and y as `load`
  orients the image (EXIF); read without decoding the pixels.
  Raises ImageError as `load` does for files it cannot open."""
  with _opened(path) as img:
    icc, dpi = img.info.get('icc_profile') or None, img.info.get('dpi')
    if img.format == 'TIFF' and _X_RESOLUTION not in img.tag_v2:
      dpi = None  # Pillow reports 1 dpi for a TIFF without resolution
    dpi = printing.read_dpi(dpi, png=img.format == 'PNG')
    turned = img.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
  return printing.Metadata(icc, dpi[::-1] if dpi and turned else dpi)


def _to_rgb8(img: Image.Image) -> Image.Image:
  """8-bit RGB; transparent pixels are composited over white."""
  if img.has_transparency_data:
    rgba = img.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert('RGB')
  return img.convert('RGB')


def _to_gray_float(img: Image.Image) -> Image.Image:
  """Mode 'F' on the 0..255 scale; integer modes are 16-bit (0..65535)."""
  a = np.asarray(img, dtype=np.float32)
  if img.mode != 'F':
    a = a / np.float32(257.0)
  return Image.fromarray(np.nan_to_num(a))


def load(
    path: PathLike, height: int | None = None,
    width: int | None = None, resample: str = 'lanczos') -> np.ndarray:
  """Reads an image file as a float32 (H, W, 3) RGB array in 0..255.

  Args:
    path: Any format Pillow reads; multi-frame files give their first frame.
    height: Output height in pixels; None keeps the aspect ratio (or the
      native size when width is None too).
    width: Output width in pixels; likewise.
    resample: The filter of a resize, one of RESAMPLES ('nearest' is what
      Keras's `load_img(path, target_size=...)` uses).

  Returns:
    float32 array (height, width, 3), RGB, 0..255, resampled with `resample`.
    16-bit and float images keep their precision (16-bit 0..65535 maps to
    0..255; mode 'F' is taken to be on the 0..255 scale).

  Raises:
    ImageError: Missing, unreadable, corrupt, truncated or oversized file, or
      a bad height/width.
  """
  if height is not None:
    _check_side(path, 'height', height)
  if width is not None:
    _check_side(path, 'width', width)
  if resample not in RESAMPLES:
    raise _error(path, f'resample must be one of {", ".join(RESAMPLES)}; got {resample!r}')
  img = _decode(path)
  size = _target_size(path, img.size, height, width)
  try:
    if img.mode.startswith('I') or img.mode == 'F':
      gray = _to_gray_float(img).resize(size, RESAMPLES[resample])
      out = np.repeat(np.asarray(gray, np.float32)[..., None], 3, axis=-1)
    else:
      out = np.asarray(_to_rgb8(img).resize(size, RESAMPLES[resample]), np.float32)
  except (ValueError, OSError) as e:
    raise _error(
        path, f'cannot convert image mode {img.mode} to RGB: {e}') from None
  out = np.clip(out, 0.0, 255.0)
  assert out.shape == (size[1], size[0], 3), out.shape
  return np.ascontiguousarray(out)


def load_mask(path: PathLike, height: int, width: int) -> np.ndarray:
  """Reads an image file as a float32 (height, width) mask in 0..1: its
  luminance (BT.601 Y, as `load` reads and resizes it) over 255."""
  y = color.rgb_to_ycbcr(load(path, height=height, width=width))[..., 0]
  return np.clip(y / 255.0, 0.0, 1.0).astype(np.float32)


def _os_reason(e: OSError) -> str:
  reason = e.strerror or str(e)
  return f'{reason} ({e.filename})' if e.filename else reason


def _save_format(path: PathLike) -> str:
  ext = pathlib.Path(path).suffix.lower()
  # Pillow's common formats first: all its plugins take some 40 ms to import.
  for load in (Image.preinit, Image.init):
    load()
    fmt = Image.EXTENSION.get(ext)
    if fmt is not None and fmt in Image.SAVE:
      return fmt
  raise _error(path, f'cannot save images with extension {ext or "(none)"!r}; '
               'use .png, .jpg or .tif')


# The formats `save` writes at 16 bits per channel, by Pillow's name, and how.
_SIXTEEN_BIT = {'PNG': printing.png16, 'TIFF': printing.tiff16}


def writes_16_bit(path: PathLike) -> bool:
  """Whether `save(path, rgb, bits=16)` can write this file type (.png, .tif)."""
  return _save_format(path) in _SIXTEEN_BIT


def save(path: PathLike, rgb: Any, bits: int = 8, *, icc_profile: bytes | None = None,
         dpi: tuple[float, float] | None = None) -> None:
  """Atomically writes an (H, W, 3) RGB image, format from the extension.

  Floats are clipped to 0..255 and rounded: to 8 bits, or with bits=16 (PNG
  and TIFF) to round(v / 255 * 65535). `icc_profile` (ICC bytes) and `dpi`
  ((x, y) dots per inch, each in [1, 65535]) go into the file's header (PNG,
  JPEG, TIFF; see `metadata`); None adds nothing. The image is written to a
  temporary file in the target directory and renamed over the target, so a
  crash leaves either the old file or the complete new one.
  """
  a = np.asarray(rgb)
  assert a.ndim == 3 and a.shape[-1] == 3, a.shape
  assert bits in (8, 16), bits
  fmt = _save_format(path)
  if dpi is not None and not printing.is_dpi(dpi):
    raise _error(path, f'dpi must be two numbers in [1, 65535]; got {dpi!r}')
  if bits == 16:
    if fmt not in _SIXTEEN_BIT:
      raise _error(path, '16-bit images are written as PNG or TIFF only; use .png or .tif')
    samples = np.rint(np.clip(a.astype(np.float64), 0, 255) / 255 * 65535).astype(np.uint16)
    data = _SIXTEEN_BIT[fmt](samples, icc_profile, dpi)
    write = lambda f: f.write(data)
  else:
    if a.dtype != np.uint8:
      a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    params = {'quality': 95} if fmt == 'JPEG' else {}
    params.update({k: v for k, v in (('icc_profile', icc_profile), ('dpi', dpi)) if v is not None})
    write = lambda f: Image.fromarray(a).save(f, format=fmt, **params)
  try:
    with files.atomic(pathlib.Path(path)) as f:
      write(f)
  except OSError as e:
    raise _error(path, f'cannot write: {_os_reason(e)}') from None
