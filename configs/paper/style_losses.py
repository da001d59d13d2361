"""The style losses side by side: rows the six losses of jaxstyle/style.py,
columns two paintings (../shared/images); the same photograph, layers and
steps throughout.

python -m jaxstyle.sweep --config configs/paper/style_losses.py --config.content=../shared/images/tubingen.jpg \
    --workdir=runs/style_losses

Each loss takes its own default style weight (style.KINDS[...].weight). Every
point is its own compiled group (another loss or another style image).
"""
import ml_collections

from configs import default
from jaxstyle.app import hyper

SHARED = '../shared/images/'


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.height = 128
  config.steps = 100
  config.log_every = 50
  config.sweep = ml_collections.ConfigDict()
  config.sweep.axes = hyper.product(
      hyper.values('loss.style_loss', ('gram', 'mean_std', 'w2', 'histogram', 'sliced', 'mrf')),
      hyper.values('style', (SHARED + 'starry_night.jpg', SHARED + 'the_scream.jpg')))
  config.sweep.batch_size = 0
  config.sweep.title = 'style losses (rows) x style images (columns)'
  return config
