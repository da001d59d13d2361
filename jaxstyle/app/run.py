"""One run of the command line: checks the config, loads the inputs, checks
the memory, solves scale by scale with checkpoints, and writes the outputs.

Writes to the workdir: config.json, metrics.jsonl, step_NNNNN.png every
save_every steps, checkpoint.npz and final.<output_format>, the pictures with
the content image's ICC profile and DPI.
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

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections

from jaxstyle import image, optimize, spatial, start, vgg
from jaxstyle.app import cache
from jaxstyle.app import checkpoint, contents, inputs, memory, multiscale, outputs, validation
from jaxstyle.app import config as config_lib
from jaxstyle.app import workdir as workdir_lib


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
  """A copy of `config` with `height` set, and `width` scaled with it: what one scale loads."""
  scaled = config.copy_and_resolve_references()
  scaled.height = height
  if config.width is not None:
    scaled.width = max(1, round(config.width * height / config.height))
  return scaled


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
        start_over: bool = False) -> pathlib.Path | None:
  """The whole job. Checks everything before writing; resumes from the
  workdir's checkpoint unless `start_over`. Returns the final image's path (with
  contents or frames, the folder of the outputs: app.contents.run), or None if
  Ctrl-C stopped the solve (after writing a checkpoint)."""
  validation.validate(config)
  if config.remat and jax.default_backend() == 'cpu':
    logging.warning('config.remat: XLA:CPU merges the recomputation back into the forward '
                    'pass, so on a CPU remat saves no memory and costs time '
                    '(docs/faithfulness.md)')
  if config.contents is not None or config.frames is not None:
    return contents.run(config, workdir, start_over)
  out = workdir_lib.check(workdir)
  spec = config_lib.spec(config)
  heights = multiscale.heights(config.height, config.scales, config.scale_factor,
                               spec.min_side)
  width_multiple = jax.device_count() if config.shard_spatial else 1
  with tempfile.TemporaryDirectory() as scratch:
    loaded = [inputs.load_inputs(_at_height(config, h), pathlib.Path(scratch), width_multiple)
              for h in heights]
  content = loaded[-1][0]
  metadata = image.metadata(inputs.content_path(config))
  height, width = content.shape[:2]
  tiles = [config_lib.tile(config, *c.shape[:2]) for c, _ in loaded]  # each scale its own
  memory.preflight(spec.layers, height,
                   spatial.memory_width(width) if config.shard_spatial else width,
                   history_size=config_lib.history_size(config),
                   masked_styles=len(config.style_masks or ()), tile=tiles[-1],
                   **{**memory.of_spec(spec),
                      'tile_remat': config_lib.tile_remat(config, height, width, tiles[-1])})
  cache.enable(config)
  variables = vgg.load_variables(config.get('weights'))
  objectives = []
  for (c, s), tile in zip(loaded, tiles):
    objectives.append(config_lib.make_objective(config, c, s, variables, tile))
    variables = objectives[-1].variables  # prepared once, for every scale
  method, settings = config_lib.optimizer(config)
  solver = optimize.make(method, **settings)
  first_content, first_style = loaded[0]
  first_style = first_style[0] if isinstance(first_style, list) else first_style
  x0 = start.initial(config.init, image.preprocess(first_content),
                     image.preprocess(first_style), config.seed, config.init_noise)
  ends = multiscale.ends(config.steps, config.scale_steps, config.scales)
  periods = (config.log_every, config.save_every, config.checkpoint_every,
             config.optim.tol_window if config.optim.tol else 0)
  digest = checkpoint.config_hash(config)
  saved = out / checkpoint.FILENAME
  shapes = [image.preprocess(c).shape for c, _ in loaded]

  def like(scale: int) -> tuple[jax.Array, Any]:
    x = jax.ShapeDtypeStruct(shapes[scale], jnp.float32)
    return x, optimize.state_shape(solver, x, objectives[scale])

  with workdir_lib.lock(out), _deferred_sigint() as interrupted:
    resumed = None
    if saved.exists() and not start_over:
      resumed = checkpoint.restore(saved, like, digest)
      logging.info('resuming from %s at step %d', saved, resumed.step)
    workdir_lib.write_config(out, config)
    recorder = outputs.Recorder(out, config, digest, resumed, steps=ends[-1],
                                shown=lambda p: solver.output(p.x, p.state), metadata=metadata)
    try:
      progress = None
      for k in range(resumed.scale if resumed else 0, len(objectives)):
        obj = objectives[k]
        place = (functools.partial(spatial.shard, image_shape=shapes[k])
                 if config.shard_spatial else lambda tree: tree)
        if resumed and k == resumed.scale:
          x, state = place((resumed.x, resumed.state))
          begin = optimize.Progress(resumed.step - ends[k], x, state)
        else:
          x = place(x0 if progress is None else multiscale.resize(progress.x, *shapes[k][1:3]))
          begin = None
        recorder.begin_scale(k, ends[k], ends[k + 1])
        progress = optimize.minimize(
            solver, outputs.reporter(config), x, place(obj),
            at=multiscale.stops(ends[k], ends[k + 1], periods), callback=recorder, start=begin,
            interrupted=lambda: interrupted() or recorder.converged is not None,
            at_step=config_lib.at_step(config))
        if progress.step < ends[k + 1] - ends[k] and recorder.converged is None:
          recorder.save_checkpoint(progress)
          return None
    finally:
      recorder.close()
    final = outputs.picture(config, out, 'final')
    shown = solver.output(progress.x, progress.state)
    image.save(final, inputs.output_rgb(config, shown, content), bits=config.output_bits,
               **metadata._asdict())
  return final
