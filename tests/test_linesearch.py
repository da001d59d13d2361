"""The strong-Wolfe search: known interpolation answers, Wolfe points on 1-D
problems, what it returns on failure, one evaluation per trial."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import linesearch


def test_cubic_minimizer_of_a_cubic_and_a_quadratic():
  # t**3 - 3t: minimum at 1, from t = 0 (0, -3) and t = 3 (18, 24).
  assert float(linesearch.cubic_minimizer(0.0, 0.0, -3.0, 3.0, 18.0, 24.0)) == pytest.approx(1.0)
  # (t - 0.7)**2 from t = 2 and t = 0: the cubic through them is the parabola.
  assert float(linesearch.cubic_minimizer(2.0, 1.69, 2.6, 0.0, 0.49, -1.4)) == pytest.approx(0.7)


@pytest.mark.parametrize('ends, want', [
    ((0.0, 0.49, -1.4, 2.0, 1.69, 2.6), 0.7),  # the parabola's minimum
    ((0.0, 0.0025, -0.1, 1.0, 0.9025, 1.9), 0.5),  # its minimum 0.05 is too near an end
    ((0.0, 0.0, -2.0, 1.0, -1.5, -2.0), 0.5),  # no cubic minimum
])
def test_next_trial_is_the_cubic_minimum_inside_the_bracket_else_the_midpoint(ends, want):
  assert float(linesearch.next_trial(*ends)) == pytest.approx(want)


def _search(f, maxiter=20, max_stepsize=1.0, init_stepsize=1.0, start=0.0):
  """StrongWolfe on f(x), x of shape (1,), from x = start along +1."""
  def value_and_grad(x):
    return jax.value_and_grad(lambda x: (f(x), {'f': f(x)}), has_aux=True)(x)

  search = linesearch.StrongWolfe(value_and_grad, lambda x: (f(x), {'f': f(x)}),
                                  maxiter=maxiter, max_stepsize=max_stepsize)
  x0 = jnp.full(1, start)
  (value, _), grad = value_and_grad(x0)
  step = jax.jit(search.run)(init_stepsize, x0, value, grad, jnp.ones(1))
  return search, step, float(value), float(grad[0])


def _assert_strong_wolfe(search, step, value0, slope0):
  state = step.state
  assert bool(state.done) and not bool(state.failed)
  t = float(step.stepsize)
  assert float(state.params[0]) == pytest.approx(t)
  assert float(state.value) <= value0 + search.c1 * t * slope0
  assert abs(float(state.grad[0])) <= search.c2 * abs(slope0)
  assert float(state.aux['f']) == float(state.value)


@pytest.mark.parametrize('minimum, init_stepsize, max_stepsize', [
    (0.3, 1.0, 1.0),  # the first trial overshoots: zoom back
    (0.9, 1.0, 1.0),  # the first trial is a Wolfe point
    (10.0, 1.0, 100.0),  # grow the step until the minimum is bracketed
    (10.0, 1e-3, 100.0),
])
def test_finds_a_strong_wolfe_point(minimum, init_stepsize, max_stepsize):
  search, step, value0, slope0 = _search(lambda x: jnp.sum((x - minimum) ** 2 + 0.01 * (x - minimum) ** 4),
                                         max_stepsize=max_stepsize, init_stepsize=init_stepsize)
  _assert_strong_wolfe(search, step, value0, slope0)


def test_takes_the_largest_step_while_the_loss_still_falls_there():
  _, step, value0, _ = _search(lambda x: jnp.sum((x - 50.0) ** 2))
  assert bool(step.state.done) and float(step.stepsize) == 1.0
  assert int(step.state.iter_num) == 1 and float(step.state.value) < value0


def test_on_failure_returns_the_lowest_point_evaluated():
  # Minimum at 0.51: t = 1 lowers the loss but its slope fails the curvature test.
  _, step, value0, _ = _search(lambda x: jnp.sum((x - 0.51) ** 2), maxiter=1)
  assert bool(step.state.failed)
  assert float(step.stepsize) == 1.0 and float(step.state.value) < value0


def test_on_failure_with_no_lower_point_moves_to_the_least_raise():
  # Descending at 0 (slope -1e-3), above the start at both trials: 1 and 0.5.
  _, step, value0, _ = _search(lambda x: jnp.sum(x ** 2 - 1e-3 * x), maxiter=2)
  assert bool(step.state.failed) and int(step.state.iter_num) == 2
  assert float(step.stepsize) == 0.5 and float(step.state.params[0]) == 0.5
  assert float(step.state.value) == pytest.approx(0.2495) and float(step.state.value) > value0


def test_on_failure_the_least_raise_is_the_lowest_trial_not_the_last():
  # Above the start at t = 1 (0.1) and higher inside (5.0), where the second
  # trial falls (at least 10 % of the bracket from its ends).
  f = lambda x: jnp.sum(jnp.where(x >= 0.9, 0.1, jnp.where(x > 1e-6, 5.0, -1e-3 * x)))
  _, step, _, _ = _search(f, maxiter=2)
  assert bool(step.state.failed) and int(step.state.iter_num) == 2
  assert float(step.stepsize) == 1.0 and float(step.state.value) == pytest.approx(0.1)


def test_on_failure_with_only_non_finite_trials_stays_at_the_start():
  # Descending at 0, not finite anywhere ahead.
  _, step, value0, _ = _search(lambda x: jnp.sum(jnp.where(x > 0, jnp.nan, -x)), maxiter=5)
  assert bool(step.state.failed) and int(step.state.iter_num) == 5
  assert float(step.stepsize) == 0.0 and float(step.state.params[0]) == 0.0
  assert float(step.state.value) == value0


def test_stops_when_the_bracket_is_below_float32_resolution_at_x():
  """At x = 1e6 float32 steps by 0.0625: the bracket halves from 1 (every
  trial non-finite) and the search fails once it is 0.0625 wide, not after
  maxiter trials."""
  _, step, value0, _ = _search(lambda x: jnp.sum(jnp.where(x > 1e6, jnp.nan, 1e6 - x)),
                               start=1e6)
  assert bool(step.state.failed) and int(step.state.iter_num) == 5
  assert float(step.state.high) == 0.0625 and float(step.state.value) == value0


def test_under_vmap_each_trial_evaluates_the_batch_once():
  """Members search together until the last is done; jaxopt's zoom
  evaluates the batch in each of its three cond branches at every trial."""
  calls = []

  def value_and_grad(x, minimum):
    jax.debug.callback(lambda: calls.append(1))
    f = lambda x: (jnp.sum((x - minimum) ** 2), ())
    return jax.value_and_grad(f, has_aux=True)(x)

  search = linesearch.StrongWolfe(value_and_grad, lambda x, minimum: (0.0, ()))
  minima = jnp.array([[1.0], [1e-3]])  # along +1 from 0: one trial, and several
  x0 = jnp.zeros((2, 1))
  value0 = jnp.sum(minima ** 2, axis=1)
  grad0 = -2 * minima

  def run(x, value, grad, minimum):
    return search.run(1.0, x, value, grad, jnp.ones(1), fun_args=(minimum,))

  steps = jax.jit(jax.vmap(run))(x0, value0, grad0, minima)
  jax.effects_barrier()
  trials = np.asarray(steps.state.iter_num)
  assert trials[0] == 1 and trials[1] > 1
  assert len(calls) == trials.max()
