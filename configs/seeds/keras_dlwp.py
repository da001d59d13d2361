"""The Keras example of "Deep Learning with Python" (1st ed., 8.3), end to end.

python -m jaxstyle.main --config configs/seeds/keras_dlwp.py --config.content=../shared/images/tubingen.jpg --config.style=../shared/images/starry_night.jpg --workdir=runs/keras_dlwp

The objective of configs/keras_example.py, and the example's input pipeline
and optimiser: both images read as `load_img(path, target_size=(400, w))`
reads them (nearest-neighbour resizing, the style squashed to the content's
height and width), the content 400 px high, and 20 calls of SciPy's
L-BFGS-B (memory 10, maxfun=20), each starting afresh from the last call's
image. One metrics.jsonl line and one step_NNNNN.png per call, as the example
prints the loss and saves the image after each.
"""
import ml_collections

from configs import keras_example


def get_config() -> ml_collections.ConfigDict:
  config = keras_example.get_config()
  config.height = 400  # img_height; the width keeps the content's aspect ratio
  config.resample = 'nearest'  # load_img's default interpolation
  config.style_resize = 'content'  # load_img(style, target_size=(img_height, img_width))
  config.optimizer = 'scipy_lbfgsb'
  config.optim.scipy_lbfgsb = dict(m=10, maxfun=20)  # fmin_l_bfgs_b(..., maxfun=20), m's default
  config.steps = 20  # iterations: calls of fmin_l_bfgs_b
  config.log_every = 1
  config.save_every = 1
  config.grad_norms = False
  return config
