"""The paper: Gatys, Ecker & Bethge (2015), arXiv:1508.06576.

Content at conv4_2, style at conv1_1 ... conv5_1 with w_l = 1/5, α/β = 1e-3,
average pooling, L-BFGS from white noise.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.init = 'noise'
  config.pooling = 'avg'
  config.steps = 500
  config.loss.normalization = 'gatys'
  config.loss.content_layers = ('block4_conv2',)
  config.loss.style_layers = default.STYLE_LAYERS
  config.loss.content_weight = 1.0
  config.loss.style_weight = 1e3
  config.loss.tv_weight = 0.0
  return config
