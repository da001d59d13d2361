"""Runs the documentation's example commands, times them, and makes their
pictures.

python -m benchmarks.examples --out=docs/examples [--only=NAME,...] [--skip=NAME,...]
                              [--pictures_only]

The documentation is README.md, docs/guide.md, docs/sweeps.md, then the
other docs/*.md in name order (`doc_files`). An example is a ```sh block, or
a table row's first cell, that runs `python -m jaxstyle.main` or `python -m
jaxstyle.sweep` with `--workdir=runs/NAME`; set-up steps in a block (venv,
pip) are left out. NAME is unique across the documentation. Each runs as
written, through bash from the repository root with `python` this
interpreter, with CPU_SIZE[NAME] appended where the documented size is not a
CPU size, after removing runs/NAME, with an empty compilation cache (XDG_CACHE_HOME
runs/.cache, emptied first), so every time includes the compile a first run
pays.
Examples run one after another, in documentation order.

Writes OUT/NAME.jpg (the run's picture: final.png, the contact sheet, or the
contents or frames side by side), or OUT/shared/NAME.jpg for an example that
reads ../shared images (those stay out of git), and OUT/times.json and
OUT/times.md (wall and CPU seconds, peak RSS, exit status). The docs show
OUT/NAME.jpg as examples/NAME.jpg (docs/guide.md, docs/sweeps.md) or
docs/examples/NAME.jpg (README.md). --pictures_only makes the pictures of
finished workdirs without running anything.
"""
import argparse
import dataclasses
import json
import os
import pathlib
import platform
import re
import shutil
import sys

from PIL import Image

from benchmarks import run as bench

README = bench.REPO / 'README.md'
# The documentation files that come first, in this order; the other
# docs/*.md follow in name order.
FIRST_DOCS = ('README.md', 'docs/guide.md', 'docs/sweeps.md')
SHARED = '../shared/'
THUMB_HEIGHT = 256
SHEET_SIDE = 900  # contact sheets: their labels must stay legible
STRIP_HEIGHT = 160
STRIP_MAX = 4
# Flags appended to an example whose documented size is not a CPU size.
CPU_SIZE = {'print': '--config.height=256 --config.steps=30'}
_SETUP = ('python3 -m venv', '. .venv/bin/activate', 'pip install')


@dataclasses.dataclass(frozen=True)
class Example:
  name: str      # runs/NAME, the workdir
  command: str   # bash, from the repository root
  shared: bool   # reads ../shared images
  doc: str = 'README.md'  # the documentation file it is in, relative to the repository


def doc_files(repo: pathlib.Path = bench.REPO) -> list[pathlib.Path]:
  """README.md, docs/guide.md, docs/sweeps.md (those that exist), then every
  other docs/*.md in name order."""
  first = [repo / name for name in FIRST_DOCS]
  rest = sorted(p for p in (repo / 'docs').glob('*.md') if p not in first)
  return [p for p in first if p.is_file()] + rest


def examples(text: str, doc: str = 'README.md') -> list[Example]:
  """One documentation file's example commands, set-up steps removed: code
  blocks in file order, then table rows."""
  blocks = re.findall(r'```sh\n(.*?)```', text, flags=re.DOTALL)
  cells = re.findall(r'^\|\s*`(python -m jaxstyle\.[^`]*)`', text, flags=re.MULTILINE)
  found = []
  for block in blocks + cells:
    if not re.search(r'python -m jaxstyle\.(main|sweep)\b', block):
      continue
    steps = [s.strip() for s in block.strip().split(' && ')]
    command = ' && '.join(s for s in steps if not s.startswith(_SETUP))
    workdir = re.search(r'--workdir=runs/([\w.-]+)', command)
    if workdir is None:
      raise ValueError(f'{doc}: example without --workdir=runs/NAME: {command[:60]}')
    found.append(Example(workdir.group(1), command, SHARED in command, doc))
  _check_unique(found)
  return found


def documented(repo: pathlib.Path = bench.REPO) -> list[Example]:
  """Every example of the documentation (`doc_files`), in its order."""
  found = [e for path in doc_files(repo)
           for e in examples(path.read_text(), str(path.relative_to(repo)))]
  _check_unique(found)
  return found


def _check_unique(found: list[Example]) -> None:
  names = [e.name for e in found]
  shared = sorted({f'{e.name} ({e.doc})' for e in found if names.count(e.name) > 1})
  if shared:
    raise ValueError(f'examples share a workdir: {shared}')


