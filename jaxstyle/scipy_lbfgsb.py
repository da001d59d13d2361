"""SciPy's L-BFGS-B as an `optimize.Solver`, one call of it per step.

A step is one `scipy.optimize.minimize(method='L-BFGS-B')` call of at most
`maxfun` evaluations with memory `m`, starting afresh, none of the previous
call's curvature pairs kept: the Keras example's loop of
`fmin_l_bfgs_b(loss, x, fprime=grads, maxfun=20)` calls. SciPy stops a call at
the first accepted iterate after more than `maxfun` evaluations, so a call
usually makes maxfun + 1. The step runs on the host (`Solver.on_host`): SciPy
iterates in float64 NumPy and evaluates the jitted loss and gradient at the
iterate rounded to float32, as the example feeds its float64 iterate to a
float32 graph.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from jaxstyle import optimize


class State(NamedTuple):
  """What a step needs from the one before: no curvature, only counts."""
  aux: Any  # fun's aux at x
  evaluations: jax.Array  # int32, loss and gradient evaluations of every call so far


def solver(fun: optimize.Fun, m: int = 10, maxfun: int = 20) -> optimize.Solver:
  """The Solver of fun. Its aux is fun's aux, a dict (objective.loss_and_terms's
  terms), with 'evaluations' added."""
  value_and_grad = jax.jit(jax.value_and_grad(fun, has_aux=True))

  def init(x: jax.Array, params: Any) -> State:
    return State(fun(x, params)[1], jnp.zeros((), jnp.int32))

  def update(x: jax.Array, state: State, params: Any) -> tuple[jax.Array, State]:
    shape = x.shape
    last = {}

    def evaluate(flat: np.ndarray) -> tuple[float, np.ndarray]:
      (value, aux), grad = value_and_grad(jnp.asarray(flat.reshape(shape), jnp.float32), params)
      last.update(x=flat.copy(), aux=aux)
      return float(value), np.asarray(grad, np.float64).ravel()

    result = scipy.optimize.minimize(evaluate, np.asarray(x, np.float64).ravel(), jac=True,
                                     method='L-BFGS-B', options={'maxcor': m, 'maxfun': maxfun})
    if not np.array_equal(last['x'], result.x):  # a call that ends back at an earlier iterate
      evaluate(result.x)
    x = jnp.asarray(result.x.reshape(shape), jnp.float32)
    return x, State(last['aux'], state.evaluations + result.nfev)

  return optimize.Solver(init=init, update=update, on_host=True,
                         aux=lambda x, state, params: {**state.aux,
                                                       'evaluations': state.evaluations})
