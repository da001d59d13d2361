"""Time per evaluation (loss and gradient, steady state) of each style loss
against 'gram', in one process on the same images, layers and size.

python -m benchmarks.style_losses --height=256 [--repeats=5] [--kinds=gram,mean_std,...]

Prints a Markdown table: per loss the median seconds per evaluation over
--repeats rounds after a warm-up (compile excluded; each round evaluates
every loss once, in turn, the order reversed every other round), and the
median over rounds of its ratio to gram's in the same round (so that the
machine's drift between rounds cancels); and the norm of the
style term's gradient at the content image with β = 1, with the β at which
it equals gram's at β = 1e4 (how style.KINDS' default weights were set).
"""
import argparse
import dataclasses
import statistics
import time

import jax
import jax.numpy as jnp

from jaxstyle import image, objective, style, vgg
from jaxstyle.app import cli

SHARED = '../shared/images/'


def _timed(obj: objective.Objective, x: jax.Array) -> float:
  began = time.perf_counter()
  jax.block_until_ready(objective.value_and_grad(x, obj))
  return time.perf_counter() - began


def _style_only(obj: objective.Objective) -> objective.Objective:
  """obj with α = γ = 0 and β = 1: its loss is the style term alone."""
  weights = obj.weights._replace(content=jnp.zeros(()), tv=jnp.zeros(()), style=jnp.ones(()))
  return dataclasses.replace(obj, weights=weights)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--height', type=int, default=256)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--content', default=SHARED + 'tubingen.jpg')
  parser.add_argument('--style', default=SHARED + 'starry_night.jpg')
  parser.add_argument('--kinds', default=','.join(style.KINDS),
                      help="the losses to time, comma-separated; 'gram' is always timed")
  args = parser.parse_args()
  cli.one_blas_thread()  # as the command line does
  content = image.load(args.content, height=args.height)
  painting = image.load(args.style, height=args.height)
  variables = vgg.load_variables()
  x = image.preprocess(content)
  objs = {kind: objective.make(content, painting, variables=variables, style_loss=kind)
          for kind in dict.fromkeys(['gram', *args.kinds.split(',')])}
  for obj in objs.values():
    _timed(obj, x)  # compile and warm up
  times = {kind: [] for kind in objs}
  for repeat in range(args.repeats):  # round robin: the machine's drift hits every loss alike
    for kind in list(objs)[::1 if repeat % 2 == 0 else -1]:
      times[kind].append(_timed(objs[kind], x))
  ratios = {kind: statistics.median(a / b for a, b in zip(t, times['gram']))
            for kind, t in times.items()}
  norms = {kind: float(jnp.linalg.norm(jax.grad(objective.loss)(x, _style_only(obj))))
           for kind, obj in objs.items()}
  print(f'{content.shape[1]}x{content.shape[0]} px, default layers, '
        f'{jax.devices()[0].device_kind}, median of {args.repeats}\n')
  print('| style loss | s per evaluation | × gram | style gradient norm at β = 1 | '
        'β matching gram at 1e4 | default β |\n| --- | ---: | ---: | ---: | ---: | ---: |')
  for kind, t in times.items():
    matching = 1e4 * norms['gram'] / norms[kind]
    print(f'| `{kind}` | {statistics.median(t):.3f} | {ratios[kind]:.2f} | {norms[kind]:.4g} | '
          f'{matching:.3g} | {style.KINDS[kind].weight:.0e} |')


if __name__ == '__main__':
  main()
