"""What the command lines (jaxstyle.main, jaxstyle.sweep) share: the --config
and --workdir flags, and one-line errors with the documented exit statuses."""
from collections.abc import Callable
import logging as std_logging
import os
import shlex
import sys
from typing import Any, NoReturn

from absl import flags
import ml_collections
from ml_collections import config_flags
import threadpoolctl

from jaxstyle.errors import InputError, NumericalError, ResourceError

FLAGS = flags.FLAGS
CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Run config file (configs/*.py); override fields with --config.FIELD=VALUE.',
    lock_config=True)
WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for the outputs.')

# Exit statuses (docs/guide.md).
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


def one_blas_thread() -> None:
  """BLAS libraries (numpy's, and SciPy's OpenBLAS, which jaxlib's LAPACK
  calls for w2's eigendecompositions) on one thread: XLA already runs on
  every core, and OpenBLAS's threads spinning beside its threads made an
  eigendecomposition 10-100x slower on a 2-core CPU. SciPy's loads only when
  jaxlib's LAPACK or jaxopt first needs it: OpenBLAS reads the environment then."""
  os.environ['OPENBLAS_NUM_THREADS'] = '1'
  threadpoolctl.threadpool_limits(1, user_api='blas')


def config(argv: list[str]) -> ml_collections.ConfigDict:
  """The parsed --config, after checking that no stray arguments came with it.

  ml_collections defers a config file's load error to first use: it is
  forced here, so it is one line too."""
  # jax logs at INFO that it found no TPU: noise on every other machine.
  std_logging.getLogger('jax._src.xla_bridge').setLevel(std_logging.WARNING)
  one_blas_thread()
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
