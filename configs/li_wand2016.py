"""Li & Wand (2016), "Combining Markov Random Fields and Convolutional Neural
Networks for Image Synthesis": the MRF style loss on relu3_1 and relu4_1,
content on relu4_2, max pooling, solved coarse to fine from the photograph.

python -m jaxstyle.main --config configs/li_wand2016.py --workdir=runs/li_wand2016

Their β and TV weight were set for their own normalisation; here β is the
MRF loss's default (style.KINDS['mrf'].weight) and TV is off.
"""
import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.loss.style_loss = 'mrf'
  config.loss.style_layers = ('block3_conv1', 'block4_conv1')
  config.loss.content_layers = ('block4_conv2',)
  config.pooling = 'max'
  config.scales = 3  # their image pyramid
  config.scale_steps = 50
  return config
