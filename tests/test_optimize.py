"""Solvers reach a known minimum; the loop returns to the host only where asked."""
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import optimize
from jaxstyle.errors import InputError

SCALE = jnp.arange(1.0, 5.0)


def quadratic(x, target):
  return jnp.sum(SCALE * (x - target) ** 2)


def test_stops_are_zero_every_period_and_the_end():
  assert optimize.stops(25, (10,)) == [0, 10, 20, 25]
  assert optimize.stops(25, (10, 4)) == [0, 4, 8, 10, 12, 16, 20, 24, 25]
  assert optimize.stops(5, (0, 0)) == [0, 5]


@pytest.mark.parametrize('name, settings, steps', [
    ('lbfgs', {}, 20), ('lbfgs', {'linesearch': 'backtracking'}, 20),
    ('lbfgs', {'linesearch': 'none'}, 20),
    ('optax_lbfgs', {}, 20), ('adam', {'learning_rate': 0.5}, 300)])
def test_solvers_reach_the_minimum(name, settings, steps):
  target = jnp.array([1.0, -2.0, 3.0, 4.0])
  solver = optimize.make(name, quadratic, settings)
  seen = []
  x = optimize.minimize(
      solver, lambda x, p: {'loss': quadratic(x, p)}, jnp.zeros(4), target,
      optimize.stops(steps, (10,)), lambda progress, terms: seen.append(progress.step))
  np.testing.assert_allclose(x.x, target, atol=1e-3)
  assert seen == optimize.stops(steps, (10,))


def test_callback_gets_the_loss_at_each_stop():
  target = jnp.ones(4)
  losses = {}
  optimize.minimize(optimize.make('adam', quadratic, {'learning_rate': 0.1}),
                    lambda x, p: {'loss': quadratic(x, p)}, jnp.zeros(4), target,
                    [0, 1, 5], lambda p, terms: losses.update({p.step: float(terms['loss'])}))
  assert losses[0] == pytest.approx(float(quadratic(jnp.zeros(4), target)))
  assert losses[0] > losses[1] > losses[5]


def test_resumes_from_progress_and_stops_when_interrupted():
  target = jnp.ones(4)
  solver = optimize.make('lbfgs', quadratic, {})
  report = lambda x, p: {'loss': quadratic(x, p)}
  seen = []
  whole = optimize.minimize(solver, report, jnp.zeros(4), target, [0, 3, 6],
                            lambda p, t: seen.append(p.step))
  calls = iter(range(100))
  part = optimize.minimize(solver, report, jnp.zeros(4), target, [0, 3, 6],
                           lambda p, t: None, interrupted=lambda: next(calls) >= 4)
  assert part.step == 4
  rest = optimize.minimize(solver, report, None, target, [0, 3, 6],
                           lambda p, t: seen.append(p.step), start=part)
  assert seen == [0, 3, 6, 6] and rest.step == 6
  np.testing.assert_array_equal(rest.x, whole.x)


def test_unknown_optimizer_is_an_input_error():
  with pytest.raises(InputError, match='optimizer must be one of'):
    optimize.make('sgd', quadratic, {})


def test_importing_does_not_print_jaxopt_deprecation():
  result = subprocess.run(
      [sys.executable, '-W', 'error::DeprecationWarning', '-c', 'import jaxstyle.optimize'],
      capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert 'JAXopt' not in result.stderr
