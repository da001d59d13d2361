"""Command line: stylise one image.

python -m jaxstyle.main --config configs/default.py \
    --config.content=PATH --config.style=PATH --workdir=DIR

Writes to DIR: config.json, metrics.jsonl, step_NNNNN.png every save_every
steps and final.png (final.<output_format>; jaxstyle.app.run). Bad input: one line on stderr, exit
status 2, and nothing written.
"""
from absl import app
from absl import flags

from jaxstyle.app import cli
from jaxstyle.app import run as run_lib

_START_OVER = flags.DEFINE_bool(
    'start_over', False, "Discard the workdir's checkpoint instead of resuming from it.")


def main(argv: list[str]) -> None:
  config = cli.config(argv)
  final = cli.guarded(lambda: run_lib.run(config, cli.WORKDIR.value, _START_OVER.value))
  if final is None:
    cli.fail('interrupted; checkpoint written, run the same command to resume',
             cli.EXIT_INTERRUPTED)
  print(final)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
