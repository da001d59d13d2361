"""Importing jaxstyle leaves JAX unstarted and loads no optional solver, as a
library should."""
import os
import subprocess
import sys


def _run(code: str) -> str:
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'JAX_PLATFORMS')}
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env={**env, 'JAX_PLATFORMS': 'cpu'}, timeout=300)
  assert result.returncode == 0, result.stderr
  return result.stdout.strip()


def test_importing_starts_no_backend_so_later_xla_flags_still_apply():
  assert _run('import os, jaxstyle, jaxstyle.main, jaxstyle.sweep\n'
              'os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=3"\n'
              'import jax\n'
              'print(jax.device_count())') == '3'


def test_jaxopt_loads_with_its_solver_only():
  assert _run('import sys, jaxstyle, jaxstyle.main\n'
              'from jaxstyle import optimize\n'
              'loaded = "jaxopt" in sys.modules\n'
              'optimize.make("adam")\n'
              'before = "jaxopt" in sys.modules\n'
              'optimize.make("lbfgs")\n'
              'print(loaded, before, "jaxopt" in sys.modules)') == 'False False True'
