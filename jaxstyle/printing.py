"""Image files for print: the colour profile and resolution a file states,
and 48-bit RGB PNG and TIFF files, which Pillow does not write (it has no
16-bit RGB mode), from uint16 (H, W, 3) samples."""
import fractions
import numbers
import struct
from typing import Any, NamedTuple
import zlib

import numpy as np

Dpi = tuple[float, float]


class Metadata(NamedTuple):
  """What a print needs of an image file besides its pixels: image.save's keywords."""
  icc_profile: bytes | None = None  # the colour profile, ICC bytes
  dpi: Dpi | None = None  # resolution, dots per inch (x, y)


METRES_PER_INCH = 0.0254


def is_dpi(dpi: Any) -> bool:
  """Two numbers in [1, 65535] dots per inch: what PNG, JPEG and TIFF all hold."""
  return (isinstance(dpi, tuple) and len(dpi) == 2
          and all(isinstance(d, numbers.Real) and 1 <= d <= 65535 for d in dpi))


def read_dpi(dpi: Any, png: bool) -> Dpi | None:
  """A file's resolution as Pillow reads it (info['dpi']): floats, or None
  where is_dpi refuses it. A PNG holds whole pixels per metre, so one within
  half that step of a whole dpi is taken to be the whole dpi it was written as."""
  try:
    dpi = tuple(float(d) for d in dpi)
  except (TypeError, ValueError):
    return None
  if not is_dpi(dpi):
    return None
  if png:
    dpi = tuple(float(round(d)) if abs(d - round(d)) <= METRES_PER_INCH / 2 else d for d in dpi)
  return dpi

# TIFF field types (TIFF 6.0, section 2).
_SHORT, _LONG, _RATIONAL, _UNDEFINED = 3, 4, 5, 7
# A TIFF field: its type, number of values and the values, little-endian.
_Field = tuple[int, int, bytes]


def png16(rgb: np.ndarray, icc_profile: bytes | None = None, dpi: Dpi | None = None) -> bytes:
  """PNG colour type 2 at bit depth 16: unfiltered rows, big-endian samples;
  the profile as an iCCP chunk, dpi as pHYs (pixels per metre)."""
  h, w, _ = rgb.shape
  rows = rgb.astype('>u2').reshape(h, w * 3).view(np.uint8)
  data = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1)

  def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))

  chunks = [chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0))]
  if icc_profile is not None:
    chunks.append(chunk(b'iCCP', b'ICC Profile\0\0' + zlib.compress(icc_profile)))
  if dpi is not None:
    per_metre = (round(d / METRES_PER_INCH) for d in dpi)
    chunks.append(chunk(b'pHYs', struct.pack('>IIB', *per_metre, 1)))
  return b''.join([b'\x89PNG\r\n\x1a\n', *chunks, chunk(b'IDAT', zlib.compress(data.tobytes())),
                   chunk(b'IEND', b'')])


def _numbers(kind: int, *values: int) -> _Field:
  """SHORT or LONG values."""
  code = {_SHORT: 'H', _LONG: 'I'}[kind]
  return kind, len(values), struct.pack(f'<{len(values)}{code}', *values)


def _rational(value: float) -> _Field:
  """One RATIONAL: exact for integers, to 1e-4 otherwise."""
  ratio = fractions.Fraction(value).limit_denominator(10_000)
  return _RATIONAL, 1, struct.pack('<II', ratio.numerator, ratio.denominator)


def tiff16(rgb: np.ndarray, icc_profile: bytes | None = None, dpi: Dpi | None = None) -> bytes:
  """Baseline little-endian TIFF: uncompressed RGB, 16 bits per sample,
  interleaved, one strip; the profile as tag 34675 (InterColorProfile).
  Without dpi the resolution is 1:1 with no unit (TIFF requires the tags)."""
  h, w, _ = rgb.shape
  pixels = rgb.astype('<u2').tobytes()
  unit, resolution = (1, (1, 1)) if dpi is None else (2, dpi)
  fields = {256: _numbers(_LONG, w), 257: _numbers(_LONG, h),
            258: _numbers(_SHORT, 16, 16, 16), 259: _numbers(_SHORT, 1),
            262: _numbers(_SHORT, 2), 277: _numbers(_SHORT, 3), 278: _numbers(_LONG, h),
            279: _numbers(_LONG, len(pixels)), 282: _rational(resolution[0]),
            283: _rational(resolution[1]), 284: _numbers(_SHORT, 1), 296: _numbers(_SHORT, unit)}
  if icc_profile is not None:
    fields[34675] = (_UNDEFINED, len(icc_profile), icc_profile)
  even = lambda data: data + b'\0' * (len(data) % 2)  # values start on a word boundary
  outside = [even(data) for _, (_, _, data) in sorted(fields.items()) if len(data) > 4]
  offset = 8 + 2 + 12 * (len(fields) + 1) + 4  # header, IFD with StripOffsets; then values
  fields[273] = _numbers(_LONG, offset + sum(map(len, outside)))
  entries = [struct.pack('<H', len(fields))]
  for tag, (kind, count, data) in sorted(fields.items()):
    if len(data) <= 4:
      entries.append(struct.pack('<HHI', tag, kind, count) + data.ljust(4, b'\0'))
    else:
      entries.append(struct.pack('<HHII', tag, kind, count, offset))
      offset += len(even(data))
  return b''.join([b'II', struct.pack('<HI', 42, 8), *entries, b'\0' * 4, *outside, pixels])
