"""What an objective compares with, computed once by objective.make: the
content image's features at the content layers and each style image's
statistics (style.StyleLoss.target) at the style layers."""
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import image, style, tiles, xla
from jaxstyle import spec as spec_lib
from jaxstyle.errors import InputError
from jaxstyle.spec import Spec


@functools.partial(jax.jit, static_argnames=('content_layers', 'style_layers', 'pooling',
                                             'precision', 'style_loss'))
def of_image(variables: Any, x: jax.Array, content_layers: Sequence[str] = (),
            style_layers: Sequence[str] = (), pooling: str = 'avg', precision: str = 'highest',
            style_loss: str = 'gram') -> tuple[dict[str, jax.Array], dict[str, Any]]:
  """What an objective compares with: x's features at `content_layers`,
  {layer: (1, H_l, W_l, C)}, and its style statistics (style.KINDS[style_loss].target)
  at `style_layers`; for 'gram' its Gram per position, {layer: (C, C)}.
  x: (1, H, W, 3) network input."""
  model = spec_lib.model(pooling, precision)
  features = model.apply(variables, x, layers=tuple(dict.fromkeys((*content_layers,
                                                                   *style_layers))))
  with jax.default_matmul_precision(spec_lib.JAX_PRECISION[precision]):
    stats = {l: style.KINDS[style_loss].target(features[l]) for l in style_layers}
  return {l: features[l] for l in content_layers}, stats


def each(variables: Any, content: jax.Array, styles: list[jax.Array],
         spec: Spec) -> tuple[dict[str, jax.Array], dict[str, Any]]:
  """`of_images` in one program, untiled."""
  at = lambda rgb, c, s: of_image(variables, image.preprocess(rgb, spec.preprocessing), c, s,
                                 pooling=spec.pooling, precision=spec.precision,
                                 style_loss=spec.style_loss)
  stats = [at(rgb, (), spec.style_layers)[1] for rgb in styles]
  return (at(content, spec.content_layers, ())[0],
          {l: stacked([st[l] for st in stats], l) for l in spec.style_layers})


@functools.cache
def _each_jitted() -> Callable[..., Any]:
  """`each` jitted, made at first use: its XLA options are checked then."""
  return jax.jit(each, static_argnames='spec', compiler_options=xla.once())


def of_images(variables: Any, content: np.ndarray, styles: list[np.ndarray],
              spec: Spec) -> tuple[dict[str, jax.Array], dict[str, Any]]:
  """objective.make's targets: the content's features at the content layers
  and every style's statistics at the style layers, stacked along a leading
  axis; tile by tile (jaxstyle.tiles) where spec.tile. Images HWC RGB 0..255."""
  if not spec.tile:
    return _each_jitted()(variables, content, styles, spec)
  features, stats = tiles.targets(variables, content, styles, spec)
  return features, {l: stacked([st[l] for st in stats], l) for l in spec.style_layers}


def stacked(stats: list[Any], layer: str) -> Any:
  """Per-style statistics stacked along a leading axis; statistics of a size
  that depends on the style image's ('histogram', 'sliced', 'mrf') need
  style images of one size."""
  shapes = {tuple(np.shape(a) for a in jax.tree.leaves(st)) for st in stats}
  if len(shapes) > 1:
    raise InputError(f'the style images give {layer} statistics of different sizes; this '
                     'style loss needs style images of one size (set one style_scale)')
  return jax.tree.map(lambda *a: jnp.stack(a), *stats)
