"""JAX's persistent compilation cache, shared by every run of a user:
$XDG_CACHE_HOME/jaxstyle/compilation_cache (default ~/.cache/jaxstyle/...).

A run of shapes and settings that any earlier run compiled reads the
executables from it instead of compiling. JAX writes an entry in place, so
a process reading it meanwhile would find it half written, and a writer
killed midway would leave it so for good. So the shared directory holds
only whole entries: a process gives JAX a staging directory of its own,
which starts with a hard link to every shared entry, and at exit links
each entry it added into the shared directory (an entry another run
published meanwhile is kept). A staging directory whose process died is
removed by the next run. XLA's own caches beside JAX's (GPU autotuning
results) are off.
"""
import atexit
import contextlib
import os
import pathlib
import shutil
import tempfile

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_cache
import ml_collections

SUBDIR = 'compilation_cache'
_STAGING = '.staging-'  # + pid + '-' + random: one process's directory

_staging: pathlib.Path | None = None


def directory() -> pathlib.Path:
  """The shared cache: $XDG_CACHE_HOME (an absolute path, else ~/.cache)/jaxstyle/SUBDIR."""
  root = os.environ.get('XDG_CACHE_HOME', '')
  base = pathlib.Path(root) if os.path.isabs(root) else pathlib.Path.home() / '.cache'
  return base / 'jaxstyle' / SUBDIR


def _link(source: pathlib.Path, target: pathlib.Path) -> None:
  """target as a hard link to source (a copy where links fail), never half written;
  nothing if target exists."""
  try:
    os.link(source, target)
  except FileExistsError:
    pass
  except OSError:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix='.tmp-')
    os.close(fd)
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _remove_stale(shared: pathlib.Path) -> None:
  for staging in shared.glob(f'{_STAGING}*'):
    pid = staging.name.removeprefix(_STAGING).split('-')[0]
    if pid.isdigit() and not _alive(int(pid)):
      shutil.rmtree(staging, ignore_errors=True)


def publish() -> None:
  """At exit: links every entry this process compiled into the shared
  directory, and drops the staging directory."""
  global _staging
  staging, _staging = _staging, None
  if staging is None:
    return
  with contextlib.suppress(OSError):
    for entry in staging.iterdir():
      _link(entry, staging.parent / entry.name)
  shutil.rmtree(staging, ignore_errors=True)


def _use(directory: pathlib.Path | None) -> None:
  """JAX's cache in `directory` (None: no cache) from the next compile on."""
  path = None if directory is None else str(directory)
  before = jax.config.jax_compilation_cache_dir
  if path == before:
    return
  jax.config.update('jax_compilation_cache_dir', path)
  if before is not None:  # JAX sets its cache up once, at the first compile after a directory
    jax_cache.reset_cache()


def enable(config: ml_collections.ConfigDict) -> None:
  """The shared cache for this process's compiles when config.compilation_cache,
  else none. Every entry is kept, however quick its compile (CPU compiles are)."""
  global _staging
  if not config.compilation_cache:
    _use(None)
    return
  if _staging is None:
    shared = directory()
    shared.mkdir(parents=True, exist_ok=True)
    _remove_stale(shared)
    _staging = pathlib.Path(tempfile.mkdtemp(prefix=f'{_STAGING}{os.getpid()}-', dir=shared))
    for entry in shared.iterdir():
      if entry.is_file() and not entry.name.startswith('.'):
        _link(entry, _staging / entry.name)
    atexit.register(publish)
  _use(_staging)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  # XLA's own caches would live in the staging directory, whose path then
  # enters every entry's key: no run would find another's entries.
  jax.config.update('jax_persistent_cache_enable_xla_caches', '')
