"""A 2x2 sweep: style weight (rows) x total-variation weight (columns).

python -m jaxstyle.sweep --config configs/sweeps/ratio.py --workdir=runs/ratio

All four points differ only in traced weights: one compile, one batch.
"""
import ml_collections

from configs import default
from jaxstyle.app import hyper


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.height = 128
  config.steps = 50
  config.sweep = ml_collections.ConfigDict()
  config.sweep.axes = hyper.product(
      hyper.values('loss.style_weight', (1e2, 1e4)),
      hyper.values('loss.tv_weight', (0.0, 1e3)))
  config.sweep.batch_size = 0  # 0: as many as fit the device's memory
  config.sweep.title = 'style weight (rows) x TV weight (columns)'
  return config
