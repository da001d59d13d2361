"""Fig. 1, style reconstructions: white noise matched to the style's Gram
matrices on conv1_1; conv1_1 and conv2_1; ... up to conv5_1, no content loss.

python -m jaxstyle.sweep --config configs/paper/fig1_style.py --workdir=runs/fig1_style

More layers match the style at larger scales: from colour blotches to strokes.
"""
import ml_collections

from configs.paper import common
from jaxstyle.app import hyper


def get_config() -> ml_collections.ConfigDict:
  config = common.get_config('Fig. 1: style reconstructions')
  config.loss.content_layers = ()
  config.loss.content_weight = 0.0
  config.loss.style_weight = 1.0
  config.sweep.axes = hyper.values('loss.style_layers', common.STYLE_SUBSETS)
  return config
