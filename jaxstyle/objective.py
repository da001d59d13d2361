"""The style-transfer objective: VGG19 features of an image against fixed targets.

`make` computes the targets once (content features, each style image's Grams,
the style masks at every style layer) and returns an `Objective`: a pytree
whose leaves are arrays (VGG variables, targets, weights) and whose static
structure (layers, normalisation, pooling, precision, extra terms) is aux
data. `loss`, `terms` and `value_and_grad` are pure functions of (x, obj), so
`jax.jit` compiles them once for every objective of the same shapes, and
`jax.vmap` maps them over objectives that `stack` stacks.
"""
import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import checks, image, losses, settings, style, tiles, vgg
from jaxstyle import targets as targets_lib
from jaxstyle import spec as spec_lib
from jaxstyle.errors import InputError
from jaxstyle.settings import CONV_ALGORITHMS, PRECISIONS, TERMS  # noqa: F401 (re-exported)
from jaxstyle.spec import Spec, TermFn, min_side, pooled_mask  # noqa: F401 (re-exported)
from jaxstyle.targets import of_image as targets  # noqa: F401 (re-exported)


class Weights(NamedTuple):
  """Continuous settings, leaves: vmap and sweeps batch over them without recompiling."""
  content: jax.Array  # α
  style: jax.Array  # β
  style_layers: jax.Array  # (L,), w_l of paper eq. 5, one per style layer
  tv: jax.Array
  tv_power: jax.Array
  style_blend: jax.Array  # (S,), each style image's share of the style loss; sum 1
  extra: dict[str, jax.Array]  # extra term name -> its weight
  key: jax.Array  # uint32 (2,), of random style statistics ('sliced'); at_step folds in the step


class StyleTargets(NamedTuple):
  """What the loss compares the output's features with, stacked over S style images."""
  # layer -> each style image's statistics (style.StyleLoss.target), leading axis S;
  # for 'gram' its Gram per position, (S, C, C).
  stats: dict[str, Any]
  # layer -> each style's weights of the layer's positions, (S, H_l, W_l) in 0..1;
  # None: every style everywhere.
  masks: dict[str, jax.Array] | None


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=['variables', 'content', 'style', 'weights'],
                   meta_fields=['spec'])
@dataclasses.dataclass(frozen=True)
class Objective:
  """An objective with its targets bound; a pytree (arrays are leaves, `spec` aux data)."""
  variables: Any  # Flax {'params': ..., ...} of VGG19, prepared for spec (Spec.prepare)
  content: dict[str, jax.Array]  # layer -> content features P, (1, H_l, W_l, C)
  style: StyleTargets
  weights: Weights
  spec: Spec


def _network_terms(x: jax.Array, obj: Objective) -> tuple[jax.Array, dict[str, jax.Array],
                                                           dict[str, jax.Array]]:
  """The content loss, each style layer's E_l and the extra terms, from one
  forward pass of the whole image."""
  spec, w = obj.spec, obj.weights
  feats = spec.features(obj.variables, x)
  normalized = losses.normalize_gradient if spec.normalize_gradients else lambda f, weight: f
  content = sum((losses.content_loss(normalized(feats[l], w.content), obj.content[l],
                                     spec.normalization)
                 for l in spec.content_layers), jnp.zeros(()))
  masks = obj.style.masks
  kind, blend = spec.style_kind, w.style_blend

  def layer_term(i: int, l: str) -> jax.Array:
    f = normalized(feats[l], w.style * w.style_layers[i])
    key = jax.random.fold_in(w.key, i) if kind.random else None
    return sum(blend[s] * kind.distance(
        f, jax.tree.map(lambda a: a[s], obj.style.stats[l]),
        None if masks is None else masks[l][s], key, spec.normalization, x.shape[1:3])
               for s in range(blend.shape[0]))

  extra = {name: jnp.asarray(fn(feats, x), jnp.float32).reshape(())
           for name, fn in spec.extra_terms}
  return content, {l: layer_term(i, l) for i, l in enumerate(spec.style_layers)}, extra


