"""One process per workdir; the lock dies with its process."""
import subprocess
import sys

import pytest

from jaxstyle.app import workdir
from jaxstyle.errors import InputError

HOLD = ('import pathlib, sys, time; from jaxstyle.app import workdir\n'
        'with workdir.lock(pathlib.Path(sys.argv[1])):\n'
        '  print("locked", flush=True); time.sleep(60)\n')


def test_second_holder_is_refused_and_a_killed_holder_releases(tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', HOLD, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == 'locked'
  with pytest.raises(InputError, match=f'in use by jaxstyle pid {holder.pid}'):
    with workdir.lock(tmp_path):
      pass
  holder.kill()
  holder.wait()
  with workdir.lock(tmp_path):
    pass


def test_check_rejects_files_and_missing(tmp_path):
  (tmp_path / 'f').write_text('x')
  with pytest.raises(InputError, match='not a directory'):
    workdir.check(tmp_path / 'f' / 'run')
  with pytest.raises(InputError, match='required'):
    workdir.check(None)
  assert workdir.check(tmp_path / 'new' / 'run') == tmp_path / 'new' / 'run'
