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
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections

from jaxstyle import checkpoint, cli, files, image, many, memory, multiscale, objective, optimize
from jaxstyle import outputs, spatial, validation
from jaxstyle import workdir as workdir_lib

_START_OVER = flags.DEFINE_bool(
    'start_over', False, "Discard the workdir's checkpoint instead of resuming from it.")

def report(x: jax.Array, terms: dict[str, jax.Array], params: objective.Params,
           spec: objective.Spec, grad_norms: bool = True) -> dict[str, jax.Array]:
  """What the host reads at a stop: the loss terms, each weighted term's
  gradient norm if `grad_norms`, and max |x| to catch a non-finite image
  before it reaches the loss."""
  return {**objective.metrics(spec, grad_norms)(x, terms, params),
          'image': jnp.max(jnp.abs(x))}


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[Callable[[], bool]]:
  """Within: Ctrl-C only raises a flag, which the loop polls between steps."""
  event = threading.Event()
  previous = signal.signal(signal.SIGINT, lambda *_: event.set())
  try:
    yield event.is_set
  finally:
    signal.signal(signal.SIGINT, previous)


def _at_height(config: ml_collections.ConfigDict, height: int) -> ml_collections.ConfigDict:
  """A copy of `config` with `height` set: what one scale loads."""
  scaled = config.copy_and_resolve_references()
  scaled.height = height
  return scaled


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
        start_over: bool = False) -> pathlib.Path | None:
  """The whole job. Checks everything before writing; resumes from the
  workdir's checkpoint unless `start_over`. Returns the final image's path (with
  contents or frames, the folder of the outputs: many.run), or None if Ctrl-C
  stopped the solve (after writing a checkpoint)."""
  validation.validate(config)
  if config.remat and jax.default_backend() == 'cpu':
    logging.warning('config.remat: XLA:CPU merges the recomputation back into the forward '
                    'pass, so on a CPU remat saves no memory and costs time (README, Notes on '
                    'faithfulness)')
  if config.contents is not None or config.frames is not None:
    return many.run(config, workdir, start_over)
  out = workdir_lib.check(workdir)
  spec = objective.spec_from(config)
  heights = multiscale.heights(config.height, config.scales, config.scale_factor,
                               objective.min_side(spec.layers))
  width_multiple = jax.device_count() if config.shard_spatial else 1
  with tempfile.TemporaryDirectory() as scratch:
    inputs = [cli.load_inputs(_at_height(config, h), pathlib.Path(scratch), width_multiple)
              for h in heights]
  content = inputs[-1][0]
  height, width = content.shape[:2]
  optim = dict(config.optim[config.optimizer])
  memory.preflight(spec.layers, height,
                   spatial.memory_width(width) if config.shard_spatial else width,
                   history_size=optim.get('history_size', 0),
                   pooling=spec.pooling, content_layers=spec.content_layers,
                   masked_styles=len(config.style_masks or ()), winograd=spec.winograd,
                   precision=spec.precision)
  if config.compilation_cache:
    cli.compilation_cache(out.absolute().parent / '.jax_cache')
  variables = objective.load_variables(config)
  objectives = [objective.build(config, c, s, variables) for c, s in inputs]
  solver = optimize.make(config.optimizer, functools.partial(objective.loss_and_terms, spec=spec),
                         optim)
  x0 = objectives[0].initial(config.init, config.seed, config.init_noise)
  ends = multiscale.ends(config.steps, config.scale_steps, config.scales)
  periods = (config.log_every, config.save_every, config.checkpoint_every)
  digest = checkpoint.config_hash(config)
  saved = out / checkpoint.FILENAME

  def like(scale: int) -> tuple[jax.Array, Any]:
    x = objectives[scale].content
    return x, optimize.state_shape(solver, x, objectives[scale].params)

  with workdir_lib.lock(out), _deferred_sigint() as interrupted:
    resumed = None
    if saved.exists() and not start_over:
      resumed = checkpoint.restore(saved, like, digest)
      logging.info('resuming from %s at step %d', saved, resumed.step)
    files.write_text(out / 'config.json', config.to_json_best_effort(indent=2) + '\n')
    recorder = outputs.Recorder(out, config, digest, resumed, steps=ends[-1])
    try:
      progress = None
      for k in range(resumed.scale if resumed else 0, len(objectives)):
        obj = objectives[k]
        place = (functools.partial(spatial.shard, image_shape=obj.content.shape)
                 if config.shard_spatial else lambda tree: tree)
        if resumed and k == resumed.scale:
          x, state = place((resumed.x, resumed.state))
          start = optimize.Progress(resumed.step - ends[k], x, state)
        else:
          x = place(x0 if progress is None else
                    multiscale.resize(progress.x, *obj.content.shape[1:3]))
          start = None
        recorder.begin_scale(k, ends[k], ends[k + 1])
        progress = optimize.minimize(
            solver, functools.partial(report, spec=spec, grad_norms=config.grad_norms),
            x, place(obj.params),
            multiscale.stops(ends[k], ends[k + 1], periods), recorder, start=start,
            interrupted=interrupted)
        if progress.step < ends[k + 1] - ends[k]:
          recorder.save_checkpoint(progress)
          return None
    finally:
      recorder.close()
    final = out / 'final.png'
    image.save(final, cli.output_rgb(config, progress.x, content), bits=config.output_bits)
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
