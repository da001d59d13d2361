"""Many content images under one style: `contents` as one batch, each image
as it would come out alone; `frames` in order, warm-started and resumable;
their config checks."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from configs import default
from jaxstyle import image, objective, optimize
from jaxstyle.app import run, validation
from jaxstyle.app import config as config_lib
from jaxstyle.errors import InputError

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _png(path, seed, size=(32, 24)):
  rng = np.random.default_rng(seed)
  Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
  return str(path)


def _config(tmp_path, **fields):
  config = default.get_config()
  config.style = _png(tmp_path / 'style.png', 100)
  config.height, config.steps, config.log_every = 24, 3, 1
  config.loss.content_layers = ('block2_conv2',)
  config.loss.style_layers = ('block1_conv1', 'block2_conv1')
  config.tensorboard = False
  config.update(fields)
  return config


def _metrics(path):
  return [json.loads(l) for l in path.read_text().splitlines()]


def _pixels(path):
  return np.asarray(Image.open(path), np.float64)


def test_contents_run_as_one_batch_each_as_it_would_alone(tmp_path):
  folder = tmp_path / 'in'
  folder.mkdir()
  for name, seed, size in (('b.png', 1, (32, 24)), ('a.png', 2, (32, 24)),
                           ('c.jpg', 3, (40, 24))):
    _png(folder / name, seed, size)
  (folder / 'notes.txt').write_text('not an image\n')
  out = run.run(_config(tmp_path, contents=str(folder)), tmp_path / 'run')
  assert out == tmp_path / 'run' / 'contents'
  assert sorted(os.listdir(out)) == ['a.metrics.jsonl', 'a.png', 'b.metrics.jsonl', 'b.png',
                                     'c.metrics.jsonl', 'c.png']
  for stem in 'abc':
    assert Image.open(out / f'{stem}.png').size == (32, 24)  # a's, the first by name
    metrics = _metrics(out / f'{stem}.metrics.jsonl')
    assert [m['step'] for m in metrics] == [0, 1, 2, 3]
    assert metrics[-1]['loss'] < metrics[0]['loss']
  alone = run.run(_config(tmp_path, content=str(folder / 'b.png')), tmp_path / 'alone')
  np.testing.assert_allclose(_pixels(out / 'b.png'), _pixels(alone), atol=1)
  assert np.abs(_pixels(out / 'a.png') - _pixels(out / 'b.png')).max() > 50


def _nothing(x, aux, obj):
  return 0.0


def test_frames_start_from_the_previous_result_and_resume(tmp_path):
  folder = tmp_path / 'video'
  folder.mkdir()
  for i in range(3):
    _png(folder / f'f{i:02d}.png', i)
  config = _config(tmp_path, frames=str(folder), frames_steps=2, grad_norms=True)
  out = run.run(config, tmp_path / 'run')
  assert out == tmp_path / 'run' / 'frames'
  assert sorted(os.listdir(out)) == ['config_hash.txt', *(f'f{i:02d}{suffix}' for i in range(3)
                                                          for suffix in ('.metrics.jsonl', '.png'))]
  metrics = {i: _metrics(out / f'f{i:02d}.metrics.jsonl') for i in range(3)}
  assert [m['step'] for m in metrics[0]] == [0, 1, 2, 3]
  assert [m['step'] for m in metrics[1]] == [0, 1, 2]
  assert set(objective.GRAD_NORMS) <= set(metrics[1][0])

  load = lambda path: image.load(path, height=24, width=32)
  first = config_lib.make_objective(config, load(folder / 'f00.png'),
                                    image.load(config.style, height=24))
  solver = optimize.make('lbfgs', **config.optim.lbfgs)
  result = optimize.minimize(solver, _nothing, image.preprocess(load(folder / 'f00.png')), first,
                             [0, 3], lambda *_: None).x
  second_rgb = load(folder / 'f01.png')
  second = objective.with_content(first, second_rgb)
  assert metrics[1][0]['loss'] == pytest.approx(float(objective.loss(result, second)), rel=1e-5)
  assert metrics[1][0]['loss'] != pytest.approx(
      float(objective.loss(image.preprocess(second_rgb), second)), rel=1e-2)

  # A rerun skips the frames written; a missing one starts from its predecessor's picture.
  written = {i: (out / f'f{i:02d}.png').stat().st_mtime_ns for i in (0, 1)}
  (out / 'f02.png').unlink()
  run.run(config, tmp_path / 'run')
  assert {i: (out / f'f{i:02d}.png').stat().st_mtime_ns for i in (0, 1)} == written
  third = objective.with_content(first, load(folder / 'f02.png'))
  start = image.preprocess(load(out / 'f01.png'))
  assert _metrics(out / 'f02.metrics.jsonl')[0]['loss'] == pytest.approx(
      float(objective.loss(start, third)), rel=1e-5)

  config.loss.style_weight = 1.0
  with pytest.raises(InputError, match='frames of a different config; pass --start_over'):
    run.run(config, tmp_path / 'run')


def test_frames_as_16_bit_tiffs_keep_each_frames_profile_and_dpi(tmp_path):
  folder = tmp_path / 'video'
  folder.mkdir()
  Image.open(_png(folder / 'f00.png', 0)).save(folder / 'f00.png', icc_profile=b'profile',
                                               dpi=(300, 300))
  _png(folder / 'f01.png', 1)
  config = _config(tmp_path, frames=str(folder), steps=1, output_format='tif', output_bits=16)
  out = run.run(config, tmp_path / 'run')
  assert image.metadata(out / 'f00.tif') == (b'profile', (300.0, 300.0))
  assert image.metadata(out / 'f01.tif') == (None, None)
  written = (out / 'f00.tif').stat().st_mtime_ns
  (out / 'f01.tif').unlink()
  run.run(config, tmp_path / 'run')  # f01 again, from f00.tif
  assert (out / 'f00.tif').stat().st_mtime_ns == written
  assert sorted(p.name for p in out.glob('f*')) == ['f00.metrics.jsonl', 'f00.tif',
                                                   'f01.metrics.jsonl', 'f01.tif']


def _bad(tmp_path):
  """Config changes and the one line each gives."""
  full, empty, other = tmp_path / 'full', tmp_path / 'empty', tmp_path / 'other'
  for d in (full, empty, other):
    d.mkdir()
  a = _png(full / 'a.png', 0)
  twin = _png(other / 'a.jpg', 1)
  only = 'set only one of content, contents and frames; got'
  return [
      (dict(content=a, contents=str(full)), f'config.contents: {only} content and contents'),
      (dict(contents=str(full), frames=str(full)), f'config.frames: {only} contents and frames'),
      (dict(frames=str(empty)), f'config.frames: {empty} holds no image file'),
      (dict(frames=a), f"config.frames: must be an existing folder; got '{a}'"),
      (dict(contents=()), 'config.contents: must be an existing folder or a non-empty tuple '
       'of image paths; got ()'),
      (dict(contents=(a, twin)), 'config.contents: two images are named a; the outputs are '
       'named after the inputs'),
      (dict(frames=str(full), scales=2), 'config.scales: must be 1 with frames; got 2'),
      (dict(contents=str(full), shard_spatial=True),
       'config.shard_spatial: must be False with contents'),
      (dict(frames_steps=2), 'config.frames_steps: applies to frames, which is unset'),
      (dict(frames=str(full), frames_steps=0), 'config.frames_steps: must be in [1, ∞]; got 0'),
  ]


def test_bad_contents_and_frames_name_the_field(tmp_path):
  for fields, message in _bad(tmp_path):
    with pytest.raises(InputError) as e:
      validation.validate(_config(tmp_path, **fields))
    assert str(e.value) == message
  validation.validate(_config(tmp_path, contents=(str(tmp_path / 'full' / 'a.png'),)))


def test_bad_contents_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
  _png(tmp_path / 'a.png', 0)
  result = subprocess.run(
      [sys.executable, '-m', 'jaxstyle.main', '--config', 'configs/default.py',
       f'--config.content={tmp_path / "a.png"}', f'--config.contents={tmp_path}',
       f'--workdir={tmp_path / "run"}'], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  assert result.stderr == ('jaxstyle: error: config.contents: set only one of content, '
                           'contents and frames; got content and contents\n')
  assert not (tmp_path / 'run').exists()
