"""Default run: a clearly stylised picture in minutes on a laptop CPU.

python -m jaxstyle.main --config configs/default.py --workdir=runs/default
"""
import math

import ml_collections

STYLE_LAYERS = ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1',
                'block5_conv1')


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # Inputs. Unset: matplotlib's sample photograph, and a style the package paints.
  config.content = ml_collections.config_dict.placeholder(str)
  config.style = ml_collections.config_dict.placeholder(str)
  # Instead of `content`: several content images solved as one batch (a folder
  # or a tuple of paths), or a folder of video frames solved in order, each
  # later frame from the previous result in frames_steps steps (unset: steps).
  config.contents = ml_collections.FieldReference(None, field_type=object)
  config.frames = ml_collections.config_dict.placeholder(str)
  config.frames_steps = ml_collections.config_dict.placeholder(int)
  # Several style images instead of `style`, each blended into the style loss
  # with its weight (unset: equal), each optionally confined to the output
  # region that a greyscale mask image (white: styled) selects.
  config.styles = ml_collections.config_dict.placeholder(tuple)
  config.style_blend_weights = ml_collections.config_dict.placeholder(tuple)
  config.style_masks = ml_collections.config_dict.placeholder(tuple)
  # Style images are loaded at style_scale x height px: larger, coarser strokes.
  # A number, or a tuple with one per style image.
  config.style_scale = ml_collections.FieldReference(1.0, field_type=object)
  # Converted VGG19 weights (.npz); unset: weights/, fetched on first use.
  config.weights = ml_collections.config_dict.placeholder(str)
  # Output height in pixels; the width keeps the content's aspect ratio at it,
  # unless `width` is set: then the content is squashed to height x width.
  config.height = 256
  config.width = ml_collections.config_dict.placeholder(int)
  config.resample = 'lanczos'  # images' resizing filter: 'nearest', 'bilinear' or 'bicubic'
  # Style images: 'aspect' keeps their aspect ratio at the content's height (times
  # style_scale); 'content' squashes them to the content's height and width.
  config.style_resize = 'aspect'
  config.steps = 100
  # Coarse to fine: `scales` heights, each the next divided by scale_factor, the
  # last `height`; each scale starts from the previous result, upsampled, and
  # runs scale_steps steps (unset: steps), the last scale `steps`.
  config.scales = 1
  config.scale_factor = math.sqrt(2)
  config.scale_steps = ml_collections.config_dict.placeholder(int)
  # 'content', 'style', 'uniform' (alias 'noise'), 'normal' or an image path.
  config.init = 'content'
  config.init_noise = 0.0  # blend of the init with seeded uniform noise, 0..1
  config.seed = 0  # of the init noise and of the 'sliced' loss's random directions
  config.original_colors = False  # final.png keeps the content's chroma
  config.color_transfer = False  # style recoloured to the content's mean/covariance
  config.pooling = 'avg'  # 'max' or 'avg' (the paper's)
  # Network input: 'caffe' (BGR minus the ImageNet means) or 'swapped_means'
  # (blue and red each minus the other's mean, as the Aalborg notebook does).
  config.preprocessing = 'caffe'
  config.precision = 'highest'  # convolutions: 'highest' (fp32), 'tf32' or 'bf16' (GPU)
  # blocks 3-5: 'direct', 'winograd' (CPU speed, float32) or 'auto' (winograd on CPU)
  config.conv_algorithm = 'auto'
  config.remat = False  # recompute VGG blocks in the backward pass: less memory
  config.compilation_cache = True  # JAX's persistent cache, shared: $XDG_CACHE_HOME/jaxstyle
  config.shard_spatial = False  # split the image's width over every device (jax.sharding)
  # Loss and gradient computed exactly tile by tile (px), in memory set by the tile:
  # 'auto' tiles only an image too large for the device's free memory; 0: never.
  config.tile = ml_collections.FieldReference('auto', field_type=object)
  # Tiled, the backward pass recomputes each tile's forward pass (True), or the forward
  # pass keeps its ReLU masks and features (False: faster, memory grows with the image);
  # 'auto': kept where they take at most twice a tile window's activations.
  config.tile_remat = ml_collections.FieldReference('auto', field_type=object)
  # The final image's file type, with the content's ICC profile and DPI: 'png', 'jpg'
  # or 'tif' ('jpeg', 'tiff'): final.<output_format>, contents/ and frames/ likewise.
  config.output_format = 'png'
  config.output_bits = 8  # the final image: 8 or 16 bits per channel (16: png or tif)

  config.loss = ml_collections.ConfigDict()
  config.loss.normalization = 'gatys'  # or 'keras'
  config.loss.content_layers = ('block4_conv2',)
  config.loss.style_layers = STYLE_LAYERS
  config.loss.style_layer_weights = ml_collections.config_dict.placeholder(tuple)
  config.loss.content_weight = 1.0
  # β; unset: the style loss's own (gram 1e4; the others 1e8-2e8, jaxstyle/style.py).
  config.loss.style_weight = ml_collections.config_dict.placeholder(float)
  # How the style statistics are compared: 'gram' (the paper), 'mean_std',
  # 'w2', 'histogram', 'sliced' or 'mrf' (jaxstyle/style.py).
  config.loss.style_loss = 'gram'
  config.loss.sliced_projections = ml_collections.config_dict.placeholder(int)  # None: C
  config.loss.tv_weight = 0.0
  config.loss.tv_power = 1.25
  # Each content and style term's gradient into its layer's features divided
  # by its L1 norm, times the term's weight (neural-style's -normalize_gradients).
  config.loss.normalize_gradients = False

  config.optimizer = 'lbfgs'  # jaxopt L-BFGS; 'optax_lbfgs' or 'adam'
  config.optim = ml_collections.ConfigDict()
  config.optim.lbfgs = dict(history_size=10, linesearch='strong_wolfe', max_linesearch=20)
  config.optim.optax_lbfgs = dict(history_size=10, max_linesearch=20)
  config.optim.adam = dict(learning_rate=10.0, b1=0.9, b2=0.999, eps=1e-8)
  # Stop early once the loss falls by less than tol (relative) over tol_window
  # steps; 0: run every step.
  config.optim.tol = 0.0
  config.optim.tol_window = 10
  # Adam: show and save the exponential moving average of the iterates with
  # this decay (bias-corrected); 0: the iterates themselves.
  config.optim.avg_decay = 0.0
  # optimizer='scipy_lbfgsb': a step is one call of scipy's L-BFGS-B, at most maxfun
  # evaluations with memory m, none kept from the call before (the Keras example's loop).
  config.optim.scipy_lbfgsb = dict(m=10, maxfun=20)

  config.log_every = 10  # metrics.jsonl line and progress; 0: first and last only
  # Per-term gradient norms in the metrics; off: each logged step would cost
  # about one more gradient evaluation, and a run one more compile.
  config.grad_norms = False
  config.save_every = 50  # step_NNNNN.png; 0: final image only
  config.checkpoint_every = 50  # workdir/checkpoint.npz; 0: only at the end
  config.tensorboard = True  # event files in workdir/tensorboard (needs tensorboardX)
  return config
