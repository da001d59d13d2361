"""The command line's process set-up."""
import os
import subprocess
import sys

import numpy as np  # noqa: F401  (loads numpy's BLAS, which threadpoolctl then sees)
import threadpoolctl

from jaxstyle.app import cli


def test_one_blas_thread_limits_every_loaded_blas():
  with threadpoolctl.threadpool_limits(2, user_api='blas'):
    cli.one_blas_thread()
    blas = [p for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']
    assert blas and all(p['num_threads'] == 1 for p in blas), blas


def test_a_blas_loaded_later_runs_on_one_thread_too():
  code = ('import os, threadpoolctl\n'
          'from jaxstyle.app import cli\n'
          'cli.one_blas_thread()\n'
          'import scipy.linalg.cython_lapack\n'
          'print(sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()}))')
  env = {k: v for k, v in os.environ.items() if k != 'OPENBLAS_NUM_THREADS'}
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=env, timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == '[1]'
