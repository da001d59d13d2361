"""What the command lines (jaxstyle.main, jaxstyle.sweep) share: the --config
and --workdir flags, one-line errors with the README's exit statuses, the
compilation cache, and the pictures a run reads and writes."""
from collections.abc import Callable
import logging as std_logging
import pathlib
import shlex
import sys
from typing import Any, NoReturn

from absl import flags
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np

from jaxstyle import color, image, samples
from jaxstyle.errors import InputError, NumericalError, ResourceError

FLAGS = flags.FLAGS
CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Run config file (configs/*.py); override fields with --config.FIELD=VALUE.',
    lock_config=True)
WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for the outputs.')

# Exit statuses, as in the README.
EXIT_BAD_INPUT = 2
EXIT_RESOURCES = 3
EXIT_NUMERICAL = 4
EXIT_INTERRUPTED = 130


def fail(message: str, status: int = EXIT_BAD_INPUT) -> NoReturn:
  print(f'jaxstyle: error: {message}', file=sys.stderr)
  sys.exit(status)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with every error as one line and exit status 2."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    why = e.__cause__ or e.__context__
    cause = f' {str(why).strip().splitlines()[-1]}' if why else ''
    fail(' '.join((str(e).splitlines()[0] + cause).split()))
  except (AttributeError, KeyError) as e:  # ml_collections: no such field
    fail(f'unknown config field {str(e).strip(chr(34) + chr(39))!r}')
  except SyntaxError as e:
    fail(f'--config: {e.filename} line {e.lineno}: {e.msg}')


def config(argv: list[str]) -> ml_collections.ConfigDict:
  """The parsed --config, after checking that no stray arguments came with it.

  ml_collections defers a config file's load error to first use: it is
  forced here, so it is one line too."""
  # jax logs at INFO that it found no TPU: noise on every other machine.
  std_logging.getLogger('jax._src.xla_bridge').setLevel(std_logging.WARNING)
  if len(argv) > 1:
    fail(f'unexpected arguments: {" ".join(argv[1:])}')
  if CONFIG.value is None:
    fail('--config is required, e.g. --config configs/default.py')
  try:
    CONFIG.value.keys()
  except OSError as e:
    fail(f'--config: {str(e).strip().splitlines()[-1].strip()}')
  return CONFIG.value


def config_args() -> str:
  """--config and its overrides as given, for a command line to rerun."""
  overrides = config_flags.get_override_values(FLAGS['config'])
  args = [f'--config.{field}={v if isinstance(v, str) else repr(v)}'
          for field, v in overrides.items()]
  return ' '.join(shlex.quote(a) for a in
                  ['--config', config_flags.get_config_filename(FLAGS['config']), *args])


def guarded(job: Callable[[], Any]) -> Any:
  """job(), with the package's errors as one line and their exit status."""
  try:
    return job()
  except InputError as e:
    fail(str(e))
  except ResourceError as e:
    fail(str(e), EXIT_RESOURCES)
  except NumericalError as e:
    fail(str(e), EXIT_NUMERICAL)
  except KeyboardInterrupt:
    fail('interrupted', EXIT_INTERRUPTED)


def compilation_cache(path: pathlib.Path) -> None:
  """JAX's persistent compilation cache: a second run of the same shapes skips
  compiling. Every entry is kept, however quick its compile (CPU compiles are)."""
  jax.config.update('jax_compilation_cache_dir', str(path))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def load_inputs(config: ml_collections.ConfigDict, scratch: pathlib.Path,
                width_multiple: int = 1) -> tuple[np.ndarray, np.ndarray | list[np.ndarray]]:
  """Content and style as HWC RGB 0..255, the content at the configured height
  (its width rounded to a multiple of `width_multiple`) and each style at
  `style_scale` times it; with `styles`, the style is a list, one array per
  image. With `color_transfer`, every style has the content's colour mean and
  covariance."""
  path = config.content or samples.content()
  content = image.load(path, height=config.height)
  width = width_multiple * max(1, round(content.shape[1] / width_multiple))
  if width != content.shape[1]:
    content = image.load(path, height=config.height, width=width)
  paths = config.styles or (config.style or samples.style(scratch / 'style.png'),)
  scales = config.style_scale
  if not isinstance(scales, (tuple, list)):
    scales = (scales,) * len(paths)
  styles = [image.load(p, height=round(s * config.height)) for p, s in zip(paths, scales)]
  if config.color_transfer:
    styles = [color.match_colors(s, content) for s in styles]
  return content, styles if config.styles else styles[0]


def output_rgb(config: ml_collections.ConfigDict, x: jax.Array,
               content_rgb: np.ndarray) -> np.ndarray:
  """The image to save: network-space x (1, H, W, 3) as float32 (H, W, 3) RGB
  0..255, unrounded; with `original_colors`, in the chroma of content_rgb (same size)."""
  rgb = image.deprocess_float(x)
  if config.original_colors:
    rgb = color.transfer_luminance(rgb, content_rgb)
  return rgb
