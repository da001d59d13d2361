"""Benchmark: each VGG19 convolution as jaxstyle runs it (XLA: lax.conv, and
Winograd F(4x4, 3x3)) against torch's conv2d (oneDNN on CPU), forward and
input gradient, one layer shape at a time.

python -m benchmarks.conv_layers [--height=192] [--width=256] [--deepest=block5_conv2]

Random inputs and kernels at the shape each layer sees for an HxW image; the
best of `--repeats` timings per call, both libraries on all cores. Prints a
markdown table: where an evaluation's time goes and where XLA:CPU trails.
"""
import argparse
import os
import time
from collections.abc import Callable

import jax
import numpy as np
import torch

from jaxstyle import vgg, weights, winograd


def best_ms(call: Callable[[], object], repeats: int) -> float:
  call()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return 1e3 * min(times)


def layer_times(height: int, width: int, cin: int, cout: int,
                repeats: int) -> dict[str, float]:
  """Milliseconds of forward and input gradient, XLA (direct and Winograd) and
  torch, for one layer."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((1, height, width, cin), np.float32)
  kernel = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
  cotangent = rng.standard_normal((1, height, width, cout), np.float32)
  jx, jk, jg = jax.device_put((x, kernel, cotangent))
  jf = vgg.flip(jk)
  ju = jax.device_put(winograd.transform_kernel(kernel))
  forward = jax.jit(vgg.conv_with_flipped)
  input_grad = jax.jit(lambda x, k, f, g: jax.vjp(lambda x: vgg.conv_with_flipped(x, k, f),
                                                  x)[1](g)[0])
  fast_forward = jax.jit(vgg.conv_winograd)
  fast_input_grad = jax.jit(lambda x, k, u, g: jax.vjp(lambda x: vgg.conv_winograd(x, k, u),
                                                       x)[1](g)[0])
  tx, tg = (torch.from_numpy(a.transpose(0, 3, 1, 2).copy()) for a in (x, cotangent))
  tk = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
  with torch.no_grad():
    return {
        'xla_forward': best_ms(lambda: forward(jx, jk, jf).block_until_ready(), repeats),
        'xla_input_grad': best_ms(lambda: input_grad(jx, jk, jf, jg).block_until_ready(),
                                  repeats),
        'winograd_forward': best_ms(lambda: fast_forward(jx, jk, ju).block_until_ready(),
                                    repeats),
        'winograd_input_grad': best_ms(
            lambda: fast_input_grad(jx, jk, ju, jg).block_until_ready(), repeats),
        'torch_forward': best_ms(lambda: torch.nn.functional.conv2d(tx, tk, padding=1),
                                 repeats),
        'torch_input_grad': best_ms(
            lambda: torch.nn.grad.conv2d_input(tx.shape, tk, tg, padding=1), repeats),
    }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--height', type=int, default=192)
  parser.add_argument('--width', type=int, default=256)
  parser.add_argument('--deepest', default='block5_conv2', choices=vgg.LAYER_NAMES)
  parser.add_argument('--repeats', type=int, default=10)
  args = parser.parse_args()
  torch.set_num_threads(os.cpu_count() or 1)
  print(f'{args.height}x{args.width} px, best of {args.repeats}, torch {torch.__version__} '
        f'({torch.get_num_threads()} threads), jax {jax.__version__}\n')
  print('| layer | input HxW | channels | GFLOP | fwd ms: XLA | Winograd | torch '
        '| input grad ms: XLA | Winograd | torch | jaxstyle/torch fwd | jaxstyle/torch grad |')
  print('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  keys = ('xla_forward', 'winograd_forward', 'torch_forward',
          'xla_input_grad', 'winograd_input_grad', 'torch_input_grad')
  totals = np.zeros(8)  # the six columns, then jaxstyle's forward and gradient
  for name, cin, cout in weights.LAYERS[:vgg.LAYER_NAMES.index(args.deepest) + 1]:
    stride = 2**vgg.downsampling(name)
    h, w = args.height // stride, args.width // stride
    t = layer_times(h, w, cin, cout, args.repeats)
    # What the CPU default computes: Winograd on the wide layers (vgg.WINOGRAD_MIN_FEATURES).
    used = 'winograd' if cout >= vgg.WINOGRAD_MIN_FEATURES else 'xla'
    row = np.array([t[k] for k in keys] + [t[f'{used}_forward'], t[f'{used}_input_grad']])
    totals += row
    print(f'| {name} | {h}x{w} | {cin}->{cout} | {2 * 9 * h * w * cin * cout / 1e9:.2f} | '
          + ' | '.join(f'{v:.2f}' for v in row[:6])
          + f' | {row[6] / row[2]:.2f} | {row[7] / row[5]:.2f} |')
  print('| all | | | | ' + ' | '.join(f'{v:.1f}' for v in totals[:6])
        + f' | {totals[6] / totals[2]:.2f} | {totals[7] / totals[5]:.2f} |')


if __name__ == '__main__':
  main()
