"""Sweep definitions: grids, zips, applying points to a config."""
import json

import pytest

from configs import default
from jaxstyle.app import hyper
from jaxstyle.errors import InputError


def test_product_is_row_major_over_axes():
  sweep = hyper.product(hyper.values('loss.style_weight', (1.0, 2.0)),
                        hyper.values('seed', (0, 1, 2)))
  grid = hyper.points(sweep)
  assert len(sweep) == 2 and len(grid) == 6
  assert grid[0] == ((0, 0), (('loss.style_weight', 1.0), ('seed', 0)))
  assert grid[5] == ((1, 2), (('loss.style_weight', 2.0), ('seed', 2)))


def test_zip_walks_fields_together_on_one_axis():
  sweep = hyper.zip(hyper.values('loss.tv_weight', (0.0, 1.0)), hyper.values('seed', (3, 4)))
  assert [p for _, p in hyper.points(sweep)] == [
      (('loss.tv_weight', 0.0), ('seed', 3)), (('loss.tv_weight', 1.0), ('seed', 4))]


@pytest.mark.parametrize('make', [
    lambda: hyper.zip(hyper.values('seed', (0, 1)), hyper.values('init', ('content',))),
    lambda: hyper.zip(hyper.product(hyper.values('seed', (0,)), hyper.values('init', ('style',)))),
    lambda: hyper.values('seed', ()),
])
def test_malformed_sweeps_are_input_errors(make):
  with pytest.raises(InputError, match='sweep'):
    make()


def test_a_sweep_survives_the_config_and_its_json():
  config = default.get_config()
  config.sweep = {'axes': hyper.values('loss.style_layers', [['block1_conv1'], ['block2_conv1']])}
  assert hyper.check(config.sweep.axes)[0][1] == (('loss.style_layers', ('block2_conv1',)),)
  assert json.loads(config.to_json_best_effort())['sweep']['axes'][0][1][0][0] == 'loss.style_layers'


@pytest.mark.parametrize('junk', [(), 'loss.style_weight', ((),), ((((1, 2),),),)])
def test_check_rejects_what_hyper_did_not_build(junk):
  with pytest.raises(InputError, match='config.sweep.axes'):
    hyper.check(junk)


def test_apply_sets_nested_fields_on_a_copy():
  config = default.get_config()
  point = (('loss.style_weight', 5.0), ('seed', 7), ('content', '/a.png'))
  changed = hyper.apply(config, point)
  assert (changed.loss.style_weight, changed.seed, changed.content) == (5.0, 7, '/a.png')
  assert config.loss.style_weight is None and config.seed == 0


@pytest.mark.parametrize('point, message', [
    ((('loss.no_such', 1.0),), "no config field 'loss.no_such'"),
    ((('steps.deeper', 1),), "no config field 'steps.deeper'"),
    ((('steps', 'many'),), 'steps='),
])
def test_apply_names_a_bad_field(point, message):
  with pytest.raises(InputError, match=message):
    hyper.apply(default.get_config(), point)


def test_labels_are_short_and_use_the_papers_layer_names():
  assert hyper.label(('block1_conv1', 'block2_conv1')) == 'conv1_1+conv2_1'
  assert hyper.label(1e-05) == '1e-05'
  assert hyper.describe((('loss.style_weight', 1000.0), ('seed', 2))) == 'style_weight=1000, seed=2'
