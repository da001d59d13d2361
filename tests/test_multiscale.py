"""Coarse to fine: the heights, the step plan, the upsampled start of each
scale, and resume from a checkpoint of any scale."""
import json
import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from configs import default
from jaxstyle import image, objective
from jaxstyle.app import checkpoint, memory, multiscale, run
from jaxstyle.app import config as config_lib
from jaxstyle.errors import InputError


def test_heights_end_at_the_height_a_factor_apart():
  assert multiscale.heights(256, 3, math.sqrt(2), 16) == [128, 181, 256]
  assert multiscale.heights(100, 2, 2.0, 16) == [50, 100]
  assert multiscale.heights(8, 1, 2.0, 16) == [8]  # one scale: objective.make checks it


def test_too_small_first_scale_names_the_field():
  with pytest.raises(InputError, match=r'^config\.scales: 3 scales a factor 2 apart start at '
                                       r'10 px, below the 16 px'):
    multiscale.heights(40, 3, 2.0, 16)


def test_steps_count_on_across_scales():
  assert multiscale.ends(10, None, 3) == [0, 10, 20, 30]
  assert multiscale.ends(10, 4, 3) == [0, 4, 8, 18]
  assert multiscale.ends(7, 4, 1) == [0, 7]
  # The scale of run steps 4..8 stops at its ends and at the run's multiples of 3.
  assert multiscale.stops(4, 8, (3, 0)) == [0, 2, 4]


def test_resize_is_bicubic_in_pixels_and_clipped():
  rgb = np.zeros((4, 6, 3), np.float32)
  rgb[:, 3:] = 255.0
  x = image.preprocess(rgb)
  up = multiscale.resize(x, 8, 12)
  assert up.shape == (1, 8, 12, 3)
  pixels = jax.image.resize(jnp.asarray(rgb), (8, 12, 3), 'cubic')
  assert pixels.min() < 0 and pixels.max() > 255  # bicubic overshoots the edge
  np.testing.assert_allclose(image.deprocess_float(up), np.clip(pixels, 0, 255), atol=1e-4)


def _config(tmp_path, **fields):
  """Two tiny pictures, three shallow layers and Adam: quick to compile."""
  rng = np.random.default_rng(0)
  for name in ('content', 'style'):
    Image.fromarray(rng.integers(0, 256, (24, 40, 3), np.uint8)).save(tmp_path / f'{name}.png')
  config = default.get_config()
  config.update(dict(content=str(tmp_path / 'content.png'), style=str(tmp_path / 'style.png'),
                     height=24, scales=2, scale_factor=2.0, scale_steps=2, steps=3,
                     optimizer='adam', log_every=1, save_every=0, checkpoint_every=1,
                     tensorboard=False, compilation_cache=False, **fields))
  config.loss.content_layers = ('block3_conv2',)
  config.loss.style_layers = ('block1_conv1', 'block2_conv1', 'block3_conv1')
  return config


def _metrics(workdir):
  return [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]


def _final_x(workdir):
  with np.load(workdir / checkpoint.FILENAME) as f:
    return f['leaf_000']


def test_each_scale_starts_from_the_last_result_upsampled(tmp_path):
  config = _config(tmp_path)
  final = run.run(config, tmp_path / 'two')
  assert Image.open(final).size == (40, 24)
  lines = _metrics(tmp_path / 'two')
  assert [(l['scale'], l['step']) for l in lines] == [
      (0, 0), (0, 1), (0, 2), (1, 2), (1, 3), (1, 4), (1, 5)]
  # Scale 0 alone: the same solve, 2 steps at 12 px.
  coarse = config.copy_and_resolve_references()
  coarse.update(dict(scales=1, height=12, steps=2))
  run.run(coarse, tmp_path / 'coarse')
  content = image.load(config.content, height=24)
  fine = config_lib.make_objective(config, content, image.load(config.style, height=24))
  start = multiscale.resize(jnp.asarray(_final_x(tmp_path / 'coarse')), 24, 40)
  np.testing.assert_allclose(lines[3]['loss'], float(objective.loss(start, fine)), rtol=1e-5)


def test_resumes_from_a_checkpoint_of_either_scale(tmp_path, monkeypatch):
  saved = {}
  save = checkpoint.save

  def keep(path, ckpt, digest):
    save(path, ckpt, digest)
    saved[ckpt.scale, ckpt.step] = tmp_path / f'{ckpt.scale}_{ckpt.step}.npz'
    shutil.copy(path, saved[ckpt.scale, ckpt.step])

  monkeypatch.setattr(checkpoint, 'save', keep)
  config = _config(tmp_path)
  whole = tmp_path / 'whole'
  run.run(config, whole)
  monkeypatch.undo()
  assert sorted(saved) == [(0, 1), (0, 2), (1, 3), (1, 4), (1, 5)]
  for at in ((0, 2), (1, 3)):  # the end of scale 0; one step into scale 1
    workdir = tmp_path / f'resumed_{at[0]}'
    workdir.mkdir()
    shutil.copy(saved[at], workdir / checkpoint.FILENAME)
    shutil.copy(whole / 'metrics.jsonl', workdir / 'metrics.jsonl')
    run.run(config, workdir)
    assert (workdir / 'final.png').read_bytes() == (whole / 'final.png').read_bytes()
    np.testing.assert_array_equal(_final_x(workdir), _final_x(whole))
    assert ([(l['scale'], l['step']) for l in _metrics(workdir)]
            == [(l['scale'], l['step']) for l in _metrics(whole)])


def test_a_set_width_scales_with_each_scale_height():
  config = default.get_config()
  config.update(dict(height=32, width=48))
  assert (run._at_height(config, 16).height, run._at_height(config, 16).width) == (16, 24)
  config.width = None
  assert run._at_height(config, 16).width is None


def test_auto_tiles_only_the_scales_too_large_for_the_device(tmp_path, monkeypatch):
  """A device that holds the 24 px scale at once but the 48 px one only in
  tiles: each scale resolves config.tile 'auto' itself, and the run is the
  untiled one."""
  config = _config(tmp_path)
  config.height = 48
  config.tile_remat = True  # at 48 px what tiles would keep outweighs what they save
  spec = config_lib.spec(config)
  coarse, fine = (image.load(config.content, height=h).shape[:2] for h in (24, 48))
  need = lambda hw, tile: memory.estimate(
      spec.layers, *hw, history_size=config_lib.history_size(config), tile=tile,
      **memory.of_spec(spec))
  free = (need(fine, 0) + need(fine, 24)) / 2 / 0.9
  monkeypatch.setattr(memory, 'available', lambda device=None: free)
  assert need(coarse, 0) <= 0.9 * free
  assert config_lib.tile(config, *coarse) == 0 and config_lib.tile(config, *fine) >= 24
  run.run(config, tmp_path / 'auto')
  monkeypatch.undo()
  config.tile = 0
  run.run(config, tmp_path / 'untiled')
  for tiled, untiled in zip(_metrics(tmp_path / 'auto'), _metrics(tmp_path / 'untiled')):
    assert tiled['loss'] == pytest.approx(untiled['loss'], rel=1e-4)
