"""One image split along its width over every device (`shard_spatial`), for
outputs larger than one device's memory holds.

Only where the arrays live changes: jit propagates the split from the image
through the network, XLA partitions each 3x3 convolution with an exchange of
the border columns between neighbouring devices (halo exchange), poolings
stay local, and a Gram, a sum over positions, ends in one all-reduce. The
weights and the targets are replicated on every device.
"""
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec
import numpy as np

AXIS = 'width'


def mesh() -> jax.sharding.Mesh:
  """A one-axis mesh over every device."""
  return jax.make_mesh((jax.device_count(),), (AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def shard(tree: Any, image_shape: tuple[int, ...]) -> Any:
  """`tree` placed on every device: each array whose last three axes are the
  image's (H, W, 3) (the image, its gradient, the L-BFGS history) split along
  W, every other array replicated. W must be a multiple of the device count."""
  devices = mesh()
  tail = tuple(image_shape[-3:])

  def put(a):
    split = np.shape(a)[-3:] == tail
    spec = PartitionSpec(*(None,) * (np.ndim(a) - 2), AXIS, None) if split else PartitionSpec()
    return jax.device_put(a, NamedSharding(devices, spec))

  return jax.tree.map(put, tree)


def memory_width(width: int) -> int:
  """Columns (px) whose buffers one device holds: ceil(width / devices) on
  accelerators; all of them on CPU, whose devices share the host's memory."""
  if jax.default_backend() == 'cpu':
    return width
  return -(-width // jax.device_count())
