"""The output directory: checked before anything is written, held by one
process at a time, with the run's config.json beside the outputs."""
from collections.abc import Iterator
import contextlib
import fcntl
import os
import pathlib

import ml_collections

from jaxstyle import files
from jaxstyle.errors import InputError

LOCKFILE = '.lock'


def check(path: str | os.PathLike | None) -> pathlib.Path:
  """The workdir as a Path, if it is (or can become) a writable directory."""
  if not path:
    raise InputError('--workdir is required: the directory for the outputs')
  workdir = pathlib.Path(path)
  for parent in (workdir, *workdir.parents):
    if parent.exists():
      if not parent.is_dir():
        raise InputError(f'--workdir {path}: {parent} exists and is not a directory')
      if not os.access(parent, os.W_OK):
        raise InputError(f'--workdir {path}: {parent} is not writable')
      break
  return workdir


@contextlib.contextmanager
def lock(workdir: pathlib.Path) -> Iterator[None]:
  """Holds an exclusive fcntl lock on workdir/.lock; the kernel drops it when
  the process dies, so a crash never leaves the workdir locked."""
  workdir.mkdir(parents=True, exist_ok=True)
  with open(workdir / LOCKFILE, 'a+') as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or 'another process'
      raise InputError(f'--workdir {workdir} is in use by {holder}; wait for it to '
                       'finish or use another --workdir') from None
    f.seek(0)
    f.truncate()
    f.write(f'jaxstyle pid {os.getpid()}\n')
    f.flush()
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def write_config(directory: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  """directory/config.json: the config a run or sweep point ran with."""
  files.write_text(directory / 'config.json', config.to_json_best_effort(indent=2) + '\n')

