"""In-process probes of the device jaxstyle runs on: matrix-product ceilings,
where compile time goes, and the largest image the solver fits.

python -m benchmarks.device_probe ceilings [--n=8192]
python -m benchmarks.device_probe compile --height=512
python -m benchmarks.device_probe largest [--probe_heights=1024,2048] [--budget_gib=G]

Each prints one JSON line last. The Keras preset (`configs/keras_example.py`)
throughout, on random 0..255 images at Tübingen's 4:3 aspect (memory and
compile time do not depend on the pixels).

`largest` compiles the solver's init and step at two heights, reads XLA's
memory_analysis() of each (arguments + outputs - donated + temporaries),
fits bytes = a + b * pixels, predicts the largest height whose step fits the
device's free memory, and runs init and two steps there to check it (then at
90 % and 80 % of it if that fails). Without and with `config.remat`. It also
gives `jaxstyle.memory`'s estimate at the probe heights and the largest
height the CLI's preflight (90 % of free memory) lets through.
"""
import argparse
import functools
import gc
import json
import math
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from configs import keras_example
from jaxstyle import memory, objective, optimize

ASPECT = 4 / 3  # width / height of the benchmark's content image
MATMULS = (('fp32', 'highest', jnp.float32), ('tf32', 'tensorfloat32', jnp.float32),
           ('bf16', 'default', jnp.bfloat16))


def _median_seconds(fn, repeats: int) -> float:
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def ceilings(n: int, repeats: int = 10) -> dict[str, float]:
  """TFLOP/s of an n x n x n matrix product at each precision, random data,
  median of `repeats` after a warm-up: the rates an evaluation is held to."""
  a, b = jax.random.normal(jax.random.key(0), (2, n, n), jnp.float32)
  rates = {}
  for name, precision, dtype in MATMULS:
    x, y = a.astype(dtype), b.astype(dtype)
    product = jax.jit(functools.partial(jnp.dot, precision=precision,
                                        preferred_element_type=jnp.float32))
    rates[f'{name}_tflops'] = 2 * n**3 / _median_seconds(lambda: product(x, y), repeats) / 1e12
  return rates


def _config(remat: bool = False, precision: str = 'highest'):
  config = keras_example.get_config()
  config.remat, config.precision = remat, precision
  return config


def _objective(config, height: int, variables: Any) -> objective.Objective:
  width = max(1, round(ASPECT * height))
  rgb = np.random.default_rng(0).uniform(0, 255, (2, height, width, 3)).astype(np.float32)
  return objective.build(config, rgb[0], rgb[1], variables)


def _solver(config, obj: objective.Objective) -> optimize.Solver:
  return optimize.make(config.optimizer, functools.partial(objective.loss_and_terms, spec=obj.spec),
                       dict(config.optim[config.optimizer]))


def _compiled(config, obj: objective.Objective) -> tuple[Any, Any, float, float]:
  """The solver's init and step compiled for `obj`'s shapes, and the seconds
  each compile took."""
  solver = _solver(config, obj)
  state = optimize.state_shape(solver, obj.content, obj.params)
  start = time.perf_counter()
  init = jax.jit(solver.init).lower(obj.content, obj.params).compile()
  middle = time.perf_counter()
  step = jax.jit(solver.update, donate_argnums=(0, 1)).lower(obj.content, state,
                                                             obj.params).compile()
  return init, step, middle - start, time.perf_counter() - middle


def compile_phases(height: int) -> dict[str, float]:
  """Seconds of a cold start's phases at `height`: the objective (the
  targets' compile and run), init's compile, the step's compile."""
  config = _config()
  start = time.perf_counter()
  obj = _objective(config, height, objective.load_variables(config))
  jax.block_until_ready(obj.params)
  built = time.perf_counter()
  _, _, init_s, step_s = _compiled(config, obj)
  return {'height': height, 'weights_and_objective_s': built - start,
          'init_compile_s': init_s, 'step_compile_s': step_s}


def _peak_bytes(compiled) -> int:
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
          + m.temp_size_in_bytes)


