"""The Keras `neural_style_transfer.py` example's objective, on jaxstyle's pipeline.

python -m jaxstyle.main --config configs/keras_example.py --workdir=runs/keras_example

What it shares with the example: the objective, exactly (content
block5_conv2, weight 0.025; style blockN_conv1, weight 1.0 shared over the
five layers; total variation 1e-4 with power 1.25; Keras loss normalisation;
max pooling), the start from the content image and the 400 px height. What it
does not: the input loading (Lanczos resizing, the style at its own aspect
ratio, where the example reads both images with nearest-neighbour resizing and
squashes the style to the content's size) and the optimiser (one continuous
jaxopt L-BFGS of 100 steps with a line search, where the example makes 20
calls of SciPy's L-BFGS-B of about 21 evaluations each, each call starting
afresh). configs/seeds/keras_dlwp.py reproduces the example end to end; this
preset is the benchmarks' objective.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.height = 400
  config.init = 'content'
  config.pooling = 'max'
  config.loss.normalization = 'keras'
  config.loss.content_layers = ('block5_conv2',)
  config.loss.style_layers = default.STYLE_LAYERS
  config.loss.content_weight = 0.025
  config.loss.style_weight = 1.0
  config.loss.tv_weight = 1e-4
  config.loss.tv_power = 1.25
  return config
