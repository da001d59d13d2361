"""Fig. 3: style layer subsets (rows, conv1_1 ... up to conv5_1) x the ratio
α/β of content to style weight (columns, 1e-5 ... 1e-2).

python -m jaxstyle.sweep --config configs/paper/fig3.py --workdir=runs/fig3

Down the rows the style is matched at ever larger scales; to the right the
content dominates. Each row is one compiled batch of four.
"""
import ml_collections

from configs.paper import common
from jaxstyle.app import hyper


def get_config() -> ml_collections.ConfigDict:
  config = common.get_config('Fig. 3: style layers (rows) x alpha/beta (columns)')
  config.loss.style_weight = 1.0  # β = 1, so α/β is the content weight
  config.sweep.axes = hyper.product(
      hyper.values('loss.style_layers', common.STYLE_SUBSETS),
      hyper.values('loss.content_weight', (1e-5, 1e-4, 1e-3, 1e-2)))
  return config
