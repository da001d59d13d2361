"""The objective on tiny images and random VGG weights: known zeros, the
configured normalisation, gradients and initial images; several style
images, their blend weights and masks; one compile for every objective of a
shape, vmap over stacked objectives, extra terms and the settings' checks."""
import contextlib
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default, keras_example
from jaxstyle import checks, image, losses, objective, optimize, settings, start, style, vgg
from jaxstyle.app import config as config_lib
from jaxstyle.app import outputs
from jaxstyle.errors import InputError


@pytest.fixture(scope='module')
def variables():
  return vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))


def _rgb(seed, h=32, w=32):
  return np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)


def _initial(kind, content=None, style=None, seed=0, noise=0.0):
  """start.initial for these RGB images (default _rgb(0) and _rgb(1))."""
  content = _rgb(0) if content is None else content
  style = _rgb(1) if style is None else style
  return start.initial(kind, image.preprocess(content), image.preprocess(style), seed, noise)


def test_zero_content_loss_at_the_content_image(variables):
  obj = objective.make(_rgb(0), _rgb(1), variables=variables)
  terms = objective.terms(_initial('content'), obj)
  noise = objective.terms(_initial('noise'), obj)
  assert float(terms['content_loss']) <= 1e-9 * float(noise['content_loss'])
  assert float(terms['style_loss']) > 0.0


def test_zero_style_loss_at_the_style_image(variables):
  obj = objective.make(_rgb(0), _rgb(1), variables=variables)
  terms = objective.terms(image.preprocess(_rgb(1)), obj)
  assert float(terms['style_loss']) == pytest.approx(0.0, abs=1e-6 * float(
      objective.terms(image.preprocess(_rgb(0)), obj)['style_loss']))


def test_loss_is_the_weighted_sum_of_the_terms(variables):
  obj = objective.make(_rgb(0), _rgb(1), variables=variables, content_weight=2.0,
                       style_weight=30.0, tv_weight=0.5)
  x = _initial('noise', seed=3)
  t = objective.terms(x, obj)
  expected = 2.0 * t['content_loss'] + 30.0 * t['style_loss'] + 0.5 * t['tv_loss']
  assert float(t['loss']) == pytest.approx(float(expected), rel=1e-6)
  assert float(objective.loss(x, obj)) == pytest.approx(float(t['loss']))


def test_keras_preset_matches_the_loss_functions(variables):
  config = keras_example.get_config()
  content, style = _rgb(0, 32, 48), _rgb(1, 32, 40)
  obj = config_lib.make_objective(config, content, style, variables)
  x = _initial('noise', content, style, seed=1)
  model = vgg.VGG19(pooling='max')
  f = model.apply(variables, x)
  fc = model.apply(variables, image.preprocess(content))
  fs = model.apply(variables, image.preprocess(style))
  style_layers = config.loss.style_layers
  expected_style = sum(losses.style_loss(f[l], losses.style_target(fs[l]), 'keras', (32, 48))
                       for l in style_layers) / len(style_layers)
  expected_content = jnp.sum((f['block5_conv2'] - fc['block5_conv2']) ** 2)
  t = objective.terms(x, obj)
  assert float(t['style_loss']) == pytest.approx(float(expected_style), rel=1e-5)
  assert float(t['content_loss']) == pytest.approx(float(expected_content), rel=1e-5)
  assert float(t['tv_loss']) == pytest.approx(float(losses.tv_loss(x, 1.25)), rel=1e-6)


def test_style_layer_weights_select_layers(variables):
  layers = ('block1_conv1', 'block2_conv1')
  only_first = objective.make(_rgb(0), _rgb(1), variables=variables, style_layers=layers,
                              style_layer_weights=(1.0, 0.0))
  first = objective.make(_rgb(0), _rgb(1), variables=variables, style_layers=layers[:1])
  x = _initial('noise')
  assert float(objective.terms(x, only_first)['style_loss']) == pytest.approx(
      float(objective.terms(x, first)['style_loss']), rel=1e-6)


