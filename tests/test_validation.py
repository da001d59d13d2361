"""Tests for jaxstyle.validation: shipped configs pass, each bad value fails."""

import inspect
import math

import ml_collections
import pytest

from configs import default, gatys2015, keras_example, li_wand2016
from configs.seeds import aalborg, keras_dlwp, pytorch, tf_blog
from jaxstyle import image, optimize, scipy_lbfgsb, vgg
from jaxstyle.app import validation
from jaxstyle.errors import InputError

MAX = image.MAX_SIDE
INIT = 'must be one of content, style, uniform, noise, normal or an existing image file'
# Each optimizer's maker, and how many arguments precede its settings (fun).
SOLVERS = {'lbfgs': (optimize.jaxopt_lbfgs, 1),
           'optax_lbfgs': (optimize.optax_lbfgs, 0),
           'adam': (optimize.adam, 0),
           'scipy_lbfgsb': (scipy_lbfgsb.solver, 1)}


def _config(changes, optimizer='lbfgs', type_safe=True):
  """The default config with `optimizer` and {'a.b': value} changes."""
  config = default.get_config()
  config.optimizer = optimizer
  if not type_safe:  # To set values of the wrong type.
    config = ml_collections.ConfigDict(config.to_dict(), type_safe=False)
  for field, value in changes.items():
    *parents, name = field.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    node[name] = value
  return config


def _message(config):
  with pytest.raises(InputError) as e:
    validation.validate(config)
  msg = str(e.value)
  assert msg.splitlines() == [msg], repr(msg)
  return msg


@pytest.mark.parametrize('module', [default, gatys2015, keras_example, li_wand2016, keras_dlwp,
                                    aalborg, pytorch, tf_blog])
def test_shipped_configs_pass(module):
  validation.validate(module.get_config())


@pytest.mark.parametrize('optimizer', optimize.OPTIMIZERS)
def test_every_optimizer_passes_with_its_defaults(optimizer):
  validation.validate(_config({}, optimizer))


@pytest.mark.parametrize('changes,optimizer', [
    ({'height': 1}, 'lbfgs'),
    ({'height': MAX}, 'lbfgs'),
    ({'steps': 1, 'seed': 0, 'log_every': 0, 'save_every': 0}, 'lbfgs'),
    ({'content': 'a.png', 'style': 'b.jpg', 'weights': 'w.npz'}, 'lbfgs'),
    ({'init': 'uniform', 'init_noise': 1.0}, 'lbfgs'),
    ({'init': 'normal', 'init_noise': 0.0}, 'lbfgs'),
    ({'init': 'noise', 'original_colors': True, 'color_transfer': True}, 'lbfgs'),
    ({'scales': 9, 'scale_steps': 1, 'shard_spatial': True, 'output_bits': 16}, 'lbfgs'),
    ({'output_bits': 16, 'output_format': 'tiff'}, 'lbfgs'),
    ({'output_bits': 8, 'output_format': 'jpeg'}, 'lbfgs'),
    ({'height': 8, 'scales': 1, 'scale_factor': 1.01}, 'lbfgs'),
    ({'styles': ('a.png', 'b.png'), 'style_blend_weights': (0.0, 2.0),
      'style_scale': (0.5, 2.0)}, 'lbfgs'),
    ({'style_blend_weights': (3.0,), 'style_scale': 0.25}, 'lbfgs'),
    ({'loss.content_layers': ()}, 'lbfgs'),
    ({'loss.style_layers': ()}, 'lbfgs'),
    ({'loss.content_layers': ['block5_conv4']}, 'lbfgs'),
    ({'loss.style_layer_weights': (0.2, 0.2, 0.2, 0.2, 0.0)}, 'lbfgs'),
    ({'loss.content_weight': 0.0, 'loss.tv_power': 1.0}, 'lbfgs'),
    ({'loss.normalize_gradients': True}, 'lbfgs'),
    ({'optim.lbfgs.history_size': 1000, 'optim.lbfgs.max_linesearch': 1},
     'lbfgs'),
    ({'optim.adam.b1': 0.0, 'optim.adam.b2': 0.9999}, 'adam'),
    ({'optim.adam.learning_rate': 1e-3, 'optim.adam.eps': 1e-12}, 'adam'),
    ({'width': 1, 'resample': 'nearest', 'style_resize': 'content'}, 'lbfgs'),
    ({'width': MAX, 'resample': 'bicubic', 'preprocessing': 'swapped_means'}, 'lbfgs'),
    ({'optim.scipy_lbfgsb.m': 1000, 'optim.scipy_lbfgsb.maxfun': 1}, 'scipy_lbfgsb'),
])
def test_boundary_values_pass(changes, optimizer):
  validation.validate(_config(changes, optimizer))


