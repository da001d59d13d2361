"""Checks of plain setting values, each failure one `SettingError` line that
names the setting: what `objective.make` and the command line's config
validation both use."""
import math
import numbers
from collections.abc import Sequence
from typing import Any, NoReturn

from jaxstyle import vgg
from jaxstyle.errors import InputError


class SettingError(InputError):
  """A setting with a bad value: '<name>: <problem>'."""

  def __init__(self, name: str, problem: str):
    super().__init__(f'{name}: {problem}')
    self.name, self.problem = name, problem


def fail(name: str, problem: str) -> NoReturn:
  raise SettingError(name, problem)


def choice(name: str, value: Any, options: Sequence[str]) -> None:
  if not isinstance(value, str) or value not in options:
    fail(name, f'must be one of {", ".join(options)}; got {value!r}')


def integer(name: str, value: Any, low: int, high: int | None = None) -> None:
  if isinstance(value, bool) or not isinstance(value, int):
    fail(name, f'must be an integer; got {value!r}')
  if value < low or (high is not None and value > high):
    fail(name, f'must be in [{low}, {high if high is not None else "∞"}]; got {value}')


def number(name: str, value: Any, low: float = 0.0) -> None:
  """A finite real number ≥ low."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    fail(name, f'must be a number; got {value!r}')
  if not math.isfinite(value) or value < low:
    fail(name, f'must be a finite number ≥ {low:g}; got {value}')


def flag(name: str, value: Any) -> None:
  if not isinstance(value, bool):
    fail(name, f'must be True or False; got {value!r}')


def layers(name: str, value: Any) -> None:
  """A tuple of distinct VGG19 layer names."""
  if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
    fail(name, f'must be a tuple of layer names; got {value!r}')
  try:
    vgg.check_layers(value)
  except InputError as e:
    fail(name, str(e))
  if len(set(value)) != len(value):
    fail(name, f'lists a layer twice: {tuple(value)}')


def per_item(name: str, value: Any, n: int, what: str = 'style image(s)') -> None:
  if not isinstance(value, (tuple, list)):
    fail(name, f'must be a tuple with one value per {what.removesuffix("(s)")}; got {value!r}')
  if len(value) != n:
    fail(name, f'has {len(value)} values for {n} {what}')
