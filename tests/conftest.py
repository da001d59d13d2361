"""Every test, and every process a test starts, keeps its compilation cache
(jaxstyle.app.cache) in a directory of the session's, not the user's."""
import os

import pytest


@pytest.fixture(scope='session', autouse=True)
def _private_cache_home(tmp_path_factory):
  before = os.environ.get('XDG_CACHE_HOME')
  os.environ['XDG_CACHE_HOME'] = str(tmp_path_factory.mktemp('cache_home'))
  yield
  if before is None:
    del os.environ['XDG_CACHE_HOME']
  else:
    os.environ['XDG_CACHE_HOME'] = before
