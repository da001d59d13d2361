"""Tests for jaxstyle.weights.torch_pickle: the restricted legacy torch.save
reader, fed files from the torch-free writer in fake_weights."""

import os
import pickle

import numpy as np
import pytest

from fake_weights import (CLI, STORAGE_NAMES, Call, Global, Storage,
                          assert_clean_error, contiguous, legacy_bytes, tensor)
from jaxstyle import weights


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


def test_reads_ordered_dict_state():
  ordered = Call(Global('collections', 'OrderedDict'), ([
      ('b', contiguous('k1', np.float32([1, 2]))),
      ('a', contiguous('k2', np.int64([3]))),
  ],))
  got = weights.read_legacy_torch(legacy_bytes(ordered))
  assert list(got) == ['b', 'a']
  np.testing.assert_array_equal(got['a'], [3])


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
