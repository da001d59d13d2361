"""A strong-Wolfe line search for jaxopt.LBFGS that evaluates the loss at one
site in its program.

Nocedal & Wright's bracketing and zoom (Algorithms 3.5 and 3.6, cubic
interpolation, as torch.optim.LBFGS's 'strong_wolfe' and jaxopt's zoom do),
written as one `lax.while_loop` whose body evaluates the loss once at the
trial step and then moves the bracket. jaxopt's zoom calls the loss in three
`lax.cond` branches and unrolls its first iteration, so a step compiles the
VGG19 value and gradient six times, and under `jax.vmap` (batched sweeps)
each cond becomes a select that evaluates every branch. Here a step compiles
it once, and a vmapped trial costs one evaluation per member.

On failure (no Wolfe point in `maxiter` trials, or a bracket narrower than
float32 can tell apart) the search returns the lowest trial point: lower
than the start where one was, else the one that raised the loss least, so
that L-BFGS still moves and its memory changes (returning the start would
give it the same direction, and the same failure, at the next step; jaxopt's
zoom takes its last trial then). Where every trial was non-finite it stays
at the start.
"""
from collections.abc import Callable
import dataclasses
from typing import Any, NamedTuple
import warnings

import jax
import jax.numpy as jnp

with warnings.catch_warnings():
  # jaxopt is archived upstream (0.8.5 is its last release) and says so on import.
  warnings.filterwarnings('ignore', message='JAXopt is no longer maintained',
                          category=DeprecationWarning)
  import jaxopt
  # jaxopt.LBFGS takes a search object only of this class, which jaxopt's
  # public API does not export (0.8.5, its last release).
  from jaxopt._src import base


class State(NamedTuple):
  """The search along x0 + t * direction. (params, value, grad, aux, stepsize)
  is its answer so far: the Wolfe point once done, else the lowest trial
  (x0 at t = 0 until a trial is finite); lowest is that trial's value, inf
  until then. low is the lowest point that decreased the loss enough (or 0);
  high the other end of the bracket, inf until there is one. min_width: the
  bracket width below which no element of x changes by more than float32's
  resolution at x0's magnitude."""
  iter_num: jax.Array
  done: jax.Array
  failed: jax.Array
  trial: jax.Array  # the next stepsize to evaluate
  x0: jax.Array
  direction: jax.Array
  value0: jax.Array
  slope0: jax.Array
  min_width: jax.Array
  low: jax.Array
  value_low: jax.Array
  slope_low: jax.Array
  high: jax.Array
  value_high: jax.Array
  slope_high: jax.Array
  params: jax.Array
  value: jax.Array
  grad: jax.Array
  aux: Any
  stepsize: jax.Array
  lowest: jax.Array
  num_fun_eval: jax.Array
  num_grad_eval: jax.Array


def cubic_minimizer(a: jax.Array, value_a: jax.Array, slope_a: jax.Array,
                    b: jax.Array, value_b: jax.Array, slope_b: jax.Array) -> jax.Array:
  """Minimizer of the cubic through two points' values and slopes (Nocedal &
  Wright eq. 3.59); NaN where that cubic has no minimum."""
  d1 = slope_a + slope_b - 3 * (value_a - value_b) / (a - b)
  d2 = jnp.sign(b - a) * jnp.sqrt(d1 ** 2 - slope_a * slope_b)  # NaN when negative
  return b - (b - a) * (slope_b + d2 - d1) / (slope_b - slope_a + 2 * d2)


def next_trial(low: jax.Array, value_low: jax.Array, slope_low: jax.Array,
               high: jax.Array, value_high: jax.Array, slope_high: jax.Array,
               margin: float = 0.1) -> jax.Array:
  """A step inside the bracket: the cubic's minimizer when it lies at least
  `margin` of the bracket from both ends, else the midpoint."""
  left, right = jnp.minimum(low, high), jnp.maximum(low, high)
  width = right - left
  cubic = cubic_minimizer(low, value_low, slope_low, b=high, value_b=value_high,
                          slope_b=slope_high)
  inside = (cubic >= left + margin * width) & (cubic <= right - margin * width)
  return jnp.where(inside, cubic, (left + right) / 2)


