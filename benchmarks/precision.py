"""Benchmark: what config.precision (and the CPU's Winograd default) does to
the result, in one process.

python -m benchmarks.precision --out=DIR [--height=128] [--steps=100]
    [--variants=highest/direct,highest/direct/1e-6,highest/winograd,bf16/direct]

A variant is PRECISION/CONV_ALGORITHM[/INIT_NOISE]. Each solves the Keras
preset (Tübingen × Starry Night, jaxopt L-BFGS, init from the content, blended
with INIT_NOISE of seeded uniform noise: config.init_noise) for --steps steps.
A float32 solve from a start moved by about 1e-4 grey levels (INIT_NOISE
1e-6) shows how far L-BFGS paths part over that many steps from rounding-size
differences alone: the floor against which the others' differences mean
something. The first variant is the reference, and every variant is judged by
its objective: the loss and gradient at the start image (relative error and
cosine against the reference's), the loss of the final image, and the final
image's PSNR against the reference's final image (RGB 0..255). On a CPU
'tf32' computes as 'highest' (no TF32 units); it matters on a GPU. Writes
DIR/precision.json and DIR/precision.md.
"""
import argparse
import json
import math
import pathlib
import time
from typing import Any

import jax
import numpy as np

from configs import keras_example
from jaxstyle import image, objective, optimize, start, vgg
from jaxstyle.app import config as config_lib
from benchmarks import run as bench


def _loss(x: jax.Array, aux: dict[str, jax.Array], obj: objective.Objective) -> jax.Array:
  return aux['loss']


def _solve(obj: objective.Objective, config, content: np.ndarray, style: np.ndarray,
           steps: int) -> dict[str, Any]:
  x0 = start.initial('content', image.preprocess(content), image.preprocess(style),
                     config.seed, config.init_noise)
  method, settings = config_lib.optimizer(config)
  # A new Solver, not optimize.make's cached one: each variant's solve
  # compiles its own programs, those of the same shapes included.
  fun = objective.loss_and_terms
  solver = (optimize.jaxopt_lbfgs(fun, **settings) if method == 'lbfgs' else
            optimize.from_optax(fun, getattr(optimize, method)(**settings)))
  losses = []
  began = time.perf_counter()
  progress = optimize.minimize(solver, _loss, x0, obj, [0, steps],
                               lambda p, loss: losses.append(float(loss)))
  return {'x0': x0, 'x': progress.x, 'loss0': losses[0], 'loss': losses[-1],
          'wall_s': time.perf_counter() - began}


def _variant(parser: argparse.ArgumentParser, text: str) -> tuple[str, str, float]:
  parts = text.split('/')
  try:
    precision, algorithm, *noise = parts
    noise = float(noise[0]) if noise else 0.0
    assert len(parts) <= 3 and precision in objective.PRECISIONS
    assert algorithm in objective.CONV_ALGORITHMS and 0.0 <= noise <= 1.0
  except (ValueError, AssertionError):
    parser.error(f'--variants: {text!r} is not PRECISION/CONV_ALGORITHM[/INIT_NOISE] with '
                 f'PRECISION in {objective.PRECISIONS}, CONV_ALGORITHM in '
                 f'{objective.CONV_ALGORITHMS}, INIT_NOISE in 0..1')
  return precision, algorithm, noise


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
  mse = float(np.mean((a - b) ** 2))
  return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, type=pathlib.Path)
  parser.add_argument('--height', type=int, default=128)
  parser.add_argument('--steps', type=int, default=100)
  parser.add_argument('--variants',
                      default='highest/direct,highest/direct/1e-6,highest/winograd,bf16/direct')
  args = parser.parse_args()
  variants = [_variant(parser, v) for v in args.variants.split(',')]
  content = image.load(bench.REPO / bench.CONTENT, height=args.height)
  style = image.load(bench.REPO / bench.STYLE, height=args.height, width=content.shape[1])

  rows, reference = [], None
  for precision, algorithm, noise in variants:
    config = keras_example.get_config()
    config.height, config.precision, config.conv_algorithm = args.height, precision, algorithm
    config.init_noise = noise
    obj = config_lib.make_objective(config, content, style,
                                    vgg.load_variables(config.weights))
    result = _solve(obj, config, content, style, args.steps)
    reference = reference or (obj, result)
    ref_obj, ref_result = reference
    _, grad = objective.value_and_grad(result['x0'], obj)
    _, ref_grad = objective.value_and_grad(result['x0'], ref_obj)
    grad, ref_grad = np.asarray(grad, np.float64).ravel(), np.asarray(ref_grad, np.float64).ravel()
    rows.append({
        'variant': f'{precision}/{algorithm}' + (f', init noise {noise:g}' if noise else ''),
        'loss0': result['loss0'],
        'grad0_rel_error': float(np.linalg.norm(grad - ref_grad) / np.linalg.norm(ref_grad)),
        'grad0_cosine': float(grad @ ref_grad / (np.linalg.norm(grad) * np.linalg.norm(ref_grad))),
        'final_loss_own': result['loss'],
        'final_loss_reference': float(objective.loss(result['x'], ref_obj)),
        'psnr_vs_reference_db': _psnr(image.deprocess_float(result['x'][0]),
                                      image.deprocess_float(ref_result['x'][0])),
        'solve_wall_s': result['wall_s']})
    print(json.dumps(rows[-1]), flush=True)

  args.out.mkdir(parents=True, exist_ok=True)
  h, w = content.shape[:2]
  meta = {'machine': bench.machine(), 'devices': [str(d) for d in jax.devices()],
          'height': h, 'width': w, 'steps': args.steps, 'date': time.strftime('%Y-%m-%d'),
          'jax_version': jax.__version__}
  (args.out / 'precision.json').write_text(json.dumps({**meta, 'rows': rows}, indent=2) + '\n')
  lines = [f'{w}x{h} px, {args.steps} L-BFGS steps, {meta["devices"][0]}, {meta["date"]}; '
           f'reference {rows[0]["variant"]}', '',
           '| variant | loss at start | gradient at start: relative error, cosine | '
           'final loss (own objective) | final loss (reference objective) | '
           'final image PSNR vs reference, dB | solve s |',
           '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
  for r in rows:
    lines.append(f'| {r["variant"]} | {r["loss0"]:.6e} | {r["grad0_rel_error"]:.2e}, '
                 f'{r["grad0_cosine"]:.6f} | {r["final_loss_own"]:.4e} | '
                 f'{r["final_loss_reference"]:.4e} | {r["psnr_vs_reference_db"]:.1f} | '
                 f'{r["solve_wall_s"]:.1f} |')
  (args.out / 'precision.md').write_text('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
