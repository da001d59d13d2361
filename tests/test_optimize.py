"""Solvers reach a known minimum; the loop returns to the host only where
asked; `solve` reuses its compiled programs across objectives, which take the
network's kernels as arguments."""
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import optax

from jaxstyle import image, objective, optimize, vgg
from jaxstyle.errors import InputError

SCALE = jnp.arange(1.0, 5.0)


def quadratic(x, target):
  """(loss, aux): the aux names the loss and one more value of x."""
  loss = jnp.sum(SCALE * (x - target) ** 2)
  return loss, {'loss': loss, 'first': x[0]}


def report(x, aux, target):
  return aux


def test_stops_are_zero_every_period_and_the_end():
  assert optimize.stops(25, (10,)) == [0, 10, 20, 25]
  assert optimize.stops(25, (10, 4)) == [0, 4, 8, 10, 12, 16, 20, 24, 25]
  assert optimize.stops(5, (0, 0)) == [0, 5]


@pytest.mark.parametrize('name, settings, steps', [
    ('lbfgs', {}, 20), ('lbfgs', {'linesearch': 'zoom'}, 20),
    ('lbfgs', {'linesearch': 'backtracking'}, 20), ('lbfgs', {'linesearch': 'none'}, 20),
    ('optax_lbfgs', {}, 20), ('adam', {'learning_rate': 0.5}, 300)])
def test_solvers_reach_the_minimum(name, settings, steps):
  target = jnp.array([1.0, -2.0, 3.0, 4.0])
  solver = optimize.make(name, quadratic, **settings)
  seen = []
  x = optimize.minimize(
      solver, report, jnp.zeros(4), target,
      optimize.stops(steps, (10,)), lambda progress, terms: seen.append(progress.step))
  np.testing.assert_allclose(x.x, target, atol=1e-3)
  assert seen == optimize.stops(steps, (10,))


def test_callback_gets_the_loss_at_each_stop():
  target = jnp.ones(4)
  losses = {}
  optimize.minimize(optimize.make('adam', quadratic, learning_rate=0.1),
                    report, jnp.zeros(4), target,
                    [0, 1, 5], lambda p, terms: losses.update({p.step: float(terms['loss'])}))
  assert losses[0] == pytest.approx(float(quadratic(jnp.zeros(4), target)[0]))
  assert losses[0] > losses[1] > losses[5]


def test_resumes_from_progress_and_stops_when_interrupted():
  target = jnp.ones(4)
  solver = optimize.make('lbfgs', quadratic)
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
  done = optimize.minimize(solver, report, None, target, [0, 3, 6],
                           lambda p, t: seen.append(p.step), start=rest)
  assert done.step == 6 and done.x is rest.x and seen == [0, 3, 6, 6]


@pytest.mark.parametrize('name, settings', [
    ('lbfgs', {}), ('lbfgs', {'linesearch': 'zoom'}),
    ('lbfgs', {'linesearch': 'backtracking'}), ('lbfgs', {'linesearch': 'hager-zhang'}),
    ('lbfgs', {'linesearch': 'none'}),
    ('optax_lbfgs', {}), ('adam', {'learning_rate': 0.5})])
def test_aux_is_funs_aux_at_the_current_x(name, settings):
  target = jnp.array([1.0, -2.0, 3.0, 4.0])
  solver = optimize.make(name, quadratic, **settings)
  x = jnp.array([5.0, 0.0, 0.0, -1.0])
  state = solver.init(x, target)
  for _ in range(4):
    x, state = solver.update(x, state, target)
    got = solver.aux(x, state, target)
    want = quadratic(x, target)[1]
    assert float(got['first']) == float(want['first'])
    assert float(got['loss']) == pytest.approx(float(want['loss']), rel=1e-6)


