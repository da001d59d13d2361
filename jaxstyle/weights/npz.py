"""The converted weights file: a plain .npz, written, checked and read here.

It holds `{layer}/kernel` (3, 3, in, out) HWIO float32 and `{layer}/bias`
(out,) float32 for the 16 conv layers in `LAYERS`, plus a `meta` JSON string
(format version, source and its digest, BGR channel order, Caffe
preprocessing and means, HWIO layout). `_write_npz` checks converted params
and writes them atomically; `_check_file` is the cheap check that reads only
meta and the array headers (`ensure` and the CLI run it); `load` reads and
fully checks a file; the error for a missing or bad file names the command
that makes it again (`_make_command`).
"""

import json
import os
import pathlib
import secrets
import shlex
import zipfile
from typing import Any

import numpy as np

from jaxstyle import files
from jaxstyle.weights import (CLI, FORMAT_VERSION, KERAS_URL, LAYERS,
                              PREPROCESSING, Params, PathLike, WeightsError,
                              _keras_default_path, _one_line, _same_file,
                              default_path)


def _make_command(path: pathlib.Path) -> str:
  """The CLI command that (re)creates the weights file at `path`."""
  if _same_file(path, default_path()):
    return CLI
  if _same_file(path, _keras_default_path()):
    return f'{CLI} --keras_h5={KERAS_URL}'
  return f'{CLI} --out={shlex.quote(str(path))}'


def _expected_shapes() -> dict[str, tuple[int, ...]]:
  """'{layer}/kernel' and '{layer}/bias' -> shape, for all of `LAYERS`."""
  shapes: dict[str, tuple[int, ...]] = {}
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
  # Imported here: jaxstyle.image imports jax (about 2 s), and the CLI loads
  # this module also when it only checks an existing file.
  from jaxstyle.image import BGR_MEANS  # pylint: disable=g-import-not-at-top
  return {
      'format_version': FORMAT_VERSION,
      'source': source,
      'source_sha256': sha256,
      'channel_order': 'BGR',
      'preprocessing': PREPROCESSING,
      'bgr_mean': list(BGR_MEANS),
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
      params: Params = {}
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
