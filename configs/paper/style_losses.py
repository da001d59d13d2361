"""The style losses side by side: rows the six losses of jaxstyle/style.py,
columns two paintings (../shared/images); the same photograph and steps
throughout, the default style layers but for 'mrf', which takes Li & Wand's
(configs/li_wand2016.py): its matching is quadratic in a layer's positions.

python -m jaxstyle.sweep --config configs/paper/style_losses.py --config.content=../shared/images/tubingen.jpg \
    --workdir=runs/style_losses

Each loss takes its own default style weight (style.KINDS[...].weight). Every
point is its own compiled group (another loss or another style image).
"""
import ml_collections

from configs import default
from configs import li_wand2016
from jaxstyle import style
from jaxstyle.app import hyper

SHARED = '../shared/images/'


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.height = 128
  config.steps = 100
  config.log_every = 50
  config.sweep = ml_collections.ConfigDict()
  kinds = tuple(style.KINDS)
  layers = tuple(li_wand2016.get_config().loss.style_layers if kind == 'mrf'
                 else config.loss.style_layers for kind in kinds)
  config.sweep.axes = hyper.product(
      hyper.zip(hyper.values('loss.style_loss', kinds), hyper.values('loss.style_layers', layers)),
      hyper.values('style', (SHARED + 'starry_night.jpg', SHARED + 'the_scream.jpg')))
  config.sweep.batch_size = 0
  config.sweep.title = 'style losses (rows) x style images (columns)'
  return config