BAD = [
    # (field, value, optimizer, part of the message after 'config.FIELD: ')
    ('height', 0, 'lbfgs', f'must be in [1, {MAX}]; got 0'),
    ('height', -5, 'lbfgs', f'must be in [1, {MAX}]; got -5'),
    ('height', MAX + 1, 'lbfgs', f'must be in [1, {MAX}]; got {MAX + 1}'),
    ('height', True, 'lbfgs', 'must be an integer; got True'),
    ('steps', 0, 'lbfgs', 'must be in [1, ∞]; got 0'),
    ('seed', -1, 'lbfgs', 'must be in [0, ∞]; got -1'),
    ('log_every', -1, 'lbfgs', 'must be in [0, ∞]; got -1'),
    ('save_every', -10, 'lbfgs', 'must be in [0, ∞]; got -10'),
    ('scales', 0, 'lbfgs', 'must be in [1, ∞]; got 0'),
    ('scales', 10, 'lbfgs', '10 scales a factor 1.41421 apart start at 11 px, below the 16 px '
     'the layers need; use fewer scales, a smaller scale_factor or a larger height'),
    ('scale_factor', 1.0, 'lbfgs', 'must be greater than 1; got 1.0'),
    ('scale_factor', math.inf, 'lbfgs', 'must be a finite number ≥ 0; got inf'),
    ('scale_steps', 0, 'lbfgs', 'must be in [1, ∞]; got 0'),
    ('output_bits', 12, 'lbfgs', 'must be 8 or 16; got 12'),
    ('output_format', 'webp', 'lbfgs', "must be one of png, jpg, jpeg, tif, tiff; got 'webp'"),
    ('output_format', '.tif', 'lbfgs', "must be one of png, jpg, jpeg, tif, tiff; got '.tif'"),
    ('init', 'random', 'lbfgs', f"{INIT}; got 'random'"),
    ('init', '/nonexistent/start.png', 'lbfgs', f"{INIT}; got '/nonexistent/start.png'"),
    ('init', '/', 'lbfgs', f"{INIT}; got '/'"),
    ('init_noise', -0.1, 'lbfgs', 'must be a finite number ≥ 0; got -0.1'),
    ('styles', (), 'lbfgs', 'must be a non-empty tuple of paths; got ()'),
    ('style_blend_weights', (1.0, 1.0), 'lbfgs', 'has 2 values for 1 style image(s)'),
    ('style_blend_weights', (-1.0,), 'lbfgs', 'must be a finite number ≥ 0; got -1.0'),
    ('style_blend_weights', (math.nan,), 'lbfgs', 'must be a finite number ≥ 0; got nan'),
    ('style_blend_weights', (0.0,), 'lbfgs', 'are all zero; at least one must be positive'),
    ('style_scale', 0.0, 'lbfgs', 'must be positive'),
    ('style_scale', -0.5, 'lbfgs', 'must be a finite number ≥ 0; got -0.5'),
    ('style_scale', math.inf, 'lbfgs', 'must be a finite number ≥ 0; got inf'),
    ('style_scale', 0.001, 'lbfgs',
     f'0.001 x height 256 gives style images 0 px high; that must be in [1, {MAX}]'),
    ('style_scale', 100.0, 'lbfgs',
     f'100 x height 256 gives style images 25600 px high; that must be in [1, {MAX}]'),
    ('style_scale', (1.0, 1.0), 'lbfgs', 'has 2 values for 1 style image(s)'),
    ('style_masks', ('/nonexistent/m.png',), 'lbfgs',
     "must be existing image files; '/nonexistent/m.png' is not one"),
    ('init_noise', 1.5, 'lbfgs', 'must be in [0, 1]; got 1.5'),
    ('init_noise', math.nan, 'lbfgs', 'must be a finite number ≥ 0; got nan'),
    ('pooling', 'min', 'lbfgs', "must be one of max, avg; got 'min'"),
    ('precision', 'float64', 'lbfgs',
     "must be one of highest, tf32, bf16; got 'float64'"),
    ('conv_algorithm', 'fft', 'lbfgs',
     "must be one of auto, direct, winograd; got 'fft'"),
    ('optimizer', 'sgd', 'lbfgs',
     "must be one of lbfgs, optax_lbfgs, adam, scipy_lbfgsb; got 'sgd'"),
    ('width', 0, 'lbfgs', f'must be in [1, {MAX}]; got 0'),
    ('width', MAX + 1, 'lbfgs', f'must be in [1, {MAX}]; got {MAX + 1}'),
    ('resample', 'box', 'lbfgs', "must be one of lanczos, nearest, bilinear, bicubic; got 'box'"),
    ('style_resize', 'crop', 'lbfgs', "must be one of aspect, content; got 'crop'"),
    ('preprocessing', 'torch', 'lbfgs', "must be one of caffe, swapped_means; got 'torch'"),
    ('optim.scipy_lbfgsb.m', 0, 'scipy_lbfgsb', 'must be in [1, 1000]; got 0'),
    ('optim.scipy_lbfgsb.maxfun', 0, 'scipy_lbfgsb', 'must be in [1, ∞]; got 0'),
    ('optim.scipy_lbfgsb.maxiter', 5, 'scipy_lbfgsb',
     'unknown setting; scipy_lbfgsb takes m, maxfun'),
    ('shard_spatial', True, 'scipy_lbfgsb',
     "must be False with optimizer 'scipy_lbfgsb', which steps on the host"),
    ('loss.normalization', 'johnson', 'lbfgs',
     "must be one of gatys, keras; got 'johnson'"),
    ('loss.content_layers', ('block4_conv9',), 'lbfgs',
     'unknown VGG19 layer(s) block4_conv9; valid names: block1_conv1, '),
    ('loss.style_layers', ('conv1_1', 'block1_conv1', 'pool1'), 'lbfgs',
     'unknown VGG19 layer(s) conv1_1, pool1; valid names: '),
    ('loss.style_layers', ('block1_conv1', 'block2_conv1', 'block1_conv1'),
     'lbfgs', 'lists a layer twice'),
    ('loss.content_weight', -1.0, 'lbfgs', 'must be a finite number ≥ 0; got -1.0'),
    ('loss.style_weight', math.nan, 'lbfgs', 'must be a finite number ≥ 0; got nan'),
    ('loss.tv_weight', math.inf, 'lbfgs', 'must be a finite number ≥ 0; got inf'),
    ('loss.style_weight', -math.inf, 'lbfgs', 'must be a finite number ≥ 0; got -inf'),
    ('loss.tv_power', 0.5, 'lbfgs', 'must be a finite number ≥ 1; got 0.5'),
    ('loss.tv_power', math.nan, 'lbfgs', 'must be a finite number ≥ 1; got nan'),
    ('loss.style_layer_weights', (1.0,) * 4, 'lbfgs',
     'has 4 values for 5 style layers'),
    ('loss.style_layer_weights', (1.0,) * 6, 'lbfgs',
     'has 6 values for 5 style layers'),
    ('loss.style_layer_weights', (1.0, 1.0, -0.5, 1.0, 1.0), 'lbfgs',
     'must be a finite number ≥ 0; got -0.5'),
    ('loss.style_layer_weights', (1.0, 1.0, math.nan, 1.0, 1.0), 'lbfgs',
     'must be a finite number ≥ 0; got nan'),
    ('optim.lbfgs.history_size', 0, 'lbfgs', 'must be in [1, 1000]; got 0'),
    ('optim.lbfgs.max_linesearch', 1001, 'lbfgs',
     'must be in [1, 1000]; got 1001'),
    ('optim.lbfgs.linesearch', 'wolfe', 'lbfgs',
     "must be one of strong_wolfe, zoom, backtracking, hager-zhang, none; got 'wolfe'"),
    ('optim.optax_lbfgs.history_size', 0, 'optax_lbfgs',
     'must be in [1, 1000]; got 0'),
    ('optim.optax_lbfgs.linesearch', 'zoom', 'optax_lbfgs',
     'unknown setting; optax_lbfgs takes history_size, max_linesearch'),
    ('optim.adam.learning_rate', 0.0, 'adam', 'must be positive'),
    ('optim.adam.learning_rate', -1.0, 'adam',
     'must be a finite number ≥ 0; got -1.0'),
    ('optim.adam.learning_rate', math.inf, 'adam',
     'must be a finite number ≥ 0; got inf'),
    ('optim.adam.b1', 1.0, 'adam', 'must be in [0, 1); got 1.0'),
    ('optim.adam.b2', 1.5, 'adam', 'must be in [0, 1); got 1.5'),
    ('optim.adam.b1', -0.1, 'adam', 'must be a finite number ≥ 0; got -0.1'),
    ('optim.adam.eps', 0.0, 'adam', 'must be positive'),
    ('optim.adam.eps', math.nan, 'adam', 'must be a finite number ≥ 0; got nan'),
    ('optim.adam.lr', 1.0, 'adam',
     'unknown setting; adam takes learning_rate, b1, b2, eps'),
    ('tile', 'big', 'lbfgs', "must be an integer; got 'big'"),
    ('tile', 100, 'lbfgs', '100 px is not a multiple of 16 px, the stride of block5_conv1; '
     'try 96 or 112'),
    ('tile_remat', 'sometimes', 'lbfgs', "must be True or False; got 'sometimes'"),
]


