"""The style-transfer objective: VGG19 features of an image against fixed targets.

`terms` is the pure function (image, params) -> loss terms; `build` reads a
config once, precomputes the targets (content features, the Grams of every
style image, the style masks at every style layer) and
returns an `Objective` whose jitted methods close over nothing but static
structure, so they are cheap to call from an optimiser or a research script.
"""
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxstyle import image, losses, vgg
from jaxstyle.errors import InputError

# Named starting images; any other init is the path of an image file.
INITS = ('content', 'style', 'uniform', 'noise', 'normal')
# Convolution precision: float32 throughout, TF32 tensor cores, or bfloat16
# compute (GPU speed; on CPU only 'highest' is fast).
PRECISIONS = ('highest', 'tf32', 'bf16')
# Each as jax names it. It applies to the Gram matrices too: left to JAX's
# default, a float32 matrix product runs on TF32 tensor cores on recent GPUs.
_JAX_PRECISION = {'highest': 'highest', 'tf32': 'tensorfloat32', 'bf16': 'bfloat16'}
# How the 3x3 convolutions of blocks 3 to 5 are computed: 'direct' (lax.conv),
# 'winograd' (F(4x4, 3x3), about twice as fast on XLA:CPU, float32 only) or
# 'auto' (winograd on CPU at 'highest' precision without shard_spatial, else direct).
CONV_ALGORITHMS = ('auto', 'direct', 'winograd')


@dataclasses.dataclass(frozen=True)
class Spec:
  """Static structure of the objective: changing it means a new compile."""
  content_layers: tuple[str, ...]
  style_layers: tuple[str, ...]
  normalization: str = 'gatys'
  pooling: str = 'avg'
  precision: str = 'highest'  # one of PRECISIONS
  remat: bool = False  # recompute each VGG block in the backward pass
  winograd: bool = False  # blocks 3 to 5 convolve by Winograd (vgg.WINOGRAD)
  # Each content and style term's gradient into its layer's features has L1
  # norm equal to the term's weight (losses.normalize_gradient).
  normalize_gradients: bool = False

  @property
  def model(self) -> vgg.VGG19:
    if self.precision == 'bf16':
      return vgg.VGG19(pooling=self.pooling, dtype=jnp.bfloat16)
    return vgg.VGG19(pooling=self.pooling, precision=_JAX_PRECISION[self.precision])

  def matmul_precision(self) -> Any:
    """Context in which the loss's own matrix products (the Grams and their
    gradients) are traced at the convolutions' precision."""
    return jax.default_matmul_precision(_JAX_PRECISION[self.precision])

  def features(self, variables: Any, x: jax.Array) -> dict[str, jax.Array]:
    """VGG activations at self.layers; under remat only block outputs are kept."""
    apply = lambda v, x: self.model.apply(v, x, layers=self.layers)
    if self.remat:
      policy = jax.checkpoint_policies.save_only_these_names(vgg.BLOCK_OUTPUT)
      apply = jax.checkpoint(apply, policy=policy)
    return apply(variables, x)

  @property
  def layers(self) -> tuple[str, ...]:
    return tuple(dict.fromkeys(self.content_layers + self.style_layers))

  def prepare(self, variables: Any) -> Any:
    """VGG19 variables as this spec computes with them, and only the layers
    up to its deepest (vgg.up_to): with the Winograd kernels of its layers
    when it uses Winograd (kept if already there), with the flipped kernels
    and no Winograd ones when it does not."""
    variables = vgg.up_to(variables, self.layers)
    if self.winograd:
      return vgg.with_winograd_kernels(variables, self.layers)
    if vgg.WINOGRAD not in variables:
      return variables
    return vgg.with_flipped_kernels({'params': variables['params']})


class Weights(NamedTuple):
  """Continuous settings, traced: a sweep can batch over them without recompiling."""
  content: jax.Array
  style: jax.Array
  style_layers: jax.Array  # (len(spec.style_layers),), w_l of paper eq. 5
  tv: jax.Array
  tv_power: jax.Array
  style_blend: jax.Array  # (n_styles,), each style image's share of the style loss; sum 1


