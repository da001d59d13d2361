"""The shared compilation cache: under $XDG_CACHE_HOME, only whole entries,
shared by concurrent runs, off with config.compilation_cache=False."""
import os
import pathlib
import subprocess
import sys

import ml_collections

from jaxstyle.app import cache

# Compiles one program with the cache as argv[1] ('1'/'0') asks and prints how
# many compiles the cache served. argv[2]: 'kill' exits without the atexit
# hooks, as a killed process would; a directory is a barrier: each process
# marks it and waits there for a second one, so that the two overlap.
COMPILE = '''
import os, pathlib, sys, time
import jax, jax.numpy as jnp, ml_collections
from jax import monitoring
from jaxstyle.app import cache
hits = []
monitoring.register_event_listener(
    lambda event, **kw: hits.append(event) if event.endswith('cache_hits') else None)
cache.enable(ml_collections.ConfigDict({'compilation_cache': sys.argv[1] == '1'}))
if sys.argv[2:] and sys.argv[2] != 'kill':
  barrier = pathlib.Path(sys.argv[2])
  (barrier / str(os.getpid())).touch()
  while len(list(barrier.iterdir())) < 2:
    time.sleep(0.01)
jax.block_until_ready(jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((64, 64))))
print(len(hits), flush=True)
if sys.argv[2:] == ['kill']:
  os._exit(0)
'''


def _compile(home: pathlib.Path, *args: str) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, '-c', COMPILE, *args], text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, 'XDG_CACHE_HOME': str(home)})


def _finish(process: subprocess.Popen) -> int:
  out, err = process.communicate(timeout=300)
  assert process.returncode == 0 and 'Warning' not in err, err
  return int(out)


def _entries(home: pathlib.Path) -> list[str]:
  shared = home / 'jaxstyle' / cache.SUBDIR
  return sorted(p.name for p in shared.iterdir()) if shared.exists() else []


def test_directory_is_under_xdg_cache_home(monkeypatch, tmp_path):
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
  assert cache.directory() == tmp_path / 'jaxstyle' / 'compilation_cache'
  monkeypatch.setenv('XDG_CACHE_HOME', 'relative/ignored')
  assert cache.directory() == pathlib.Path.home() / '.cache' / 'jaxstyle' / 'compilation_cache'
  monkeypatch.delenv('XDG_CACHE_HOME')
  assert cache.directory() == pathlib.Path.home() / '.cache' / 'jaxstyle' / 'compilation_cache'


def test_two_concurrent_runs_share_it_and_a_later_one_reads_it(tmp_path):
  barrier = tmp_path / 'barrier'
  barrier.mkdir()
  runs = [_compile(tmp_path, '1', str(barrier)), _compile(tmp_path, '1', str(barrier))]
  assert [_finish(r) for r in runs] == [0, 0]
  entries = _entries(tmp_path)
  assert entries and not [e for e in entries if e.startswith('.')], entries
  assert _finish(_compile(tmp_path, '1')) == len(entries)
  assert _entries(tmp_path) == entries


def test_a_killed_run_leaves_no_entry_and_the_next_cleans_up(tmp_path):
  assert _finish(_compile(tmp_path, '1', 'kill')) == 0
  assert [e.startswith('.staging-') for e in _entries(tmp_path)] == [True]
  assert _finish(_compile(tmp_path, '1')) == 0
  entries = _entries(tmp_path)
  assert entries and not [e for e in entries if e.startswith('.')], entries


def test_off_writes_nothing(tmp_path):
  assert _finish(_compile(tmp_path, '0')) == 0
  assert _entries(tmp_path) == []


def test_off_after_on_in_one_process(monkeypatch, tmp_path):
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
  import jax  # pylint: disable=g-import-not-at-top
  try:
    cache.enable(ml_collections.ConfigDict({'compilation_cache': True}))
    assert jax.config.jax_compilation_cache_dir.startswith(str(cache.directory()))
    cache.enable(ml_collections.ConfigDict({'compilation_cache': False}))
    assert jax.config.jax_compilation_cache_dir is None
  finally:
    cache.enable(ml_collections.ConfigDict({'compilation_cache': False}))
    cache.publish()