@pytest.mark.parametrize('field,value,optimizer,problem', BAD)
def test_bad_value_names_field(field, value, optimizer, problem):
  msg = _message(_config({field: value}, optimizer))
  assert msg.startswith(f'config.{field}: {problem}'), msg


def test_winograd_refuses_bfloat16():
  msg = _message(_config({'conv_algorithm': 'winograd', 'precision': 'bf16'}))
  assert msg.startswith("config.conv_algorithm: 'winograd' needs float32 convolutions"), msg


BAD_TYPES = [
    ('height', 2.5, 'must be an integer; got 2.5'),
    ('height', '256', "must be an integer; got '256'"),
    ('steps', 100.0, 'must be an integer; got 100.0'),
    ('content', 5, 'must be a path; got 5'),
    ('style', ['a.png'], "must be a path; got ['a.png']"),
    ('weights', b'w.npz', "must be a path; got b'w.npz'"),
    ('init', 3, f'{INIT}; got 3'),
    ('init_noise', '0.5', "must be a number; got '0.5'"),
    ('styles', 'a.png', "must be a non-empty tuple of paths; got 'a.png'"),
    ('styles', ('a.png', 3), "must be a non-empty tuple of paths; got ('a.png', 3)"),
    ('style_blend_weights', 1.0, 'must be a tuple with one value per style image; got 1.0'),
    ('style_blend_weights', ('1',), "must be a number; got '1'"),
    ('style_scale', '2', "must be a number; got '2'"),
    ('style_masks', 'm.png', "must be a tuple with one value per style image; got 'm.png'"),
    ('original_colors', 1, 'must be True or False; got 1'),
    ('color_transfer', 'yes', "must be True or False; got 'yes'"),
    ('shard_spatial', 1, 'must be True or False; got 1'),
    ('loss.normalize_gradients', 'yes', "must be True or False; got 'yes'"),
    ('contents', 5, 'must be an existing folder or a non-empty tuple of image paths; got 5'),
    ('frames', ('a.png',), "must be an existing folder; got ('a.png',)"),
    ('scales', 2.0, 'must be an integer; got 2.0'),
    ('scale_steps', '5', "must be an integer; got '5'"),
    ('output_bits', True, 'must be 8 or 16; got True'),
    ('loss.content_layers', 'block4_conv2',
     "must be a tuple of layer names; got 'block4_conv2'"),
    ('loss.style_layers', None, 'must be a tuple of layer names; got None'),
    ('loss.style_layers', ('block1_conv1', 3),
     "must be a tuple of layer names; got ('block1_conv1', 3)"),
    ('loss.style_weight', '1e4', "must be a number; got '1e4'"),
    ('loss.tv_weight', None, 'must be a number; got None'),
    ('loss.style_layer_weights', 1.0, 'must be a tuple of numbers; got 1.0'),
    ('loss.style_layer_weights', 'abcde',
     "must be a tuple of numbers; got 'abcde'"),
    ('optim.lbfgs.history_size', 10.0, 'must be an integer; got 10.0'),
    ('width', 2.5, 'must be an integer; got 2.5'),
    ('resample', None, 'must be one of lanczos, nearest, bilinear, bicubic; got None'),
]