def test_value_and_grad_agrees_with_loss_and_finite_differences(variables):
  content, style = _rgb(0, 16, 16), _rgb(1, 16, 16)
  obj = objective.make(content, style, variables=variables, tv_weight=1e-3)
  x = _initial('noise', content, style)
  value, grad = objective.value_and_grad(x, obj)
  assert float(value) == pytest.approx(float(objective.loss(x, obj)))
  d = jnp.zeros_like(x).at[0, 5, 7, 1].set(0.5)
  numeric = (objective.loss(x + d, obj) - objective.loss(x - d, obj)) / 1.0
  assert float(grad[0, 5, 7, 1]) == pytest.approx(float(numeric), rel=2e-2)


def test_initial_images():
  content, style = _rgb(0, 32, 48), _rgb(1, 32, 40)
  initial = functools.partial(_initial, content=content, style=style)
  assert initial('style').shape == image.preprocess(content).shape == (1, 32, 48, 3)
  a, b = initial('noise', seed=1), initial('noise', seed=2)
  np.testing.assert_array_equal(a, initial('noise', seed=1))
  assert not np.array_equal(a, b)
  rgb = image.deprocess(a).astype(float)
  assert rgb.min() < 10 and rgb.max() > 245 and abs(rgb.mean() - 127.5) < 10
  np.testing.assert_array_equal(initial('uniform', seed=1), a)


def test_normal_init_is_seeded_gaussian_noise():
  initial = functools.partial(_initial, content=_rgb(0, 64, 64))
  a = initial('normal', seed=1)
  np.testing.assert_array_equal(a, initial('normal', seed=1))
  assert not np.array_equal(a, initial('normal', seed=2))
  rgb = np.asarray(a[0, ..., ::-1] + jnp.asarray(image.BGR_MEANS[::-1]))
  assert rgb.min() >= -1e-4 and rgb.max() <= 255 + 1e-4
  for channel in np.moveaxis(rgb, -1, 0):
    # Clipping at 127.5 ± 2σ lowers the std of N(127.5, 64²) to about 59.5.
    assert abs(channel.mean() - 127.5) < 3 and 56 < channel.std() < 63
  uniform = np.asarray(initial('uniform', seed=1)).ravel()
  assert abs(np.corrcoef(np.asarray(a).ravel(), uniform)[0, 1]) < 0.05


def test_image_file_init_is_the_file_at_the_content_size(tmp_path):
  initial = functools.partial(_initial, content=_rgb(0, 32, 48))
  path = tmp_path / 'init.png'
  image.save(path, _rgb(2, 40, 30))
  x = initial(str(path))
  assert x.shape == (1, 32, 48, 3)
  np.testing.assert_allclose(x, image.preprocess(image.load(path, height=32, width=48)))
  for bad in (tmp_path / 'missing.png', tmp_path):
    with pytest.raises(InputError, match=str(bad)):
      initial(str(bad))


@pytest.mark.parametrize('kind', ['content', 'style', 'normal'])
def test_init_noise_blends_towards_the_uniform_noise(kind):
  initial = functools.partial(_initial, content=_rgb(0, 32, 48), style=_rgb(1, 32, 40))
  begin, noise = initial(kind, seed=4), initial('uniform', seed=4)
  np.testing.assert_array_equal(initial(kind, seed=4, noise=0.0), begin)
  np.testing.assert_allclose(initial(kind, seed=4, noise=1.0), noise, atol=1e-4)
  np.testing.assert_allclose(initial(kind, seed=4, noise=0.25),
                             0.75 * begin + 0.25 * noise, atol=1e-3)


def test_image_too_small_for_the_layers(variables):
  with pytest.raises(InputError, match='at least 16 px'):
    objective.make(_rgb(0, 8, 32), _rgb(1), variables=variables)


