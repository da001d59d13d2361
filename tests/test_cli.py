"""The command line's process set-up."""
import numpy as np  # noqa: F401  (loads numpy's BLAS, which threadpoolctl then sees)
import threadpoolctl

from jaxstyle.app import cli


def test_one_blas_thread_limits_every_loaded_blas():
  with threadpoolctl.threadpool_limits(2, user_api='blas'):
    cli.one_blas_thread()
    blas = [p for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']
    assert blas and all(p['num_threads'] == 1 for p in blas), blas
