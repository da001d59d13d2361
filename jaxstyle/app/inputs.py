"""The pictures a run reads (content, styles, masks) and the one it writes,
as the config names them."""
import pathlib

import jax
import ml_collections
import numpy as np

from jaxstyle import color, image, samples


def load_inputs(config: ml_collections.ConfigDict, scratch: pathlib.Path,
                width_multiple: int = 1) -> tuple[np.ndarray, np.ndarray | list[np.ndarray]]:
  """Content and style as HWC RGB 0..255, resized with `resample`: the content
  at the configured height and width (unset: its aspect ratio), the width
  rounded to a multiple of `width_multiple`; each style at `style_scale` times
  the content's height (`style_resize` 'aspect') or height and width
  ('content'). With `styles`, the style is a list, one array per image. With
  `color_transfer`, every style has the content's colour mean and covariance."""
  path = content_path(config)
  content = image.load(path, height=config.height, width=config.width,
                       resample=config.resample)
  width = width_multiple * max(1, round(content.shape[1] / width_multiple))
  if width != content.shape[1]:
    content = image.load(path, height=config.height, width=width, resample=config.resample)
  paths = config.styles or (config.style or samples.style(scratch / 'style.png'),)
  scales = config.style_scale
  if not isinstance(scales, (tuple, list)):
    scales = (scales,) * len(paths)
  styles = [_style(config, p, s, content.shape[:2]) for p, s in zip(paths, scales)]
  if config.color_transfer:
    styles = [color.match_colors(s, content) for s in styles]
  return content, styles if config.styles else styles[0]


def content_path(config: ml_collections.ConfigDict) -> str | pathlib.Path:
  """The content image of a single run: `content`, unset the sample photograph."""
  return config.content or samples.content()


def _style(config: ml_collections.ConfigDict, path: str | pathlib.Path, scale: float,
           content_hw: tuple[int, int]) -> np.ndarray:
  """One style image at `scale` times the content's height (and width, when
  `style_resize` is 'content')."""
  height, width = content_hw
  squashed = config.style_resize == 'content'
  return image.load(path, height=round(scale * height),
                    width=round(scale * width) if squashed else None, resample=config.resample)


def masks(config: ml_collections.ConfigDict,
          hw: tuple[int, int]) -> tuple[np.ndarray, ...] | None:
  """`config.style_masks` read at the output size hw (px): objective.make's
  style_masks, (H, W) in 0..1 each; None without masks."""
  if config.style_masks is None:
    return None
  return tuple(image.load_mask(path, *hw) for path in config.style_masks)


def output_rgb(config: ml_collections.ConfigDict, x: jax.Array,
               content_rgb: np.ndarray) -> np.ndarray:
  """The image to save: network-space x (1, H, W, 3) as float32 (H, W, 3) RGB
  0..255, unrounded; with `original_colors`, in the chroma of content_rgb (same size)."""
  rgb = image.deprocess_float(x)
  if config.original_colors:
    rgb = color.transfer_luminance(rgb, content_rgb)
  return rgb