def _strip(paths: list[pathlib.Path]) -> Image.Image:
  """Up to STRIP_MAX of the pictures, evenly spaced, side by side."""
  chosen = paths[::max(1, -(-len(paths) // STRIP_MAX))]
  tiles = [_fit(Image.open(p).convert('RGB'), STRIP_HEIGHT) for p in chosen]
  strip = Image.new('RGB', (sum(t.width for t in tiles), STRIP_HEIGHT), 'white')
  x = 0
  for tile in tiles:
    strip.paste(tile, (x, 0))
    x += tile.width
  return strip


def _fit(picture: Image.Image, height: int, width: int | None = None) -> Image.Image:
  """Shrunk, aspect kept, to at most height and width (unset: 4 x height)."""
  small = picture.copy()
  small.thumbnail((width or 4 * height, height), Image.Resampling.LANCZOS)
  return small


def picture(workdir: pathlib.Path) -> Image.Image:
  """The run's result as one small RGB picture."""
  if (workdir / 'contact_sheet.png').is_file():
    return _fit(Image.open(workdir / 'contact_sheet.png').convert('RGB'), SHEET_SIDE, SHEET_SIDE)
  if (workdir / 'final.png').is_file():
    return _fit(Image.open(workdir / 'final.png').convert('RGB'), THUMB_HEIGHT)
  for folder in ('contents', 'frames'):
    paths = sorted((workdir / folder).glob('*.png'))
    if paths:
      return _strip(paths)
  raise FileNotFoundError(f'{workdir}: no final.png, contact_sheet.png, contents/ or frames/')


def picture_path(out: pathlib.Path, example: Example) -> pathlib.Path:
  return (out / 'shared' if example.shared else out) / f'{example.name}.jpg'


def run(example: Example) -> dict:
  """Runs the example from a fresh workdir and a cold compilation cache."""
  runs = bench.REPO / 'runs'
  for stale in (runs / example.name, runs / '.cache'):
    shutil.rmtree(stale, ignore_errors=True)
  command = ' '.join([example.command, CPU_SIZE.get(example.name, '')]).strip()
  log = runs / f'{example.name}.log'
  log.parent.mkdir(exist_ok=True)
  record = {'name': example.name, 'command': command, 'log': str(log.relative_to(bench.REPO))}
  try:
    record.update(bench.run_process(['bash', '-c', command], log,
                                    env={**os.environ, 'XDG_CACHE_HOME': str(runs / '.cache')}),
                  status=0)
  except RuntimeError as e:
    record.update(status=str(e))
  return record


def table(records: list[dict]) -> str:
  lines = ['| example | wall s | CPU s | peak RSS GB | CPU-size flags added |',
           '| --- | ---: | ---: | ---: | --- |']
  for r in records:
    if r['status'] != 0:
      lines.append(f'| `{r["name"]}` | failed, see {pathlib.Path(r["log"]).name} | | | |')
      continue
    lines.append(f'| `{r["name"]}` | {r["wall_s"]:.1f} | {r["cpu_s"]:.0f} '
                 f'| {r["peak_rss_mb"] / 1024:.2f} | {CPU_SIZE.get(r["name"], "")} |')
  return '\n'.join(lines) + '\n'


def _write_times(out: pathlib.Path, records: list[dict], order: list[str]) -> None:
  """Merges records into OUT/times.json (a rerun example replaces its old
  record), in documentation order, and writes OUT/times.md from it."""
  path = out / 'times.json'
  old = json.loads(path.read_text())['runs'] if path.is_file() else []
  by_name = {r['name']: r for r in old + records if r['name'] in order}
  merged = sorted(by_name.values(), key=lambda r: order.index(r['name']))
  machine = {**bench.machine(), 'platform': platform.platform()}
  path.write_text(json.dumps({'machine': machine, 'runs': merged}, indent=1))
  (out / 'times.md').write_text(table(merged))
  print(table(merged))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='docs/examples')
  parser.add_argument('--only', default='', help='comma-separated example names')
  parser.add_argument('--skip', default='', help='comma-separated example names')
  parser.add_argument('--pictures_only', action='store_true')
  args = parser.parse_args()
  everything = documented()
  names = {e.name for e in everything}
  only, skip = ({n for n in s.split(',') if n} for s in (args.only, args.skip))
  if only - names or skip - names:
    sys.exit(f'examples: error: unknown example(s) {sorted((only | skip) - names)}; '
             f'the documentation has {sorted(names)}')
  chosen = [e for e in everything if (not only or e.name in only) and e.name not in skip]
  os.environ['PATH'] = f'{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ["PATH"]}'
  out = bench.REPO / args.out
  records = []
  for example in chosen:
    if not args.pictures_only:
      records.append(run(example))
      print(json.dumps(records[-1]), flush=True)
      if records[-1]['status'] != 0:
        continue
    path = picture_path(out, example)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
      picture(bench.REPO / 'runs' / example.name).save(path, quality=88)
    except FileNotFoundError as e:
      sys.exit(f'examples: error: {e}')
    print(path)
  if records:
    _write_times(out, records, [e.name for e in everything])


if __name__ == '__main__':
  main()
