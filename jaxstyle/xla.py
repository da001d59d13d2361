"""XLA options of the programs jaxstyle compiles itself, chosen for a short
start: on a CPU a first run spends seconds compiling (docs/performance.md).

Each set is checked once per process against the XLA that runs (a trivial
compile); options it does not know are left out, so another jax version
compiles with its defaults.
"""
import functools
from typing import Any

import jax
import numpy as np

# XLA:CPU's older loop-fusion emitters: a solver's init and step compile in
# 15-30 % less time and run as fast. No effect on other backends.
_EMITTERS = (('xla_cpu_use_fusion_emitters', False),)
# LLVM's level 1 for a program that runs once (the targets, a solver's init):
# 10-20 % less compile time, about as fast a run.
_ONCE = (('xla_backend_optimization_level', 1),)


def _probe(x: jax.Array) -> jax.Array:
  return x + 1


@functools.cache
def _known(options: tuple[tuple[str, Any], ...]) -> bool:
  try:
    jax.jit(_probe, compiler_options=dict(options)).lower(np.float32(0)).compile()
  except jax.errors.JaxRuntimeError:
    return False
  return True


def _checked(*sets: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
  """The options of `sets` that XLA knows, by sets: one compile when it knows all."""
  if _known(sum(sets, ())):
    return dict(sum(sets, ()))
  return {k: v for options in sets if _known(options) for k, v in options}


def step() -> dict[str, Any]:
  """Options of a program that runs many times: a solver's step."""
  return {k: v for k, v in _checked(_EMITTERS, _ONCE).items() if k in dict(_EMITTERS)}


def once() -> dict[str, Any]:
  """Options of a program that runs once: the targets, a solver's init."""
  return _checked(_EMITTERS, _ONCE)
