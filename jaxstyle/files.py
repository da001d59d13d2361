"""Writing files so that a crash never leaves a half-written one behind."""
from collections.abc import Iterable, Iterator
import contextlib
import json
import os
import pathlib
import tempfile
from typing import IO, Any


@contextlib.contextmanager
def atomic(path: str | os.PathLike, mode: str = 'wb') -> Iterator[IO]:
  """Open a temporary file beside `path`; on success it replaces `path`, on error it vanishes."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
  try:
    with os.fdopen(fd, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def write_text(path: str | os.PathLike, text: str) -> None:
  with atomic(path, 'w') as f:
    f.write(text)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
  """One JSON object per line."""
  write_text(path, ''.join(json.dumps(r) + '\n' for r in records))
