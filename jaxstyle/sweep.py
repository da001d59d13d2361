"""Command line: a hyperparameter sweep, solved in compiled batches.

python -m jaxstyle.sweep --config configs/sweeps/ratio.py --workdir=DIR

The config's `sweep.axes` (jaxstyle.app.hyper) lists the settings. Writes to
DIR a folder per point (final.png, metrics.jsonl, result.json),
results.jsonl, results.csv and contact_sheet.png (jaxstyle.app.sweep), and
prints, per point, the jaxstyle.main command that reruns it alone.
"""
from absl import app
from absl import flags
import jax

from jaxstyle.app import cli
from jaxstyle.app import sweep

_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Multi-host: call jax.distributed.initialize() first '
    '(it reads the cluster from the environment: SLURM, TPU pods, JAX_COORDINATOR_ADDRESS).')


def main(argv: list[str]) -> None:
  config = cli.config(argv)
  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  prefix = ' '.join(['python -m jaxstyle.main', cli.config_args()])
  path = cli.guarded(lambda: sweep.run(config, cli.WORKDIR.value, prefix))
  print(path)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
