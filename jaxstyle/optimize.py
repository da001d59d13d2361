"""Optimisers behind one small interface (Solver: pure init and update), a
loop that talks to the host only at the steps the caller asks for, and
`solve`, the whole minimisation of an objective in one call."""
from collections.abc import Callable, Iterable, Sequence
import contextlib
import functools
import threading
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxstyle import objective, xla
from jaxstyle.errors import InputError

OPTIMIZERS = ('lbfgs', 'optax_lbfgs', 'adam', 'scipy_lbfgsb')
# 'strong_wolfe' (default): jaxstyle.linesearch, one evaluation site (compiles
# the loss once, one evaluation per trial under vmap); the next three
# jaxopt's; 'none': a fixed step of 1 along the L-BFGS direction, one
# evaluation per step (torch.optim.LBFGS without line_search_fn, neural-style).
LINESEARCHES = ('strong_wolfe', 'zoom', 'backtracking', 'hager-zhang', 'none')

# fun(x, params) -> (scalar loss, aux): x the image, params a pytree of
# everything else, aux what the caller reports at x (the loss terms).
Fun = Callable[[jax.Array, Any], tuple[jax.Array, Any]]
# report(x, aux, params) -> what the host reads at a stop.
Report = Callable[[jax.Array, Any, Any], Any]


def _iterate(x: jax.Array, state: Any) -> jax.Array:
  return x


class Solver(NamedTuple):
  """Pure functions, jit-safe: init(x, params) -> state; update(x, state,
  params) -> (x, state); aux(x, state, params) -> fun's aux at x, read from
  the state where the solver keeps its last evaluation, else computed;
  output(x, state) -> the image to show (x, or the average of the iterates).
  With on_host, update is a host function that is called, not jitted."""
  init: Callable[[jax.Array, Any], Any]
  update: Callable[[jax.Array, Any, Any], tuple[jax.Array, Any]]
  aux: Callable[[jax.Array, Any, Any], Any]
  output: Callable[[jax.Array, Any], jax.Array] = _iterate
  on_host: bool = False


def jaxopt_lbfgs(fun: Fun, history_size: int = 10, linesearch: str = 'strong_wolfe',
                 max_linesearch: int = 20, *, refresh: bool = False) -> Solver:
  """jaxopt.LBFGS, the design's default. Runs every step it is asked (no tol
  stop); its state keeps fun's aux at x, so reporting it costs nothing.
  refresh: evaluate fun at each step's start again, for params that change
  between steps (objective.at_step: directions drawn afresh); one more
  evaluation per step."""
  # jaxopt (with scipy.optimize, about 0.3 s) loads only for this solver.
  from jaxstyle.linesearch import StrongWolfe, jaxopt  # pylint: disable=g-import-not-at-top
  value_and_grad = jax.jit(jax.value_and_grad(fun, has_aux=True))
  # jaxopt's line searches start by evaluating fun's aux at their start point,
  # a forward pass per step (a TODO in jaxopt's zoom_linesearch.py). The start
  # point is the current x, whose value and aux the state holds: `here` passes
  # them in, and `here_fun`, which the searches call only there, returns them.
  here_fun = lambda x, params, here: here
  here_value_and_grad = lambda x, params, here: value_and_grad(x, params)
  if linesearch == 'none':
    search = {'stepsize': 1.0}
  elif linesearch == 'strong_wolfe':
    search = {'linesearch': StrongWolfe(here_value_and_grad, here_fun, maxiter=max_linesearch)}
  else:
    search = {'linesearch': linesearch}
  solver = jaxopt.LBFGS(fun=here_fun, value_and_grad=here_value_and_grad,
                        has_aux=True, history_size=history_size, maxls=max_linesearch,
                        tol=0.0, **search)

  def init(x, params):
    # The first step, before any curvature is known, changes pixels by about
    # one grey level (RMS), as torch's L-BFGS scales it. jaxopt's unscaled
    # -grad step overshoots 0..255 images by orders of magnitude and costs
    # its line search some twenty evaluations.
    state = solver.init_state(x, params, None)
    rms = optax.tree.norm(state.grad) / jnp.sqrt(x.size)
    return state._replace(gamma=1.0 / jnp.maximum(rms, 1e-12))

  def update(x, state, params):
    if refresh:
      (value, aux), grad = value_and_grad(x, params)
      state = state._replace(value=value, aux=aux, grad=grad)
    return tuple(solver.update(x, state, params, (state.value, state.aux)))

  return Solver(init=init, update=update, aux=lambda x, state, params: state.aux)