def test_remat_and_precision_keep_the_objective(variables):
  base = objective.make(_rgb(0), _rgb(1), variables=variables, tv_weight=1e-3)
  x = _initial('noise')
  value, grad = objective.value_and_grad(x, base)
  for field, setting, rel in (('remat', True, 1e-6), ('precision', 'tf32', 1e-6),
                              ('precision', 'bf16', 5e-2), ('conv_algorithm', 'direct', 1e-5),
                              ('conv_algorithm', 'winograd', 1e-5)):
    other = objective.make(_rgb(0), _rgb(1), variables=variables, tv_weight=1e-3,
                           **{field: setting})
    v, g = objective.value_and_grad(x, other)
    assert float(v) == pytest.approx(float(value), rel=rel), (field, setting)
    cos = jnp.vdot(g, grad) / (jnp.linalg.norm(g) * jnp.linalg.norm(grad))
    assert float(cos) > 1 - rel, (field, setting)


def _product_precisions(jaxpr) -> list:
  """The precision of every matrix product and convolution in a jaxpr, its
  nested jaxprs (jit, custom derivatives, remat) included."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ('dot_general', 'conv_general_dilated'):
      found.append(eqn.params['precision'])
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        sub = getattr(sub, 'jaxpr', sub)
        if hasattr(sub, 'eqns'):
          found += _product_precisions(sub)
  return found


@pytest.mark.parametrize('precision, expected', [('highest', jax.lax.Precision.HIGHEST),
                                                 ('tf32', jax.lax.Precision.HIGH)])
@pytest.mark.parametrize('masked', [False, True])
def test_every_product_runs_at_the_configured_precision(variables, precision, expected, masked):
  """The Grams too, forward and backward, and the targets': JAX's default
  for a float32 product is TF32 on recent GPUs, which 'highest' must not get."""
  if masked:  # guided Grams, and remat's path through the network
    mask = _mask(32, 32, slice(0, 16))
    style, extra = [_rgb(1), _rgb(2)], dict(style_masks=(mask, mask), remat=True)
  else:
    style, extra = _rgb(1), {}
  obj = objective.make(_rgb(0), style, variables=variables, tv_weight=1e-3,
                       precision=precision, **extra)
  x = _initial('noise')
  spec = obj.spec
  solve = jax.make_jaxpr(objective.value_and_grad)(x, obj)
  targets = jax.make_jaxpr(functools.partial(
      objective.targets, content_layers=spec.content_layers, style_layers=spec.style_layers,
      pooling=spec.pooling, precision=spec.precision))(obj.variables, image.preprocess(_rgb(0)))
  found = _product_precisions(solve.jaxpr) + _product_precisions(targets.jaxpr)
  assert found and set(found) == {(expected, expected)}, set(found)


def test_auto_conv_algorithm_is_winograd_on_cpu_at_full_precision_only():
  config = default.get_config()
  assert jax.default_backend() == 'cpu'
  assert config_lib.spec(config).winograd
  for field, setting in (('precision', 'tf32'), ('shard_spatial', True),
                         ('conv_algorithm', 'direct')):
    other = default.get_config()
    other[field] = setting
    assert not config_lib.spec(other).winograd, (field, setting)


def test_prepare_adds_or_drops_the_winograd_kernels(variables):
  winograd = objective.spec(conv_algorithm='winograd')
  direct = dataclasses.replace(winograd, winograd=False)
  prepared = winograd.prepare(vgg.with_flipped_kernels(variables))
  assert vgg.WINOGRAD in prepared
  assert winograd.prepare(prepared) is prepared
  back = direct.prepare(prepared)
  upto = vgg.LAYER_NAMES[:max(vgg.LAYER_NAMES.index(l) for l in direct.layers) + 1]
  assert vgg.WINOGRAD not in back and sorted(back[vgg.FLIPPED]) == sorted(upto)
  assert sorted(back['params']) == sorted(upto) and len(upto) < len(vgg.LAYER_NAMES)


def _mask(h, w, columns):
  """A style mask, (h, w) in 0..1: 1 in `columns` (a slice), 0 elsewhere."""
  mask = np.zeros((h, w), np.float32)
  mask[:, columns] = 1.0
  return mask


def test_a_style_with_blend_weight_zero_is_irrelevant(variables):
  alone = objective.make(_rgb(0), _rgb(1), variables=variables, tv_weight=1e-3)
  both = objective.make(_rgb(0), [_rgb(1), _rgb(2, 40, 48)], variables=variables,
                        style_blend_weights=(1.0, 0.0), tv_weight=1e-3)
  x = _initial('noise')
  value, grad = objective.value_and_grad(x, alone)
  both_value, both_grad = objective.value_and_grad(x, both)
  assert float(both_value) == pytest.approx(float(value), rel=1e-6)
  np.testing.assert_allclose(both_grad, grad, rtol=1e-5, atol=1e-6 * float(jnp.abs(grad).max()))


@pytest.mark.parametrize('blend, shares', [((3.0, 7.0), (0.3, 0.7)), (None, (0.5, 0.5))])
def test_style_loss_is_the_blend_of_the_per_style_losses(variables, blend, shares):
  styles = [_rgb(1), _rgb(2, 40, 48)]
  x = _initial('noise')
  each = [float(objective.terms(x, objective.make(_rgb(0), s, variables=variables))
                ['style_loss']) for s in styles]
  obj = objective.make(_rgb(0), styles, variables=variables, style_blend_weights=blend)
  np.testing.assert_allclose(obj.weights.style_blend, shares, rtol=1e-6)
  assert float(objective.terms(x, obj)['style_loss']) == pytest.approx(
      shares[0] * each[0] + shares[1] * each[1], rel=1e-5)


def test_style_images_must_match_the_settings(variables):
  with pytest.raises(InputError, match='2 style image'):
    objective.make(_rgb(0), [_rgb(1), _rgb(2)], variables=variables, style_blend_weights=(1.0,))
  with pytest.raises(InputError, match='2 style image'):
    objective.make(_rgb(0), [_rgb(1), _rgb(2)], variables=variables,
                   style_masks=(_mask(32, 32, slice(None)),))
  with pytest.raises(InputError, match='style 2 image is 8x32 px'):
    objective.make(_rgb(0), [_rgb(1), _rgb(2, 32, 8)], variables=variables)


def test_an_all_white_mask_changes_nothing(variables):
  plain = objective.make(_rgb(0, 32, 48), _rgb(1), variables=variables)
  masked = objective.make(_rgb(0, 32, 48), _rgb(1), variables=variables,
                          style_masks=(_mask(32, 48, slice(None)),))
  assert masked.style.masks['block5_conv1'].shape == (1, 2, 3)
  x = _initial('noise', _rgb(0, 32, 48))
  assert float(objective.loss(x, masked)) == pytest.approx(float(objective.loss(x, plain)),
                                                           rel=1e-5)


def test_a_mask_confines_the_style_to_its_region(variables):
  """block1_conv1 sees 3x3 px: with the left 16 columns masked in, pixels from
  column 17 on reach no masked position."""
  obj = objective.make(_rgb(0), _rgb(1), variables=variables, content_layers=(),
                       style_layers=('block1_conv1',), style_masks=(_mask(32, 32, slice(0, 16)),))
  x = _initial('noise')
  changed = x.at[:, :, 17:].set(_initial('noise', seed=5)[:, :, 17:])
  assert float(objective.loss(changed, obj)) == pytest.approx(float(objective.loss(x, obj)),
                                                              rel=1e-6)
  _, grad = objective.value_and_grad(x, obj)
  assert float(jnp.abs(grad[:, :, 17:]).max()) == 0.0
  assert float(jnp.abs(grad[:, :, :15]).min()) > 0.0


def test_a_black_mask_is_refused(variables, tmp_path):
  black = _mask(32, 32, slice(0, 0))
  with pytest.raises(checks.SettingError, match='^style_masks: mask 1 of 1 is black on every '
                     'position of block1_conv1; ') as e:
    objective.make(_rgb(0), _rgb(1), variables=variables, style_masks=(black,))
  assert e.value.name == 'style_masks'
  # Through the app, the config field that names the mask files.
  config = default.get_config()
  image.save(tmp_path / 'black.png', np.zeros((32, 32, 3), np.uint8))
  config.style_masks = (str(tmp_path / 'black.png'),)
  with pytest.raises(InputError, match='^config.style_masks: mask 1 of 1 is black'):
    config_lib.make_objective(config, _rgb(0), _rgb(1), variables)


def _no_report(x, aux, obj):
  return 0.0


# The default config's L-BFGS settings.
LBFGS = dict(history_size=10, linesearch='strong_wolfe', max_linesearch=20)


def test_two_masked_styles_paint_their_own_halves(variables):
  red, blue = (np.clip(_rgb(s, 32, 32) * 0.2 + c, 0, 255) for s, c in
               ((1, (200.0, 20.0, 20.0)), (2, (20.0, 20.0, 200.0))))
  masks = (_mask(32, 32, slice(0, 16)), _mask(32, 32, slice(16, None)))
  obj = objective.make(_rgb(0), [red, blue], variables=variables, style_masks=masks,
                       content_layers=(), style_layers=('block1_conv1', 'block2_conv1'))
  solver = optimize.make('lbfgs', objective.loss_and_terms, **LBFGS)
  x = optimize.minimize(solver, _no_report, _initial('uniform'), obj, [0, 30],
                        lambda *_: None).x
  rgb = image.deprocess(x).astype(np.float64)
  left, right = rgb[:, :12].mean(axis=(0, 1)), rgb[:, 20:].mean(axis=(0, 1))
  assert left[0] - left[2] > 60 and right[2] - right[0] > 60, (left, right)


LAYERS = dict(content_layers=('block2_conv2',), style_layers=('block1_conv1', 'block2_conv1'))


def test_normalized_gradients_are_each_terms_unit_l1_gradient_times_its_weight(variables):
  """With normalize_gradients the loss is the same, and the image's gradient
  is what each term pushing its layer's features with L1 norm equal to its
  weight gives: α at the content layer, β·w_l at each style layer."""
  weights = dict(content_weight=2.0, style_weight=30.0, style_layer_weights=(0.25, 0.75),
                 **LAYERS)
  plain = objective.make(_rgb(0), _rgb(1), variables=variables, **weights)
  normalized = objective.make(_rgb(0), _rgb(1), variables=variables, normalize_gradients=True,
                              **weights)
  x = _initial('noise')
  value, grad = objective.value_and_grad(x, normalized)
  assert float(value) == pytest.approx(float(objective.loss(x, plain)), rel=1e-6)

  feats, backward = jax.vjp(lambda x: plain.spec.features(plain.variables, x), x)
  unit = lambda g: g / jnp.sum(jnp.abs(g))
  push = {l: jnp.zeros_like(f) for l, f in feats.items()}
  push['block2_conv2'] += 2.0 * unit(jax.grad(losses.content_loss)(
      feats['block2_conv2'], plain.content['block2_conv2']))
  for layer, layer_weight in zip(LAYERS['style_layers'], (0.25, 0.75)):
    push[layer] += 30.0 * layer_weight * unit(jax.grad(losses.blended_style_loss)(
        feats[layer], plain.style.stats[layer], plain.weights.style_blend))
  expected, = backward(push)
  np.testing.assert_allclose(grad, expected, rtol=1e-4,
                             atol=1e-5 * float(jnp.abs(expected).max()))
  assert float(jnp.abs(grad - objective.value_and_grad(x, plain)[1]).max()) > 1e-3  # changed


def test_lbfgs_decreases_the_loss_with_normalized_gradients(variables):
  obj = objective.make(_rgb(0), _rgb(1), variables=variables, normalize_gradients=True,
                       **LAYERS)
  solver = optimize.make('lbfgs', objective.loss_and_terms, **LBFGS)
  x0 = _initial('uniform')
  x = optimize.minimize(solver, _no_report, x0, obj, [0, 5], lambda *_: None).x
  assert float(objective.loss(x, obj)) < 0.5 * float(objective.loss(x0, obj))


@pytest.mark.parametrize('normalize', [False, True])
def test_grad_norms_are_the_norms_of_each_weighted_terms_gradient(variables, normalize):
  obj = objective.make(_rgb(0), _rgb(1), variables=variables, content_weight=2.0,
                       style_weight=30.0, tv_weight=1e-3, normalize_gradients=normalize,
                       **LAYERS)
  x = _initial('noise')
  got = jax.jit(outputs.report_with_grad_norms)(x, objective.terms(x, obj), obj)
  assert set(objective.GRAD_NORMS) <= set(got)
  for name, term, weight in (('grad_norm_content', 'content_loss', 2.0),
                             ('grad_norm_style', 'style_loss', 30.0),
                             ('grad_norm_tv', 'tv_loss', 1e-3)):
    grad = jax.grad(lambda x: weight * objective.terms_of(x, obj)[term])(x)
    assert float(got[name]) == pytest.approx(float(jnp.linalg.norm(grad)), rel=1e-5), name
    assert float(got[name]) > 0


@contextlib.contextmanager
def _compiles():
  """Within: the list of XLA backend compiles so far, one duration each."""
  found = []

  def listen(event, duration, **kwargs):
    if event == '/jax/core/compile/backend_compile_duration':
      found.append(duration)

  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    yield found
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)


def test_one_compile_serves_every_objective_of_a_shape(variables):
  """Weights, targets and VGG variables are arguments, not constants: a
  second objective of the same shapes (other weights, other content, a style
  of another size) runs the first one's program."""
  first = objective.make(_rgb(0), _rgb(1), variables=variables, tv_weight=1e-3)
  second = objective.make(_rgb(2), _rgb(3, 40, 48), variables=variables, content_weight=2.0,
                          style_weight=30.0, tv_weight=0.5, tv_power=1.5,
                          style_layer_weights=(0.1, 0.2, 0.3, 0.2, 0.2))
  x = _initial('noise')
  expected = objective.value_and_grad(x, second)
  value_and_grad = jax.jit(objective.value_and_grad)
  jax.block_until_ready(value_and_grad(x, first))
  with _compiles() as compiles:
    value, grad = jax.block_until_ready(value_and_grad(x, second))
  assert compiles == []
  assert float(value) == pytest.approx(float(expected[0]), rel=1e-6)
  np.testing.assert_allclose(grad, expected[1], rtol=1e-5,
                             atol=1e-6 * float(jnp.abs(expected[1]).max()))
  assert float(value) != pytest.approx(float(value_and_grad(x, first)[0]), rel=1e-3)
  size = sum(leaf.nbytes for leaf in jax.tree.leaves(first.variables))
  assert len(value_and_grad.lower(x, first).as_text()) < size / 10


