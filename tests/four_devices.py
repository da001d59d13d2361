"""Runs test code in a subprocess that sees 4 forced CPU devices: JAX reads
XLA_FLAGS once, at start, so the test process itself keeps its one device."""
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(module: str, call: str) -> None:
  """Imports tests/<module>.py under 4 devices and evaluates `call` in it."""
  code = (f'import sys; sys.path.insert(0, "tests"); import jax, {module}; '
          f'assert jax.device_count() == 4; {module}.{call}')
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=4'}
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
