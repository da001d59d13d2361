"""`jaxstyle.app.memory.estimate` against XLA's compiled peak of the solver.

python -m benchmarks.memory_fit [--heights=512,1024,2048] [--precision=P] [--target=FILE]

For each configuration (the Keras preset; the default preset, average
pooling; the default preset's style and content layers cut to block1 and
block2, where the backward pass rather than the kept activations sets the
peak), without and with `remat`, at each height (4:3), compiles the jaxopt
L-BFGS solver's init and step and prints the larger compiled peak (XLA's
memory_analysis(): arguments + outputs - donated + temporaries), the
estimate for that platform, and their ratio: a markdown table, then one
JSON line. `--target` compiles for a GPU without one, as in
`benchmarks.device_probe`.
"""
import argparse
import json
import pathlib
from typing import Any

import jax
import ml_collections

from benchmarks import device_probe
from configs import default, keras_example
from jaxstyle import objective
from jaxstyle.app import config as config_lib
from jaxstyle.app import memory

SHALLOW = ('block1_conv1', 'block2_conv1')


def configurations() -> dict[str, ml_collections.ConfigDict]:
  """The fitted configurations by name."""
  shallow = default.get_config()
  shallow.loss.style_layers, shallow.loss.content_layers = SHALLOW, SHALLOW[-1:]
  return {'keras': keras_example.get_config(), 'default (avg)': default.get_config(),
          'block1-2 (avg)': shallow}


def fit(heights: list[int], precision: str,
        sharding: jax.sharding.Sharding | None) -> list[dict[str, Any]]:
  platform = 'gpu' if sharding is not None else jax.devices()[0].platform
  rows = []
  for name, config in configurations().items():
    config.precision = precision
    if sharding is not None:
      config.conv_algorithm = 'direct'  # what 'auto' picks on a GPU
    variables = device_probe.load_variables(config)
    for remat in (False, True):
      config.remat = remat
      spec = config_lib.spec(config)
      for height in heights:
        width = round(device_probe.ASPECT * height)
        peak = device_probe.compiled_peak(config, height, variables, sharding)
        estimate = memory.estimate(
            spec.layers, height, width, 1, config.optim.lbfgs.history_size, spec.pooling,
            spec.content_layers, winograd=spec.winograd, platform=platform,
            precision=precision)
        rows.append({'config': name, 'remat': remat, 'height': height, 'width': width,
                     'compiled_peak_bytes': peak, 'estimate_bytes': estimate,
                     'ratio': estimate / peak})
        print(f'| {name} | {remat} | {width}x{height} | {peak / memory.GIB:.2f} | '
              f'{estimate / memory.GIB:.2f} | {estimate / peak:.2f} |', flush=True)
  return rows


def _heights(text: str) -> list[int]:
  """Comma-separated heights of at least 32 px (block5 keeps a position)."""
  try:
    heights = [int(h) for h in text.split(',')]
  except ValueError:
    heights = []
  if not heights or min(heights) < 32:
    raise argparse.ArgumentTypeError(f'{text!r} is not comma-separated heights of at least 32 px')
  return heights


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--heights', type=_heights, default='512,1024,2048')
  parser.add_argument('--precision', default='highest', choices=objective.PRECISIONS)
  parser.add_argument('--target', type=pathlib.Path,
                      help='an XLA GPU target config to compile for, without the GPU')
  args = parser.parse_args()
  sharding, device = None, None
  if args.target is not None:
    sharding, _ = device_probe.target_sharding(args.target)
    device = next(iter(sharding.device_set))
  device = device or jax.devices()[0]
  print(f'{device.device_kind}, jax {jax.__version__}, precision {args.precision!r}\n')
  print('| config | remat | px | compiled peak, GiB | estimate, GiB | estimate / compiled |')
  print('| --- | --- | --- | ---: | ---: | ---: |', flush=True)
  rows = fit(args.heights, args.precision, sharding)
  print(json.dumps({'device': device.device_kind, 'jax_version': jax.__version__, 'rows': rows}))


if __name__ == '__main__':
  main()