def test_vmap_over_stacked_objectives_evaluates_each(variables):
  objs = [objective.make(_rgb(i), _rgb(10 + i), variables=variables, content_weight=1.0 + i,
                         style_weight=10.0**i, tv_weight=1e-3 * i, **LAYERS) for i in range(3)]
  x = _initial('noise')
  got = jax.vmap(objective.loss, in_axes=(None, 0))(x, objective.stack(objs))
  expected = [float(objective.loss(x, o)) for o in objs]
  assert len(set(expected)) == 3
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  other_layers = objective.make(_rgb(0), _rgb(1), variables=variables,
                                content_layers=LAYERS['content_layers'],
                                style_layers=LAYERS['style_layers'][:1])
  other_size = objective.make(_rgb(0, 32, 48), _rgb(1), variables=variables, **LAYERS)
  for other in (other_layers, other_size):
    with pytest.raises(InputError, match='^objective.stack: '):
      objective.stack([*objs, other])


def _mean_at_block3_conv1(features, x):
  return jnp.mean(features['block3_conv1'])


@pytest.mark.parametrize('conv_algorithm', ['direct', 'winograd'])
def test_an_extra_term_is_weighted_into_the_loss_from_the_same_forward_pass(variables,
                                                                            conv_algorithm):
  base = objective.make(_rgb(0), _rgb(1), variables=variables, conv_algorithm=conv_algorithm)
  extra = objective.make(_rgb(0), _rgb(1), variables=variables, conv_algorithm=conv_algorithm,
                         extra_terms={'mean': (0.5, _mean_at_block3_conv1)},
                         extra_layers=('block3_conv1',))
  x = _initial('noise')
  features = vgg.VGG19(pooling='avg').apply(variables, x, layers=('block3_conv1',))
  mean = float(jnp.mean(features['block3_conv1']))
  t = objective.terms(x, extra)
  assert set(t) == set(objective.terms(x, base)) | {'mean'}
  assert float(t['mean']) == pytest.approx(mean, rel=1e-5)
  assert float(objective.loss(x, extra)) == pytest.approx(
      float(objective.loss(x, base)) + 0.5 * mean, rel=1e-6)

  def count(obj, op):
    return jax.jit(objective.loss).lower(x, obj).as_text().count(f'stablehlo.{op}')

  for op in ('convolution', 'dot_general'):
    assert count(extra, op) == count(base, op), op
  if conv_algorithm == 'direct':  # one forward pass: block1_conv1 .. block5_conv1
    assert count(base, 'convolution') == vgg.LAYER_NAMES.index('block5_conv1') + 1


