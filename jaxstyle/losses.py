"""Loss terms of neural style transfer, as pure jitted functions.

Features are HWC or NHWC activations of one image (N = 1; jax.vmap maps the
functions over a batch, and a larger N is a ValueError that says so). Two normalisations:
- 'gatys': the paper (Gatys, Ecker & Bethge 2015): content ½Σ(F−P)²,
  style per layer Σ(G−A)²/(4N²M²), N channels, M positions of that layer.
- 'keras': the Keras `neural_style_transfer.py` example: content Σ(F−P)²,
  style Σ(S−C)²/(4·9·(H·W)²) with H, W the size of the generated image.
Total variation is the Keras example's Σ((Δx²+Δy²)^power) for both.
A style mask (Gatys et al. 2017, "Controlling Perceptual Factors in Neural
Style Transfer") replaces G/M by the `guided_gram` of the masked region.
`normalize_gradient` rescales a term's gradient, leaving its value.
"""
import functools

import jax
import jax.numpy as jnp

NORMALIZATIONS = ('gatys', 'keras')


def check_one_image(array: jax.Array, what: str = 'features') -> None:
  """Raises ValueError unless array is HWC or NHWC with N = 1: the losses
  take one image; jax.vmap maps them over a batch."""
  if array.ndim not in (3, 4):
    raise ValueError(f'{what} must be HWC or NHWC; got shape {array.shape}')
  if array.ndim == 4 and array.shape[0] != 1:
    raise ValueError(f'{what} hold a batch of {array.shape[0]} images; the losses take one '
                     '(N = 1): map them over a batch with jax.vmap')


def positions(features: jax.Array) -> jax.Array:
  """One image's features, HWC or NHWC, as (M, C): a row per position."""
  check_one_image(features)
  return features.reshape(-1, features.shape[-1])


def position_weights(mask: jax.Array | None, m: int) -> jax.Array:
  """A mask's weights of M positions, (M,), scaled to sum 1; None: uniform."""
  w = jnp.ones((m,), jnp.float32) if mask is None else mask.reshape(m).astype(jnp.float32)
  return w / jnp.sum(w)


def _positions_and_channels(features: jax.Array) -> tuple[int, int]:
  check_one_image(features)
  h, w, c = features.shape[-3:]
  return h * w, c


@jax.custom_jvp
def _gram(f: jax.Array) -> jax.Array:
  return f.T @ f


@_gram.defjvp
def _gram_jvp(primals, tangents):
  """d(FᵀF) = FᵀdF + (FᵀdF)ᵀ: one product, whose transpose, the gradient
  F(dG + dGᵀ), is one product too. JAX's own rule makes two of each, and
  the backward ones, (M, C) by (C, C), are memory-bound."""
  (f,), (df,) = primals, tangents
  half = f.T @ df
  return f.T @ f, half + half.T


@jax.jit
def gram(features: jax.Array) -> jax.Array:
  """G_ij = Σ_k F_ik F_jk over the M spatial positions (paper eq. 3): (C, C)."""
  m, c = _positions_and_channels(features)
  return _gram(features.reshape(m, c))


@jax.jit
def guided_gram(features: jax.Array, mask: jax.Array) -> jax.Array:
  """Σ_k m_k F_k F_kᵀ / Σ_k m_k: the Gram per position over the region that
  mask (H, W), weights 0..1 per position, selects: (C, C).

  For a 0/1 mask this is the guided Gram of Gatys et al. 2017 (features times
  the mask) divided by the masked area; an all-ones mask gives gram(F)/M.
  """
  m, c = _positions_and_channels(features)
  if mask.shape != features.shape[-3:-1]:
    raise ValueError(f'mask {mask.shape} is not the features\' (H, W) {features.shape[-3:-1]}')
  f = features.reshape(m, c)
  return (mask.reshape(m, 1) * f).T @ f / jnp.sum(mask)


@jax.jit
def style_target(features: jax.Array) -> jax.Array:
  """A style image's Gram per position, gram(F)/M: (C, C).

  `style_loss` rescales it to the generated image's M, so style and output may
  differ in size; at equal sizes the loss is exactly the paper's or Keras's.
  """
  m, _ = _positions_and_channels(features)
  return gram(features) / m


@functools.partial(jax.jit, static_argnames='normalization')
def content_loss(features: jax.Array, target: jax.Array,
                 normalization: str = 'gatys') -> jax.Array:
  """½Σ(F−P)² ('gatys') or Σ(F−P)² ('keras'); F, P of equal shape."""
  if features.shape != target.shape:
    raise ValueError(f'features {features.shape} and target {target.shape} differ in shape')
  return content_scale(normalization) * jnp.sum(jnp.square(features - target))


def content_scale(normalization: str) -> float:
  """The content loss's factor on Σ(F−P)²: ½ ('gatys') or 1 ('keras')."""
  return 0.5 if normalization == 'gatys' else 1.0


