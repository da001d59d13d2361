"""The Aalborg University Keras notebook (Knudsen, Bach-Nielsen & Hølledig), end to end.

python -m jaxstyle.main --config configs/seeds/aalborg.py --config.content=../shared/images/tubingen.jpg --config.style=../shared/images/starry_night.jpg --workdir=runs/aalborg

Both images squashed to 670 x 670 by Pillow's `resize` with its default
filter (bicubic), the notebook's preprocessing (the BGR means subtracted from
the RGB channels before the flip: 'swapped_means'), VGG19 with max pooling,
no content term (the solve starts from the content image), style at
block1_conv2, block2_conv2, block3_conv4, block4_conv4, block5_conv4 with
weight 5.0 shared over the five, normalised by 4·3²·(H·W)² (the Keras
example's constant, 'keras'), total variation 0.2 with power 1.25, and calls
of SciPy's L-BFGS-B (memory 10, maxfun=20) each starting afresh.
docs/faithfulness.md says which of these are reconstructed.
"""
import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.height = 670
  config.width = 670
  config.resample = 'bicubic'  # Image.resize((width, height)): Pillow's default filter
  config.style_resize = 'content'
  config.preprocessing = 'swapped_means'
  config.pooling = 'max'
  config.init = 'content'
  config.loss.normalization = 'keras'  # Σ(S−C)²/(4·channels²·size²) with channels = 3
  config.loss.content_layers = ()
  config.loss.content_weight = 0.0
  config.loss.style_layers = ('block1_conv2', 'block2_conv2', 'block3_conv4', 'block4_conv4',
                              'block5_conv4')
  config.loss.style_weight = 5.0  # style_weight / len(feature_layers) per layer
  config.loss.tv_weight = 0.2
  config.loss.tv_power = 1.25
  config.optimizer = 'scipy_lbfgsb'
  config.optim.scipy_lbfgsb = dict(m=10, maxfun=20)
  config.steps = 10  # iterations: calls of fmin_l_bfgs_b
  config.log_every = 1
  config.save_every = 0
  config.grad_norms = False
  return config
