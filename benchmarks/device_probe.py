"""In-process probes of the device jaxstyle runs on: matrix-product ceilings,
where compile time goes, and the largest image the solver fits.

python -m benchmarks.device_probe ceilings [--n=8192]
python -m benchmarks.device_probe compile --height=512
python -m benchmarks.device_probe largest [--probe_heights=1024,2048] [--budget_gib=G]
python -m benchmarks.device_probe largest --target=benchmarks/gpu_targets/h100.txtpb

Each prints one JSON line last. The Keras preset (`configs/keras_example.py`)
throughout, on random 0..255 images at Tübingen's 4:3 aspect (memory and
compile time do not depend on the pixels).

`largest` compiles the solver's init and step at two heights, reads XLA's
memory_analysis() of each (arguments + outputs - donated + temporaries),
fits bytes = a + b * pixels, predicts the largest height whose step fits the
device's free memory, and runs init and two steps there to check it (then at
90 % and 80 % of it if that fails). Without and with `config.remat`. It also
gives `jaxstyle.app.memory`'s estimate at the probe heights and the largest
height the CLI's preflight (90 % of free memory) lets through.

--target=FILE compiles `compile` and `largest` for the GPU that FILE describes
(an XLA GPU target config) on a machine without one: it needs jax's CUDA
plugin (`pip install 'jax[cuda12]==<this jax>'`), runs JAX itself on the CPU,
runs nothing on the target, and takes 75 % of its memory (JAX's default
preallocation) as free. `largest` then checks its prediction by compiling at
100, 98, ... 90 % of it until the compiled peak fits. XLA cannot autotune
without the device, so its compile times leave out autotuning.
"""
import argparse
import functools
import gc
import json
import math
import pathlib
import re
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from configs import keras_example
from jaxstyle import image, objective, optimize, vgg
from jaxstyle.app import config as config_lib
from jaxstyle.app import memory

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


def _config(remat: bool = False, precision: str = 'highest', target: bool = False):
  config = keras_example.get_config()
  config.remat, config.precision = remat, precision
  if target:  # what 'auto' picks on a GPU; the CPU here would pick Winograd
    config.conv_algorithm = 'direct'
  return config


_PREALLOCATED = 0.75  # share of a GPU's memory JAX's allocator takes by default


def target_sharding(path: pathlib.Path) -> tuple[jax.sharding.Sharding, int]:
  """One device of the GPU that the XLA target config at `path` describes,
  and its free bytes under JAX's default preallocation. JAX itself then runs
  on the CPU: call before anything else touches a device."""
  from jax.experimental import topologies  # pylint: disable=import-outside-toplevel
  jax.config.update('jax_platforms', 'cpu')
  try:
    text = path.read_text()
  except OSError as e:
    raise SystemExit(f'--target: {e}') from None
  memory_size = re.search(r'device_memory_size:\s*(\d+)', text)
  if memory_size is None:
    raise SystemExit(f'--target: {path} has no gpu_device_info.device_memory_size')
  try:
    topology = topologies.get_topology_desc(platform='cuda', target_config=text,
                                            topology='1x1x1')
  except NotImplementedError as e:
    raise SystemExit(f"--target needs jax's CUDA plugin: pip install "
                     f"'jax[cuda12]=={jax.__version__}' ({e})") from None
  except jax.errors.JaxRuntimeError as e:
    raise SystemExit(f'--target: {path}: {str(e).splitlines()[0]}') from None
  mesh = topologies.make_mesh(topology, (1,), ('device',))
  total = int(memory_size[1])
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()), int(_PREALLOCATED * total)


def load_variables(config) -> Any:
  """VGG19 variables of config.weights, prepared for the config's objective."""
  return config_lib.spec(config).prepare(vgg.load_variables(config.weights))


def _objective(config, height: int, variables: Any) -> tuple[objective.Objective, jax.Array]:
  """The objective at `height` and its content image (network input), the start."""
  width = max(1, round(ASPECT * height))
  rgb = np.random.default_rng(0).uniform(0, 255, (2, height, width, 3)).astype(np.float32)
  return config_lib.make_objective(config, rgb[0], rgb[1], variables), image.preprocess(rgb[0])


def _solver(config) -> optimize.Solver:
  method, settings = config_lib.optimizer(config)
  return optimize.make(method, **settings)


def _placed(tree: Any, sharding: jax.sharding.Sharding | None) -> Any:
  """`tree`'s shapes placed by `sharding` (to compile for it), or `tree` if None."""
  if sharding is None:
    return tree
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), tree)


def _compiled(config, obj: objective.Objective, x: jax.Array,
              sharding: jax.sharding.Sharding | None = None) -> tuple[Any, Any, float, float]:
  """The solver's init and step compiled for the shapes of `obj` and the
  image x (placed by `sharding`, default: JAX's device), and the seconds
  each compile took."""
  solver = _solver(config)
  x, params, state = _placed((x, obj, optimize.state_shape(solver, x, obj)), sharding)
  start = time.perf_counter()
  init = jax.jit(solver.init).lower(x, params).compile()
  middle = time.perf_counter()
  step = jax.jit(solver.update, donate_argnums=(0, 1)).lower(x, state, params).compile()
  return init, step, middle - start, time.perf_counter() - middle


