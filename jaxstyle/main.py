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
import os
import pathlib
import signal
import tempfile
import threading

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections

from jaxstyle import checkpoint, cli, files, image, memory, objective, optimize, outputs, validation, vgg
from jaxstyle import workdir as workdir_lib

_START_OVER = flags.DEFINE_bool(
    'start_over', False, "Discard the workdir's checkpoint instead of resuming from it.")

def report(x: jax.Array, params: objective.Params, spec: objective.Spec) -> dict[str, jax.Array]:
  """What the host reads at a stop: the loss terms, and max |x| to catch a
  non-finite image before it reaches the loss."""
  return {**objective.terms(x, params, spec), 'image': jnp.max(jnp.abs(x))}


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
    content, style = cli.load_inputs(config, pathlib.Path(scratch))
  optim = dict(config.optim[config.optimizer])
  spec = objective.spec_from(config)
  memory.preflight(spec.layers, *content.shape[:2], history_size=optim.get('history_size', 0),
                   pooling=spec.pooling, content_layers=spec.content_layers,
                   masked_styles=len(config.style_masks or ()))
  if config.compilation_cache:
    cli.compilation_cache(out.absolute().parent / '.jax_cache')
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
    image.save(final, cli.output_rgb(config, progress.x, content))
  return final


def main(argv: list[str]) -> None:
  config = cli.config(argv)
  final = cli.guarded(lambda: run(config, cli.WORKDIR.value, _START_OVER.value))
  if final is None:
    cli.fail('interrupted; checkpoint written, run the same command to resume',
             cli.EXIT_INTERRUPTED)
  print(final)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