def from_optax(fun: Fun, tx: optax.GradientTransformation) -> Solver:
  """An optax transformation (adam, a chain of them, optax.lbfgs) as a Solver.
  Transformations that keep the last value and gradient in their state
  (optax.lbfgs's line search) reuse them; the others get the gradient alone."""
  def update(x, state, params):
    f = lambda x: fun(x, params)[0]
    if optax.tree_utils.tree_get(state, 'value') is not None:
      value, grad = optax.value_and_grad_from_state(f)(x, state=state)
      updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
    else:
      updates, state = tx.update(jax.grad(f)(x), state, x)
    return optax.apply_updates(x, updates), state
  return Solver(init=lambda x, params: tx.init(x), update=update,
                aux=lambda x, state, params: fun(x, params)[1])


def optax_lbfgs(history_size: int = 10,
                max_linesearch: int = 20) -> optax.GradientTransformationExtraArgs:
  """optax.lbfgs with its zoom line search: jaxopt's maintained successor."""
  return optax.lbfgs(memory_size=history_size,
                     linesearch=optax.scale_by_zoom_linesearch(max_linesearch))


def adam(learning_rate: float = 10.0, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> optax.GradientTransformation:
  """optax.adam, learning rate in pixel units (0..255 images): chain it with
  other optax transformations and pass the chain as `method`."""
  return optax.adam(learning_rate, b1, b2, eps)


_OPTAX = {'optax_lbfgs': optax_lbfgs, 'adam': adam}


def averaged(solver: Solver, decay: float) -> Solver:
  """`solver` whose output is the exponential moving average of its iterates,
  bias-corrected (crowsonkb's --avg-decay): avg = Σ_t decay^(T-t) (1 - decay) x_t
  / (1 - decay^T). The average lives in the state, so it is checkpointed."""
  def init(x, params):
    return solver.init(x, params), jnp.zeros_like(x), jnp.ones((), x.dtype)

  def update(x, state, params):
    inner, average, weight = state
    x, inner = solver.update(x, inner, params)
    return x, (inner, decay * average + (1.0 - decay) * x, decay * weight)

  def output(x, state):
    _, average, weight = state
    return jnp.where(weight < 1.0, average / (1.0 - weight), x)

  return Solver(init=init, update=update, output=output, on_host=solver.on_host,
                aux=lambda x, state, params: solver.aux(x, state[0], params))


@functools.cache
def _make(method: str | optax.GradientTransformation, fun: Fun,
          settings: tuple[tuple[str, Any], ...]) -> Solver:
  settings = dict(settings)
  decay = settings.pop('avg_decay', 0.0)
  if not isinstance(method, str):
    solver = from_optax(fun, method)
  elif method == 'lbfgs':
    solver = jaxopt_lbfgs(fun, **settings)
  elif method in _OPTAX:
    solver = from_optax(fun, _OPTAX[method](**settings))
  elif method == 'scipy_lbfgsb':
    from jaxstyle import scipy_lbfgsb  # pylint: disable=g-import-not-at-top (imports this module)
    solver = scipy_lbfgsb.solver(fun, **settings)
  else:
    raise InputError(f'optimizer must be one of {", ".join(OPTIMIZERS)} or an optax '
                     f'GradientTransformation; got {method!r}')
  return averaged(solver, decay) if decay else solver


def make(method: str | optax.GradientTransformation = 'lbfgs', fun: Fun | None = None,
         **settings: Any) -> Solver:
  """The solver `method` ('lbfgs', 'optax_lbfgs', 'adam', 'scipy_lbfgsb' with
  their keyword settings, or any optax GradientTransformation) of fun (default
  objective.loss_and_terms); `avg_decay` in (0, 1) makes its output the
  average of the iterates (`averaged`). Cached: the same arguments give the
  same Solver, whose programs `minimize` compiles once."""
  try:
    return _make(method, fun or objective.loss_and_terms, tuple(sorted(settings.items())))
  except TypeError as e:
    raise InputError(f'optimizer {method!r}: {e}') from None


def stops(steps: int, periods: Iterable[int]) -> list[int]:
  """Steps at which the loop returns to the host: 0, every multiple of each
  positive period, and the last step."""
  points = {0, steps}
  for p in periods:
    if p > 0:
      points.update(range(p, steps, p))
  return sorted(points)


class Progress(NamedTuple):
  step: int
  x: jax.Array
  state: Any


@functools.cache
def _programs(solver: Solver, report: Report) -> tuple[Callable, Callable, Callable]:
  """The solver's jitted init, update (donating x and state; a host update as
  it is) and report: one set per solver and report, so a later solve of the
  same shapes compiles nothing."""
  def reported(x, state, params):
    return report(x, solver.aux(x, state, params), params)

  update = (solver.update if solver.on_host else
            jax.jit(solver.update, donate_argnums=(0, 1), compiler_options=xla.step()))
  return jax.jit(solver.init, compiler_options=xla.once()), update, jax.jit(reported)


def _aux(x: jax.Array, aux: Any, params: Any) -> Any:
  return aux


def unchanged(params: Any, step: int) -> Any:
  """minimize's default at_step: the same params at every step."""
  return params


def _compile_in_background(program: Any, *like: Any) -> threading.Thread:
  """Starts compiling jitted `program` for arguments shaped as `like`: XLA's
  compiler releases the GIL, so on two cores it runs beside the caller's own
  compile. An error is left for the program's first call to raise."""
  def compile_() -> None:
    with contextlib.suppress(Exception):
      program.lower(*like).compile()

  thread = threading.Thread(target=compile_, name='jaxstyle-compile')
  thread.start()
  return thread


def minimize(solver: Solver, report: Report, x0: jax.Array, params: Any, at: Sequence[int],
             callback: Callable[[Progress, Any], None], start: Progress | None = None,
             interrupted: Callable[[], bool] = lambda: False,
             at_step: Callable[[Any, int], Any] = unchanged) -> Progress:
  """Runs `solver` from x0 (or from `start`) to step at[-1].

  At each step in `at` (increasing, from 0) calls callback(progress,
  report(x, aux, params)), aux being fun's aux at x (Solver.aux); steps up to
  `start.step` are skipped. Steps are dispatched asynchronously and nothing is
  read back in between, so the host waits on the device only where the
  callback reads. If `interrupted()` turns true, returns the progress so far,
  consistent and ready to checkpoint. Step k runs with at_step(params, k)
  (objective.at_step: random directions drawn afresh per step). `report` must
  be a module-level function (or another long-lived one): the programs are
  cached per report.
  """
  init, update, values = _programs(solver, report)
  if start is not None:
    at = [s for s in at if s > start.step]
  step = start.step if start is not None else 0
  current = at_step(params, max(step - 1, 0))
  ahead = bool(at) and step < at[-1] and not solver.on_host
  compiling = None
  if start is None:
    x = jax.device_put(x0, may_alias=False)  # a copy: the caller keeps x0, the steps donate x
    if ahead and len(x.sharding.device_set) == 1:
      # Lowering needs only shapes, so the step compiles while init compiles
      # and runs, and the first update finds it in jit's cache.
      compiling = _compile_in_background(update, jax.ShapeDtypeStruct(x.shape, x.dtype),
                                         jax.eval_shape(init, x, current), current)
    start = Progress(0, x, init(x, current))
  if ahead and compiling is None:  # from the arrays, whose shardings the program takes
    compiling = _compile_in_background(update, start.x, start.state, current)
  if compiling is not None:
    compiling.join()
  step, x, state = start
  for stop in at:
    while step < stop:
      if interrupted():
        return Progress(step, x, state)
      current = at_step(params, step)
      x, state = update(x, state, current)
      step += 1
    callback(Progress(step, x, state), values(x, state, current))
  return Progress(step, x, state)


def solve(x0: jax.Array, obj: Any, *, method: str | optax.GradientTransformation = 'lbfgs',
          steps: int = 100, log_every: int = 10,
          callback: Callable[[int, jax.Array, dict[str, float]], None] | None = None,
          **settings: Any) -> tuple[jax.Array, list[dict[str, float]]]:
  """Minimises objective.loss from x0 ((1, H, W, 3), network input) over `steps` steps.

  method: 'lbfgs' (jaxopt, with `settings` history_size, linesearch,
  max_linesearch), 'optax_lbfgs' (history_size, max_linesearch), 'adam'
  (learning_rate, b1, b2, eps), 'scipy_lbfgsb' (m, maxfun; a step is one
  call of scipy's L-BFGS-B: jaxstyle.scipy_lbfgsb) or an optax
  GradientTransformation; any of them with avg_decay (the average of the
  iterates is returned). Returns the image and the history: {'step', and
  every term of objective.terms as a float} at step 0, every `log_every`
  steps and the last, each also passed to callback(step, x, terms). A second
  solve of another objective with the same shapes and settings compiles nothing.
  """
  random = obj.spec.style_kind.random
  if random and method == 'lbfgs':
    settings = {'refresh': True, **settings}
  solver = make(method, **settings)

  def record(progress: Progress, values: Any) -> None:
    values = {k: float(v) for k, v in jax.device_get(values).items()}
    history.append({'step': progress.step, **values})
    if callback is not None:
      callback(progress.step, progress.x, values)

  history: list[dict[str, float]] = []
  done = minimize(solver, _aux, x0, obj, at=stops(steps, (log_every,)), callback=record,
                  at_step=objective.at_step if random else unchanged)
  return solver.output(done.x, done.state), history


def state_shape(solver: Solver, x0: jax.Array, params: Any) -> Any:
  """Shapes and dtypes of the solver state, without computing it."""
  return jax.eval_shape(solver.init, x0, params)
