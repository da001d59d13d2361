"""The objective on tiny images and random VGG weights: known zeros, the
configured normalisation, gradients and initial images; several style
images, their blend weights and masks."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default, keras_example
from jaxstyle import image, losses, main, objective, optimize, vgg
from jaxstyle.errors import InputError


@pytest.fixture(scope='module')
def variables():
  return vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))


def _rgb(seed, h=32, w=32):
  return np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)


def _config(base=default, **loss):
  config = base.get_config()
  config.loss.update(loss)
  return config


def test_zero_content_loss_at_the_content_image(variables):
  obj = objective.build(_config(), _rgb(0), _rgb(1), variables)
  terms = obj.terms(obj.initial('content'))
  noise = obj.terms(obj.initial('noise'))
  assert float(terms['content_loss']) <= 1e-9 * float(noise['content_loss'])
  assert float(terms['style_loss']) > 0.0


def test_zero_style_loss_at_the_style_image(variables):
  obj = objective.build(_config(), _rgb(0), _rgb(1), variables)
  terms = obj.terms(obj.style)
  assert float(terms['style_loss']) == pytest.approx(0.0, abs=1e-6 * float(
      obj.terms(obj.content)['style_loss']))


def test_loss_is_the_weighted_sum_of_the_terms(variables):
  config = _config(content_weight=2.0, style_weight=30.0, tv_weight=0.5)
  obj = objective.build(config, _rgb(0), _rgb(1), variables)
  t = obj.terms(obj.initial('noise', seed=3))
  expected = 2.0 * t['content_loss'] + 30.0 * t['style_loss'] + 0.5 * t['tv_loss']
  assert float(t['loss']) == pytest.approx(float(expected), rel=1e-6)
  assert float(obj.loss(obj.initial('noise', seed=3))) == pytest.approx(float(t['loss']))


def test_keras_preset_matches_the_loss_functions(variables):
  config = keras_example.get_config()
  content, style = _rgb(0, 32, 48), _rgb(1, 32, 40)
  obj = objective.build(config, content, style, variables)
  x = obj.initial('noise', seed=1)
  model = vgg.VGG19(pooling='max')
  f = model.apply(variables, x)
  fc = model.apply(variables, image.preprocess(content))
  fs = model.apply(variables, image.preprocess(style))
  style_layers = config.loss.style_layers
  expected_style = sum(losses.style_loss(f[l], losses.style_target(fs[l]), 'keras', (32, 48))
                       for l in style_layers) / len(style_layers)
  expected_content = jnp.sum((f['block5_conv2'] - fc['block5_conv2']) ** 2)
  t = obj.terms(x)
  assert float(t['style_loss']) == pytest.approx(float(expected_style), rel=1e-5)
  assert float(t['content_loss']) == pytest.approx(float(expected_content), rel=1e-5)
  assert float(t['tv_loss']) == pytest.approx(float(losses.tv_loss(x, 1.25)), rel=1e-6)


def test_style_layer_weights_select_layers(variables):
  layers = ('block1_conv1', 'block2_conv1')
  only_first = objective.build(_config(style_layers=layers, style_layer_weights=(1.0, 0.0)),
                               _rgb(0), _rgb(1), variables)
  first = objective.build(_config(style_layers=layers[:1]), _rgb(0), _rgb(1), variables)
  x = first.initial('noise')
  assert float(only_first.terms(x)['style_loss']) == pytest.approx(
      float(first.terms(x)['style_loss']), rel=1e-6)


def test_value_and_grad_agrees_with_loss_and_finite_differences(variables):
  obj = objective.build(_config(tv_weight=1e-3), _rgb(0, 16, 16), _rgb(1, 16, 16), variables)
  x = obj.initial('noise')
  value, grad = obj.value_and_grad(x)
  assert float(value) == pytest.approx(float(obj.loss(x)))
  d = jnp.zeros_like(x).at[0, 5, 7, 1].set(0.5)
  numeric = (obj.loss(x + d) - obj.loss(x - d)) / 1.0
  assert float(grad[0, 5, 7, 1]) == pytest.approx(float(numeric), rel=2e-2)


def test_initial_images(variables):
  obj = objective.build(_config(), _rgb(0, 32, 48), _rgb(1, 32, 40), variables)
  assert obj.initial('style').shape == obj.content.shape == (1, 32, 48, 3)
  a, b = obj.initial('noise', seed=1), obj.initial('noise', seed=2)
  np.testing.assert_array_equal(a, obj.initial('noise', seed=1))
  assert not np.array_equal(a, b)
  rgb = image.deprocess(a).astype(float)
  assert rgb.min() < 10 and rgb.max() > 245 and abs(rgb.mean() - 127.5) < 10
  np.testing.assert_array_equal(obj.initial('uniform', seed=1), a)


def test_normal_init_is_seeded_gaussian_noise(variables):
  obj = objective.build(_config(), _rgb(0, 64, 64), _rgb(1), variables)
  a = obj.initial('normal', seed=1)
  np.testing.assert_array_equal(a, obj.initial('normal', seed=1))
  assert not np.array_equal(a, obj.initial('normal', seed=2))
  rgb = np.asarray(a[0, ..., ::-1] + jnp.asarray(image.BGR_MEANS[::-1]))
  assert rgb.min() >= -1e-4 and rgb.max() <= 255 + 1e-4
  for channel in np.moveaxis(rgb, -1, 0):
    # Clipping at 127.5 ± 2σ lowers the std of N(127.5, 64²) to about 59.5.
    assert abs(channel.mean() - 127.5) < 3 and 56 < channel.std() < 63
  uniform = np.asarray(obj.initial('uniform', seed=1)).ravel()
  assert abs(np.corrcoef(np.asarray(a).ravel(), uniform)[0, 1]) < 0.05


def test_image_file_init_is_the_file_at_the_content_size(variables, tmp_path):
  obj = objective.build(_config(), _rgb(0, 32, 48), _rgb(1), variables)
  path = tmp_path / 'init.png'
  image.save(path, _rgb(2, 40, 30))
  x = obj.initial(str(path))
  assert x.shape == (1, 32, 48, 3)
  np.testing.assert_allclose(x, image.preprocess(image.load(path, height=32, width=48)))
  for bad in (tmp_path / 'missing.png', tmp_path):
    with pytest.raises(InputError, match=str(bad)):
      obj.initial(str(bad))


@pytest.mark.parametrize('kind', ['content', 'style', 'normal'])
def test_init_noise_blends_towards_the_uniform_noise(variables, kind):
  obj = objective.build(_config(), _rgb(0, 32, 48), _rgb(1, 32, 40), variables)
  start, noise = obj.initial(kind, seed=4), obj.initial('uniform', seed=4)
  np.testing.assert_array_equal(obj.initial(kind, seed=4, noise=0.0), start)
  np.testing.assert_allclose(obj.initial(kind, seed=4, noise=1.0), noise, atol=1e-4)
  np.testing.assert_allclose(obj.initial(kind, seed=4, noise=0.25),
                             0.75 * start + 0.25 * noise, atol=1e-3)


def test_image_too_small_for_the_layers(variables):
  with pytest.raises(InputError, match='at least 16 px'):
    objective.build(_config(), _rgb(0, 8, 32), _rgb(1), variables)


def test_remat_and_precision_keep_the_objective(variables):
  base = objective.build(_config(tv_weight=1e-3), _rgb(0), _rgb(1), variables)
  x = base.initial('noise')
  value, grad = base.value_and_grad(x)
  for field, setting, rel in (('remat', True, 1e-6), ('precision', 'tf32', 1e-6),
                              ('precision', 'bf16', 5e-2), ('conv_algorithm', 'direct', 1e-5),
                              ('conv_algorithm', 'winograd', 1e-5)):
    config = _config(tv_weight=1e-3)
    config[field] = setting
    other = objective.build(config, _rgb(0), _rgb(1), variables)
    v, g = other.value_and_grad(x)
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
def test_every_product_runs_at_the_configured_precision(variables, tmp_path, precision,
                                                        expected, masked):
  """The Grams too, forward and backward, and the targets': JAX's default
  for a float32 product is TF32 on recent GPUs, which 'highest' must not get."""
  if masked:  # guided Grams, and remat's path through the network
    mask = _mask(tmp_path / 'left.png', 32, 32, slice(0, 16))
    config, style = _styles_config(2, masks=(mask, mask), tv_weight=1e-3), [_rgb(1), _rgb(2)]
    config.remat = True
  else:
    config, style = _config(tv_weight=1e-3), _rgb(1)
  config.precision = precision
  obj = objective.build(config, _rgb(0), style, variables)
  x = obj.initial('noise')
  loss = functools.partial(objective.scalar, spec=obj.spec)
  solve = jax.make_jaxpr(jax.value_and_grad(loss))(x, obj.params)
  targets = jax.make_jaxpr(functools.partial(objective._targets, spec=obj.spec))(
      obj.params.variables, obj.content)
  found = _product_precisions(solve.jaxpr) + _product_precisions(targets.jaxpr)
  assert found and set(found) == {(expected, expected)}, set(found)


def test_auto_conv_algorithm_is_winograd_on_cpu_at_full_precision_only():
  config = _config()
  assert jax.default_backend() == 'cpu'
  assert objective.uses_winograd(config)
  for field, setting in (('precision', 'tf32'), ('shard_spatial', True),
                         ('conv_algorithm', 'direct')):
    other = _config()
    other[field] = setting
    assert not objective.uses_winograd(other), (field, setting)


def test_prepare_adds_or_drops_the_winograd_kernels(variables):
  winograd = objective.spec_from(_config())
  direct = dataclasses.replace(winograd, winograd=False)
  prepared = winograd.prepare(vgg.with_flipped_kernels(variables))
  assert vgg.WINOGRAD in prepared
  assert winograd.prepare(prepared) is prepared
  back = direct.prepare(prepared)
  upto = vgg.LAYER_NAMES[:max(vgg.LAYER_NAMES.index(l) for l in direct.layers) + 1]
  assert vgg.WINOGRAD not in back and sorted(back[vgg.FLIPPED]) == sorted(upto)
  assert sorted(back['params']) == sorted(upto) and len(upto) < len(vgg.LAYER_NAMES)


def _styles_config(n, blend=None, masks=None, **loss):
  """_config(**loss) naming n style images (build takes the arrays)."""
  config = _config(**loss)
  config.styles = tuple(f'style{i}.png' for i in range(n))
  config.style_blend_weights = blend
  config.style_masks = masks
  return config


def _mask(path, h, w, columns):
  """A mask image file, white in `columns` (a slice) and black elsewhere."""
  rgb = np.zeros((h, w, 3), np.uint8)
  rgb[:, columns] = 255
  image.save(path, rgb)
  return str(path)


def test_a_style_with_blend_weight_zero_is_irrelevant(variables):
  alone = objective.build(_config(tv_weight=1e-3), _rgb(0), _rgb(1), variables)
  both = objective.build(_styles_config(2, (1.0, 0.0), tv_weight=1e-3), _rgb(0),
                         [_rgb(1), _rgb(2, 40, 48)], variables)
  x = alone.initial('noise')
  value, grad = alone.value_and_grad(x)
  both_value, both_grad = both.value_and_grad(x)
  assert float(both_value) == pytest.approx(float(value), rel=1e-6)
  np.testing.assert_allclose(both_grad, grad, rtol=1e-5, atol=1e-6 * float(jnp.abs(grad).max()))


@pytest.mark.parametrize('blend, shares', [((3.0, 7.0), (0.3, 0.7)), (None, (0.5, 0.5))])
def test_style_loss_is_the_blend_of_the_per_style_losses(variables, blend, shares):
  styles = [_rgb(1), _rgb(2, 40, 48)]
  x = objective.build(_config(), _rgb(0), styles[0], variables).initial('noise')
  each = [float(objective.build(_config(), _rgb(0), s, variables).terms(x)['style_loss'])
          for s in styles]
  obj = objective.build(_styles_config(2, blend), _rgb(0), styles, variables)
  np.testing.assert_allclose(obj.params.weights.style_blend, shares, rtol=1e-6)
  assert float(obj.terms(x)['style_loss']) == pytest.approx(
      shares[0] * each[0] + shares[1] * each[1], rel=1e-5)


def test_style_images_must_match_the_config(variables):
  with pytest.raises(InputError, match='2 style image'):
    objective.build(_config(), _rgb(0), [_rgb(1), _rgb(2)], variables)
  with pytest.raises(InputError, match='style 2 image is 8x32 px'):
    objective.build(_styles_config(2), _rgb(0), [_rgb(1), _rgb(2, 32, 8)], variables)


def test_an_all_white_mask_changes_nothing(variables, tmp_path):
  plain = objective.build(_config(), _rgb(0, 32, 48), _rgb(1), variables)
  config = _config()
  config.style_masks = (_mask(tmp_path / 'all.png', 20, 30, slice(None)),)
  masked = objective.build(config, _rgb(0, 32, 48), _rgb(1), variables)
  assert masked.params.style.masks['block5_conv1'].shape == (1, 2, 3)
  x = plain.initial('noise')
  assert float(masked.loss(x)) == pytest.approx(float(plain.loss(x)), rel=1e-5)


def test_a_mask_confines_the_style_to_its_region(variables, tmp_path):
  """block1_conv1 sees 3x3 px: with the left 16 columns masked in, pixels from
  column 17 on reach no masked position."""
  config = _config(content_layers=(), style_layers=('block1_conv1',))
  config.style_masks = (_mask(tmp_path / 'left.png', 32, 32, slice(0, 16)),)
  obj = objective.build(config, _rgb(0), _rgb(1), variables)
  x = obj.initial('noise')
  changed = x.at[:, :, 17:].set(obj.initial('noise', seed=5)[:, :, 17:])
  assert float(obj.loss(changed)) == pytest.approx(float(obj.loss(x)), rel=1e-6)
  _, grad = obj.value_and_grad(x)
  assert float(jnp.abs(grad[:, :, 17:]).max()) == 0.0
  assert float(jnp.abs(grad[:, :, :15]).min()) > 0.0


def test_a_black_mask_is_refused(variables, tmp_path):
  config = _config()
  config.style_masks = (_mask(tmp_path / 'black.png', 32, 32, slice(0, 0)),)
  with pytest.raises(InputError, match='config.style_masks: .*black.png is black'):
    objective.build(config, _rgb(0), _rgb(1), variables)


def test_two_masked_styles_paint_their_own_halves(variables, tmp_path):
  red, blue = (np.clip(_rgb(s, 32, 32) * 0.2 + c, 0, 255) for s, c in
               ((1, (200.0, 20.0, 20.0)), (2, (20.0, 20.0, 200.0))))
  masks = (_mask(tmp_path / 'left.png', 32, 32, slice(0, 16)),
           _mask(tmp_path / 'right.png', 32, 32, slice(16, None)))
  config = _styles_config(2, masks=masks, content_layers=(),
                          style_layers=('block1_conv1', 'block2_conv1'))
  obj = objective.build(config, _rgb(0), [red, blue], variables)
  solver = optimize.make('lbfgs', functools.partial(objective.loss_and_terms, spec=obj.spec),
                         dict(config.optim.lbfgs))
  x = optimize.minimize(solver, lambda x, aux, p: 0.0, obj.initial('uniform'), obj.params,
                        [0, 30], lambda *_: None).x
  rgb = image.deprocess(x).astype(np.float64)
  left, right = rgb[:, :12].mean(axis=(0, 1)), rgb[:, 20:].mean(axis=(0, 1))
  assert left[0] - left[2] > 60 and right[2] - right[0] > 60, (left, right)


LAYERS = dict(content_layers=('block2_conv2',), style_layers=('block1_conv1', 'block2_conv1'))


def test_normalized_gradients_are_each_terms_unit_l1_gradient_times_its_weight(variables):
  """With loss.normalize_gradients the loss is the same, and the image's
  gradient is what each term pushing its layer's features with L1 norm equal
  to its weight gives: α at the content layer, β·w_l at each style layer."""
  config = _config(content_weight=2.0, style_weight=30.0, style_layer_weights=(0.25, 0.75),
                   **LAYERS)
  plain = objective.build(config, _rgb(0), _rgb(1), variables)
  config.loss.normalize_gradients = True
  normalized = objective.build(config, _rgb(0), _rgb(1), variables)
  x = plain.initial('noise')
  value, grad = normalized.value_and_grad(x)
  assert float(value) == pytest.approx(float(plain.loss(x)), rel=1e-6)

  p = plain.params
  feats, backward = jax.vjp(lambda x: plain.spec.features(variables, x), x)
  unit = lambda g: g / jnp.sum(jnp.abs(g))
  push = {l: jnp.zeros_like(f) for l, f in feats.items()}
  push['block2_conv2'] += 2.0 * unit(jax.grad(losses.content_loss)(
      feats['block2_conv2'], p.content['block2_conv2']))
  for layer, layer_weight in zip(LAYERS['style_layers'], (0.25, 0.75)):
    push[layer] += 30.0 * layer_weight * unit(jax.grad(losses.blended_style_loss)(
        feats[layer], p.style.grams[layer], p.weights.style_blend))
  expected, = backward(push)
  np.testing.assert_allclose(grad, expected, rtol=1e-4,
                             atol=1e-5 * float(jnp.abs(expected).max()))
  assert float(jnp.abs(grad - plain.value_and_grad(x)[1]).max()) > 1e-3  # it changed


def test_lbfgs_decreases_the_loss_with_normalized_gradients(variables):
  config = _config(normalize_gradients=True, **LAYERS)
  obj = objective.build(config, _rgb(0), _rgb(1), variables)
  solver = optimize.make('lbfgs', functools.partial(objective.loss_and_terms, spec=obj.spec),
                         dict(config.optim.lbfgs))
  x0 = obj.initial('uniform')
  x = optimize.minimize(solver, lambda x, aux, p: 0.0, x0, obj.params, [0, 5], lambda *_: None).x
  assert float(obj.loss(x)) < 0.5 * float(obj.loss(x0))


@pytest.mark.parametrize('normalize', [False, True])
def test_grad_norms_are_the_norms_of_each_weighted_terms_gradient(variables, normalize):
  config = _config(content_weight=2.0, style_weight=30.0, tv_weight=1e-3,
                   normalize_gradients=normalize, **LAYERS)
  obj = objective.build(config, _rgb(0), _rgb(1), variables)
  x, params, spec = obj.initial('noise'), obj.params, obj.spec
  got = jax.jit(main.report, static_argnames='spec')(x, obj.terms(x), params, spec=spec)
  assert set(objective.GRAD_NORMS) <= set(got)
  for name, term, weight in (('grad_norm_content', 'content_loss', 2.0),
                             ('grad_norm_style', 'style_loss', 30.0),
                             ('grad_norm_tv', 'tv_loss', 1e-3)):
    grad = jax.grad(lambda x: weight * objective.terms(x, params, spec)[term])(x)
    assert float(got[name]) == pytest.approx(float(jnp.linalg.norm(grad)), rel=1e-5), name
    assert float(got[name]) > 0