def gram_distance(g: jax.Array, target: jax.Array, m: int, c: int, normalization: str,
                  image_hw: tuple[int, int] | None) -> jax.Array:
  """E_l from the features' Gram g, (C, C), of a layer with M positions."""
  if target.shape != (c, c):
    raise ValueError(f'style target {target.shape} is not ({c}, {c}): one Gram per position')
  if normalization == 'gatys':
    denom = 4.0 * c**2 * m**2
  else:
    if image_hw is None:
      raise ValueError("'keras' normalization needs image_hw, the output's (H, W)")
    denom = 4.0 * 9 * (image_hw[0] * image_hw[1])**2
  return jnp.sum(jnp.square(g - m * target)) / denom


@functools.partial(jax.jit, static_argnames=('normalization', 'image_hw'))
def style_loss(features: jax.Array, target: jax.Array,
               normalization: str = 'gatys',
               image_hw: tuple[int, int] | None = None,
               mask: jax.Array | None = None) -> jax.Array:
  """One layer's style loss E_l. target: `style_target` of the style image.

  image_hw: (H, W) of the generated image, needed by 'keras' only.
  mask: (H_l, W_l) weights of the layer's positions, 0..1: the features' Gram
  per position becomes their `guided_gram`, so the style is matched inside
  the mask's region only.
  """
  m, c = _positions_and_channels(features)
  g = gram(features) if mask is None else m * guided_gram(features, mask)
  return gram_distance(g, target, m, c, normalization=normalization, image_hw=image_hw)


@functools.partial(jax.jit, static_argnames=('normalization', 'image_hw'))
def blended_style_loss(features: jax.Array, targets: jax.Array, blend: jax.Array,
                       normalization: str = 'gatys',
                       image_hw: tuple[int, int] | None = None,
                       masks: jax.Array | None = None) -> jax.Array:
  """Σ_s blend_s E_l(s) over S style images at one layer: `style_loss` with
  targets[s] and masks[s]. targets: (S, C, C); blend: (S,); masks: None or
  (S, H_l, W_l). Without masks the features' Gram, and its gradient, are
  computed once for all S.
  """
  m, c = _positions_and_channels(features)
  shared = gram(features) if masks is None else None
  return sum(blend[s] * gram_distance(
      shared if masks is None else m * guided_gram(features, masks[s]),
      targets[s], m, c, normalization=normalization, image_hw=image_hw)
             for s in range(targets.shape[0]))


@jax.custom_vjp
def normalize_gradient(features: jax.Array, weight: jax.Array) -> jax.Array:
  """The identity on features whose backward pass turns the incoming gradient
  g into weight · g / (‖g‖₁ + 1e-8): as neural-style's -normalize_gradients,
  each loss term pushes its layer's features with L1 norm `weight`, however
  large its raw gradient. weight: a scalar, the term's weight in the total.
  """
  del weight
  return features


def _normalize_gradient_fwd(features: jax.Array,
                            weight: jax.Array) -> tuple[jax.Array, jax.Array]:
  return features, weight


def _normalize_gradient_bwd(weight: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
  l1 = jnp.sum(jnp.abs(g), dtype=jnp.float32)
  return (weight * g / (l1 + 1e-8)).astype(g.dtype), jnp.zeros_like(weight)


normalize_gradient.defvjp(_normalize_gradient_fwd, _normalize_gradient_bwd)


@jax.jit
def tv_loss(image: jax.Array, power: float = 1.25) -> jax.Array:
  """Σ over pixels and channels of ((x[i,j]−x[i+1,j])² + (x[i,j]−x[i,j+1])²)^power.

  image: HWC or NHWC. Power 1.25 is the Keras example's; power ≥ 1 keeps the
  gradient finite where the image is flat.

  The neighbours come from rolls and the last row and column are masked out,
  rather than slicing: the gradient of slices is a sum of pads, and XLA:CPU
  (jax 0.10.2) miscomputes a reduction fused with those pads at some sizes
  (e.g. 91x121: the gradient's norm came out NaN), which rolls avoid.
  """
  check_one_image(image, 'image')
  x = image.reshape(image.shape[-3:])
  h, w = x.shape[:2]
  s = jnp.square(x - jnp.roll(x, -1, 0)) + jnp.square(x - jnp.roll(x, -1, 1))
  inside = (jnp.arange(h)[:, None, None] < h - 1) & (jnp.arange(w)[None, :, None] < w - 1)
  return jnp.sum(jnp.where(inside, jnp.power(s, power), 0.0))


@jax.jit
def total(content: jax.Array, style: jax.Array, tv: jax.Array,
          content_weight: float, style_weight: float,
          tv_weight: float) -> jax.Array:
  """α·L_content + β·L_style + γ·L_tv (paper eq. 7, plus a TV term)."""
  return content_weight * content + style_weight * style + tv_weight * tv