def test_terms_report_each_style_layers_part_of_the_style_loss(variables):
  layer_weights = (0.1, 0.2, 0.3, 0.25, 0.15)
  obj = objective.make(_rgb(0), _rgb(1), variables=variables, style_layer_weights=layer_weights)
  x = _initial('noise')
  t = objective.terms(x, obj)
  layers = settings.DEFAULTS['style_layers']
  per_layer = [f'style/{l}' for l in layers]
  assert set(t) == {*objective.TERMS, *per_layer}
  assert all(float(t[k]) > 0 for k in per_layer)
  assert float(sum(t[k] for k in per_layer)) == pytest.approx(float(t['style_loss']),
                                                               rel=1e-6)
  # Each is w_l·E_l: E_l is the style loss of that layer alone.
  alone = objective.make(_rgb(0), _rgb(1), variables=variables, style_layers=(layers[1],))
  assert float(t[f'style/{layers[1]}']) == pytest.approx(
      layer_weights[1] * float(objective.terms(x, alone)['style_loss']), rel=1e-5)


@pytest.mark.parametrize('setting, value, expected', [
    ('style_wieght', 1.0, "unknown objective setting 'style_wieght'"),
    ('style_weight', -1, 'style_weight: must be a finite number ≥ 0; got -1'),
    ('pooling', 'min', "pooling: must be one of max, avg; got 'min'"),
    ('content_layers', ('conv9',), 'content_layers: unknown VGG19 layer(s) conv9'),
])
def test_a_bad_setting_is_one_line_naming_it(variables, setting, value, expected):
  with pytest.raises(InputError) as e:
    objective.make(_rgb(0), _rgb(1), variables=variables, **{setting: value})
  message = str(e.value)
  assert len(message.splitlines()) == 1 and message.startswith(expected), message
  if setting in settings.DEFAULTS:
    assert isinstance(e.value, checks.SettingError) and e.value.name == setting


