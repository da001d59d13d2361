"""Tests for benchmarks.examples, and that every example command of the
documentation (README.md, docs/*.md) is a valid run: its flags parse and its
config passes validation."""

import shlex

from absl import flags
from ml_collections import config_flags
import numpy as np
from PIL import Image
import pytest

from benchmarks import examples
from jaxstyle.app import sweep, validation

DOC_EXAMPLES = examples.documented()


def _config(command: str):
  """The config that the command's jaxstyle.main or jaxstyle.sweep would run."""
  args = shlex.split(command.replace('\\\n', ' ').split(' && ')[-1])
  assert args[:2] == ['python', '-m'] and args[2] in ('jaxstyle.main', 'jaxstyle.sweep'), args
  argv = ['prog', *args[3:]]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, '', flag_values=values, sys_argv=argv)
  flags.DEFINE_string('workdir', None, '', flag_values=values)
  values(argv)
  return args[2], values.config, values.workdir


def test_docs_have_an_example_per_section():
  names = [e.name for e in DOC_EXAMPLES]
  for name in ('default', 'original_colors', 'color_transfer', 'normal_init', 'blend',
               'masks', 'multiscale', 'print', 'normalized', 'contents', 'video', 'ratio',
               'fig1_content', 'fig1_style', 'fig3'):
    assert name in names


@pytest.mark.parametrize('example', DOC_EXAMPLES, ids=lambda e: e.name)
def test_documented_example_is_a_valid_run(example, tmp_path, monkeypatch):
  module, config, workdir = _config(example.command)
  assert workdir == f'runs/{example.name}'
  assert example.shared == any('../shared/' in str(v) for v in _strings(config.to_dict()))
  monkeypatch.chdir(tmp_path)  # Masks and frames are made by the command: stand-ins.
  for path in config.style_masks or ():
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    Image.new('L', (8, 8), 255).save(tmp_path / path)
  if config.frames is not None:
    (tmp_path / config.frames).mkdir(parents=True)
    Image.new('RGB', (8, 8)).save(tmp_path / config.frames / '00000.png')
  if module == 'jaxstyle.sweep':
    assert len(sweep.plan(config)) > 1
  else:
    validation.validate(config)


def _strings(tree):
  if isinstance(tree, dict):
    for v in tree.values():
      yield from _strings(v)
  elif isinstance(tree, (tuple, list)):
    for v in tree:
      yield from _strings(v)
  else:
    yield tree


def test_examples_drop_setup_steps_and_read_table_rows():
  readme = ('```sh\npython3 -m venv .venv && . .venv/bin/activate && pip install -e . && '
            'python -m jaxstyle.main --config c.py --workdir=runs/a\n```\n'
            '```sh\npip install -e .[bench] && python -m benchmarks.run --out=x\n```\n'
            '| `python -m jaxstyle.sweep --config s.py --workdir=runs/b` | grid |\n'
            '```sh\npython -m jaxstyle.main --config c.py --config.style=../shared/x.jpg '
            '--workdir=runs/c\n```\n')
  got = examples.examples(readme)
  assert [(e.name, e.shared) for e in got] == [('a', False), ('c', True), ('b', False)]
  assert got[0].command == 'python -m jaxstyle.main --config c.py --workdir=runs/a'


@pytest.mark.parametrize('readme, message', [
    ('```sh\npython -m jaxstyle.main --config c.py\n```\n', 'without --workdir'),
    ('```sh\npython -m jaxstyle.main --workdir=runs/a\n```\n' * 2, 'share a workdir'),
])
def test_examples_refuses_ambiguous_readme(readme, message):
  with pytest.raises(ValueError, match=message):
    examples.examples(readme)


def _docs(repo, files):
  for name, text in files.items():
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)


def _block(name):
  return f'```sh\npython -m jaxstyle.main --config c.py --workdir=runs/{name}\n```\n'


def test_docs_are_read_readme_guide_sweeps_then_the_rest_sorted(tmp_path):
  _docs(tmp_path, {'README.md': _block('a'), 'docs/zeta.md': _block('z'),
                   'docs/sweeps.md': _block('s'), 'docs/guide.md': _block('g'),
                   'docs/alpha.md': _block('b'), 'docs/examples/times.md': _block('t')})
  assert [p.relative_to(tmp_path).as_posix() for p in examples.doc_files(tmp_path)] == [
      'README.md', 'docs/guide.md', 'docs/sweeps.md', 'docs/alpha.md', 'docs/zeta.md']
  got = examples.documented(tmp_path)
  assert [(e.name, e.doc) for e in got] == [
      ('a', 'README.md'), ('g', 'docs/guide.md'), ('s', 'docs/sweeps.md'),
      ('b', 'docs/alpha.md'), ('z', 'docs/zeta.md')]


def test_docs_refuse_a_workdir_in_two_files(tmp_path):
  _docs(tmp_path, {'README.md': _block('a'), 'docs/guide.md': _block('a')})
  with pytest.raises(ValueError, match=r'share a workdir.*a \(docs/guide.md\)'):
    examples.documented(tmp_path)


def _png(path, height, width, value):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)


def test_picture_prefers_contact_sheet_then_final(tmp_path):
  _png(tmp_path / 'final.png', 512, 300, 10)
  small = examples.picture(tmp_path)
  assert (small.height, small.width) == (examples.THUMB_HEIGHT, 150)
  assert np.asarray(small).max() == 10
  _png(tmp_path / 'contact_sheet.png', examples.SHEET_SIDE, 2 * examples.SHEET_SIDE, 200)
  sheet = examples.picture(tmp_path)
  assert (sheet.height, sheet.width) == (examples.SHEET_SIDE // 2, examples.SHEET_SIDE)
  assert np.asarray(sheet).min() == 200


@pytest.mark.parametrize('count, shown', [(2, 2), (8, 4), (5, 3)])
def test_picture_of_a_batch_is_a_strip(tmp_path, count, shown):
  for i in range(count):
    _png(tmp_path / 'frames' / f'{i:05d}.png', 320, 200, 20 * i)
  strip = np.asarray(examples.picture(tmp_path))
  assert strip.shape == (examples.STRIP_HEIGHT, shown * 100, 3)
  step = -(-count // examples.STRIP_MAX)
  np.testing.assert_array_equal(strip[0, ::100, 0], [20 * i for i in range(0, count, step)])


def test_picture_of_an_empty_workdir_is_an_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='no final.png'):
    examples.picture(tmp_path)


def test_shared_pictures_go_where_git_ignores_them(tmp_path):
  own = examples.Example('a', 'python -m jaxstyle.main', shared=False)
  shared = examples.Example('b', 'python -m jaxstyle.main ../shared/x.jpg', shared=True)
  assert examples.picture_path(tmp_path, own) == tmp_path / 'a.jpg'
  assert examples.picture_path(tmp_path, shared) == tmp_path / 'shared' / 'b.jpg'
  ignored = (examples.README.parent / '.gitignore').read_text().split()
  assert '/docs/examples/shared/' in ignored
