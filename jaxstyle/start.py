"""Starting images of a solve, in network input space (image.preprocess)."""
import jax
import jax.numpy as jnp

from jaxstyle import image
from jaxstyle.errors import InputError

# Named starting images; any other kind is the path of an image file.
KINDS = ('content', 'style', 'uniform', 'noise', 'normal')


def initial(kind: str, content: jax.Array, style: jax.Array | None = None, seed: int = 0,
            noise: float = 0.0) -> jax.Array:
  """A starting image (1, H, W, 3), network input space, at content's size.

  kind: 'content'; 'style' (style resized to the content); 'uniform' (alias
  'noise'): seeded white noise uniform over 0..255 in every RGB channel;
  'normal': seeded Gaussian noise, mean 127.5 and std 64 per RGB channel,
  clipped to 0..255; or else the path of an image file, resized.
  content, style: network input, (1, H, W, 3) and (1, Hs, Ws, 3).
  noise: blend ratio r in [0, 1]: (1 - r) * init + r * the seeded 'uniform' noise.
  """
  shape = content.shape
  key = lambda: jax.random.key(seed)  # made only when noise asks for it: a compile
  uniform = lambda: image.preprocess(jax.random.uniform(key(), shape[1:], maxval=255.0))
  if kind == 'content':
    x = content
  elif kind == 'style':
    if style is None:
      raise InputError("start.initial: kind 'style' needs the style image")
    x = jax.image.resize(style, shape, 'linear')
  elif kind in ('uniform', 'noise'):
    x = uniform()
  elif kind == 'normal':
    # fold_in: independent of the uniform noise that `noise` blends in.
    rgb = 127.5 + 64.0 * jax.random.normal(jax.random.fold_in(key(), 1), shape[1:])
    x = image.preprocess(jnp.clip(rgb, 0.0, 255.0))
  else:
    x = image.preprocess(image.load(kind, height=shape[1], width=shape[2]))
  if noise:
    x = (1.0 - noise) * x + noise * uniform()
  return x
