"""Solver checkpoints: the image, the optimiser state, the step and the scale,
in one .npz.

A checkpoint is written atomically and carries a hash of the config fields
that change the result, so a run resumes only the run that wrote it. Restoring
into the same compiled solver continues bit for bit on the same machine: the
loop has no other state (the only randomness, the noise init, is in x).
"""
from collections.abc import Callable
import hashlib
import json
import os
import pathlib
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from jaxstyle import files
from jaxstyle.errors import InputError

FILENAME = 'checkpoint.npz'
# Fields that do not change the solve: a checkpoint resumes across them.
CADENCE = ('steps', 'log_every', 'save_every', 'checkpoint_every', 'grad_norms',
           'original_colors', 'output_bits', 'output_format', 'sweep')


class Checkpoint(NamedTuple):
  step: int  # of the whole run, counting on across scales
  x: jax.Array
  state: Any
  wall_s: float  # solve time spent before this checkpoint
  scale: int = 0  # index of the scale (multiscale) that x and state belong to


def config_hash(config: ml_collections.ConfigDict) -> str:
  """sha256 of the config without its cadence fields. With several scales and
  no scale_steps, `steps` sets the earlier scales' steps too, and counts."""
  fields = json.loads(config.to_json_best_effort(sort_keys=True))
  if fields['scales'] > 1 and fields['scale_steps'] is None:
    fields['scale_steps'] = fields['steps']
  for field in CADENCE:
    fields.pop(field, None)
  return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def save(path: str | os.PathLike, checkpoint: Checkpoint, digest: str) -> None:
  leaves = jax.device_get(jax.tree.leaves((checkpoint.x, checkpoint.state)))
  arrays = {f'leaf_{i:03d}': np.asarray(a) for i, a in enumerate(leaves)}
  with files.atomic(path) as f:
    np.savez(f, step=checkpoint.step, wall_s=checkpoint.wall_s, scale=checkpoint.scale,
             config_hash=digest, **arrays)


def restore(path: str | os.PathLike, like: Callable[[int], tuple[Any, Any]],
            digest: str) -> Checkpoint:
  """Loads a checkpoint into the structure like(scale) = (x, state) of the
  scale it was written at, arrays or jax.ShapeDtypeStructs
  (`optimize.state_shape`).

  Raises InputError if it belongs to another config or does not fit `like`.
  """
  path = pathlib.Path(path)
  try:
    with np.load(path, allow_pickle=False) as f:
      saved = {k: f[k] for k in f.files}
  except (OSError, ValueError, EOFError) as e:
    raise InputError(f'{path}: unreadable checkpoint ({e}); pass --start_over to discard it')
  if str(saved.get('config_hash')) != digest:
    raise InputError(f'{path} was written by a different config; pass --start_over to '
                     'discard it, or use another --workdir')
  scale = int(saved['scale'])
  leaves, treedef = jax.tree.flatten(like(scale))
  loaded = [saved.get(f'leaf_{i:03d}') for i in range(len(leaves))]
  for want, got in zip(leaves, loaded):
    if got is None or got.shape != want.shape or got.dtype != want.dtype:
      raise InputError(f'{path} does not match this solver; pass --start_over to discard it')
  x, state = jax.tree.unflatten(treedef, [jax.numpy.asarray(a) for a in loaded])
  return Checkpoint(int(saved['step']), x, state, float(saved['wall_s']), scale)
