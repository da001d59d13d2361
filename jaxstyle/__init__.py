"""jaxstyle: Gatys et al. (2015) neural style transfer in JAX/Flax.

The library: `vgg` (the network), `weights` (its ImageNet weights), `losses`,
`objective` (make, loss, terms, value_and_grad, stack), `optimize` (solve),
`image`, `color`, `start` (starting images) and `samples`. The command line
around it lives in `jaxstyle.app` (`python -m jaxstyle.main`, `jaxstyle.sweep`).
"""
from jaxstyle import color, image, losses, objective, optimize, samples, start, vgg, weights

__all__ = ['color', 'image', 'losses', 'objective', 'optimize', 'samples', 'start', 'vgg',
           'weights']
