"""The objective tile by tile against the whole image at once, on random VGG
weights and images of odd sizes that the tiles cut through: every term,
the input gradient and the targets agree to float32 rounding for each loss
that is a sum over positions, with masks and blends; the grid and the halo;
the combinations that cannot be tiled, refused."""
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import image, objective, optimize, tiles, tiling, vgg
from jaxstyle.errors import InputError

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHALLOW = dict(content_layers=('block2_conv2',),
               style_layers=('block1_conv1', 'block2_conv1', 'block3_conv1'))
# Layers where every style layer has at least as many positions as channels
# at 45x37 px, as 'w2' takes its covariance from the sums only there.
BLOCK2 = dict(content_layers=('block2_conv2',), style_layers=('block1_conv1', 'block2_conv1'))


@pytest.fixture(scope='module')
def variables():
  return vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))


def _rgb(seed, h=45, w=37):
  return np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)


def _objectives(variables, tile, content=None, style=None, **settings):
  """The objective of these images and settings, at once and tile by tile."""
  content = _rgb(0) if content is None else content
  style = _rgb(1, 30, 34) if style is None else style
  return [objective.make(content, style, variables=variables, tile=t, **settings)
          for t in (0, tile)]


_TERMS_AND_GRAD = jax.jit(jax.value_and_grad(objective.loss_and_terms, has_aux=True))


def _assert_same(whole, tiled, x):
  """Every term to 1e-5, the gradient's difference to 1e-4 of its norm."""
  (_, a), ga = _TERMS_AND_GRAD(x, whole)
  (_, b), gb = _TERMS_AND_GRAD(x, tiled)
  assert a.keys() == b.keys()
  for name in a:
    assert float(b[name]) == pytest.approx(float(a[name]), rel=1e-5), name
  assert float(jnp.linalg.norm(gb - ga)) <= 1e-4 * float(jnp.linalg.norm(ga))


def _smooth(h=30, w=34):
  """Colour ramps: statistics far from a noise image's."""
  rows, cols = np.mgrid[0:h, 0:w]
  return np.stack([255 * rows / h, 255 * cols / w, np.full((h, w), 128.0)], -1).astype(np.float32)


def _x(seed=2, h=45, w=37):
  return image.preprocess(_rgb(seed, h, w))


# 'w2' is a difference of traces, tr Σ_F + tr Σ_S − 2 tr(Σ_S^½ Σ_F Σ_S^½)^½:
# between two noise images it is some 10^4 times smaller than the traces,
# and the float32 rounding of the sums, tiled or not, is amplified as much
# (a relative 4e-5 between them seen, each as far from float64). A smooth
# style keeps it well above its rounding.
@pytest.mark.parametrize('style_loss, normalization, pooling, layers, style, tile_remat', [
    ('gram', 'gatys', 'avg', SHALLOW, None, False), ('gram', 'gatys', 'avg', SHALLOW, None, True),
    ('gram', 'keras', 'max', SHALLOW, None, False), ('gram', 'keras', 'max', SHALLOW, None, True),
    ('mean_std', 'gatys', 'avg', SHALLOW, None, False),
    ('w2', 'gatys', 'avg', BLOCK2, _smooth(), False), ('mrf', 'gatys', 'max', BLOCK2, None, False),
    ('mrf', 'gatys', 'max', BLOCK2, None, True)])
def test_tiled_terms_and_gradient_are_the_whole_images(variables, style_loss, normalization,
                                                        pooling, layers, style, tile_remat):
  whole, tiled = _objectives(variables, 16, style=style, style_loss=style_loss,
                             normalization=normalization, pooling=pooling, tv_weight=1e-3,
                             tile_remat=tile_remat, **layers)
  g = tiling.grid_of((45, 37), tiled.spec)
  assert g.count == 9
  assert tiling.keeps(g, tiled.spec.layers, pooling, tile_remat) is not tile_remat
  _assert_same(whole, tiled, _x())


def test_kept_bytes_are_what_the_forward_pass_keeps(variables):
  for pooling, layers, style_loss in (('avg', SHALLOW, 'gram'), ('max', BLOCK2, 'mrf')):
    obj = objective.make(_rgb(0), _rgb(1, 30, 34), variables=variables, tile=16,
                         pooling=pooling, style_loss=style_loss, **layers)
    x = _x()
    plan = obj.spec, tiling.grid_of(x.shape[1:3], obj.spec)
    parts = (obj.variables, obj.content, obj.style.stats, obj.style.masks)
    kept = jax.eval_shape(lambda: tiles._forward(plan, x, parts, keep=True)[1])
    patch_layers = obj.spec.style_layers if style_loss == 'mrf' else ()
    expected, _ = tiling.kept_bytes(plan[1], obj.spec.layers, pooling, patch_layers)
    assert sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(kept)) == expected


