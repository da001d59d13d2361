"""Checkpoints round-trip exactly, belong to one config, and a run killed at
a random step resumes to the very same image."""
import pathlib
import random
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from jaxstyle import optimize
from jaxstyle.app import checkpoint
from jaxstyle.errors import InputError

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _quadratic(x, p):
  loss = jnp.sum((x - p) ** 2)
  return loss, {'loss': loss}


def _progress(steps):
  solver = optimize.make('lbfgs', _quadratic)
  x0, p = jnp.zeros(4), jnp.arange(4.0)
  state = solver.init(x0, p)
  for _ in range(steps):
    x0, state = solver.update(x0, state, p)
  return solver, x0, state, p


def test_round_trip_is_exact(tmp_path):
  solver, x, state, p = _progress(2)
  digest = checkpoint.config_hash(default.get_config())
  checkpoint.save(tmp_path / 'c.npz', checkpoint.Checkpoint(2, x, state, 1.5, 3), digest)
  like = {3: (x, optimize.state_shape(solver, x, p))}
  got = checkpoint.restore(tmp_path / 'c.npz', like.__getitem__, digest)
  assert got.step == 2 and got.wall_s == 1.5 and got.scale == 3
  for a, b in zip(jax.tree.leaves((x, state)), jax.tree.leaves((got.x, got.state))):
    np.testing.assert_array_equal(a, b)


def test_config_hash_ignores_cadence_only():
  a, b = default.get_config(), default.get_config()
  b.steps, b.log_every, b.save_every, b.checkpoint_every = 7, 1, 1, 1
  b.output_bits, b.output_format = 16, 'tif'
  assert checkpoint.config_hash(a) == checkpoint.config_hash(b)
  b.loss.style_weight = 1.0
  assert checkpoint.config_hash(a) != checkpoint.config_hash(b)


def test_steps_count_for_earlier_scales_without_scale_steps():
  a, b = default.get_config(), default.get_config()
  a.scales = b.scales = 2
  b.steps = 7
  assert checkpoint.config_hash(a) != checkpoint.config_hash(b)
  a.scale_steps = b.scale_steps = 5
  assert checkpoint.config_hash(a) == checkpoint.config_hash(b)


def test_refuses_other_config_and_other_shapes(tmp_path):
  solver, x, state, p = _progress(1)
  checkpoint.save(tmp_path / 'c.npz', checkpoint.Checkpoint(1, x, state, 0.0), 'a')
  like = lambda scale: (x, optimize.state_shape(solver, x, p))
  with pytest.raises(InputError, match='different config'):
    checkpoint.restore(tmp_path / 'c.npz', like, 'b')
  other = lambda scale: (jnp.zeros(5), optimize.state_shape(solver, jnp.zeros(5), jnp.zeros(5)))
  with pytest.raises(InputError, match='does not match'):
    checkpoint.restore(tmp_path / 'c.npz', other, 'a')
  (tmp_path / 'bad.npz').write_bytes(b'junk')
  with pytest.raises(InputError, match='unreadable'):
    checkpoint.restore(tmp_path / 'bad.npz', like, 'a')


ARGS = ['--config', 'configs/default.py', '--config.height=32', '--config.steps=20',
        '--config.log_every=1', '--config.checkpoint_every=3', '--config.save_every=0',
        '--config.tensorboard=False']


def _cli(workdir, *extra, **kwargs):
  return subprocess.Popen([sys.executable, '-m', 'jaxstyle.main', *ARGS, *extra,
                           f'--workdir={workdir}'], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for(path, proc, timeout=300):
  start = time.time()
  while not path.exists():
    assert proc.poll() is None, proc.communicate()
    assert time.time() - start < timeout
    time.sleep(0.05)


def _final_state(workdir):
  with np.load(workdir / checkpoint.FILENAME) as f:
    return int(f['step']), f['leaf_000']


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('uninterrupted')
  proc = _cli(workdir)
  _, err = proc.communicate()
  assert proc.returncode == 0, err
  return workdir


def test_killed_run_resumes_bit_for_bit(uninterrupted, tmp_path):
  proc = _cli(tmp_path)
  _wait_for(tmp_path / checkpoint.FILENAME, proc)
  time.sleep(random.uniform(0.0, 1.0))
  proc.kill()
  proc.communicate()
  killed_at = _final_state(tmp_path)[0]
  resumed = _cli(tmp_path)
  _, err = resumed.communicate()
  assert resumed.returncode == 0, err
  assert (tmp_path / 'final.png').read_bytes() == (uninterrupted / 'final.png').read_bytes()
  step, x = _final_state(tmp_path)
  ref_step, ref_x = _final_state(uninterrupted)
  assert step == ref_step == 20
  np.testing.assert_array_equal(x, ref_x)
  steps = [int(l.split('"step": ')[1].split(',')[0])
           for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert steps == list(range(21)), f'killed at checkpoint step {killed_at}'


def test_ctrl_c_checkpoints_and_exits_130(uninterrupted, tmp_path):
  proc = _cli(tmp_path)
  _wait_for(tmp_path / checkpoint.FILENAME, proc)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate()
  assert proc.returncode == 130, err
  assert 'interrupted' in err.strip().splitlines()[-1]
  step, _ = _final_state(tmp_path)
  assert 0 < step < 20
  resumed = _cli(tmp_path)
  resumed.communicate()
  assert resumed.returncode == 0
  np.testing.assert_array_equal(_final_state(tmp_path)[1], _final_state(uninterrupted)[1])


def test_changed_config_refuses_to_resume_unless_told(uninterrupted, tmp_path):
  for name in (checkpoint.FILENAME, 'metrics.jsonl'):
    (tmp_path / name).write_bytes((uninterrupted / name).read_bytes())
  proc = _cli(tmp_path, '--config.loss.style_weight=5.0')
  _, err = proc.communicate()
  assert proc.returncode == 2 and 'different config' in err and '--start_over' in err
  proc = _cli(tmp_path, '--config.loss.style_weight=5.0', '--config.steps=2', '--start_over')
  _, err = proc.communicate()
  assert proc.returncode == 0, err
  assert _final_state(tmp_path)[0] == 2


def test_random_directions_resume_bit_for_bit(tmp_path):
  """'sliced' draws its directions from (seed, step): a run checkpointed at
  step 3 and continued to 6 ends where a 6-step run ends. Shallow layers: a
  program with host calls (the CPU's sort) is compiled anew by every run."""
  sliced = ('--config.loss.style_loss=sliced',
            '--config.loss.style_layers=("block1_conv1","block2_conv1")',
            '--config.loss.content_layers=("block2_conv2",)')
  run = lambda workdir, steps: subprocess.run(
      [sys.executable, '-m', 'jaxstyle.main', *ARGS, *sliced, f'--config.steps={steps}',
       f'--workdir={workdir}'], cwd=ROOT, capture_output=True, text=True, timeout=600)
  for workdir, steps in ((tmp_path / 'whole', 6), (tmp_path / 'parts', 3), (tmp_path / 'parts', 6)):
    result = run(workdir, steps)
    assert result.returncode == 0, result.stderr
  whole, parts = _final_state(tmp_path / 'whole'), _final_state(tmp_path / 'parts')
  assert whole[0] == parts[0] == 6
  np.testing.assert_array_equal(whole[1], parts[1])