def test_the_defaults_are_the_model_and_the_default_configs():
  assert vgg.VGG19().pooling == settings.DEFAULTS['pooling']
  config_only = ('style_masks', 'extra_terms', 'extra_layers')
  assert config_lib.objective_settings(default.get_config()) == {
      k: v for k, v in settings.DEFAULTS.items() if k not in config_only}


@pytest.mark.parametrize('kind', sorted(style.KINDS))
def test_each_style_loss_is_its_distance_blended_over_the_style_images(variables, kind):
  layers = ('block1_conv1', 'block2_conv1')
  content, styles = _rgb(0), [_rgb(1), _rgb(2)]
  obj = objective.make(content, styles, variables=variables, style_layers=layers,
                       content_layers=(), style_loss=kind, style_blend_weights=(1.0, 3.0),
                       style_layer_weights=(0.5, 2.0))
  x = image.preprocess(_rgb(3))
  terms = objective.terms(x, obj)
  model = vgg.VGG19()
  f = model.apply(variables, x, layers=layers)
  loss = style.KINDS[kind]
  for i, (layer, w_l) in enumerate(zip(layers, (0.5, 2.0))):
    key = jax.random.fold_in(obj.weights.key, i) if loss.random else None
    want = sum(blend * loss.distance(
        f[layer], loss.target(model.apply(variables, image.preprocess(s), layers=layers)[layer]),
        None, key, 'gatys', x.shape[1:3]) for blend, s in zip((0.25, 0.75), styles))
    assert float(terms[f'style/{layer}']) == pytest.approx(w_l * float(want), rel=1e-4)
  assert float(obj.weights.style) == loss.weight  # β unset: the loss's own