def test_tiled_targets_are_the_whole_images(variables):
  for style_loss in ('gram', 'mean_std', 'w2', 'mrf'):
    whole, tiled = _objectives(variables, 16, style_loss=style_loss, **BLOCK2)
    np.testing.assert_allclose(tiled.content['block2_conv2'], whole.content['block2_conv2'],
                               rtol=1e-5, atol=1e-5)
    for l in BLOCK2['style_layers']:
      for a, b in zip(jax.tree.leaves(whole.style.stats[l]), jax.tree.leaves(tiled.style.stats[l])):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(a))))


def test_masked_blend_of_two_styles(variables):
  mask = np.zeros((45, 37), np.float32)
  mask[:, :20] = 1.0
  mask[10:30, 18:25] = 0.5
  styles = [_rgb(1, 30, 34), _rgb(3, 40, 28)]
  for masks in (None, (mask, 1.0 - mask)):
    whole, tiled = _objectives(variables, 16, style=styles, style_masks=masks,
                               style_blend_weights=(0.3, 0.7), **SHALLOW)
    _assert_same(whole, tiled, _x())


def test_default_layers_at_the_smallest_size_tiles_cut(variables):
  whole, tiled = _objectives(variables, 32, content=_rgb(0, 49, 35), style=_rgb(1, 48, 48))
  assert tiling.grid_of((49, 35), tiled.spec).count == 4
  _assert_same(whole, tiled, _x(2, 49, 35))


def test_receptive_fields_and_halo():
  assert tiling.receptive_field('block1_conv1') == 3
  assert tiling.receptive_field('block2_conv1') == 10
  assert tiling.receptive_field('block5_conv1') == 156
  spec = objective.spec(tile=32)  # default layers, deepest block5_conv1
  assert tiling.halo(spec.layers) == 80  # its field reaches 70 px beyond a position
  assert tiling.halo(('block2_conv1',), ('block2_conv1',)) == 6  # 4 px, and a position of 2
  assert tiling.grid_of((100, 49), spec) == tiling.Grid((100, 49), (32, 32), (4, 2), 80)


def test_a_tile_larger_than_the_image_is_one_tile_of_its_size():
  spec = objective.spec(tile=512, **SHALLOW)
  assert tiling.grid_of((45, 37), spec) == tiling.Grid((45, 37), (48, 40), (1, 1), 12)


@pytest.mark.parametrize('setting, expected', [
    (dict(style_loss='histogram'), "style_loss 'histogram' sorts the whole image's features"),
    (dict(style_loss='sliced'), "style_loss 'sliced' sorts the whole image's features"),
    (dict(normalize_gradients=True), 'normalize_gradients divides by the L1 norm'),
    (dict(extra_terms={'zero': (1.0, lambda f, x: 0.0)}), 'extra_terms are functions'),
    (dict(tile=40), '40 px is not a multiple of 16 px, the stride of block5_conv1; try 32 or 48'),
    (dict(tile=-16), 'must be in [0, ∞]')])
def test_what_tiles_cannot_add_up_is_refused_in_one_line(setting, expected):
  with pytest.raises(InputError) as error:
    objective.spec(**{'tile': 32, **setting})
  assert str(error.value).startswith('tile: ') and expected in str(error.value)
  assert '\n' not in str(error.value)


def test_auto_and_zero_are_untiled_with_every_loss():
  for style_loss in ('histogram', 'sliced'):
    assert objective.spec(tile='auto', style_loss=style_loss).tile == 0
    assert objective.spec(tile=0, style_loss=style_loss).tile == 0


def test_two_lbfgs_steps_tiled_are_the_untiled_ones(variables):
  whole, tiled = _objectives(variables, 16, style_weight=1e3, **BLOCK2)
  x0 = _x()
  a, _ = optimize.solve(x0, whole, steps=2)
  b, _ = optimize.solve(x0, tiled, steps=2)
  assert float(jnp.linalg.norm(b - a)) <= 1e-3 * float(jnp.linalg.norm(a - x0))


def two_devices_agree() -> None:
  """Run under two forced CPU devices: the tiles shared between them."""
  assert jax.device_count() == 2
  v = vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  mask = np.zeros((45, 37), np.float32)
  mask[5:40, 3:30] = 1.0
  for masks in (None, (mask,)):  # 9 tiles: the second device's share ends in an empty one
    for tile_remat in (True, False):
      whole, tiled = _objectives(v, 16, style_masks=masks, tv_weight=1e-3,
                                 tile_remat=tile_remat, **BLOCK2)
      _assert_same(whole, tiled, _x())


def test_tiles_shared_by_two_devices_give_the_untiled_result():
  code = ('import sys; sys.path.insert(0, "tests"); import test_tiles; '
          'test_tiles.two_devices_agree()')
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=2'}
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
