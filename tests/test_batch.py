"""Batched solves: each member reaches what it reaches alone, on 1 or 4 devices."""
import dataclasses

import jax
import four_devices
import numpy as np
import pytest

from configs import default
from jaxstyle import image, objective, optimize, start
from jaxstyle.app import batch
from jaxstyle.app import config as config_lib
from jaxstyle.errors import ResourceError

SETTINGS = [(1e3, 0.0, 0), (1e4, 10.0, 1), (1e5, 0.0, 2)]  # style weight, TV weight, seed


def _problem():
  """A tiny objective, its solver, and three members' weights and starts."""
  config = default.get_config()
  config.loss.content_layers = ('block2_conv2',)
  config.loss.style_layers = ('block1_conv1', 'block2_conv1')
  rng = np.random.default_rng(0)
  content, style = (rng.uniform(0, 255, (24, 32, 3)).astype(np.float32) for _ in range(2))
  obj = config_lib.make_objective(config, content, style)
  solver = optimize.make('lbfgs', **config.optim.lbfgs)
  weights, starts = [], []
  for style_weight, tv_weight, seed in SETTINGS:
    config.loss.style_weight, config.loss.tv_weight = style_weight, tv_weight
    weights.append(config_lib.weights(config))
    starts.append(start.initial('uniform', image.preprocess(content), image.preprocess(style),
                                seed))
  return obj, solver, weights, starts


def _nothing(x, aux, obj):
  return 0.0


def solve_batch(path: str | None = None) -> np.ndarray:
  obj, solver, weights, starts = _problem()
  x = batch.solve(obj, weights, starts, solver, [0, 2, 4])
  if path:
    np.save(path, x)
  return x


def test_members_equal_their_solo_solves():
  obj, solver, weights, starts = _problem()
  together = batch.solve(obj, weights, starts, solver, [0, 2, 4])
  assert together.shape == (3, 1, 24, 32, 3)
  for i in range(3):
    alone = optimize.minimize(solver, _nothing, starts[i],
                              dataclasses.replace(obj, weights=weights[i]), [0, 4],
                              lambda *_: None)
    np.testing.assert_allclose(together[i], alone.x, atol=1e-2, rtol=0)
  assert np.abs(together[0] - together[2]).max() > 1.0  # the members differ


def test_members_with_their_own_contents_equal_their_solo_solves():
  obj, solver, weights, starts = _problem()
  rng = np.random.default_rng(1)
  others = [objective.with_content(obj, rng.uniform(0, 255, (24, 32, 3)).astype(np.float32))
            for _ in range(2)]
  members = [obj, *others]
  together = batch.solve(obj, [weights[1]] * 3, starts, solver, [0, 4],
                         contents=[o.content for o in members])
  for i, member in enumerate(members):
    alone = optimize.minimize(solver, _nothing, starts[i],
                              dataclasses.replace(member, weights=weights[1]), [0, 4],
                              lambda *_: None)
    np.testing.assert_allclose(together[i], alone.x, atol=1e-2, rtol=0)
  assert np.abs(together[1] - together[2]).max() > 1.0  # the contents differ


def test_one_and_four_devices_agree(tmp_path):
  out = tmp_path / 'four.npy'
  four_devices.run('test_batch', f'solve_batch({str(out)!r})')
  assert jax.device_count() == 1
  np.testing.assert_allclose(np.load(out), solve_batch(), atol=1e-2, rtol=0)


def test_padding_and_ownership():
  assert [batch.padded(k, 4) for k in (1, 4, 5)] == [4, 4, 8]
  assert batch.local_members(3) == [0, 1, 2]  # one process holds every member


def test_batch_size_checks_memory():
  obj, *_ = _problem()
  assert batch.size(obj.spec, 24, 32, history_size=10, devices=4) == 4  # CPU: one each
  assert batch.size(obj.spec, 24, 32, history_size=10, devices=4, requested=3) == 3
  with pytest.raises(ResourceError, match='needs about'):
    batch.size(obj.spec, 4000, 4000, history_size=10, devices=1, requested=10**6)


def test_history_keeps_each_members_reports_and_finiteness():
  history = batch.History('test', steps=4, members=2)
  history(optimize.Progress(step=0, x=None, state=None), {'loss': np.array([3.0, 4.0])})
  history(optimize.Progress(step=4, x=None, state=None), {'loss': np.array([1.0, np.nan])})
  assert history.member(0) == [{'step': 0, 'loss': 3.0}, {'step': 4, 'loss': 1.0}]
  x = np.zeros((2, 2, 3))
  assert history.finite(0, x)
  assert not history.finite(1, x)  # its last loss is NaN
  assert not history.finite(0, np.full((2, 2, 3), np.inf))
