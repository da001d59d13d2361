"""shard_spatial: one image split along its width over 4 (CPU) devices gives
the loss, gradient and L-BFGS solve of the unsplit image."""
import pathlib

import jax
import four_devices
import numpy as np
from PIL import Image

from configs import default
from jaxstyle import image, objective, spatial, start
from jaxstyle.app import checkpoint, inputs, run
from jaxstyle.app import config as config_lib



def _config(workdir: pathlib.Path, remat: bool = False, width: int = 32):
  """Two tiny pictures 24 px high, three shallow layers, and L-BFGS with the
  backtracking line search: quicker to compile for 4 devices than zoom."""
  rng = np.random.default_rng(0)
  for name in ('content', 'style'):
    path = workdir / f'{name}_{width}.png'
    if not path.exists():
      Image.fromarray(rng.integers(0, 256, (24, width, 3), np.uint8)).save(path)
  config = default.get_config()
  config.update(dict(content=str(workdir / f'content_{width}.png'),
                     style=str(workdir / f'style_{width}.png'), height=24, steps=3,
                     remat=remat, tensorboard=False, compilation_cache=False))
  config.loss.content_layers = ('block2_conv2',)
  config.loss.style_layers = ('block1_conv1', 'block2_conv1')
  config.optim.lbfgs.linesearch = 'backtracking'
  return config


def solve(workdir: str, shard: bool) -> dict[str, np.ndarray]:
  """Loss and gradient at 24x32 px, with and without remat, and run.run's
  image after 3 L-BFGS steps (with remat)."""
  workdir = pathlib.Path(workdir)
  out = {}
  for remat in (False, True):
    config = _config(workdir, remat)
    content, style = inputs.load_inputs(config, workdir)
    obj = config_lib.make_objective(config, content, style)
    x = start.initial('uniform', image.preprocess(content), image.preprocess(style), 1)
    if shard:
      x, obj = spatial.shard((x, obj), x.shape)
    compiled = objective.value_and_grad.lower(x, obj).compile()
    out[f'loss_{remat}'], grad = compiled(x, obj)
    out[f'grad_{remat}'] = grad
    if shard:
      assert grad.sharding.spec == jax.sharding.PartitionSpec(None, None, spatial.AXIS, None)
      hlo = compiled.as_text()
      assert 'collective-permute' in hlo and 'all-reduce' in hlo  # halo exchange; Grams
  config = _config(workdir, remat=True)
  config.shard_spatial = shard
  rundir = workdir / f'run_{shard}'
  assert Image.open(run.run(config, rundir)).size == (32, 24)
  with np.load(rundir / checkpoint.FILENAME) as f:
    out['final'] = f['leaf_000']
  out = {k: np.asarray(v) for k, v in out.items()}
  np.savez(workdir / f'{shard}.npz', **out)
  return out


def test_four_devices_match_one(tmp_path):
  four_devices.run('test_spatial', f'solve({str(tmp_path)!r}, True)')
  assert jax.device_count() == 1
  with np.load(tmp_path / 'True.npz') as f:
    sharded = dict(f)
  unsharded = solve(str(tmp_path), False)
  for remat in (False, True):
    np.testing.assert_allclose(sharded[f'loss_{remat}'], unsharded[f'loss_{remat}'], rtol=1e-5)
    grad = unsharded[f'grad_{remat}']
    np.testing.assert_allclose(sharded[f'grad_{remat}'], grad, atol=1e-4 * np.abs(grad).max())
  np.testing.assert_allclose(sharded['final'], unsharded['final'], atol=1e-2)


def test_width_is_rounded_to_a_multiple_of_the_devices(tmp_path):
  config = _config(tmp_path, width=30)
  content, _ = inputs.load_inputs(config, tmp_path, width_multiple=4)
  assert content.shape == (24, 32, 3)
  assert inputs.load_inputs(config, tmp_path)[0].shape == (24, 30, 3)