def test_sliced_directions_change_with_the_step_and_the_seed(variables):
  obj = objective.make(_rgb(0), _rgb(1), variables=variables, style_loss='sliced',
                       style_layers=('block1_conv1',), content_layers=())
  x = image.preprocess(_rgb(3))
  at = lambda o, step: float(objective.loss(x, objective.at_step(o, step)))
  assert at(obj, 1) == at(obj, 1) != at(obj, 2)
  other_seed = objective.make(_rgb(0), _rgb(1), variables=variables, style_loss='sliced',
                              style_layers=('block1_conv1',), content_layers=(), seed=1)
  assert at(other_seed, 1) != at(obj, 1)


def test_mrf_has_no_masked_form_and_needs_a_patch_per_layer(variables):
  with pytest.raises(InputError, match="style_masks: style_loss 'mrf' has no masked form"):
    objective.make(_rgb(0), _rgb(1), variables=variables, style_loss='mrf',
                   style_masks=(np.ones((32, 32)),))
  with pytest.raises(InputError, match='need at least 48 px'):
    objective.make(_rgb(0), _rgb(1), variables=variables, style_loss='mrf',
                   style_layers=('block5_conv1',))


def test_swapped_means_feed_the_network_the_aalborg_notebooks_arrays(variables):
  """With preprocessing 'swapped_means' the network sees the notebook's arrays
  of x's image and of the style, and 'keras' is its style loss, written out:
  Σ(S−C)²/(4·channels²·size²) with channels = 3, size = H·W, weight 5 / L."""
  style, out = _rgb(1), _rgb(2)
  layers = ('block1_conv2', 'block2_conv2')
  settings_ = dict(content_layers=(), style_layers=layers, content_weight=0.0, style_weight=5.0,
                   normalization='keras', conv_algorithm='direct')
  obj = objective.make(_rgb(0), style, variables=variables, preprocessing='swapped_means',
                       **settings_)
  features = lambda rgb: vgg.VGG19().apply(
      variables, image.preprocess(rgb, 'swapped_means'), layers=layers)
  style_features, out_features = features(style), features(out)

  def gram(f):
    f = np.asarray(f[0], np.float64)
    f = f.reshape(-1, f.shape[-1])
    return f.T @ f

  channels, size = 3, 32 * 32
  expected = sum(5.0 / len(layers) * np.sum((gram(style_features[l]) - gram(out_features[l]))**2)
                 / (4. * (channels ** 2) * (size ** 2)) for l in layers)
  x = image.preprocess(out)  # the solve's variable stays in 'caffe' space
  assert float(objective.loss(x, obj)) == pytest.approx(expected, rel=1e-4)
  caffe = objective.make(_rgb(0), style, variables=variables, **settings_)
  assert float(objective.loss(x, caffe)) != pytest.approx(expected, rel=1e-2)
