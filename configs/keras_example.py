"""The Keras `neural_style_transfer.py` example's objective, exactly.

Content block5_conv2 (weight 0.025), style blockN_conv1 (weight 1.0 shared
over the five layers), total variation 1e-4 with power 1.25, Keras loss
normalisation, max pooling, start from the content image, 400 px high.
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