@pytest.mark.parametrize('linesearch', ['zoom', 'strong_wolfe', 'none'])
def test_jaxopt_lbfgs_evaluates_fun_once_per_trial_point(linesearch):
  """No evaluation only to recompute the aux at the search's start point."""
  calls = []

  def counted(x, target):
    jax.debug.callback(lambda: calls.append(1))
    return quadratic(x, target)

  solver = optimize.make('lbfgs', counted, linesearch=linesearch)
  target = jnp.array([1.0, -2.0, 3.0, 4.0])
  update = jax.jit(solver.update)
  x = jnp.array([5.0, 0.0, 0.0, -1.0])
  state = solver.init(x, target)
  for _ in range(5):
    x, state = update(x, state, target)
  jax.effects_barrier()
  trials = int(state.num_linesearch_iter) if linesearch != 'none' else 5
  assert len(calls) == 1 + trials


def test_unknown_optimizer_is_an_input_error():
  with pytest.raises(InputError, match='optimizer must be one of'):
    optimize.make('sgd', quadratic)


def test_importing_does_not_print_jaxopt_deprecation():
  result = subprocess.run(
      [sys.executable, '-W', 'error::DeprecationWarning', '-c', 'import jaxstyle.linesearch'],
      capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert 'JAXopt' not in result.stderr


def test_an_optax_transformation_is_a_method():
  target = jnp.array([1.0, -2.0, 3.0, 4.0])
  tx = optax.chain(optax.clip_by_global_norm(10.0), optimize.adam(learning_rate=0.5))
  solver = optimize.make(tx, quadratic)
  x = optimize.minimize(solver, report, jnp.zeros(4), target, [0, 300], lambda p, t: None)
  np.testing.assert_allclose(x.x, target, atol=1e-3)


def test_make_is_cached_and_rejects_unknown_settings():
  assert optimize.make('lbfgs', quadratic, history_size=5) is optimize.make(
      'lbfgs', quadratic, history_size=5)
  with pytest.raises(InputError, match="optimizer 'adam'"):
    optimize.make('adam', quadratic, lr=1.0)


@pytest.fixture(scope='module')
def tiny():
  """Two objectives of one structure and size, on random VGG weights, and a start."""
  variables = vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  rng = np.random.default_rng(0)
  content, style = (rng.uniform(0, 255, (16, 24, 3)).astype(np.float32) for _ in range(2))
  layers = dict(content_layers=('block2_conv1',), style_layers=('block1_conv1',))
  objs = [objective.make(content, style, variables=variables, style_weight=w, **layers)
          for w in (1.0, 10.0)]
  return objs, image.preprocess(content)


def _compiles(job):
  count = []
  listener = lambda event, duration, **kwargs: count.append(
      event == '/jax/core/compile/backend_compile_duration')
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    job()
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  return sum(count)


@pytest.mark.parametrize('method, settings', [('lbfgs', {}), ('adam', {'learning_rate': 1.0})])
def test_solve_lowers_the_loss_and_a_second_solve_compiles_nothing(tiny, method, settings):
  (first, second), x0 = tiny
  x, history = optimize.solve(x0, first, method=method, steps=4, log_every=2, **settings)
  assert [h['step'] for h in history] == [0, 2, 4]
  assert history[-1]['loss'] < history[0]['loss']
  assert set(objective.TERMS) <= set(history[0])
  assert x.shape == x0.shape
  seen = []
  assert _compiles(lambda: optimize.solve(
      x0, second, method=method, steps=4, log_every=2, **settings,
      callback=lambda step, x, terms: seen.append((step, terms['loss'])))) == 0
  assert [s for s, _ in seen] == [0, 2, 4]


def test_averaged_output_is_the_bias_corrected_average_of_the_iterates():
  target = jnp.array([1.0, -2.0, 3.0, 4.0])
  plain = optimize.make('adam', quadratic, learning_rate=0.5)
  averaged = optimize.make('adam', quadratic, learning_rate=0.5, avg_decay=0.5)
  xs, x, state = [], jnp.zeros(4), plain.init(jnp.zeros(4), target)
  for _ in range(3):
    x, state = plain.update(x, state, target)
    xs.append(np.asarray(x))
  done = optimize.minimize(averaged, report, jnp.zeros(4), target, [0, 3], lambda p, t: None)
  np.testing.assert_allclose(done.x, xs[-1], rtol=1e-6)  # the iterates do not change
  want = (0.25 * xs[0] + 0.5 * xs[1] + xs[2]) * 0.5 / (1 - 0.5**3)
  np.testing.assert_allclose(averaged.output(done.x, done.state), want, rtol=1e-6)
  assert plain.output(done.x, None) is done.x


def test_at_step_gives_each_step_its_own_params():
  seen = []

  def fun(x, params):
    jax.debug.callback(lambda p: seen.append(int(p)), params)
    return jnp.sum((x - params) ** 2), {'loss': jnp.sum((x - params) ** 2)}

  solver = optimize.make('adam', fun, learning_rate=0.1)
  optimize.minimize(solver, report, jnp.zeros(2), jnp.float32(0), [0, 3], lambda p, t: None,
                    at_step=lambda params, step: params + 10 * step)
  jax.effects_barrier()
  # The report at step 0, the three steps, the report at step 3 (the last step's params).
  assert seen == [0, 0, 10, 20, 20]


def test_scipy_lbfgsb_steps_are_fmin_l_bfgs_b_calls_each_starting_afresh():
  target = jnp.array([1.0, -2.0, 3.0, 4.0])

  def value_and_grad(v):
    x = jnp.asarray(v, jnp.float32)
    return (float(quadratic(x, target)[0]),
            np.asarray(jax.grad(lambda x: quadratic(x, target)[0])(x), np.float64))

  x, expected, evaluations = np.zeros(4), [], 0
  for _ in range(3):  # the Keras example's loop, maxfun=2
    x, _, info = scipy.optimize.fmin_l_bfgs_b(value_and_grad, x, m=10, maxfun=2)
    x = x.astype(np.float32).astype(np.float64)  # a step's image is float32
    evaluations += info['funcalls']
    expected.append((x, evaluations))
  seen = []
  solver = optimize.make('scipy_lbfgsb', quadratic, m=10, maxfun=2)
  optimize.minimize(solver, report, jnp.zeros(4), target, at=[0, 1, 2, 3],
                    callback=lambda progress, aux: seen.append((progress.x, aux)))
  assert int(seen[0][1]['evaluations']) == 0
  assert [int(aux['evaluations']) for _, aux in seen[1:]] == [e for _, e in expected]
  assert expected[0][1] == 3  # stops at the first iterate after more than maxfun
  for (x, aux), (want, _) in zip(seen[1:], expected):
    np.testing.assert_allclose(x, want, rtol=1e-6)
    assert float(aux['loss']) == pytest.approx(float(quadratic(x, target)[0]), rel=1e-6)
  assert optimize.state_shape(solver, jnp.zeros(4), target).evaluations.dtype == jnp.int32


def test_programs_take_the_kernels_as_arguments_not_as_constants():
  """The solver's programs hold no kernel, flipped kernel or Winograd
  transform as a constant (one compile serves every weight file, and the
  cached executables stay small): their only array constants are Winograd's
  tile transforms."""
  variables = vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  rng = np.random.default_rng(0)
  content, style = (rng.uniform(0, 255, (16, 24, 3)).astype(np.float32) for _ in range(2))
  obj = objective.make(content, style, variables=variables, conv_algorithm='winograd',
                       content_layers=('block3_conv2',),
                       style_layers=('block1_conv1', 'block3_conv1'))
  assert vgg.WINOGRAD in obj.variables and vgg.FLIPPED in obj.variables
  solver = optimize.make('lbfgs')
  x = image.preprocess(content)
  texts = [jax.jit(solver.init).lower(x, obj).as_text(),
           jax.jit(solver.update).lower(x, optimize.state_shape(solver, x, obj), obj).as_text()]
  arrays = {m for text in texts
            for m in re.findall(r'stablehlo.constant .*: tensor<(\d+(?:x\d+)*)x[bf]\w*>', text)}
  assert arrays == {'36x36', '16x36'}
