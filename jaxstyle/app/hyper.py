"""Sweep definitions: which config fields take which values, as plain data.

A sweep is a tuple of axes; an axis is a tuple of points; a point is a tuple
of (field, value) pairs, field a dotted config path ('loss.style_weight').
`product` crosses axes (the contact sheet's rows and columns), `zip` walks
several fields together along one axis, as big_vision's `get_hyper` reads:

  config.sweep.axes = hyper.product(
      hyper.values('loss.style_weight', (1e3, 1e4)),
      hyper.zip(hyper.values('loss.tv_weight', (0.0, 1e-3)),
                hyper.values('seed', (0, 1))))

Being tuples of strings and numbers, a sweep lives in an ml_collections
config and its JSON dump.
"""
import builtins
import copy
import itertools
from collections.abc import Sequence
from typing import Any

import ml_collections

from jaxstyle import vgg
from jaxstyle.errors import InputError

Point = tuple[tuple[str, Any], ...]
Axis = tuple[Point, ...]
Sweep = tuple[Axis, ...]


def values(field: str, options: Sequence[Any]) -> Sweep:
  """One axis: `field` set to each of `options` in turn."""
  if not options:
    raise InputError(f'sweep: no values for {field}')
  return (tuple(((field, _plain(v)),) for v in options),)


def product(*sweeps: Sweep) -> Sweep:
  """Every combination: the axes of each sweep, side by side."""
  return tuple(axis for sweep in sweeps for axis in sweep)


def zip(*sweeps: Sweep) -> Sweep:  # pylint: disable=redefined-builtin
  """One axis that walks single-axis sweeps of equal length together."""
  if any(len(s) != 1 for s in sweeps):
    raise InputError('sweep: zip takes single-axis sweeps (values or zip)')
  lengths = {len(s[0]) for s in sweeps}
  if len(lengths) != 1:
    raise InputError(f'sweep: zip needs axes of equal length; got {sorted(lengths)}')
  return (tuple(sum(points, ()) for points in builtins.zip(*(s[0] for s in sweeps))),)


def points(sweep: Sweep) -> list[tuple[tuple[int, ...], Point]]:
  """Every point of the grid in row-major order, with its index on each axis."""
  axes = [range(len(axis)) for axis in sweep]
  return [(index, sum((sweep[a][i] for a, i in enumerate(index)), ()))
          for index in itertools.product(*axes)]


def check(sweep: Any) -> Sweep:
  """`sweep` as a Sweep; InputError naming what is wrong with it."""
  try:
    ok = all(len(axis) > 0 and all(isinstance(f, str) for p in axis for f, _ in p)
             for axis in sweep) and len(sweep) > 0
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise InputError('config.sweep.axes: must be built with jaxstyle.hyper '
                     '(values, product, zip) and hold at least one value')
  return tuple(tuple(tuple((f, v) for f, v in p) for p in axis) for axis in sweep)


def apply(config: ml_collections.ConfigDict, point: Point) -> ml_collections.ConfigDict:
  """A copy of `config` with the point's fields set; InputError for a field it lacks."""
  config = copy.deepcopy(config)
  for field, value in point:
    *parents, leaf = field.split('.')
    node = config
    for name in parents:
      node = node.get(name) if isinstance(node, ml_collections.ConfigDict) else None
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
      raise InputError(f'config.sweep: no config field {field!r} to sweep')
    try:
      node[leaf] = value
    except TypeError as e:
      raise InputError(f'config.sweep: {field}={value!r}: {e}') from None
  return config


def label(value: Any) -> str:
  """Short text for a value on a contact sheet: layer names as in the paper."""
  if isinstance(value, (tuple, list)):
    return '+'.join(label(v) for v in value) or '()'
  if isinstance(value, float):
    return f'{value:g}'
  if isinstance(value, str) and value in vgg.LAYER_NAMES:
    return vgg.paper_name(value)
  return str(value)


def describe(point: Point) -> str:
  return ', '.join(f'{field.split(".")[-1]}={label(v)}' for field, v in point)


def _plain(value: Any) -> Any:
  """Lists become tuples, so a value is hashable and a config field accepts it."""
  if isinstance(value, list):
    return tuple(_plain(v) for v in value)
  return value
