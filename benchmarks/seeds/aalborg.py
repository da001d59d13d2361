"""The Aalborg University Keras notebook (Knudsen, Bach-Nielsen & Hølledig) as
written, against configs/seeds/aalborg.py.

pip install -e '.[seeds]'
python -m benchmarks.seeds.aalborg --height=128 --width=128 --calls=2 --workdir=runs/seeds/aalborg

Runs the notebook's code (reconstructed: docs/faithfulness.md) in TensorFlow
graph mode with tf_keras and SciPy's `fmin_l_bfgs_b`, on jaxstyle's VGG19
weights, then the preset through the command line with the same images, size
and number of calls, and prints the loss at the start and after each call of
both, and the PSNR of their final images. The only changes to the notebook's
code: paths, size and iterations are arguments, the weights are set after
building the model (weights=None), `loss += term` is `loss = loss + term`
(TensorFlow 2 refuses `+=` on a variable), the evaluator keeps each value.
"""
import pathlib

import numpy as np
import tensorflow as tf
from PIL import Image

from benchmarks.seeds import common

tf.compat.v1.disable_eager_execution()

# pylint: disable=g-import-not-at-top,wrong-import-position
from scipy.optimize import fmin_l_bfgs_b
from tf_keras import backend
from tf_keras.applications.vgg19 import VGG19


def preprocess(image: Image.Image) -> np.ndarray:
  """The notebook's arithmetic: the BGR means from the RGB channels, then the flip."""
  array = np.asarray(image, dtype='float32')
  array = np.expand_dims(array, axis=0)
  array[:, :, :, 0] -= 103.939
  array[:, :, :, 1] -= 116.779
  array[:, :, :, 2] -= 123.68
  array = array[:, :, :, ::-1]
  return array


def seed(content_image_path: str, style_image_path: str, height: int, width: int,
         iterations: int) -> tuple[list[tuple[int, float]], np.ndarray]:
  """The notebook's code from `Image.open` to its loop: (evaluations, loss) at
  the start and after each call, and the final image (uint8 RGB)."""
  content_image = Image.open(content_image_path)
  content_image = content_image.resize((width, height))
  style_image = Image.open(style_image_path)
  style_image = style_image.resize((width, height))
  content_array = preprocess(content_image)
  style_array = preprocess(style_image)

  content_image = backend.variable(content_array)
  style_image = backend.variable(style_array)
  combination_image = backend.placeholder((1, height, width, 3))
  input_tensor = backend.concatenate([content_image, style_image, combination_image], axis=0)
  model = VGG19(input_tensor=input_tensor, weights=None, include_top=False)
  common.set_vgg19_weights(model)
  layers = dict([(layer.name, layer.output) for layer in model.layers])

  style_weight = 5.0
  total_variation_weight = 0.2
  loss = backend.variable(0.)

  def gram_matrix(x):
    features = backend.batch_flatten(backend.permute_dimensions(x, (2, 0, 1)))
    gram = backend.dot(features, backend.transpose(features))
    return gram

  def style_loss(style, combination):
    S = gram_matrix(style)
    C = gram_matrix(combination)
    channels = 3
    size = height * width
    return backend.sum(backend.square(S - C)) / (4. * (channels ** 2) * (size ** 2))

  feature_layers = ['block1_conv2', 'block2_conv2', 'block3_conv4', 'block4_conv4',
                    'block5_conv4']
  for layer_name in feature_layers:
    layer_features = layers[layer_name]
    style_features = layer_features[1, :, :, :]
    combination_features = layer_features[2, :, :, :]
    sl = style_loss(style_features, combination_features)
    loss = loss + (style_weight / len(feature_layers)) * sl

  def total_variation_loss(x):
    a = backend.square(x[:, :height - 1, :width - 1, :] - x[:, 1:, :width - 1, :])
    b = backend.square(x[:, :height - 1, :width - 1, :] - x[:, :height - 1, 1:, :])
    return backend.sum(backend.pow(a + b, 1.25))

  loss = loss + total_variation_weight * total_variation_loss(combination_image)
  grads = backend.gradients(loss, combination_image)
  outputs = [loss]
  outputs += grads
  f_outputs = backend.function([combination_image], outputs)
  evaluator = common.Recorder(f_outputs, (1, height, width, 3))

  x = content_array
  losses = []
  for i in range(iterations):
    print('Start of iteration', i)
    x, min_val, info = fmin_l_bfgs_b(evaluator.loss, x.flatten(), fprime=evaluator.grads,
                                     maxfun=20)
    print('Current loss value:', min_val)
    if not losses:
      losses.append((0, evaluator.values[0]))
    losses.append((len(evaluator.values), float(min_val)))

  x = x.reshape((height, width, 3))
  x = x[:, :, ::-1]
  x[:, :, 0] += 103.939
  x[:, :, 1] += 116.779
  x[:, :, 2] += 123.68
  x = np.clip(x, 0, 255).astype('uint8')
  return losses, x


def main() -> None:
  args = common.arguments(__doc__.splitlines()[0], height=128, width=128, calls=2)
  losses, final = seed(args.content, args.style, args.height, args.width, args.calls)
  workdir = pathlib.Path(args.workdir)
  metrics = common.run_preset('configs/seeds/aalborg.py', workdir, [
      f'--config.content={args.content}', f'--config.style={args.style}',
      f'--config.height={args.height}', f'--config.width={args.width}',
      f'--config.steps={args.calls}'])
  common.compare(losses, metrics)
  common.side_by_side(final, workdir / 'final.png', args.picture)


if __name__ == '__main__':
  main()