def compile_phases(height: int, sharding: jax.sharding.Sharding | None = None) -> dict[str, float]:
  """Seconds of a cold start's phases at `height`: the objective (the
  targets' compile and run), init's compile, the step's compile. With
  `sharding` the objective is built on the CPU, and the targets' function is
  compiled for the target besides (`targets_compile_s`)."""
  config = _config(target=sharding is not None)
  start = time.perf_counter()
  obj, x = _objective(config, height, load_variables(config))
  jax.block_until_ready((obj, x))
  built = time.perf_counter()
  phases = {'height': height, 'weights_and_objective_s': built - start}
  if sharding is not None:
    spec = obj.spec
    objective.targets.lower(*_placed((obj.variables, x), sharding),
                            content_layers=spec.content_layers, style_layers=spec.style_layers,
                            pooling=spec.pooling, precision=spec.precision).compile()
    phases['targets_compile_s'] = time.perf_counter() - built
  _, _, phases['init_compile_s'], phases['step_compile_s'] = _compiled(config, obj, x, sharding)
  return phases


def _peak_bytes(compiled) -> int:
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
          + m.temp_size_in_bytes)


def compiled_peak(config, height: int, variables: Any,
                  sharding: jax.sharding.Sharding | None = None) -> int:
  """Device bytes the larger of the solver's init and step needs at `height`."""
  init, step, _, _ = _compiled(config, *_objective(config, height, variables), sharding)
  return max(_peak_bytes(init), _peak_bytes(step))


def _runs(config, height: int, variables: Any) -> str | None:
  """None if init and two steps run at `height`, else the error's first line."""
  try:
    obj, x = _objective(config, height, variables)
    solver = _solver(config)
    x = jnp.array(x, copy=True)
    state = jax.jit(solver.init)(x, obj)
    update = jax.jit(solver.update, donate_argnums=(0, 1))
    for _ in range(2):
      x, state = update(x, state, obj)
    jax.block_until_ready((x, state))
    return None
  except Exception as e:  # pylint: disable=broad-except
    return str(e).strip().splitlines()[0][:300]
  finally:
    gc.collect()


def largest(probe_heights: tuple[int, int], budget: float | None,
            sharding: jax.sharding.Sharding | None = None) -> dict[str, Any]:
  """Largest height whose solve fits, without and with remat (see the module
  doc). With `sharding` (a GPU target without the GPU) the prediction is
  compiled, not run, to check it."""
  out = {'aspect': ASPECT, 'probe_heights': probe_heights}
  platform = 'gpu' if sharding is not None else jax.devices()[0].platform
  for remat in (False, True):
    config = _config(remat, target=sharding is not None)
    variables = load_variables(config)
    free = memory.available() if budget is None else budget
    peaks = [compiled_peak(config, h, variables, sharding) for h in probe_heights]
    pixels = [h * round(ASPECT * h) for h in probe_heights]
    per_pixel = (peaks[1] - peaks[0]) / (pixels[1] - pixels[0])
    fixed = peaks[0] - per_pixel * pixels[0]
    predicted = int(math.sqrt(max(free - fixed, 0) / per_pixel / ASPECT))
    spec = config_lib.spec(config)
    estimate = lambda h: memory.estimate(spec.layers, h, round(ASPECT * h), 1,
                                         config.optim.lbfgs.history_size, spec.pooling,
                                         spec.content_layers, winograd=spec.winograd,
                                         platform=platform, precision=spec.precision)
    estimates = [estimate(h) for h in probe_heights]
    preflight = memory.largest_height(spec.layers, ASPECT, 1, config.optim.lbfgs.history_size,
                                      0.9 * free, spec.pooling, spec.content_layers,
                                      winograd=spec.winograd, platform=platform,
                                      precision=spec.precision)
    tried = []
    # Without the device the check compiles instead of running, in finer steps.
    shares = (0.97, 0.9, 0.8) if sharding is None else (1.0, 0.98, 0.96, 0.94, 0.92, 0.9)
    for share in shares if predicted else ():
      height = int(share * predicted)
      start = time.perf_counter()
      if sharding is None:
        trial = {'error': _runs(config, height, variables)}
      else:
        peak = compiled_peak(config, height, variables, sharding)
        trial = {'error': None if peak <= free else 'compiled peak exceeds free memory',
                 'compiled_peak_bytes': peak, 'estimate_bytes': estimate(height)}
      tried.append({'height': height, 'width': round(ASPECT * height), **trial,
                    'seconds': time.perf_counter() - start})
      if trial['error'] is None:
        break
    out['remat' if remat else 'plain'] = {
        'free_bytes': free, 'compiled_peak_bytes': peaks, 'estimate_bytes': estimates,
        'estimate_over_compiled': [e / p for e, p in zip(estimates, peaks)],
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
  parser.add_argument('--target', type=pathlib.Path,
                      help='compile, largest: an XLA GPU target config to compile for, '
                           'without the GPU (module doc)')
  args = parser.parse_args()
  sharding = free = None
  if args.target is not None:
    if args.probe == 'ceilings':
      parser.error('--target: ceilings must run on the device')
    sharding, free = target_sharding(args.target)
    device = next(iter(sharding.device_set))
    result = {'target': str(args.target), 'free_bytes': free}
  else:
    device = jax.devices()[0]
    result = {}
  result.update(probe=args.probe, device=device.device_kind, platform=device.platform,
                jax_version=jax.__version__)
  if args.probe == 'ceilings':
    result.update(ceilings(args.n))
  elif args.probe == 'compile':
    result.update(compile_phases(args.height, sharding))
  else:
    low, high = (int(h) for h in args.probe_heights.split(','))
    budget = free if args.budget_gib is None else args.budget_gib * memory.GIB
    result.update(largest((low, high), budget, sharding))
  print(json.dumps(result), flush=True)


if __name__ == '__main__':
  main()
