"""Contact sheets: tiles where the labels say."""
import numpy as np

from jaxstyle.app import sheet


def _tile(value):
  return np.full((20, 30, 3), value, np.float32)


def test_tiles_sit_in_row_major_cells_with_labels_around():
  tiles = [[_tile(0), _tile(50)], [_tile(100), None]]
  out = sheet.grid(tiles, ['row a', 'row b'], ['col 1', 'col 2'], title='t', tile_height=40)
  assert out.dtype == np.uint8 and out.ndim == 3
  red = out[:, :, 0]
  first = np.flatnonzero((red == 0).sum(axis=0) >= 40)  # pixel columns of tile (a, 1)
  assert first.size == 60  # 40 px high, 3:2
  x = first[0] + 5
  rows_a, rows_b = np.flatnonzero(red[:, x] == 0), np.flatnonzero(red[:, x] == 100)
  assert rows_a.size == rows_b.size == 40 and rows_a.max() < rows_b.min()
  assert (red[:, x + 70:x + 100] == 50).sum() >= 40 * 30  # tile (a, 2) right of it
  assert (red[rows_a.min():, :first[0]] < 128).any()  # row labels left of the tiles
  assert (red[:rows_a.min()] < 128).any()  # column labels and title above
  assert (red == 160).sum() >= 60 * 40  # the missing tile (b, 2) is a grey blank


def test_one_row_sheet():
  out = sheet.grid([[_tile(10), _tile(20), _tile(30)]], [''], ['a', 'b', 'c'], tile_height=20)
  assert out.shape[0] < 80 and out.shape[1] >= 3 * 30


def test_long_column_labels_wrap_to_the_tile_width():
  label = 'style_layers=conv1_1+conv2_1+conv3_1+conv4_1+conv5_1'
  out = sheet.grid([[_tile(10), _tile(20)]], [''], [label, 'b'], tile_height=160)
  assert out.shape[1] < 2 * (240 + 20)  # columns stay a tile wide
  assert out.shape[0] > 160 + 2 * 14  # the label took several lines
