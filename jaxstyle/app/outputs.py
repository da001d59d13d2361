"""What a run writes while it runs: metrics, progress, images, checkpoints.

metrics.jsonl is the source of truth (one JSON object per logged step);
TensorBoard events (tensorboardX, optional) and loss_curve.png (matplotlib,
optional) are views of it.
"""
from collections.abc import Callable, Iterator
import contextlib
import importlib
import io
import json
import math
import pathlib
import sys
import threading
import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import tqdm

from jaxstyle import files, image, objective, optimize, printing
from jaxstyle.app import checkpoint
from jaxstyle.errors import NumericalError
from jaxstyle.optimize import Progress

# config.output_format: the file types of the pictures a run writes, by suffix.
FORMATS = ('png', 'jpg', 'jpeg', 'tif', 'tiff')


def picture(config: ml_collections.ConfigDict, folder: pathlib.Path, stem: str) -> pathlib.Path:
  """The file of a result picture: `stem` (final, or an input's stem) in config.output_format."""
  return folder / f'{stem}.{config.output_format}'


def scalars(values: dict[str, float]) -> dict[str, float]:
  """The logged scalars among a report's values: objective.TERMS first, then
  the per-layer style terms and extra terms by name, then objective.GRAD_NORMS."""
  first = [k for k in objective.TERMS if k in values]
  last = [k for k in objective.GRAD_NORMS if k in values]
  rest = sorted(k for k in values if k not in first and k not in last and k != 'image')
  return {k: values[k] for k in first + rest + last}


def report(x: jax.Array, terms: dict[str, jax.Array],
           obj: objective.Objective) -> dict[str, jax.Array]:
  """What the host reads at a stop: the loss terms, and max |x| to catch a
  non-finite image before it reaches the loss."""
  return {**terms, 'image': jnp.max(jnp.abs(x))}


def report_with_grad_norms(x: jax.Array, terms: dict[str, jax.Array],
                           obj: objective.Objective) -> dict[str, jax.Array]:
  """`report`, and each weighted term's gradient norm (objective.GRAD_NORMS);
  what the solver adds to the terms (scipy_lbfgsb's evaluations) is kept."""
  return report(x, {**terms, **objective.terms_and_grad_norms(x, obj)}, obj)


def reporter(config: ml_collections.ConfigDict) -> optimize.Report:
  return report_with_grad_norms if config.grad_norms else report


def _every(step: int, period: int) -> bool:
  return period > 0 and step % period == 0


def _kept_metrics(path: pathlib.Path, upto: checkpoint.Checkpoint) -> list[dict[str, Any]]:
  if not path.exists():
    return []
  lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
  return [l for l in lines if (l['scale'], l['step']) <= (upto.scale, upto.step)]


