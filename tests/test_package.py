"""Importing jaxstyle leaves JAX unstarted, as a library should."""
import os
import subprocess
import sys


def test_importing_starts_no_backend_so_later_xla_flags_still_apply():
  code = ('import os, jaxstyle, jaxstyle.main, jaxstyle.sweep\n'
          'os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=3"\n'
          'import jax\n'
          'print(jax.device_count())\n')
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'JAX_PLATFORMS')}
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env={**env, 'JAX_PLATFORMS': 'cpu'}, timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split()[-1] == '3'
