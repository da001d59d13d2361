"""Several settings of one objective solved as one batch.

The members share the network and the targets and differ in traced values
only (loss weights, starting image): the solver is vmapped over a leading
batch axis, compiled once, and the batch axis is sharded over every device of
every process with a `jax.sharding.Mesh`. Each member keeps its own L-BFGS
history and line search, so a member's result is the one it would reach alone.
"""
from collections.abc import Callable, Sequence
import functools
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np

from jaxstyle import memory, objective, optimize

AXIS = 'batch'
# vmap axes of objective.Params: the weights are per member, the rest shared.
PARAMS_AXES = objective.Params(variables=None, content=None, style=None, weights=0)


def mesh() -> jax.sharding.Mesh:
  """A one-axis mesh over every device of every process."""
  return jax.make_mesh((jax.device_count(),), (AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def padded(n: int, devices: int) -> int:
  """n rounded up to a multiple of the device count."""
  return -(-n // devices) * devices


def auto_size(spec: objective.Spec, height: int, width: int, history_size: int,
              devices: int, headroom: float = 0.9) -> int:
  """Largest batch whose `memory.estimate` fits every device: a multiple of
  `devices`, at least one member per device. On CPU the devices share the
  host's memory."""
  device = jax.local_devices()[0]
  free = memory.available(device)
  if free is None:
    return devices
  budget = headroom * free / (jax.local_device_count() if device.platform == 'cpu' else 1)
  need = lambda b: memory.estimate(spec.layers, height, width, b, history_size,
                                   spec.pooling, spec.content_layers)
  per_device = 1
  while need(2 * per_device) <= budget and per_device < 4096:
    per_device *= 2
  return per_device * devices


def _global(array: np.ndarray, sharding: jax.sharding.Sharding) -> jax.Array:
  """A global array from a host value every process holds in full."""
  array = np.asarray(array)
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def solve(obj: objective.Objective, weights: Sequence[objective.Weights],
          x0: Sequence[jax.Array], solver: optimize.Solver, at: Sequence[int],
          callback: Callable[[optimize.Progress, Any], None] = lambda *_: None,
          devices: jax.sharding.Mesh | None = None) -> np.ndarray:
  """Solves member i from x0[i] ((1, H, W, 3)) with weights[i]; returns the
  images at step at[-1], (K, 1, H, W, 3), on every process.

  The batch is padded to a multiple of the device count with copies of its
  last member. callback(progress, terms) sees the padded batch's loss terms,
  each of shape (K_padded,), at each step in `at`.
  """
  assert len(weights) == len(x0) > 0, (len(weights), len(x0))
  devices = devices or mesh()
  k = len(x0)
  fill = padded(k, devices.size) - k
  weights = list(weights) + [weights[-1]] * fill
  x0 = list(x0) + [x0[-1]] * fill
  batched = jax.sharding.NamedSharding(devices, jax.sharding.PartitionSpec(AXIS))
  shared = jax.sharding.NamedSharding(devices, jax.sharding.PartitionSpec())
  stacked = jax.tree.map(lambda *a: np.stack([np.asarray(v) for v in a]), *weights)
  params = objective.Params(
      variables=jax.tree.map(lambda a: _global(a, shared), obj.params.variables),
      content=jax.tree.map(lambda a: _global(a, shared), obj.params.content),
      style=jax.tree.map(lambda a: _global(a, shared), obj.params.style),
      weights=jax.tree.map(lambda a: _global(a, batched), stacked))
  report = jax.vmap(functools.partial(objective.terms, spec=obj.spec),
                    in_axes=(0, PARAMS_AXES))
  progress = optimize.minimize(optimize.vmap(solver, PARAMS_AXES), report,
                               _global(np.stack(x0), batched), params, at, callback)
  return multihost_utils.process_allgather(progress.x, tiled=True)[:k]


def local_members(k: int, devices: jax.sharding.Mesh | None = None) -> list[int]:
  """Indices among k members whose results live on this process's devices."""
  devices = devices or mesh()
  per_device = padded(k, devices.size) // devices.size
  mine = {d.id for d in jax.local_devices()}
  return [i for i in range(k) if devices.devices.flat[i // per_device].id in mine]