class StyleTargets(NamedTuple):
  """What the loss compares the output's features with, stacked over the S style images."""
  grams: dict[str, jax.Array]  # layer -> each style image's Gram per position, (S, C, C)
  # layer -> each style's weights of the layer's positions, (S, H_l, W_l) in 0..1;
  # None: every style everywhere
  masks: dict[str, jax.Array] | None


class Params(NamedTuple):
  variables: Any  # Flax {'params': ...} of VGG19
  content: dict[str, jax.Array]  # layer -> content features P, NHWC
  style: StyleTargets
  weights: Weights


def terms(x: jax.Array, params: Params, spec: Spec) -> dict[str, jax.Array]:
  """Loss terms of image x ((1, H, W, 3), network input space): total and parts.

  The style term is Σ_l w_l Σ_s blend_s E_l(style s).
  """
  with spec.matmul_precision():
    return _terms_at_precision(x, params, spec)


def _terms_at_precision(x: jax.Array, params: Params, spec: Spec) -> dict[str, jax.Array]:
  feats = spec.features(params.variables, x)
  w = params.weights
  normalized = losses.normalize_gradient if spec.normalize_gradients else lambda f, weight: f
  content = sum((losses.content_loss(normalized(feats[l], w.content), params.content[l],
                                     spec.normalization)
                 for l in spec.content_layers), jnp.zeros(()))
  masks = params.style.masks
  style = sum((w.style_layers[i] * losses.blended_style_loss(
      normalized(feats[l], w.style * w.style_layers[i]), params.style.grams[l], w.style_blend,
      spec.normalization, x.shape[1:3], None if masks is None else masks[l])
               for i, l in enumerate(spec.style_layers)), jnp.zeros(()))
  tv = losses.tv_loss(x, w.tv_power)
  loss = losses.total(content, style, tv, w.content, w.style, w.tv)
  return {'loss': loss, 'content_loss': content, 'style_loss': style, 'tv_loss': tv}


def scalar(x: jax.Array, params: Params, spec: Spec) -> jax.Array:
  return terms(x, params, spec)['loss']