class Recorder:
  """The loop's callback: called at every stop with the progress and its report.

  Progress counts steps from the start of the current scale (`begin_scale`);
  what the recorder writes counts the run's steps, on across scales. Without
  begin_scale there is one scale of `steps` (default config.steps). `shown`
  is the image a progress shows (optimize.Solver.output); `metadata` goes
  into each step_NNNNN.png (the content's profile and DPI). With
  config.optim.tol, `converged` turns to the step at which the loss fell by
  less than tol (relative) over the last optim.tol_window steps of the scale.
  """

  def __init__(self, workdir: pathlib.Path, config: ml_collections.ConfigDict,
               digest: str, resumed: checkpoint.Checkpoint | None = None,
               steps: int | None = None,
               shown: Callable[[Progress], jax.Array] = lambda progress: progress.x,
               metadata: printing.Metadata = printing.Metadata()):
    self.workdir, self.config, self.digest, self.shown = workdir, config, digest, shown
    self.metadata = metadata
    self.losses: dict[int, float] = {}  # the loss at each stop of the current scale
    self.steps = config.steps if steps is None else steps
    self.begin_scale(0, 0, self.steps)
    start = resumed.step if resumed else 0
    self.wall0 = resumed.wall_s if resumed else 0.0
    # A resumed run rewrites metrics.jsonl up to its checkpoint: no duplicate steps.
    self.records = _kept_metrics(workdir / 'metrics.jsonl', resumed) if resumed else []
    files.write_text(workdir / 'metrics.jsonl',
                     ''.join(json.dumps(r) + '\n' for r in self.records))
    self.metrics = open(workdir / 'metrics.jsonl', 'a')
    self.bar = tqdm.tqdm(total=self.steps, initial=start, unit='it',
                         disable=not sys.stderr.isatty())
    self.tensorboard = _tensorboard(workdir) if config.tensorboard else None
    self.start = time.perf_counter()
    self.last_checkpoint = start if resumed else None
    self.plotting: threading.Thread | None = None

  def begin_scale(self, scale: int, first: int, last: int) -> None:
    """Progress from now on is scale `scale`'s, which runs the run's steps first..last."""
    self.scale, self.first, self.last = scale, first, last
    self.converged: int | None = None

  def wall(self) -> float:
    return self.wall0 + time.perf_counter() - self.start

  def __call__(self, progress: Progress, report: dict[str, jax.Array]) -> None:
    step, config = self.first + progress.step, self.config
    values = {k: float(v) for k, v in jax.device_get(report).items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
      kept = (f'last good checkpoint: step {self.last_checkpoint}'
              if self.last_checkpoint is not None else 'no checkpoint was written')
      raise NumericalError(f'step {step}: {", ".join(bad)} not finite; {kept}')
    wall = self.wall()
    self._check_convergence(step, values['loss'])
    if step in (self.first, self.last, self.converged) or _every(step, config.log_every):
      self._log(step, values, wall)
    if self.plotting is None:  # the solve runs from here: the host mostly waits
      self.plotting = _import_in_background(_PLOTTING)
    if self.first < step < self.steps and _every(step, config.save_every):
      rgb = image.deprocess(self.shown(progress))
      image.save(self.workdir / f'step_{step:05d}.png', rgb, **self.metadata._asdict())
      if self.tensorboard:
        self.tensorboard.add_image('image', rgb, step, dataformats='HWC')
    if (step in (self.last, self.converged)
        or (step > self.first and _every(step, config.checkpoint_every))):
      self.save_checkpoint(progress)

  def _check_convergence(self, step: int, loss: float) -> None:
    tol, window = self.config.optim.tol, self.config.optim.tol_window
    self.losses[step] = loss
    before = self.losses.get(step - window)
    if tol and step - window >= self.first and before is not None:
      if before - loss < tol * abs(before):
        self.converged = step
        logging.info('converged at step %d: the loss fell by less than %g (relative) over '
                     'the last %d steps', step, tol, window)

  def _log(self, step: int, values: dict[str, float], wall: float) -> None:
    record = {'step': step, 'scale': self.scale, **scalars(values),
              'wall_s': round(wall, 4), 'time': round(time.time(), 4),
              **({'converged': True} if step == self.converged else {})}
    self.records.append(record)
    self.metrics.write(json.dumps(record) + '\n')
    self.metrics.flush()
    if self.tensorboard:
      for k, v in scalars(values).items():
        self.tensorboard.add_scalar(k, v, step)
    self.bar.update(step - self.bar.n)
    self.bar.set_postfix(loss=f'{values["loss"]:.4g}')
    if self.bar.disable:
      logging.info('step %d/%d loss %.4g (content %.4g, style %.4g, tv %.4g) %.1f s',
                   step, self.steps, values['loss'], values['content_loss'],
                   values['style_loss'], values['tv_loss'], wall)

  def save_checkpoint(self, progress: Progress) -> None:
    step = self.first + progress.step
    checkpoint.save(self.workdir / checkpoint.FILENAME,
                    checkpoint.Checkpoint(step, progress.x, progress.state, self.wall(),
                                          self.scale), self.digest)
    self.last_checkpoint = step

  def close(self) -> None:
    self.metrics.close()
    self.bar.close()
    if self.tensorboard:
      self.tensorboard.close()
    if self.plotting is not None:
      self.plotting.join()
    if len(self.records) > 1:
      _loss_curve(self.workdir / 'loss_curve.png', self.records)


@contextlib.contextmanager
def _without_torch() -> Iterator[None]:
  """Within, `import torch` fails unless torch is imported already.
  tensorboardX imports torch, when installed, only for type hints (about 1 s
  of a run's start); its writer takes torch tensors without that import."""
  hide = 'torch' not in sys.modules
  if hide:
    sys.modules['torch'] = None
  try:
    yield
  finally:
    if hide:
      del sys.modules['torch']


# What the loss curve imports (about 0.6 s of CPU): loaded in the background
# while the solve runs, so that the run's end does not wait for it.
_PLOTTING = ('matplotlib.figure', 'matplotlib.backends.backend_agg')


def _import_in_background(modules: tuple[str, ...]) -> threading.Thread:
  """A started thread importing `modules` (those missing are skipped)."""
  def load() -> None:
    for module in modules:
      with contextlib.suppress(ImportError):
        importlib.import_module(module)
  thread = threading.Thread(target=load, name='jaxstyle-imports')
  thread.start()
  return thread


def _tensorboard(workdir: pathlib.Path):
  try:
    with _without_torch():
      from tensorboardX import SummaryWriter  # optional: the `tb` extra
  except ImportError:
    logging.info('tensorboardX is not installed: no TensorBoard events '
                 "(pip install -e '.[tb]')")
    return None
  return SummaryWriter(str(workdir / 'tensorboard'))


def _loss_curve(path: pathlib.Path, records: list[dict[str, Any]]) -> None:
  """All loss terms against step, log scale, as a PNG."""
  try:
    from matplotlib.figure import Figure  # optional: the `demo` extra
  except ImportError:
    logging.info('matplotlib is not installed: no loss_curve.png')
    return
  fig = Figure(figsize=(6, 4), dpi=100)
  ax = fig.subplots()
  steps = [r['step'] for r in records]
  for k in objective.TERMS:
    ys = [r[k] for r in records]
    if any(y > 0 for y in ys):
      ax.plot(steps, ys, label=k)
  ax.set_yscale('log')
  ax.set_xlabel('step')
  ax.set_ylabel('loss (terms unweighted)')
  ax.legend()
  ax.grid(alpha=0.3)
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', bbox_inches='tight')
  with files.atomic(path) as f:
    f.write(buffer.getvalue())