@pytest.mark.parametrize('field,value,problem', BAD_TYPES)
def test_wrong_type_names_field(field, value, problem):
  msg = _message(_config({field: value}, type_safe=False))
  assert msg == f'config.{field}: {problem}', msg


def test_init_accepts_an_existing_file(tmp_path):
  path = tmp_path / 'start.png'
  image.save(path, [[[0, 128, 255]]])
  validation.validate(_config({'init': str(path)}))


def test_style_images_and_their_settings_must_agree(tmp_path):
  two = {'styles': ('a.png', 'b.png')}
  assert _message(_config({**two, 'style': 'c.png'})) == (
      'config.styles: set either style or styles, not both')
  assert _message(_config({**two, 'style_blend_weights': (1.0, 2.0, 3.0)})) == (
      'config.style_blend_weights: has 3 values for 2 style image(s)')
  assert _message(_config({**two, 'style_scale': (1.0,)})) == (
      'config.style_scale: has 1 values for 2 style image(s)')
  mask = str(tmp_path / 'm.png')
  image.save(mask, [[[255, 255, 255]]])
  assert _message(_config({**two, 'style_masks': (mask,)})) == (
      'config.style_masks: has 1 values for 2 style image(s)')
  validation.validate(_config({**two, 'style_masks': (mask, mask)}))
  assert _message(_config({**two, 'style_masks': (mask, str(tmp_path))})).startswith(
      'config.style_masks: must be existing image files; ')


