"""The Keras example of "Deep Learning with Python" (1st ed., 8.3) as written,
against configs/seeds/keras_dlwp.py.

pip install -e '.[seeds]'
python -m benchmarks.seeds.keras_dlwp --height=192 --calls=5 --workdir=runs/seeds/keras_dlwp

Runs the example's code (reconstructed from the book: docs/faithfulness.md)
in TensorFlow graph mode with tf_keras (`K.gradients`, `K.function`) and
SciPy's `fmin_l_bfgs_b`, on jaxstyle's VGG19 weights, then the preset through
the command line with the same images, size and number of calls, and prints
the loss at the start and after each call of both, and the PSNR of their
final images. The only changes to the example's code: paths, size and
iterations are arguments, the weights are set after building the model
(weights=None), `loss += term` is `loss = loss + term` (TensorFlow 2 refuses
`+=` on a variable; the book's TensorFlow 1 made it the same new tensor), the
evaluator keeps each value, nothing is saved per iteration.
"""
import pathlib

import numpy as np
import tensorflow as tf

from benchmarks.seeds import common

tf.compat.v1.disable_eager_execution()

# pylint: disable=g-import-not-at-top,wrong-import-position
from scipy.optimize import fmin_l_bfgs_b
from tf_keras import backend as K
from tf_keras.applications import vgg19
from tf_keras.preprocessing.image import img_to_array, load_img


def seed(target_image_path: str, style_reference_image_path: str, img_height: int,
         iterations: int) -> tuple[list[tuple[int, float]], np.ndarray]:
  """The example's code from `load_img` to its loop: (evaluations, loss) at the
  start and after each call, and the final image (uint8 RGB)."""
  width, height = load_img(target_image_path).size
  img_width = int(width * img_height / height)

  def preprocess_image(image_path):
    img = load_img(image_path, target_size=(img_height, img_width))
    img = img_to_array(img)
    img = np.expand_dims(img, axis=0)
    img = vgg19.preprocess_input(img)
    return img

  def deprocess_image(x):
    x[:, :, 0] += 103.939
    x[:, :, 1] += 116.779
    x[:, :, 2] += 123.68
    x = x[:, :, ::-1]
    x = np.clip(x, 0, 255).astype('uint8')
    return x

  target_image = K.constant(preprocess_image(target_image_path))
  style_reference_image = K.constant(preprocess_image(style_reference_image_path))
  combination_image = K.placeholder((1, img_height, img_width, 3))
  input_tensor = K.concatenate([target_image, style_reference_image, combination_image], axis=0)
  model = vgg19.VGG19(input_tensor=input_tensor, weights=None, include_top=False)
  common.set_vgg19_weights(model)

  def content_loss(base, combination):
    return K.sum(K.square(combination - base))

  def gram_matrix(x):
    features = K.batch_flatten(K.permute_dimensions(x, (2, 0, 1)))
    gram = K.dot(features, K.transpose(features))
    return gram

  def style_loss(style, combination):
    S = gram_matrix(style)
    C = gram_matrix(combination)
    channels = 3
    size = img_height * img_width
    return K.sum(K.square(S - C)) / (4. * (channels ** 2) * (size ** 2))

  def total_variation_loss(x):
    a = K.square(x[:, :img_height - 1, :img_width - 1, :] - x[:, 1:, :img_width - 1, :])
    b = K.square(x[:, :img_height - 1, :img_width - 1, :] - x[:, :img_height - 1, 1:, :])
    return K.sum(K.pow(a + b, 1.25))

  outputs_dict = dict([(layer.name, layer.output) for layer in model.layers])
  content_layer = 'block5_conv2'
  style_layers = ['block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1']
  total_variation_weight = 1e-4
  style_weight = 1.
  content_weight = 0.025

  loss = K.variable(0.)
  layer_features = outputs_dict[content_layer]
  target_image_features = layer_features[0, :, :, :]
  combination_features = layer_features[2, :, :, :]
  loss = loss + content_weight * content_loss(target_image_features, combination_features)
  for layer_name in style_layers:
    layer_features = outputs_dict[layer_name]
    style_reference_features = layer_features[1, :, :, :]
    combination_features = layer_features[2, :, :, :]
    sl = style_loss(style_reference_features, combination_features)
    loss = loss + (style_weight / len(style_layers)) * sl
  loss = loss + total_variation_weight * total_variation_loss(combination_image)

  grads = K.gradients(loss, combination_image)[0]
  fetch_loss_and_grads = K.function([combination_image], [loss, grads])
  evaluator = common.Recorder(fetch_loss_and_grads, (1, img_height, img_width, 3))

  x = preprocess_image(target_image_path)
  x = x.flatten()
  losses = []
  for i in range(iterations):
    print('Start of iteration', i)
    x, min_val, info = fmin_l_bfgs_b(evaluator.loss, x, fprime=evaluator.grads, maxfun=20)
    print('Current loss value:', min_val)
    if not losses:
      losses.append((0, evaluator.values[0]))
    losses.append((len(evaluator.values), float(min_val)))
  img = x.copy().reshape((img_height, img_width, 3))
  return losses, deprocess_image(img)


def main() -> None:
  args = common.arguments(__doc__.splitlines()[0], height=192, width=None, calls=5)
  losses, final = seed(args.content, args.style, args.height, args.calls)
  workdir = pathlib.Path(args.workdir)
  metrics = common.run_preset('configs/seeds/keras_dlwp.py', workdir, [
      f'--config.content={args.content}', f'--config.style={args.style}',
      f'--config.height={args.height}', f'--config.steps={args.calls}'])
  common.compare(losses, metrics)
  common.side_by_side(final, workdir / 'final.png', args.picture)


if __name__ == '__main__':
  main()
