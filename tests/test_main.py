"""The command line end to end at a tiny size, and every bad input: one line
on stderr, exit status 2, nothing written."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from configs import default
from jaxstyle import image, objective
from jaxstyle.app import run
import test_image

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The default config's per-layer style terms, logged besides objective.TERMS.
STYLE_TERMS = tuple(f'style/{l}' for l in default.get_config().loss.style_layers)


def cli(*args, cwd=ROOT):
  return subprocess.run([sys.executable, '-m', 'jaxstyle.main', *args], cwd=cwd,
                        capture_output=True, text=True, timeout=600)


def _png(path, mode='RGB', size=(40, 32), seed=0):
  rng = np.random.default_rng(seed)
  channels = {'RGB': 3, 'RGBA': 4, 'L': 1}[mode]
  pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
  Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)
  return str(path)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
  d = tmp_path_factory.mktemp('images')
  return {'content': _png(d / 'content.png', 'L'), 'style': _png(d / 'style.png', 'RGBA', seed=1),
          'text': str(d / 'notes.png'), 'truncated': str(d / 'truncated.png'), 'dir': str(d)}


@pytest.fixture(scope='module', autouse=True)
def _bad_files(images):
  pathlib.Path(images['text']).write_text('not an image\n')
  data = pathlib.Path(images['content']).read_bytes()
  pathlib.Path(images['truncated']).write_bytes(data[:len(data) // 2])


def test_end_to_end_tiny_run(images, tmp_path, monkeypatch):
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  workdir = tmp_path / 'run'
  result = cli('--config', 'configs/default.py', f'--config.content={images["content"]}',
               f'--config.style={images["style"]}', '--config.height=32', '--config.steps=4',
               '--config.log_every=2', '--config.save_every=2', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == str(workdir / 'final.png')
  assert sorted(os.listdir(workdir)) == ['.lock', 'checkpoint.npz', 'config.json', 'final.png',
                                         'loss_curve.png', 'metrics.jsonl', 'step_00002.png',
                                         'tensorboard']
  assert Image.open(workdir / 'loss_curve.png').size[0] > 100
  events = list((workdir / 'tensorboard').iterdir())
  assert len(events) == 1 and events[0].stat().st_size > 0
  assert Image.open(workdir / 'final.png').size == (40, 32)
  for name in ('final.png', 'step_00002.png'):  # the content states no profile or DPI
    assert image.metadata(workdir / name) == (None, None)
  config = json.loads((workdir / 'config.json').read_text())
  assert config['steps'] == 4 and config['loss']['content_layers'] == ['block4_conv2']
  lines = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [l['step'] for l in lines] == [0, 2, 4]
  for line in lines:
    assert {'step', 'loss', 'content_loss', 'style_loss', 'tv_loss', *STYLE_TERMS,
            'wall_s'} <= set(line)
  assert lines[-1]['loss'] < lines[0]['loss']
  shared = tmp_path / 'cache' / 'jaxstyle' / 'compilation_cache'
  assert any(shared.iterdir()), 'persistent compilation cache is empty'


def test_grad_norms_off_logs_the_same_terms_without_them(images, tmp_path):
  lines = {}
  for grad_norms in (True, False):
    config = default.get_config()
    config.update(dict(content=images['content'], style=images['style'], height=32, steps=3,
                       log_every=1, tensorboard=False, compilation_cache=False,
                       grad_norms=grad_norms))
    run.run(config, tmp_path / str(grad_norms))
    metrics = (tmp_path / str(grad_norms) / 'metrics.jsonl').read_text().splitlines()
    lines[grad_norms] = [json.loads(l) for l in metrics]
  assert [set(objective.GRAD_NORMS) <= set(l) for l in lines[True]] == [True] * 4
  assert [set(objective.GRAD_NORMS) & set(l) for l in lines[False]] == [set()] * 4
  for on, off in zip(lines[True], lines[False]):
    for term in objective.TERMS + STYLE_TERMS:
      assert off[term] == pytest.approx(on[term], rel=1e-5)


def test_scipy_lbfgsb_logs_each_call_with_the_evaluations_so_far_and_resumes(images, tmp_path):
  config = default.get_config()
  config.update(dict(content=images['content'], style=images['style'], height=32, steps=2,
                     log_every=1, tensorboard=False, compilation_cache=False,
                     optimizer='scipy_lbfgsb', grad_norms=True))
  config.optim.scipy_lbfgsb = dict(m=5, maxfun=3)
  run.run(config, tmp_path)
  config.steps = 3
  run.run(config, tmp_path)  # resumes from the checkpoint of step 2
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [l['step'] for l in lines] == [0, 1, 2, 3]
  evaluations = [l['evaluations'] for l in lines]
  assert evaluations[0] == 0 and all(b - a >= 4 for a, b in zip(evaluations, evaluations[1:]))
  assert set(objective.GRAD_NORMS) <= set(lines[-1])
  assert lines[-1]['loss'] < lines[0]['loss']


def test_the_aalborg_preset_runs_squashed_to_its_width(images, tmp_path):
  result = cli('--config', 'configs/seeds/aalborg.py', f'--config.content={images["content"]}',
               f'--config.style={images["style"]}', '--config.height=32', '--config.width=36',
               '--config.steps=1', '--config.optim.scipy_lbfgsb.maxfun=2',
               f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr
  assert Image.open(tmp_path / 'final.png').size == (36, 32)
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [l['content_loss'] for l in lines] == [0.0, 0.0] and lines[1]['evaluations'] >= 3


def test_remat_on_a_cpu_is_run_with_a_warning(images, tmp_path, caplog):
  config = default.get_config()
  config.update(dict(content=images['content'], style=images['style'], height=32, steps=1,
                     remat=True, tensorboard=False, compilation_cache=False))
  assert run.run(config, tmp_path / 'run').exists()
  warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  assert any(m.startswith('config.remat: XLA:CPU') for m in warnings), warnings


def test_several_styles_with_blend_weights_and_masks(images, tmp_path):
  left, right = np.zeros((32, 40), np.uint8), np.zeros((32, 40), np.uint8)
  left[:, :20], right[:, 20:] = 255, 255
  masks = []
  for name, mask in (('left.png', left), ('right.png', right)):
    Image.fromarray(mask, 'L').save(tmp_path / name)
    masks.append(str(tmp_path / name))
  result = cli('--config', 'configs/default.py', f'--config.content={images["content"]}',
               f'--config.styles={(images["style"], images["content"])!r}',
               '--config.style_blend_weights=(0.3, 0.7)', '--config.style_scale=(1.0, 0.5)',
               f'--config.style_masks={tuple(masks)!r}', '--config.height=32',
               '--config.steps=2', f'--workdir={tmp_path / "run"}')
  assert result.returncode == 0, result.stderr
  assert Image.open(tmp_path / 'run' / 'final.png').size == (40, 32)
  config = json.loads((tmp_path / 'run' / 'config.json').read_text())
  assert config['style_blend_weights'] == [0.3, 0.7] and config['style_masks'] == masks


def test_sixteen_bit_output_keeps_the_unrounded_result(images, tmp_path):
  result = cli('--config', 'configs/default.py', f'--config.content={images["content"]}',
               f'--config.style={images["style"]}', '--config.height=32', '--config.steps=2',
               '--config.output_bits=16', f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr
  with np.load(tmp_path / 'checkpoint.npz') as f:
    x = f['leaf_000']
  rgb = image.deprocess_float(x).astype(np.float64)  # the run's output, unrounded
  got = test_image.read_png16(tmp_path / 'final.png')
  np.testing.assert_array_equal(got, np.rint(rgb / 255 * 65535))
  assert np.mean(got % 257 != 0) > 0.9  # not an 8-bit image scaled


def test_print_output_is_a_16_bit_tiff_with_the_contents_profile_and_dpi(images, tmp_path):
  content = tmp_path / 'content.png'
  Image.open(images['content']).save(content, icc_profile=test_image.ICC, dpi=(300, 300))
  workdir = tmp_path / 'run'
  result = cli('--config', 'configs/default.py', f'--config.content={content}',
               f'--config.style={images["style"]}', '--config.height=32', '--config.steps=2',
               '--config.save_every=1', '--config.output_format=tif', '--config.output_bits=16',
               f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == str(workdir / 'final.tif')
  with np.load(workdir / 'checkpoint.npz') as f:
    rgb = image.deprocess_float(f['leaf_000']).astype(np.float64)
  np.testing.assert_array_equal(test_image.read_tiff16(workdir / 'final.tif'),
                                np.rint(rgb / 255 * 65535))
  for name in ('final.tif', 'step_00001.png'):
    profile, dpi = image.metadata(workdir / name)
    assert profile == test_image.ICC, name
    np.testing.assert_allclose(dpi, (300, 300), rtol=1e-4)


def test_default_inputs_run(tmp_path):
  result = cli('--config', 'configs/keras_example.py', '--config.height=32',
               '--config.steps=2', f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr
  assert Image.open(tmp_path / 'final.png').size[1] == 32


BAD = {
    'missing content': (['--config.content=/nonexistent/x.jpg'], 'x.jpg'),
    'directory as content': (['--config.content={dir}'], 'directory'),
    'not an image': (['--config.style={text}'], 'notes.png'),
    'missing init image': (['--config.init=/nonexistent/start.png'], 'config.init'),
    'init not an image': (['--config.init={text}'], 'notes.png'),
    'truncated image': (['--config.content={truncated}'], 'truncated.png'),
    'unknown layer': (['--config.loss.style_layers=("block1_conv1","conv9")'], 'conv9'),
    'negative weight': (['--config.loss.style_weight=-1'], 'style_weight'),
    'nan weight': (['--config.loss.content_weight=nan'], 'content_weight'),
    'zero height': (['--config.height=0'], 'height'),
    'absurd height': (['--config.height=1000000'], 'height'),
    'unknown optimizer': (['--config.optimizer=sgd'], 'optimizer'),
    'unknown field': (['--config.colour=1'], 'colour'),
    'too small for the layers': (['--config.height=8'], '16 px'),
    'layer weights length': (['--config.loss.style_layer_weights=(1.0,)'], 'style_layer_weights'),
    'style and styles': (['--config.styles=("{style}",)'], 'either style or styles'),
    'blend weights length': (['--config.style_blend_weights=(1.0, 2.0)'], 'style_blend_weights'),
    'missing mask': (['--config.style_masks=("/nonexistent/m.png",)'], 'style_masks'),
    'too many scales': (['--config.scales=3', '--config.scale_factor=2'], 'config.scales'),
    'bad output bits': (['--config.output_bits=12'], 'config.output_bits'),
    '16-bit jpeg': (['--config.output_bits=16', '--config.output_format=jpg'],
                    'config.output_format'),
    'unknown style loss': (['--config.loss.style_loss=gatys'], 'config.loss.style_loss'),
    'mrf with masks': (['--config.loss.style_loss=mrf', '--config.style_masks=("{content}",)'],
                       'config.style_masks: style_loss'),
    'averaging without adam': (['--config.optim.avg_decay=0.9'], 'config.optim.avg_decay'),
    'tile off the stride': (['--config.tile=40'], 'config.tile: 40 px is not a multiple of 16 px'),
    'tile with a sort': (['--config.tile=32', '--config.loss.style_loss=sliced'],
                         "config.tile: style_loss 'sliced' sorts"),
}


@pytest.mark.parametrize('case', sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case, images, tmp_path):
  overrides, expected = BAD[case]
  workdir = tmp_path / 'run'
  result = cli('--config', 'configs/default.py', f'--config.content={images["content"]}',
               f'--config.style={images["style"]}', '--config.height=32',
               *[o.format(**images) for o in overrides], f'--workdir={workdir}')
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith('jaxstyle: error:') and expected in lines[0], lines[0]
  assert not workdir.exists()


@pytest.mark.parametrize('args, expected', [
    (['--config', 'configs/nope.py', '--workdir={w}'], 'nope.py'),
    (['--config', 'configs/default.py'], '--workdir'),
    (['--workdir={w}'], '--config'),
    (['--config', 'configs/default.py', '--workdir={w}', 'extra'], 'extra'),
])
def test_bad_command_line(args, expected, tmp_path):
  result = cli(*[a.format(w=tmp_path / 'run') for a in args])
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and expected in lines[0], result.stderr
  assert os.listdir(tmp_path) == []


def test_config_file_errors_are_one_line(tmp_path):
  for name, text, expected in [('syntax.py', 'def get_config(:\n', 'line 1'),
                               ('raises.py', 'def get_config():\n  raise ValueError("boom")\n',
                                'ValueError: boom')]:
    (tmp_path / name).write_text(text)
    result = cli('--config', str(tmp_path / name), f'--workdir={tmp_path / "run"}')
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
  assert not (tmp_path / 'run').exists()


def test_bad_input_keeps_earlier_outputs(images, tmp_path):
  (tmp_path / 'final.png').write_bytes(b'earlier result')
  result = cli('--config', 'configs/default.py', '--config.content=/nonexistent.png',
               f'--workdir={tmp_path}')
  assert result.returncode == 2
  assert (tmp_path / 'final.png').read_bytes() == b'earlier result'
  assert os.listdir(tmp_path) == ['final.png']


def test_workdir_that_is_a_file(images, tmp_path):
  target = tmp_path / 'file'
  target.write_text('x')
  result = cli('--config', 'configs/default.py', f'--workdir={target}')
  assert result.returncode == 2 and 'not a directory' in result.stderr


@pytest.mark.parametrize('overrides, expected', [
    (['--config.loss.style_weight=1e38'], 'not finite; no checkpoint was written'),
    (['--config.init=noise', '--config.loss.tv_weight=3e38'], 'not finite'),
])
def test_numerical_failure_exits_4(overrides, expected,
                                                                      images, tmp_path):
  result = cli('--config', 'configs/default.py', f'--config.content={images["content"]}',
               f'--config.style={images["style"]}', '--config.height=32', '--config.steps=5',
               '--config.log_every=1', *overrides, f'--workdir={tmp_path}')
  assert result.returncode == 4, result.stderr
  line = result.stderr.strip().splitlines()[-1]
  assert line.startswith('jaxstyle: error: step 0: ') and expected in line, line
  bad = line.split(': ')[3].split(' not finite')[0].split(', ')
  assert 'loss' in bad, line
  assert not (tmp_path / 'final.png').exists()


def test_a_run_stops_when_the_loss_stops_falling(images, tmp_path):
  """optim.tol: the loss falls by less than 90 % over 2 steps long before step
  40; the run ends there, says so in metrics.jsonl and writes its outputs."""
  workdir = tmp_path / 'run'
  result = cli('--config', 'configs/default.py', f'--config.content={images["content"]}',
               f'--config.style={images["style"]}', '--config.height=32', '--config.steps=40',
               '--config.log_every=0', '--config.optim.tol=0.9', '--config.optim.tol_window=2',
               '--config.tensorboard=False', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr
  lines = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  last = lines[-1]
  assert last.get('converged') is True and last['step'] < 40
  assert 'converged at step' in result.stderr
  previous = {l['step']: l['loss'] for l in lines}
  assert (workdir / 'final.png').exists() and (workdir / 'checkpoint.npz').exists()
  assert last['step'] % 2 == 0 and last['loss'] <= previous.get(last['step'] - 2, np.inf)


def test_adam_with_iterate_averaging_saves_the_average(images, tmp_path):
  args = ('--config', 'configs/default.py', f'--config.content={images["content"]}',
          f'--config.style={images["style"]}', '--config.height=32', '--config.steps=3',
          '--config.optimizer=adam', '--config.tensorboard=False')
  plain, averaged = tmp_path / 'plain', tmp_path / 'averaged'
  for workdir, extra in ((plain, ()), (averaged, ('--config.optim.avg_decay=0.5',))):
    result = cli(*args, *extra, f'--workdir={workdir}')
    assert result.returncode == 0, result.stderr
  # Same iterates (the average does not feed back), another saved image.
  same = lambda name: [json.loads(l)['loss'] for l in (name / 'metrics.jsonl').read_text()
                       .splitlines()]
  assert same(plain) == same(averaged)
  assert (plain / 'final.png').read_bytes() != (averaged / 'final.png').read_bytes()