def test_unknown_layer_lists_every_valid_name():
  msg = _message(_config({'loss.style_layers': ('block6_conv1',)}))
  assert msg.startswith('config.loss.style_layers: unknown VGG19 layer(s) '
                        'block6_conv1; valid names: ')
  assert msg.endswith(', '.join(vgg.LAYER_NAMES))


def test_both_layer_sets_empty():
  config = _config({'loss.content_layers': (), 'loss.style_layers': ()})
  assert _message(config) == (
      'config.loss.style_layers: content_layers and style_layers are both '
      'empty')


def test_first_bad_field_is_reported():
  config = _config({'height': 0, 'loss.style_weight': -1.0})
  assert _message(config).startswith('config.height: ')


def test_settings_match_the_solvers():
  assert set(validation.SETTINGS) == set(optimize.OPTIMIZERS)
  for name, (solver, skip) in SOLVERS.items():
    parameters = list(inspect.signature(solver).parameters.values())[skip:]
    keywords = tuple(p.name for p in parameters if p.kind == p.POSITIONAL_OR_KEYWORD)
    assert validation.SETTINGS[name] == keywords, name


def test_scipy_lbfgsb_refuses_a_batch_of_contents():
  config = _config({'contents': ('a.png', 'b.png'), 'content': None}, 'scipy_lbfgsb')
  assert _message(config).startswith("config.optimizer: 'scipy_lbfgsb' solves one image at a time")


@pytest.mark.parametrize('changes, problem', [
    ({'tile': 256, 'loss.style_loss': 'histogram'},
     "config.tile: style_loss 'histogram' sorts the whole image's features"),
    ({'tile': 256, 'loss.normalize_gradients': True},
     'config.tile: normalize_gradients divides by the L1 norm'),
    ({'tile': 256, 'shard_spatial': True},
     'config.tile: and shard_spatial both split the image over the devices'),
    ({'tile': 256, 'contents': ('a.png', 'b.png'), 'content': None},
     'config.tile: tiles one image at a time, and contents are solved as a batch')])
def test_tile_refuses_what_it_cannot_add_up_or_share(changes, problem):
  assert _message(_config(changes)).startswith(problem)


def test_tile_auto_and_zero_pass_with_every_style_loss():
  for tile in ('auto', 0):
    validation.validate(_config({'tile': tile, 'loss.style_loss': 'sliced',
                                 'shard_spatial': True}))


@pytest.mark.parametrize('output_format', ['jpg', 'jpeg'])
def test_sixteen_bits_are_not_written_as_jpeg(output_format):
  msg = _message(_config({'output_bits': 16, 'output_format': output_format}))
  assert msg == (f"config.output_format: {output_format!r} holds 8 bits per channel; with "
                 "output_bits=16 use 'png' or 'tif'")
