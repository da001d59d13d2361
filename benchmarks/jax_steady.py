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
from jaxstyle import image, objective


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
  obj = objective.build(config, content, style)
  x = obj.initial('content')
  start = time.perf_counter()
  jax.block_until_ready(obj.value_and_grad(x))
  first = time.perf_counter() - start
  jax.block_until_ready(obj.value_and_grad(x))  # warm-up
  times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    jax.block_until_ready(obj.value_and_grad(x))
    times.append(time.perf_counter() - start)
  steady = statistics.median(times)
  print(json.dumps({'first_call_s': first, 'steady_s_per_eval': steady,
                    'compile_s': first - steady, 'jax_version': jax.__version__}))


if __name__ == '__main__':
  main()
