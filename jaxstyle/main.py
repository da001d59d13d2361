"""Command line: stylise one image.

python -m jaxstyle.main --config configs/default.py \
    --config.content=PATH --config.style=PATH --workdir=DIR

Writes to DIR: config.json, metrics.jsonl, step_NNNNN.png every save_every
steps and final.png. Bad input: one line on stderr, exit status 2, and nothing
written.
"""
from collections.abc import Callable, Iterator
import contextlib
import functools
import logging as std_logging
import os
import pathlib
import signal
import sys
import tempfile
import threading

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np

from jaxstyle import checkpoint, color, files, image, memory, objective, optimize, outputs, samples, validation, vgg
from jaxstyle import workdir as workdir_lib
from jaxstyle.errors import InputError, NumericalError, ResourceError

FLAGS = flags.FLAGS
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Run config file (configs/*.py); override fields with --config.FIELD=VALUE.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for the outputs.')
_START_OVER = flags.DEFINE_bool(
    'start_over', False, "Discard the workdir's checkpoint instead of resuming from it.")

# Exit statuses, as in the README.
EXIT_BAD_INPUT = 2
EXIT_RESOURCES = 3
EXIT_NUMERICAL = 4
EXIT_INTERRUPTED = 130


def load_inputs(config: ml_collections.ConfigDict, scratch: pathlib.Path):
  """Content and style as HWC RGB 0..255 at the configured height; with
  `color_transfer`, the style has the content's colour mean and covariance."""
  content = image.load(config.content or samples.content(), height=config.height)
  style = image.load(config.style or samples.style(scratch / 'style.png'), height=config.height)
  if config.color_transfer:
    style = color.match_colors(style, content)
  return content, style


def output_rgb(config: ml_collections.ConfigDict, x: jax.Array,
               content_rgb: np.ndarray) -> np.ndarray:
  """The image to save: network-space x (1, H, W, 3) as float32 (H, W, 3) RGB
  0..255; with `original_colors`, in the chroma of content_rgb (same size)."""
  rgb = image.deprocess(x).astype(np.float32)
  if config.original_colors:
    rgb = color.transfer_luminance(rgb, content_rgb)
  return rgb


def report(x: jax.Array, params: objective.Params, spec: objective.Spec) -> dict[str, jax.Array]:
  """What the host reads at a stop: the loss terms, and max |x| to catch a
  non-finite image before it reaches the loss."""
  return {**objective.terms(x, params, spec), 'image': jnp.max(jnp.abs(x))}


def _compilation_cache(path: pathlib.Path) -> None:
  """JAX's persistent compilation cache: a second run of the same shapes skips
  compiling. Every entry is kept, however quick its compile (CPU compiles are)."""
  jax.config.update('jax_compilation_cache_dir', str(path))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[Callable[[], bool]]:
  """Within: Ctrl-C only raises a flag, which the loop polls between steps."""
  event = threading.Event()
  previous = signal.signal(signal.SIGINT, lambda *_: event.set())
  try:
    yield event.is_set
  finally:
    signal.signal(signal.SIGINT, previous)


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
        start_over: bool = False) -> pathlib.Path | None:
  """The whole job. Checks everything before writing; resumes from the
  workdir's checkpoint unless `start_over`. Returns the final image's path, or
  None if Ctrl-C stopped the solve (after writing a checkpoint)."""
  validation.validate(config)
  out = workdir_lib.check(workdir)
  with tempfile.TemporaryDirectory() as scratch:
    content, style = load_inputs(config, pathlib.Path(scratch))
  optim = dict(config.optim[config.optimizer])
  spec = objective.spec_from(config)
  memory.preflight(spec.layers, *content.shape[:2], history_size=optim.get('history_size', 0),
                   pooling=spec.pooling, content_layers=spec.content_layers)
  if config.compilation_cache:
    _compilation_cache(out.absolute().parent / '.jax_cache')
  variables = vgg.load_variables(config.weights)
  obj = objective.build(config, content, style, variables)
  solver = optimize.make(config.optimizer,
                         functools.partial(objective.scalar, spec=obj.spec), optim)
  x0 = obj.initial(config.init, config.seed, config.init_noise)
  digest = checkpoint.config_hash(config)
  saved = out / checkpoint.FILENAME

  with workdir_lib.lock(out), _deferred_sigint() as interrupted:
    resumed = None
    if saved.exists() and not start_over:
      resumed = checkpoint.restore(saved, (x0, optimize.state_shape(solver, x0, obj.params)),
                                   digest)
      logging.info('resuming from %s at step %d', saved, resumed.step)
    files.write_text(out / 'config.json', config.to_json_best_effort(indent=2) + '\n')
    recorder = outputs.Recorder(out, config, digest, resumed)
    try:
      progress = optimize.minimize(
          solver, functools.partial(report, spec=obj.spec), x0, obj.params,
          optimize.stops(config.steps, (config.log_every, config.save_every,
                                        config.checkpoint_every)),
          recorder,
          start=None if resumed is None else optimize.Progress(*resumed[:3]),
          interrupted=interrupted)
      if progress.step < config.steps:
        recorder.save_checkpoint(progress)
        return None
    finally:
      recorder.close()
    final = out / 'final.png'
    image.save(final, output_rgb(config, progress.x, content))
  return final


def _fail(message: str, status: int = EXIT_BAD_INPUT) -> None:
  print(f'jaxstyle: error: {message}', file=sys.stderr)
  sys.exit(status)


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return FLAGS(argv)
  except flags.Error as e:
    why = e.__cause__ or e.__context__
    cause = f' {str(why).strip().splitlines()[-1]}' if why else ''
    _fail(' '.join((str(e).splitlines()[0] + cause).split()))
  except (AttributeError, KeyError) as e:  # ml_collections: no such field
    _fail(f'unknown config field {str(e).strip(chr(34) + chr(39))!r}')
  except SyntaxError as e:
    _fail(f'--config: {e.filename} line {e.lineno}: {e.msg}')


def _config() -> ml_collections.ConfigDict:
  """The parsed --config; ml_collections defers a file's load error to first use."""
  if _CONFIG.value is None:
    _fail('--config is required, e.g. --config configs/default.py')
  try:
    _CONFIG.value.keys()
  except OSError as e:
    _fail(f'--config: {str(e).strip().splitlines()[-1].strip()}')
  return _CONFIG.value


def main(argv: list[str]) -> None:
  # jax logs at INFO that it found no TPU: noise on every other machine.
  std_logging.getLogger('jax._src.xla_bridge').setLevel(std_logging.WARNING)
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  config = _config()
  try:
    final = run(config, _WORKDIR.value, _START_OVER.value)
  except InputError as e:
    _fail(str(e))
  except ResourceError as e:
    _fail(str(e), EXIT_RESOURCES)
  except NumericalError as e:
    _fail(str(e), EXIT_NUMERICAL)
  except KeyboardInterrupt:
    _fail('interrupted', EXIT_INTERRUPTED)
  if final is None:
    _fail('interrupted; checkpoint written, run the same command to resume',
          EXIT_INTERRUPTED)
  print(final)


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
