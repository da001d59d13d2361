"""The documentation works as written: the ```python blocks of README.md and
of each docs/*.md run in order, as a reader runs them, outside the repository; every relative link and
picture points at a file, and every #anchor at a heading."""

import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
TIMEOUT_S = 600  # a block may compile VGG19's value and gradient on a 2-core CPU
# Pictures that `python -m benchmarks.examples` makes from ../shared images;
# git ignores them (.gitignore), so a fresh clone lacks them.
MADE_BY_EXAMPLES = 'docs/examples/shared/'
_FENCE = re.compile(r'^```(\w*)\n(.*?)^```', flags=re.MULTILINE | re.DOTALL)


def doc_files() -> list[pathlib.Path]:
  return [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]


def python_blocks(text: str) -> list[tuple[int, str]]:
  """(line of the opening fence, 1-based; code) of each ```python block."""
  return [(text.count('\n', 0, m.start()) + 1, m.group(2))
          for m in _FENCE.finditer(text) if m.group(1) == 'python']


def _docs_with_code() -> list:
  return [pytest.param(path, id=path.relative_to(REPO).as_posix())
          for path in doc_files() if python_blocks(path.read_text())]


def _run(script: str, cwd: pathlib.Path) -> None:
  try:
    done = subprocess.run([sys.executable, '-c', script], cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired as e:
    pytest.fail(f'did not finish in {TIMEOUT_S} s; stderr:\n{e.stderr or ""}')
  assert done.returncode == 0, f'exit status {done.returncode}; stderr:\n{done.stderr}'


def _session(name: str, text: str) -> str:
  """A script that runs the python blocks of `text` in order in one namespace,
  as a reader runs them: a traceback names the block as 'NAME:LINE'."""
  blocks = [(f'{name}:{line}', code) for line, code in python_blocks(text)]
  return (f'blocks = {blocks!r}\nnamespace = {{"__name__": "__main__"}}\n'
          'for where, code in blocks:\n  exec(compile(code, where, "exec"), namespace)\n')


@pytest.mark.parametrize('doc', _docs_with_code())
def test_python_blocks_run_in_order(doc, tmp_path):
  _run(_session(doc.relative_to(REPO).as_posix(), doc.read_text()), tmp_path)


def test_python_blocks_are_found_with_their_lines():
  text = ('# t\n```sh\npython -c "x"\n```\n\n```python\nprint(1)\n```\n'
          'text\n```python\nimport os\nprint(2)\n```\n```\nplain\n```\n')
  assert python_blocks(text) == [(6, 'print(1)\n'), (10, 'import os\nprint(2)\n')]


def test_a_python_block_that_fails_is_reported_by_its_line(tmp_path):
  text = '```python\nx = 1\n```\n\n```python\nraise ValueError(x)\n```\n'
  with pytest.raises(AssertionError, match=r'exit status 1; stderr:(.|\n)*doc.md:5(.|\n)*ValueError: 1'):
    _run(_session('doc.md', text), tmp_path)


def _slug(heading: str) -> str:
  """GitHub's anchor for a heading."""
  return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def _prose(text: str) -> str:
  return _FENCE.sub('', text)


def _anchors(path: pathlib.Path) -> set[str]:
  return {_slug(h) for h in re.findall(r'^#+ (.*)$', _prose(path.read_text()), re.MULTILINE)}


def _links() -> list:
  found = []
  for path in [*doc_files(), REPO / 'benchmarks' / 'README.md']:
    targets = dict.fromkeys(re.findall(r'\]\(([^)\s]+)\)', _prose(path.read_text())))
    for target in targets:
      if not re.match(r'[a-z]+:', target):
        found.append(pytest.param(path, target, id=f'{path.relative_to(REPO).as_posix()}->{target}'))
  return found


@pytest.mark.parametrize('doc, target', _links())
def test_link_points_at_a_file_and_heading(doc, target):
  file, _, anchor = target.partition('#')
  resolved = (doc.parent / file).resolve() if file else doc
  relative = resolved.relative_to(REPO).as_posix()
  if relative.startswith(MADE_BY_EXAMPLES):
    return
  assert resolved.exists(), f'{target}: no {relative}'
  if anchor:
    assert anchor in _anchors(resolved), f'{target}: no heading #{anchor} in {relative}'
