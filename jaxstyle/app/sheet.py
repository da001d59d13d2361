"""Contact sheets: a labelled grid of images, to see a sweep at a glance."""
from collections.abc import Sequence
import re

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_PAD = 6  # px between tiles
_FONT_SIZE = 14  # px


def _font() -> ImageFont.ImageFont:
  try:
    return ImageFont.load_default(size=_FONT_SIZE)
  except TypeError:  # Pillow without FreeType: a fixed bitmap font
    return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
  left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
  return right - left, bottom - top


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
  """`text` in lines of at most `width` px, broken after '+', ',' or ' '."""
  words = re.findall(r'[^+, ]+[+, ]*', text) or ['']
  lines = [words[0]]
  for word in words[1:]:
    if _text_size(draw, lines[-1] + word, font)[0] <= width:
      lines[-1] += word
    else:
      lines.append(word)
  return [l.rstrip() for l in lines]


def grid(tiles: Sequence[Sequence[np.ndarray | None]], row_labels: Sequence[str],
         col_labels: Sequence[str], title: str = '', tile_height: int = 160) -> np.ndarray:
  """tiles[r][c]: HWC RGB 0..255 (None: a grey blank, e.g. a diverged run).

  Each tile is scaled to `tile_height` px high; rows are labelled on the left,
  columns on top, and the title runs above. Returns HWC uint8 RGB.
  """
  assert len(tiles) == len(row_labels) and all(len(r) == len(col_labels) for r in tiles), (
      len(tiles), len(row_labels), [len(r) for r in tiles], len(col_labels))
  font = _font()
  scratch = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  line = _text_size(scratch, 'Ag', font)[1] + _PAD
  first = next(t for row in tiles for t in row if t is not None)
  tile_width = max(1, round(tile_height * first.shape[1] / first.shape[0]))
  label_width = max((_text_size(scratch, l, font)[0] for l in row_labels), default=0) + 2 * _PAD
  headers = [_wrap(scratch, l, font, tile_width) for l in col_labels]
  col_width = max([tile_width] + [_text_size(scratch, l, font)[0] + _PAD
                                  for h in headers for l in h])
  top = _PAD + (line if title else 0) + line * max(len(h) for h in headers)
  width = label_width + len(col_labels) * (col_width + _PAD)
  height = top + len(row_labels) * (tile_height + _PAD)
  canvas = Image.new('RGB', (width, height), 'white')
  draw = ImageDraw.Draw(canvas)
  if title:
    draw.text((_PAD, _PAD), title, fill='black', font=font)
  for c, header in enumerate(headers):
    for i, text in enumerate(header):
      draw.text((label_width + c * (col_width + _PAD), top - line * (len(header) - i)), text,
                fill='black', font=font)
  for r, text in enumerate(row_labels):
    y = top + r * (tile_height + _PAD)
    draw.text((_PAD, y + tile_height // 2 - line // 2), text, fill='black', font=font)
    for c, tile in enumerate(tiles[r]):
      x = label_width + c * (col_width + _PAD)
      if tile is None:
        draw.rectangle((x, y, x + tile_width - 1, y + tile_height - 1), fill=(160, 160, 160))
        continue
      picture = Image.fromarray(np.clip(np.rint(tile), 0, 255).astype(np.uint8))
      canvas.paste(picture.resize((tile_width, tile_height), Image.LANCZOS), (x, y))
  return np.asarray(canvas)