def _tiled_terms(x: jax.Array, obj: Objective) -> tuple[jax.Array, dict[str, jax.Array],
                                                         dict[str, jax.Array]]:
  """_network_terms from the sums over positions that jaxstyle.tiles
  computes tile by tile, each term by its kind's from_sums."""
  spec, blend = obj.spec, obj.weights.style_blend
  sums = tiles.sums(x, obj)
  content = losses.content_scale(spec.normalization) * sum(sums['content'].values(),
                                                           jnp.zeros(()))
  at = lambda tree, s: jax.tree.map(lambda a: a[s], tree)
  layer_hw = lambda l: tuple(side // 2**vgg.downsampling(l) for side in x.shape[1:3])
  per_layer = {l: sum(blend[s] * spec.style_kind.from_sums(
      at(sums['style'][l], s), at(obj.style.stats[l], s), spec.normalization, x.shape[1:3],
      layer_hw(l)) for s in range(blend.shape[0])) for l in spec.style_layers}
  return content, per_layer, {}


def _terms(x: jax.Array, obj: Objective) -> dict[str, jax.Array]:
  spec, w = obj.spec, obj.weights
  content, layer_terms, extra = (_tiled_terms if spec.tile else _network_terms)(x, obj)
  per_layer = {f'style/{l}': w.style_layers[i] * layer_terms[l]
               for i, l in enumerate(spec.style_layers)}
  zero = jnp.zeros(())
  style = sum(per_layer.values(), zero)
  tv = losses.tv_loss(x, w.tv_power)
  loss = losses.total(content, style, tv, content_weight=w.content, style_weight=w.style,
                      tv_weight=w.tv)
  loss = loss + sum((w.extra[name] * value for name, value in extra.items()), zero)
  return {'loss': loss, 'content_loss': content, 'style_loss': style, 'tv_loss': tv,
          **per_layer, **extra}


def terms_of(x: jax.Array, obj: Objective) -> dict[str, jax.Array]:
  """Every term at x, (1, H, W, 3) network input: TERMS (each unweighted by
  α, β, γ), 'style/<layer>' (w_l·E_l, summing to style_loss) and the extra
  terms (unweighted); 'loss' is their weighted sum. Not jitted: for tracing."""
  with obj.spec.matmul_precision():
    return _terms(x, obj)


def loss_and_terms(x: jax.Array, obj: Objective) -> tuple[jax.Array, dict[str, jax.Array]]:
  """A solver's fun (optimize.Fun): the loss, and every term as aux."""
  values = terms_of(x, obj)
  return values['loss'], values


@jax.jit
def terms(x: jax.Array, obj: Objective) -> dict[str, jax.Array]:
  """Jitted `terms_of`: every loss term at x, (1, H, W, 3) network input."""
  return terms_of(x, obj)


@jax.jit
def loss(x: jax.Array, obj: Objective) -> jax.Array:
  """The scalar objective at x, (1, H, W, 3) network input (image.preprocess)."""
  return terms_of(x, obj)['loss']


@jax.jit
def value_and_grad(x: jax.Array, obj: Objective) -> tuple[jax.Array, jax.Array]:
  """`loss` and its gradient with respect to x, (1, H, W, 3)."""
  return jax.value_and_grad(lambda x: terms_of(x, obj)['loss'])(x)


GRAD_NORMS = ('grad_norm_content', 'grad_norm_style', 'grad_norm_tv')


def terms_and_grad_norms(x: jax.Array, obj: Objective) -> dict[str, jax.Array]:
  """`terms_of`, and GRAD_NORMS: the L2 norm of the gradient w.r.t. x of each
  weighted term (α·content, β·style, γ·tv), what shows which term drives the
  image. One forward pass and one backward pass per network term; the TV
  term's gradient, pixels only, is its own."""
  w = obj.weights

  def network_terms(x):
    t = terms_of(x, obj)
    return (w.content * t['content_loss'], w.style * t['style_loss']), t

  parts, backward, values = jax.vjp(network_terms, x, has_aux=True)
  one, zero = jnp.ones_like(parts[0]), jnp.zeros_like(parts[0])
  grads = (backward((one, zero))[0], backward((zero, one))[0],
           jax.grad(lambda x: w.tv * losses.tv_loss(x, w.tv_power))(x))
  return {**values, **{k: jnp.linalg.norm(g) for k, g in zip(GRAD_NORMS, grads)}}


def stack(objectives: Sequence[Objective]) -> Objective:
  """Objectives of one structure and shapes as one, every leaf with a leading
  axis: `jax.vmap(loss, in_axes=(None, 0))(x, stack(objs))` evaluates all."""
  structures = {jax.tree.structure(o) for o in objectives}
  shapes = {tuple(np.shape(a) for a in jax.tree.leaves(o)) for o in objectives}
  if not objectives or len(structures) > 1 or len(shapes) > 1:
    raise InputError('objective.stack: the objectives must share layers, settings and '
                     'image sizes (one structure and one shape per leaf)')
  return jax.tree.map(lambda *a: jnp.stack(a), *objectives)


def with_content(obj: Objective, content: np.ndarray) -> Objective:
  """`obj` for another content image of the same size (HWC RGB 0..255): its
  content features computed, the style targets shared."""
  spec = obj.spec
  features, _ = targets_lib.of_image(obj.variables, image.preprocess(content, spec.preprocessing),
                        spec.content_layers, spec.style_layers, pooling=spec.pooling,
                        precision=spec.precision, style_loss=spec.style_loss)
  if any(features[l].shape != obj.content[l].shape for l in features):
    raise InputError(f'content image is {content.shape[1]}x{content.shape[0]} px, not the '
                     "size of the objective's content image")
  return dataclasses.replace(obj, content=features)


def at_step(obj: Objective, step: int | jax.Array) -> Objective:
  """obj with its key folded with `step`: the random directions of 'sliced'
  drawn afresh at each step, reproducibly (keys of any leading batch shape)."""
  fold = jnp.vectorize(lambda k: jax.random.fold_in(k, step), signature='(2)->(2)')
  return dataclasses.replace(obj, weights=obj.weights._replace(key=fold(obj.weights.key)))


def spec(**kwargs: Any) -> Spec:
  """The static structure that `make` with these settings builds, checked;
  nothing is loaded or computed (for memory estimates and validation)."""
  blend = kwargs.get('style_blend_weights')
  return spec_lib.of_settings(settings.check(kwargs, len(blend) if blend is not None else 1))


def weights(n_styles: int = 1, **kwargs: Any) -> Weights:
  """The continuous settings (the leaves a sweep batches) that `make` with these
  settings and n_styles style images binds, without computing any target."""
  return _weights(settings.check(kwargs, n_styles), n_styles)


def _weights(s: dict[str, Any], n_styles: int) -> Weights:
  n = len(s['style_layers'])
  layer_weights = s['style_layer_weights']
  if layer_weights is None:
    layer_weights = (1.0 / max(n, 1),) * n
  blend = np.asarray(s['style_blend_weights'] or (1.0,) * n_styles, np.float64)
  f32 = lambda v: jax.device_put(np.asarray(v, np.float32))  # jnp.asarray would compile
  extra = {name: f32(weight) for name, (weight, _) in (s['extra_terms'] or {}).items()}
  beta = s['style_weight']
  if beta is None:
    beta = style.KINDS[s['style_loss']].weight
  return Weights(*map(f32, (s['content_weight'], beta, layer_weights,
                            s['tv_weight'], s['tv_power'], blend / blend.sum())), extra,
                 key=jax.random.PRNGKey(s['seed']))


def make(content: np.ndarray, style: np.ndarray | Sequence[np.ndarray], *,
         variables: Any = None, **kwargs: Any) -> Objective:
  """The objective of a content image and one or several (blended) style images.

  content: HWC RGB 0..255 (the output's size); style: one such array, or a
  sequence of them, of any size. variables: VGG19's Flax variables
  (vgg.load_variables(); default: loaded, fetching the weights if missing).
  kwargs: any of settings.DEFAULTS (content_layers, style_layers,
  content_weight, style_weight, style_layer_weights, tv_weight, tv_power,
  normalization, pooling, preprocessing, precision, conv_algorithm, remat,
  normalize_gradients, style_blend_weights, style_masks, extra_terms,
  extra_layers, tile, tile_remat). Content features, every style image's Grams and the masks at
  every style layer are computed here, once. tile: px, the loss and gradient
  computed exactly tile by tile (jaxstyle.tiles), in memory set by the tile;
  0 or 'auto' (the default, which the command line resolves by the device's
  free memory): the whole image at once. tile_remat: tiled, whether the
  backward pass recomputes each tile's forward pass (tiling.keeps).

  Raises:
    InputError: an unknown keyword, a bad value (one line naming it), or an
      image smaller than the layers need.
  """
  styles = list(style) if isinstance(style, (list, tuple)) else [style]
  s = settings.check(kwargs, len(styles), tuple(np.shape(content)[:2]))
  spec = spec_lib.of_settings(s)
  need = spec.min_side
  names = ['style'] if len(styles) == 1 else [f'style {i + 1}' for i in range(len(styles))]
  for name, rgb in zip(['content', *names], [content, *styles]):
    if np.ndim(rgb) != 3 or np.shape(rgb)[2] != 3:
      raise InputError(f'{name} image must be HWC RGB (H, W, 3); got shape {np.shape(rgb)}')
    if min(np.shape(rgb)[:2]) < need:
      raise InputError(f'{name} image is {np.shape(rgb)[1]}x{np.shape(rgb)[0]} px; the layers '
                       f'asked for need at least {need} px on each side')
  variables = spec.prepare(vgg.load_variables() if variables is None else variables)
  masks = None
  if s['style_masks'] is not None:
    masks = {l: [pooled_mask(np.asarray(m, np.float32), l) for m in s['style_masks']]
             for l in spec.style_layers}
    for l, at_layer in masks.items():
      for i, m in enumerate(at_layer):
        if not m.any():
          checks.fail('style_masks', f'mask {i + 1} of {len(at_layer)} is black on every '
                      f'position of {l}; a mask needs a region to style')
    masks = {l: jax.device_put(np.stack(m)) for l, m in masks.items()}
  content_features, stats = targets_lib.of_images(variables, content, styles, spec)
  return Objective(variables=variables, content=content_features,
                   style=StyleTargets(stats=stats, masks=masks),
                   weights=_weights(s, len(styles)), spec=spec)
