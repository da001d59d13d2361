"""Command line: stylise one image.

python -m jaxstyle.main --config configs/default.py \
    --config.content=PATH --config.style=PATH --workdir=DIR

Writes to DIR: config.json, metrics.jsonl, step_NNNNN.png every save_every
steps and final.png. Bad input: one line on stderr, exit status 2, and nothing
written.
"""
import functools
import json
import logging as std_logging
import os
import pathlib
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags
import tqdm

from jaxstyle import files, image, objective, optimize, samples, validation, vgg
from jaxstyle.errors import InputError

FLAGS = flags.FLAGS
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Run config file (configs/*.py); override fields with --config.FIELD=VALUE.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for the outputs.')

EXIT_BAD_INPUT = 2


def load_inputs(config: ml_collections.ConfigDict, scratch: pathlib.Path):
  """Content and style as HWC RGB 0..255 at the configured height."""
  content = config.content or samples.content()
  style = config.style or samples.style(scratch / 'style.png')
  return (image.load(content, height=config.height),
          image.load(style, height=config.height))


def _workdir(path: str | os.PathLike | None) -> pathlib.Path:
  if not path:
    raise InputError('--workdir is required: the directory for the outputs')
  workdir = pathlib.Path(path)
  for parent in (workdir, *workdir.parents):
    if parent.exists():
      if not parent.is_dir():
        raise InputError(f'--workdir {path}: {parent} exists and is not a directory')
      if not os.access(parent, os.W_OK):
        raise InputError(f'--workdir {path}: {parent} is not writable')
      break
  return workdir


class Recorder:
  """Host side of the loop: metrics lines, progress and intermediate images."""

  def __init__(self, workdir: pathlib.Path, config: ml_collections.ConfigDict):
    self.workdir, self.steps = workdir, config.steps
    self.log_every, self.save_every = config.log_every, config.save_every
    self.metrics = open(workdir / 'metrics.jsonl', 'w')
    self.bar = tqdm.tqdm(total=self.steps, unit='it', disable=not sys.stderr.isatty())
    self.start = time.perf_counter()

  def __call__(self, step: int, x: jax.Array, terms: dict[str, jax.Array]) -> None:
    values = {k: float(v) for k, v in jax.device_get(terms).items()}
    wall = time.perf_counter() - self.start
    if step in (0, self.steps) or (self.log_every and step % self.log_every == 0):
      self.metrics.write(json.dumps({'step': step, **values, 'wall_s': round(wall, 4)}) + '\n')
      self.metrics.flush()
      self.bar.update(step - self.bar.n)
      self.bar.set_postfix(loss=f'{values["loss"]:.4g}')
      if self.bar.disable:
        logging.info('step %d/%d loss %.4g (content %.4g, style %.4g, tv %.4g) %.1f s',
                     step, self.steps, values['loss'], values['content_loss'],
                     values['style_loss'], values['tv_loss'], wall)
    if self.save_every and 0 < step < self.steps and step % self.save_every == 0:
      image.save(self.workdir / f'step_{step:05d}.png', image.deprocess(x))

  def close(self) -> None:
    self.metrics.close()
    self.bar.close()


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> pathlib.Path:
  """The whole job; returns the final image's path. Checks everything before writing."""
  validation.validate(config)
  out = _workdir(workdir)
  with tempfile.TemporaryDirectory() as scratch:
    content, style = load_inputs(config, pathlib.Path(scratch))
  variables = vgg.load_variables(config.weights)
  obj = objective.build(config, content, style, variables)

  out.mkdir(parents=True, exist_ok=True)
  files.write_text(out / 'config.json', config.to_json_best_effort(indent=2) + '\n')
  solver = optimize.make(config.optimizer,
                         functools.partial(objective.scalar, spec=obj.spec),
                         dict(config.optim[config.optimizer]))
  recorder = Recorder(out, config)
  try:
    x = optimize.minimize(
        solver, functools.partial(objective.terms, spec=obj.spec),
        obj.initial(config.init, config.seed), obj.params,
        optimize.stops(config.steps, (config.log_every, config.save_every)), recorder)
  finally:
    recorder.close()
  final = out / 'final.png'
  image.save(final, image.deprocess(x))
  return final


def _fail(message: str) -> None:
  print(f'jaxstyle: error: {message}', file=sys.stderr)
  sys.exit(EXIT_BAD_INPUT)


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
    final = run(config, _WORKDIR.value)
  except InputError as e:
    _fail(str(e))
  print(final)


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
