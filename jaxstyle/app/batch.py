"""Several settings of one objective solved as one batch.

The members share the network and the style targets and differ in traced
values only (loss weights, starting image, possibly the content targets): the
solver is vmapped over a leading batch axis, compiled once, and the batch axis
is sharded over every device of every process with a `jax.sharding.Mesh`.
Each member keeps its own L-BFGS history and line search, so a member's result
is the one it would reach alone.
"""
from collections.abc import Callable, Sequence
import dataclasses
import functools
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

from jaxstyle import objective, optimize
from jaxstyle.app import memory
from jaxstyle.errors import ResourceError

AXIS = 'batch'


def _axes(obj: objective.Objective, contents: bool) -> objective.Objective:
  """vmap axes of obj: the weights per member (and the content targets, with
  `contents`), the rest shared."""
  return objective.Objective(variables=None, content=0 if contents else None, style=None,
                             weights=0, spec=obj.spec)


def mesh() -> jax.sharding.Mesh:
  """A one-axis mesh over every device of every process."""
  return jax.make_mesh((jax.device_count(),), (AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def padded(n: int, devices: int) -> int:
  """n rounded up to a multiple of the device count."""
  return -(-n // devices) * devices


def size(spec: objective.Spec, height: int, width: int, history_size: int, devices: int,
         masked_styles: int = 0, requested: int = 0, headroom: float = 0.9) -> int:
  """Members per batch: `requested`, or if 0 the largest multiple of `devices`
  whose `memory.estimate` fits every device (on a CPU: one per device).
  ResourceError if even the requested batch, or one member per device, does
  not fit. On CPU the devices share the host's memory."""
  device = jax.local_devices()[0]
  shares = jax.local_device_count() if device.platform == 'cpu' else 1
  check = lambda per_device: memory.preflight(
      spec.layers, height, width, batch=per_device * shares, history_size=history_size,
      device=device, headroom=headroom, masked_styles=masked_styles, **memory.of_spec(spec))
  if requested:
    check(padded(requested, devices) // devices)
    return requested
  check(1)
  if device.platform == 'cpu':
    # Vmapping members costs more per member than it saves on a CPU
    # (benchmarks/sweep_batch.py); one per device shares the compile all the same.
    return devices
  per_device = 1
  while per_device < 4096:
    try:
      check(2 * per_device)
    except ResourceError:
      break
    per_device *= 2
  return per_device * devices


def _global(array: np.ndarray, sharding: jax.sharding.Sharding) -> jax.Array:
  """A global array from a host value every process holds in full."""
  array = np.asarray(array)
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def solve(obj: objective.Objective, weights: Sequence[objective.Weights],
          x0: Sequence[jax.Array], solver: optimize.Solver, at: Sequence[int],
          callback: Callable[[optimize.Progress, Any], None] = lambda *_: None,
          devices: jax.sharding.Mesh | None = None,
          contents: Sequence[dict[str, jax.Array]] | None = None,
          at_step: Callable[[Any, int], Any] = optimize.unchanged) -> np.ndarray:
  """Solves member i from x0[i] ((1, H, W, 3)) with weights[i]; returns the
  images at step at[-1], (K, 1, H, W, 3), on every process.

  contents: member i's content targets (Objective.content, e.g. of
  `objective.with_content`), one size for all; None: obj's for every member.
  The batch is padded to a multiple of the device count with copies of its
  last member. callback(progress, terms) sees the padded batch's loss terms,
  each of shape (K_padded,), at each step in `at`. at_step: as optimize.minimize's.
  """
  assert len(weights) == len(x0) > 0, (len(weights), len(x0))
  assert contents is None or len(contents) == len(x0), (len(contents), len(x0))
  devices = devices or mesh()
  k = len(x0)
  fill = padded(k, devices.size) - k
  members = lambda values: list(values) + [values[-1]] * fill
  stack = lambda trees: jax.tree.map(lambda *a: np.stack([np.asarray(v) for v in a]), *trees)
  x0 = members(x0)
  axes = _axes(obj, contents is not None)
  values = dataclasses.replace(obj, weights=stack(members(weights)))
  if contents is not None:
    values = dataclasses.replace(values, content=stack(members(contents)))
  batched = jax.sharding.NamedSharding(devices, jax.sharding.PartitionSpec(AXIS))
  shared = jax.sharding.NamedSharding(devices, jax.sharding.PartitionSpec())
  place = lambda axis, tree: jax.tree.map(
      lambda a: _global(a, shared if axis is None else batched), tree)
  params = jax.tree.map(place, axes, values, is_leaf=lambda a: a is None or a == 0)
  per_device = len(x0) // devices.size
  progress = optimize.minimize(_on_devices(solver, devices, per_device, axes), _terms,
                               _global(np.stack(x0), batched), params, at=at,
                               callback=callback, at_step=at_step)
  return multihost_utils.process_allgather(progress.x, tiled=True)[:k]


def _terms(x: jax.Array, terms: dict[str, jax.Array],
           obj: objective.Objective) -> dict[str, jax.Array]:
  return terms


class History:
  """solve's callback: the report at each stop, gathered from every process,
  and a log line of the members' losses."""

  def __init__(self, label: str, steps: int, members: int):
    self.label, self.steps, self.members = label, steps, members
    self.stops: list[tuple[int, dict[str, np.ndarray]]] = []

  def __call__(self, progress: optimize.Progress, values: Any) -> None:
    values = multihost_utils.process_allgather(values, tiled=True)
    self.stops.append((progress.step, {k: np.asarray(v) for k, v in values.items()}))
    losses = values['loss'][:self.members]
    logging.info('%s: step %d/%d, loss %.4g .. %.4g', self.label, progress.step, self.steps,
                 np.nanmin(losses), np.nanmax(losses))

  def member(self, i: int) -> list[dict[str, float]]:
    """Member i's metrics: the step and every reported value, one dict per stop."""
    return [{'step': step, **{k: float(v[i]) for k, v in values.items()}}
            for step, values in self.stops]

  def finite(self, i: int, x: np.ndarray) -> bool:
    """Whether member i's last reported values and its result x are all finite."""
    last = self.stops[-1][1]
    return all(np.isfinite(v[i]) for v in last.values()) and bool(np.isfinite(x).all())


def local_members(k: int, devices: jax.sharding.Mesh | None = None) -> list[int]:
  """Indices among k members whose results live on this process's devices."""
  devices = devices or mesh()
  per_device = padded(k, devices.size) // devices.size
  mine = {d.id for d in jax.local_devices()}
  return [i for i in range(k) if devices.devices.flat[i // per_device].id in mine]



def _one_member(f: Callable, in_axes: Any) -> Callable:
  """f on a batch of one: drops the batch axis of the arguments whose in_axes
  is 0 and gives every output one; the vmap of a single member without vmap."""
  def g(*args):
    args = jax.tree.map(lambda axis, a: a if axis is None else jax.tree.map(lambda v: v[0], a),
                        in_axes, args, is_leaf=lambda v: v is None)
    return jax.tree.map(lambda v: v[None], f(*args))
  return g


@functools.cache
def _on_devices(solver: optimize.Solver, devices: jax.sharding.Mesh, per_device: int,
                axes: objective.Objective) -> optimize.Solver:
  """The solver over a batch sharded on `devices`, each device running its
  own members (jax.shard_map). axes: the vmap axes of the params
  (`_axes`).

  One member per device runs the plain solver. Several are vmapped, which
  with jaxopt's zoom search costs more per member than the member alone:
  under vmap every lax.cond becomes a select that evaluates both branches,
  and both of that search's branches evaluate the loss ('strong_wolfe'
  evaluates it once per trial). Cached, so the chunks of a group reuse one
  compile.
  """
  local = jax.vmap if per_device > 1 else _one_member
  member = jax.sharding.PartitionSpec(AXIS)
  params = jax.tree.map(lambda axis: jax.sharding.PartitionSpec() if axis is None else member,
                        axes, is_leaf=lambda a: a is None)
  # check_vma off: jaxopt's conds mix per-device values with constants.
  shard = lambda f, in_specs: jax.shard_map(f, mesh=devices, in_specs=in_specs,
                                            out_specs=member, check_vma=False)
  return optimize.Solver(
      init=shard(local(solver.init, in_axes=(0, axes)), (member, params)),
      update=shard(local(solver.update, in_axes=(0, 0, axes)), (member, member, params)),
      aux=shard(local(solver.aux, in_axes=(0, 0, axes)), (member, member, params)))