def loss_and_terms(x: jax.Array, params: Params,
                   spec: Spec) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The solvers' fun (optimize.Fun): the loss, and every term as aux, which
  a solver that keeps its last evaluation reports without another pass."""
  values = terms(x, params, spec)
  return values['loss'], values


GRAD_NORMS = ('grad_norm_content', 'grad_norm_style', 'grad_norm_tv')

Report = Callable[[jax.Array, dict[str, jax.Array], Params], dict[str, jax.Array]]


def metrics(spec: Spec, grad_norms: bool) -> Report:
  """report(x, terms, params) for optimize.minimize: the loss terms at x
  (`loss_and_terms`' aux, as the solver holds it) and, with `grad_norms`,
  GRAD_NORMS too, which cost a forward and a backward pass per network term."""
  if grad_norms:
    return lambda x, terms, params: terms_and_grad_norms(x, params, spec)
  return lambda x, terms, params: terms


def terms_and_grad_norms(x: jax.Array, params: Params, spec: Spec) -> dict[str, jax.Array]:
  """`terms`, and GRAD_NORMS: the L2 norm of the gradient w.r.t. x of each
  weighted term (α·content, β·style, γ·tv), what shows which term drives the
  image. One forward pass and one backward pass per network term; the TV
  term's gradient, pixels only, is its own.
  """
  w = params.weights

  def network_terms(x):
    t = terms(x, params, spec)
    return (w.content * t['content_loss'], w.style * t['style_loss']), t

  parts, backward, values = jax.vjp(network_terms, x, has_aux=True)
  one, zero = jnp.ones_like(parts[0]), jnp.zeros_like(parts[0])
  grads = (backward((one, zero))[0], backward((zero, one))[0],
           jax.grad(lambda x: w.tv * losses.tv_loss(x, w.tv_power))(x))
  return {**values, **{k: jnp.linalg.norm(g) for k, g in zip(GRAD_NORMS, grads)}}


@functools.partial(jax.jit, static_argnames='spec')
def _targets(variables: Any, x: jax.Array,
             spec: Spec) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
  """x's features at the content layers and Grams per position
  (losses.style_target) at the style layers: one compile serves the content
  image and every style image of its size."""
  features = spec.model.apply(variables, x, layers=spec.layers)
  with spec.matmul_precision():
    grams = {l: losses.style_target(features[l]) for l in spec.style_layers}
  return {l: features[l] for l in spec.content_layers}, grams


_terms = jax.jit(terms, static_argnames='spec')
_loss = jax.jit(scalar, static_argnames='spec')
_value_and_grad = jax.jit(jax.value_and_grad(scalar), static_argnames='spec')


def min_side(layers: Sequence[str]) -> int:
  """Smallest image side (px) for which every layer keeps at least one position."""
  return max((2**vgg.downsampling(l) for l in layers), default=1)


@dataclasses.dataclass(frozen=True)
class Objective:
  """An objective with its targets bound. x is network input, (1, H, W, 3)."""
  spec: Spec
  params: Params
  content: jax.Array  # preprocessed content image, (1, H, W, 3)
  style: jax.Array  # preprocessed (first) style image, (1, Hs, Ws, 3)

  def loss(self, x: jax.Array) -> jax.Array:
    return _loss(x, self.params, self.spec)

  def value_and_grad(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _value_and_grad(x, self.params, self.spec)

  def terms(self, x: jax.Array) -> dict[str, jax.Array]:
    return _terms(x, self.params, self.spec)

  def with_content(self, content_rgb: np.ndarray) -> 'Objective':
    """This objective for another content image of the same size (HWC RGB
    0..255): its content features computed, the style targets shared."""
    content = image.preprocess(content_rgb)
    assert content.shape == self.content.shape, (content.shape, self.content.shape)
    features, _ = _targets(self.params.variables, content, self.spec)
    return dataclasses.replace(self, params=self.params._replace(content=features),
                               content=content)

  def initial(self, kind: str, seed: int = 0, noise: float = 0.0) -> jax.Array:
    """Starting image (1, H, W, 3) at the content's size, network input space.

    Args:
      kind: 'content'; 'style' (the first style image, resized to the
        content); 'uniform' (alias 'noise'): seeded white noise uniform over
        0..255 in every RGB channel;
        'normal': seeded Gaussian noise, mean 127.5 and std 64 in every RGB
        channel, clipped to 0..255; or else the path of an image file, loaded
        and resized to the content's size.
      seed: Seed of the noise.
      noise: Blend ratio r in [0, 1]: the start is (1 - r) * init + r * the
        seeded 'uniform' noise.

    Raises:
      ImageError: `kind` is no name in INITS and no readable image file.
    """
    shape = self.content.shape
    key = jax.random.key(seed)
    uniform = lambda: image.preprocess(jax.random.uniform(key, shape[1:], maxval=255.0))
    if kind == 'content':
      x = self.content
    elif kind == 'style':
      x = jax.image.resize(self.style, shape, 'linear')
    elif kind in ('uniform', 'noise'):
      x = uniform()
    elif kind == 'normal':
      # fold_in: independent of the uniform noise that `noise` blends in.
      rgb = 127.5 + 64.0 * jax.random.normal(jax.random.fold_in(key, 1), shape[1:])
      x = image.preprocess(jnp.clip(rgb, 0.0, 255.0))
    else:
      x = image.preprocess(image.load(kind, height=shape[1], width=shape[2]))
    if noise:
      x = (1.0 - noise) * x + noise * uniform()
    return x


def uses_winograd(config: ml_collections.ConfigDict) -> bool:
  """config.conv_algorithm resolved for this process's backend."""
  if config.conv_algorithm == 'auto':
    return (jax.default_backend() == 'cpu' and config.precision == 'highest'
            and not config.shard_spatial)
  return config.conv_algorithm == 'winograd'


def spec_from(config: ml_collections.ConfigDict) -> Spec:
  return Spec(content_layers=tuple(config.loss.content_layers),
              style_layers=tuple(config.loss.style_layers),
              normalization=config.loss.normalization,
              pooling=config.pooling,
              precision=config.precision,
              remat=config.remat,
              winograd=uses_winograd(config),
              normalize_gradients=config.loss.normalize_gradients)


def num_styles(config: ml_collections.ConfigDict) -> int:
  """How many style images a config names: one per `styles`, else one (`style`)."""
  return len(config.styles) if config.styles else 1


def weights_from(config: ml_collections.ConfigDict) -> Weights:
  loss = config.loss
  n = len(loss.style_layers)
  layer_weights = loss.style_layer_weights
  if layer_weights is None:
    layer_weights = (1.0 / max(n, 1),) * n
  blend = config.style_blend_weights
  if blend is None:
    blend = (1.0,) * num_styles(config)
  blend = np.asarray(blend, np.float64)
  return Weights(*(jnp.asarray(v, jnp.float32) for v in (
      loss.content_weight, loss.style_weight, layer_weights, loss.tv_weight,
      loss.tv_power, blend / blend.sum())))


def _pooled(mask: np.ndarray, times: int) -> np.ndarray:
  """mask (H, W) after `times` 2x2 average poolings that drop an odd last row
  or column, as VGG19's poolings do: the mask at a layer's positions."""
  for _ in range(times):
    h, w = mask.shape[0] // 2, mask.shape[1] // 2
    mask = mask[:2 * h, :2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))
  return mask