@dataclasses.dataclass(eq=False)
class StrongWolfe(base.IterativeLineSearch):
  """For jaxopt.LBFGS(linesearch=StrongWolfe(...)). x is an array.

  value_and_grad(x, *args) -> ((value, aux), grad), the only evaluation;
  fun(x, *args) -> (value, aux), called once at the start point to read
  the aux there (jaxopt's L-BFGS passes the value and gradient, not the aux),
  so it should be cheap. c1, c2: the sufficient-decrease and curvature
  constants; c3: the relative slack of the approximate Wolfe condition
  (Hager & Zhang 2005), which jaxopt's zoom also accepts, for when float32
  rounding of the loss hides the decrease near a minimum. The first trial is
  the caller's stepsize; without a bracket the trial grows by
  `increase_factor` up to `max_stepsize`, where a point that decreased the
  loss is taken.
  """
  value_and_grad: Callable[..., Any]
  fun: Callable[..., Any]
  maxiter: int = 20
  max_stepsize: float = 1.0
  increase_factor: float = 2.0
  c1: float = 1e-4
  c2: float = 0.9
  c3: float = 1e-6

  def __post_init__(self):
    """Nothing to set up: jaxopt's solvers jit their update here, but this
    update runs only inside run's loop, which the caller jits."""

  def init_state(self, init_stepsize, params, value, grad, descent_direction,
                 fun_args=(), fun_kwargs=None) -> State:
    assert value is not None and grad is not None, 'the caller passes the value and gradient'
    fun_kwargs = fun_kwargs or {}
    _, aux = self.fun(params, *fun_args, **fun_kwargs)
    slope = jnp.vdot(grad, descent_direction)
    zero = jnp.zeros_like(slope)
    eps = jnp.finfo(slope.dtype).eps
    min_width = eps * jnp.max(jnp.abs(params)) / jnp.max(jnp.abs(descent_direction))
    return State(
        iter_num=jnp.asarray(0), done=jnp.asarray(False), failed=jnp.asarray(False),
        trial=jnp.minimum(jnp.asarray(init_stepsize, slope.dtype), self.max_stepsize),
        x0=params, direction=descent_direction, value0=value, slope0=slope,
        min_width=min_width,
        low=zero, value_low=value, slope_low=slope,
        high=jnp.full_like(slope, jnp.inf), value_high=value, slope_high=slope,
        params=params, value=value, grad=grad, aux=aux, stepsize=zero,
        lowest=jnp.full_like(slope, jnp.inf),
        num_fun_eval=jnp.asarray(0, base.NUM_EVAL_DTYPE),
        num_grad_eval=jnp.asarray(0, base.NUM_EVAL_DTYPE))

  def update(self, state: State, fun_args=(), fun_kwargs=None) -> State:
    """One trial: evaluate at state.trial, move the bracket, pick the next trial."""
    fun_kwargs = fun_kwargs or {}
    t = state.trial
    x = state.x0 + t * state.direction
    (value, aux), grad = self.value_and_grad(x, *fun_args, **fun_kwargs)
    value = jnp.where(jnp.isfinite(value), value, jnp.inf)
    slope = jnp.vdot(grad, state.direction)
    value0, slope0 = state.value0, state.slope0

    decrease = ((value <= value0 + self.c1 * t * slope0)
                | ((slope <= (2 * self.c1 - 1) * slope0)
                   & (value <= value0 + self.c3 * jnp.abs(value0))))
    curvature = jnp.abs(slope) <= self.c2 * jnp.abs(slope0)
    bracketed = jnp.isfinite(state.high)
    # Alg. 3.5/3.6: t ends the bracket where it does not improve on low; else
    # it becomes low, and where the slope points back to low, old low is high.
    to_high = ~decrease | (value >= state.value_low)
    towards = jnp.where(bracketed, state.high - state.low, 1.0)
    flip = ~to_high & (slope * towards >= 0)
    low, value_low, slope_low = (jnp.where(to_high, old, new) for old, new in (
        (state.low, t), (state.value_low, value), (state.slope_low, slope)))
    high, value_high, slope_high = (
        jnp.where(to_high, new, jnp.where(flip, old_low, old_high))
        for new, old_low, old_high in ((t, state.low, state.high),
                                       (value, state.value_low, state.value_high),
                                       (slope, state.slope_low, state.slope_high)))
    now_bracketed = bracketed | to_high | flip

    done = decrease & (curvature | (~now_bracketed & (t >= self.max_stepsize)))
    narrow = jnp.abs(high - low) <= state.min_width
    failed = ~done & ((state.iter_num + 1 >= self.maxiter) | (now_bracketed & narrow))
    trial = jnp.where(
        now_bracketed,
        next_trial(low, value_low, slope_low, high=high, value_high=value_high,
                   slope_high=slope_high),
        jnp.minimum(self.increase_factor * t, self.max_stepsize))
    take = done | (value < state.lowest)
    params, answer_value, grad, aux, stepsize = jax.tree.map(
        lambda new, old: jnp.where(take, new, old), (x, value, grad, aux, t),
        (state.params, state.value, state.grad, state.aux, state.stepsize))
    return state._replace(
        iter_num=state.iter_num + 1, done=done, failed=failed, trial=trial,
        low=low, value_low=value_low, slope_low=slope_low,
        high=high, value_high=value_high, slope_high=slope_high,
        params=params, value=answer_value, grad=grad, aux=aux, stepsize=stepsize,
        lowest=jnp.minimum(state.lowest, value),
        num_fun_eval=state.num_fun_eval + 1, num_grad_eval=state.num_grad_eval + 1)

  def run(self, init_stepsize, params, value=None, grad=None, descent_direction=None,
          fun_args=(), fun_kwargs=None) -> base.LineSearchStep:
    """The search from params along descent_direction, whose value and
    gradient at params the caller passes."""
    state = self.init_state(init_stepsize, params, value, grad, descent_direction,
                            fun_args, fun_kwargs)
    state = jax.lax.while_loop(lambda s: ~(s.done | s.failed),
                               lambda s: self.update(s, fun_args, fun_kwargs), state)
    return base.LineSearchStep(stepsize=state.stepsize, state=state)