def compiled_peak(config, height: int, variables: Any) -> int:
  """Device bytes the larger of the solver's init and step needs at `height`."""
  init, step, _, _ = _compiled(config, _objective(config, height, variables))
  return max(_peak_bytes(init), _peak_bytes(step))


def _runs(config, height: int, variables: Any) -> str | None:
  """None if init and two steps run at `height`, else the error's first line."""
  try:
    obj = _objective(config, height, variables)
    solver = _solver(config, obj)
    x = jnp.array(obj.content, copy=True)
    state = jax.jit(solver.init)(x, obj.params)
    update = jax.jit(solver.update, donate_argnums=(0, 1))
    for _ in range(2):
      x, state = update(x, state, obj.params)
    jax.block_until_ready((x, state))
    return None
  except Exception as e:  # pylint: disable=broad-except
    return str(e).strip().splitlines()[0][:300]
  finally:
    gc.collect()


def largest(probe_heights: tuple[int, int], budget: float | None) -> dict[str, Any]:
  """Largest height whose solve fits, without and with remat (see the module doc)."""
  out = {'aspect': ASPECT, 'probe_heights': probe_heights}
  for remat in (False, True):
    config = _config(remat)
    variables = objective.load_variables(config)
    free = memory.available() if budget is None else budget
    peaks = [compiled_peak(config, h, variables) for h in probe_heights]
    pixels = [h * round(ASPECT * h) for h in probe_heights]
    per_pixel = (peaks[1] - peaks[0]) / (pixels[1] - pixels[0])
    fixed = peaks[0] - per_pixel * pixels[0]
    predicted = int(math.sqrt(max(free - fixed, 0) / per_pixel / ASPECT))
    spec = objective.spec_from(config)
    estimates = [memory.estimate(spec.layers, h, round(ASPECT * h), 1,
                                 config.optim.lbfgs.history_size, spec.pooling,
                                 spec.content_layers, winograd=spec.winograd)
                 for h in probe_heights]
    preflight = memory.largest_height(spec.layers, ASPECT, 1, config.optim.lbfgs.history_size,
                                      0.9 * free, spec.pooling, spec.content_layers,
                                      winograd=spec.winograd)
    tried = []
    for share in (0.97, 0.9, 0.8) if predicted else ():
      height = int(share * predicted)
      start = time.perf_counter()
      error = _runs(config, height, variables)
      tried.append({'height': height, 'width': round(ASPECT * height), 'error': error,
                    'seconds': time.perf_counter() - start})
      if error is None:
        break
    out['remat' if remat else 'plain'] = {
        'free_bytes': free, 'compiled_peak_bytes': peaks, 'estimate_bytes': estimates,
        'bytes_per_pixel': per_pixel, 'fixed_bytes': fixed, 'predicted_height': predicted,
        'preflight_largest_height': preflight, 'tried': tried}
    del variables
    jax.clear_caches()
    gc.collect()
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('probe', choices=('ceilings', 'compile', 'largest'))
  parser.add_argument('--n', type=int, default=8192, help='ceilings: matrix side')
  parser.add_argument('--height', type=int, default=512, help='compile: image height')
  parser.add_argument('--probe_heights', default='1024,2048',
                      help='largest: two heights to compile at')
  parser.add_argument('--budget_gib', type=float,
                      help="largest: device bytes to fit (default: the device's free memory)")
  args = parser.parse_args()
  device = jax.devices()[0]
  result = {'probe': args.probe, 'device': device.device_kind, 'platform': device.platform,
            'jax_version': jax.__version__}
  if args.probe == 'ceilings':
    result.update(ceilings(args.n))
  elif args.probe == 'compile':
    result.update(compile_phases(args.height))
  else:
    low, high = (int(h) for h in args.probe_heights.split(','))
    budget = None if args.budget_gib is None else args.budget_gib * memory.GIB
    result.update(largest((low, high), budget))
  print(json.dumps(result), flush=True)


if __name__ == '__main__':
  main()
