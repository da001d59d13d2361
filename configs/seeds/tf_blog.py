"""The TensorFlow blog post's three style-layer experiments, as one sweep.

python -m jaxstyle.sweep --config configs/seeds/tf_blog.py --workdir=runs/tf_blog

The post's code is the Stanford CS20 style-transfer assignment: content at
conv4_2 (weight 0.01, its content loss Σ(F−P)²/(4·|P|)), style with the
paper's per-layer normalisation Σ(G−A)²/(4N²M²) (weight 1, the layer weights
0.5, 1, 1.5, 3, 4 of conv1_1 .. conv5_1), average pooling, both images 250 x
333, the content blended with 60 % noise as the start, and 300 Adam steps of
learning rate 2. The sweep: the five layers; conv1_1 and conv2_1; conv5_1
alone, each layer with its assignment weight. docs/faithfulness.md lists what
the post leaves open and what differs.
"""
import ml_collections

from configs import default
from jaxstyle.app import hyper

HEIGHT, WIDTH = 250, 333
LAYER_WEIGHTS = dict(zip(default.STYLE_LAYERS, (0.5, 1.0, 1.5, 3.0, 4.0)))
EXPERIMENTS = (default.STYLE_LAYERS, default.STYLE_LAYERS[:2], default.STYLE_LAYERS[4:])
# conv4_2's positions x channels at HEIGHT x WIDTH (three 2x2 poolings, odd rows dropped).
CONTENT_SIZE = (HEIGHT // 8) * (WIDTH // 8) * 512


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.height, config.width = HEIGHT, WIDTH
  config.style_resize = 'content'
  config.pooling = 'avg'
  config.init = 'content'
  config.init_noise = 0.6  # noise_ratio
  config.loss.normalization = 'gatys'
  config.loss.content_layers = ('block4_conv2',)
  # 0.01 · Σ(F−P)²/(4·|P|) as α · ½Σ(F−P)²: α = 0.01 / (2·|P|).
  config.loss.content_weight = 0.01 / (2 * CONTENT_SIZE)
  config.loss.style_weight = 1.0
  config.optimizer = 'adam'
  config.optim.adam = dict(learning_rate=2.0, b1=0.9, b2=0.999, eps=1e-8)
  config.steps = 300
  config.log_every = 50
  config.sweep = ml_collections.ConfigDict()
  config.sweep.axes = hyper.zip(
      hyper.values('loss.style_layers', EXPERIMENTS),
      hyper.values('loss.style_layer_weights',
                   tuple(tuple(LAYER_WEIGHTS[l] for l in layers) for layers in EXPERIMENTS)))
  config.sweep.batch_size = 0
  config.sweep.title = 'style layers: conv1_1..conv5_1, conv1_1+conv2_1, conv5_1'
  return config
