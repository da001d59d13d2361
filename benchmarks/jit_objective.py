"""A user's own jax.jit over an objective: the objective as an argument
(a pytree) against the objective closed over (its arrays become constants).

For each way: the lowered program's size, the first call's wall time (trace,
compile and run), and how many XLA compiles a second objective of the same
shapes (other weights, other content image) costs. Prints JSON.

python -m benchmarks.jit_objective --height=128
"""
import argparse
import json
import time

import jax
import numpy as np

from jaxstyle import image, objective, samples, vgg


def _compiles(job) -> int:
  """XLA compiles during job()."""
  events = []
  listener = lambda event, duration, **kwargs: events.append(
      event == '/jax/core/compile/backend_compile_duration')
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    jax.block_until_ready(job())
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  return sum(events)


def _timed(job) -> float:
  began = time.perf_counter()
  jax.block_until_ready(job())
  return time.perf_counter() - began


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--height', type=int, default=128)
  args = parser.parse_args()
  content = image.load(samples.content(), height=args.height)
  other_content = np.ascontiguousarray(content[:, ::-1])  # same size, other image
  style = samples.paint(size=args.height, seed=0)
  variables = vgg.load_variables()
  first = objective.make(content, style, variables=variables)
  second = objective.make(other_content, style, variables=variables, style_weight=1e3)
  x = image.preprocess(content)

  as_argument = jax.jit(objective.value_and_grad)
  argument = {
      'program_bytes': len(as_argument.lower(x, first).as_text()),
      'first_call_s': round(_timed(lambda: as_argument(x, first)), 2),
      'compiles_for_a_second_objective': _compiles(lambda: as_argument(x, second)),
  }
  closed = lambda obj: jax.jit(lambda x: objective.value_and_grad(x, obj))
  closure = {
      'program_bytes': len(closed(first).lower(x).as_text()),
      'first_call_s': round(_timed(lambda: closed(first)(x)), 2),
      'compiles_for_a_second_objective': _compiles(lambda: closed(second)(x)),
  }
  print(json.dumps({'height': args.height, 'width': content.shape[1],
                    'objective_as_argument': argument, 'objective_closed_over': closure},
                   indent=2))


if __name__ == '__main__':
  main()