def _masks(config: ml_collections.ConfigDict, spec: Spec,
           hw: tuple[int, int]) -> dict[str, jax.Array] | None:
  """`config.style_masks` at each style layer, (S, H_l, W_l), None without
  masks; the files are read at the output size hw (px)."""
  if config.style_masks is None:
    return None
  masks = {l: [] for l in spec.style_layers}
  for path in config.style_masks:
    full = image.load_mask(path, *hw)
    for l in spec.style_layers:
      mask = _pooled(full, vgg.downsampling(l))
      if not mask.any():
        raise InputError(f'config.style_masks: {path} is black on every position of {l}; '
                         'a mask needs a region to style')
      masks[l].append(mask)
  return {l: jnp.asarray(np.stack(m)) for l, m in masks.items()}


def load_variables(config: ml_collections.ConfigDict) -> Any:
  """VGG19 variables of config.weights, prepared for the config's spec:
  load once and pass to `build` for every objective of a run."""
  return spec_from(config).prepare(vgg.load_variables(config.get('weights')))


def build(config: ml_collections.ConfigDict, content_rgb: np.ndarray,
          style_rgb: np.ndarray | Sequence[np.ndarray], variables: Any = None) -> Objective:
  """Objective of `config.loss` for a content image and a style image, or a
  list of the style images `config.styles` names (HWC RGB 0..255, as
  cli.load_inputs returns them).

  The output has the content image's size. Content features, every style
  image's Grams and the `config.style_masks` at every style layer are computed
  here, once.
  """
  spec = spec_from(config)
  vgg.check_layers(spec.layers)
  variables = load_variables(config) if variables is None else spec.prepare(variables)
  styles_rgb = list(style_rgb) if isinstance(style_rgb, (list, tuple)) else [style_rgb]
  if len(styles_rgb) != num_styles(config):
    raise InputError(f'{len(styles_rgb)} style image(s) given for the '
                     f'{num_styles(config)} that the config names')
  need = min_side(spec.layers)
  names = ['style'] if len(styles_rgb) == 1 else [f'style {i + 1}' for i in range(len(styles_rgb))]
  for name, rgb in zip(['content', *names], [content_rgb, *styles_rgb]):
    if min(rgb.shape[:2]) < need:
      raise InputError(f'{name} image is {rgb.shape[1]}x{rgb.shape[0]} px; the layers '
                       f'asked for need at least {need} px on each side')
  masks = _masks(config, spec, content_rgb.shape[:2])
  content = image.preprocess(content_rgb)
  styles = [image.preprocess(rgb) for rgb in styles_rgb]
  grams = [_targets(variables, style, spec)[1] for style in styles]
  params = Params(variables=variables,
                  content=_targets(variables, content, spec)[0],
                  style=StyleTargets(grams={l: jnp.stack([g[l] for g in grams])
                                            for l in spec.style_layers},
                                     masks=masks),
                  weights=weights_from(config))
  return Objective(spec=spec, params=params, content=content, style=styles[0])
