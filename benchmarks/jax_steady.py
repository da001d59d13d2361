"""In-process timing of one jaxstyle objective evaluation (loss and gradient).

Prints JSON: first call (compile included), steady state (median after a
warm-up, block_until_ready) and their difference, the compile time.

python -m benchmarks.jax_steady --content=PNG --style=PNG --height=256 [--conv_algorithm=auto]
"""
import argparse
import json
import statistics
import time

import jax

from configs import keras_example
from jaxstyle import image, objective, start
from jaxstyle.app import config as config_lib


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--content', required=True)
  parser.add_argument('--style', required=True)
  parser.add_argument('--height', type=int, required=True)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--conv_algorithm', default='auto', choices=objective.CONV_ALGORITHMS)
  args = parser.parse_args()
  config = keras_example.get_config()
  config.height = args.height
  config.conv_algorithm = args.conv_algorithm
  content = image.load(args.content, height=args.height)
  style = image.load(args.style, height=args.height)
  obj = config_lib.make_objective(config, content, style)
  x = start.initial('content', image.preprocess(content), image.preprocess(style))
  began = time.perf_counter()
  jax.block_until_ready(objective.value_and_grad(x, obj))
  first = time.perf_counter() - began
  jax.block_until_ready(objective.value_and_grad(x, obj))  # warm-up
  times = []
  for _ in range(args.repeats):
    began = time.perf_counter()
    jax.block_until_ready(objective.value_and_grad(x, obj))
    times.append(time.perf_counter() - began)
  steady = statistics.median(times)
  print(json.dumps({'first_call_s': first, 'steady_s_per_eval': steady,
                    'compile_s': first - steady, 'jax_version': jax.__version__}))


if __name__ == '__main__':
  main()
