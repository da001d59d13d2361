"""Fig. 1, content reconstructions: white noise matched to the content's
features at conv1_2, conv2_2, conv3_2, conv4_2 and conv5_2, no style loss.

python -m jaxstyle.sweep --config configs/paper/fig1_content.py --workdir=runs/fig1_content

Lower layers reproduce the photograph almost exactly; higher layers keep the
arrangement of objects and lose the exact pixels.
"""
import ml_collections

from configs.paper import common
from jaxstyle.app import hyper


def get_config() -> ml_collections.ConfigDict:
  config = common.get_config('Fig. 1: content reconstructions')
  config.loss.style_layers = ()
  config.loss.style_weight = 0.0
  config.sweep.axes = hyper.values(
      'loss.content_layers', tuple((f'block{b}_conv2',) for b in range(1, 6)))
  return config
