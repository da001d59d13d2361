"""What the paper's figures share: Gatys et al. (2015) settings at sweep size."""
import ml_collections

from configs import default, gatys2015

# Style layer subsets of Figs. 1 and 3: conv1_1, then up to conv2_1, ... conv5_1.
STYLE_SUBSETS = tuple(default.STYLE_LAYERS[:n] for n in range(1, 6))


def get_config(title: str) -> ml_collections.ConfigDict:
  """The paper's objective from white noise, small enough for a CPU."""
  config = gatys2015.get_config()
  config.height = 96  # --config.height=512 --config.steps=500 for the paper's size
  config.steps = 150
  config.log_every = 50
  config.sweep = ml_collections.ConfigDict()
  config.sweep.batch_size = 0
  config.sweep.title = title
  return config
