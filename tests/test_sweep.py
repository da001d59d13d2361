"""Sweeps: planning, grouping, the written results, resuming, one-line errors."""
import json
import pathlib
import shlex
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from configs import default
from configs.seeds import tf_blog
from jaxstyle.app import hyper, run, sweep
from jaxstyle.errors import InputError

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYER_SETS = (('block1_conv1',), ('block1_conv1', 'block2_conv1'))


def _config(tmp_path, axes):
  config = default.get_config()
  rng = np.random.default_rng(0)
  for name in ('content', 'style'):
    path = tmp_path / f'{name}.png'
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    config[name] = str(path)
  config.height, config.steps, config.log_every = 24, 3, 0
  config.loss.content_layers = ('block2_conv2',)
  config.tensorboard = False
  config.sweep = {'axes': axes, 'batch_size': 2, 'title': 'test'}
  return config


def test_plan_checks_every_point_and_names_the_bad_one(tmp_path):
  config = _config(tmp_path, hyper.product(hyper.values('loss.style_weight', (1.0, -1.0)),
                                           hyper.values('seed', (0, 1))))
  with pytest.raises(InputError, match=r'sweep point style_weight=-1, seed=0: config.loss.style_weight'):
    sweep.plan(config)
  config.sweep.axes = hyper.values('seed', (0, 1, 2))
  assert [p.config.seed for p in sweep.plan(config)] == [0, 1, 2]
  config.scales = 2
  with pytest.raises(InputError, match='config.scales: not supported in a sweep'):
    sweep.plan(config)
  config.scales = 1
  config.sweep.batch_size = -1
  with pytest.raises(InputError, match='config.sweep.batch_size'):
    sweep.plan(config)


def test_scipy_lbfgsb_is_refused_in_a_sweep(tmp_path):
  config = _config(tmp_path, hyper.values('seed', (0, 1)))
  config.optimizer = 'scipy_lbfgsb'
  with pytest.raises(InputError, match="config.optimizer: 'scipy_lbfgsb' solves one image"):
    sweep.plan(config)


def test_the_tf_blog_sweep_is_its_three_layer_sets_with_their_weights():
  points = sweep.plan(tf_blog.get_config())
  assert [(p.config.loss.style_layers, p.config.loss.style_layer_weights) for p in points] == [
      (default.STYLE_LAYERS, (0.5, 1.0, 1.5, 3.0, 4.0)),
      (('block1_conv1', 'block2_conv1'), (0.5, 1.0)), (('block5_conv1',), (4.0,))]


def test_traced_fields_share_a_group_and_layer_sets_do_not(tmp_path):
  config = _config(tmp_path, hyper.product(
      hyper.values('loss.style_layers', LAYER_SETS),
      hyper.values('loss.style_weight', (1.0, 2.0)),
      hyper.values('init', ('content', 'uniform'))))
  keys = [sweep.group_key(p.config) for p in sweep.plan(config)]
  assert len(set(keys[:4])) == 1 and len(set(keys[4:])) == 1 and keys[0] != keys[4]


def test_sweep_writes_points_table_and_sheet_and_resumes(tmp_path):
  config = _config(tmp_path, hyper.product(hyper.values('loss.style_layers', LAYER_SETS),
                                           hyper.values('loss.style_weight', (1e2, 1e5))))
  out = tmp_path / 'sweep'
  sheet_path = sweep.run(config, out, prefix='python -m jaxstyle.main --config c.py')
  assert sheet_path == out / 'contact_sheet.png'
  rows = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
  assert [r['index'] for r in rows] == [0, 1, 2, 3]
  assert [r['grid'] for r in rows] == [[0, 0], [0, 1], [1, 0], [1, 1]]
  assert all(r['status'] == 'ok' and r['batch_size'] == 2 for r in rows)
  # More style weight, less style loss, within each layer set.
  assert rows[1]['style_loss'] < rows[0]['style_loss'] and rows[3]['style_loss'] < rows[2]['style_loss']
  csv_lines = (out / 'results.csv').read_text().splitlines()
  assert len(csv_lines) == 5 and csv_lines[0].startswith('index,loss.style_layers,loss.style_weight,loss,')
  assert csv_lines[4].split(',')[1:3] == ['conv1_1+conv2_1', '100000']
  sheet = np.asarray(Image.open(sheet_path))
  assert sheet.shape[0] > 2 * 160 and sheet.shape[1] > 2 * 160
  for r in rows:
    assert Image.open(out / r['image']).size == (32, 24)

  # The printed command reruns a point alone, to the same picture.
  args = shlex.split(rows[3]['command'])
  assert args[:5] == ['python', '-m', 'jaxstyle.main', '--config', 'c.py']
  assert args[5:7] == ["--config.loss.style_layers=('block1_conv1', 'block2_conv1')",
                       '--config.loss.style_weight=100000.0']
  assert args[7] == f'--workdir={out}/points/003/rerun'
  point_config = hyper.apply(config, ((('loss.style_layers', LAYER_SETS[1]),
                                       ('loss.style_weight', 1e5))))
  alone = run.run(point_config, tmp_path / 'alone')
  np.testing.assert_allclose(np.asarray(Image.open(alone), float),
                             np.asarray(Image.open(out / rows[3]['image']), float), atol=1)

  # A second run finds every point finished; a longer sweep redoes them.
  before = (out / 'points/000/final.png').stat().st_mtime_ns
  sweep.run(config, out)
  assert (out / 'points/000/final.png').stat().st_mtime_ns == before
  config.steps = 4
  sweep.run(config, out)
  assert (out / 'points/000/final.png').stat().st_mtime_ns != before


def test_a_group_may_use_layers_deeper_than_the_base_config(tmp_path):
  config = _config(tmp_path, hyper.values('loss.content_layers',
                                          (('block1_conv1',), ('block3_conv1',))))
  config.loss.style_layers = ('block1_conv1',)
  config.steps = 1
  sweep.run(config, tmp_path / 'sweep')
  rows = [json.loads(l) for l in (tmp_path / 'sweep/results.jsonl').read_text().splitlines()]
  assert [r['status'] for r in rows] == ['ok', 'ok']


@pytest.mark.parametrize('args, message', [
    (['--config', 'configs/default.py'], 'config.sweep.axes is missing'),
    (['--config', 'configs/sweeps/ratio.py', '--config.sweep.batch_size=-2'],
     'config.sweep.batch_size'),
])
def test_bad_sweeps_are_one_line_and_write_nothing(tmp_path, args, message):
  result = subprocess.run([sys.executable, '-m', 'jaxstyle.sweep', *args,
                           f'--workdir={tmp_path / "w"}'], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 2
  assert result.stderr.count('\n') == 1 and message in result.stderr, result.stderr
  assert not (tmp_path / 'w').exists()
