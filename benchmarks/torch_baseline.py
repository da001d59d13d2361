"""PyTorch baseline of the Keras-example objective, written as the PyTorch
neural style tutorial writes it: an nn.Sequential VGG with loss modules
inserted after the chosen ReLUs, and torch.optim.LBFGS(max_iter=1) stepped
with a closure.

Same VGG19 weights as jaxstyle (its converted .npz, HWIO kernels turned into
OIHW), same Caffe BGR input space, same loss normalisation. Writes a JSON file
with the loss after every iteration and its time since process start.

python -m benchmarks.torch_baseline --content=PNG --style=PNG --weights=NPZ \
    --steps=50 --t0=EPOCH_S --out=JSON [--device=cuda] [--tf32]

On a GPU the convolutions run in float32 unless `--tf32` (torch's own default
for cuDNN convolutions, `torch.backends.cudnn.allow_tf32`).
"""
import argparse
import json
import statistics
import time

import numpy as np
from PIL import Image
import torch
from torch import nn

BGR_MEAN = (103.939, 116.779, 123.68)
CONV_LAYERS = (
    'block1_conv1', 'block1_conv2', 'block2_conv1', 'block2_conv2',
    'block3_conv1', 'block3_conv2', 'block3_conv3', 'block3_conv4',
    'block4_conv1', 'block4_conv2', 'block4_conv3', 'block4_conv4',
    'block5_conv1', 'block5_conv2')
CONTENT_LAYERS = ('block5_conv2',)
STYLE_LAYERS = ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1',
                'block5_conv1')
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT, TV_POWER = 0.025, 1.0, 1e-4, 1.25


def load_image(path: str) -> torch.Tensor:
  """PNG -> (1, 3, H, W) BGR minus the ImageNet means (Caffe preprocessing)."""
  rgb = np.asarray(Image.open(path).convert('RGB'), np.float32)
  bgr = rgb[..., ::-1] - np.asarray(BGR_MEAN, np.float32)
  return torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None]


def gram(x: torch.Tensor) -> torch.Tensor:
  """Unnormalised Gram F^T F of (1, C, H, W) features: (C, C)."""
  f = x.reshape(x.shape[1], -1)
  return f @ f.t()


class ContentLoss(nn.Module):
  """Σ(F−P)², kept in self.loss; passes its input through."""

  def __init__(self, target: torch.Tensor):
    super().__init__()
    self.target = target.detach()
    self.loss = torch.zeros(())

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    self.loss = torch.sum((x - self.target)**2)
    return x


class StyleLoss(nn.Module):
  """Σ(G−A)² / (4·9·(H·W)²), H, W the image size; passes its input through."""

  def __init__(self, target_features: torch.Tensor, image_hw: tuple[int, int]):
    super().__init__()
    self.target = gram(target_features).detach()
    self.denom = 4.0 * 9 * (image_hw[0] * image_hw[1])**2
    self.loss = torch.zeros(())

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    self.loss = torch.sum((gram(x) - self.target)**2) / self.denom
    return x


def tv_loss(x: torch.Tensor) -> torch.Tensor:
  """Keras example: Σ((Δx²+Δy²)^1.25) over the image cropped [:-1, :-1]."""
  a = (x[:, :, :-1, :-1] - x[:, :, 1:, :-1])**2
  b = (x[:, :, :-1, :-1] - x[:, :, :-1, 1:])**2
  return torch.sum((a + b)**TV_POWER)


def vgg_trunk(weights: str) -> nn.Sequential:
  """VGG19 convolutions up to block5_conv2 with max pooling, frozen."""
  npz = np.load(weights)
  layers = []
  for i, name in enumerate(CONV_LAYERS):
    if i and name.split('_')[0] != CONV_LAYERS[i - 1].split('_')[0]:
      layers.append(nn.MaxPool2d(2, 2))
    kernel = npz[f'{name}/kernel']  # (3, 3, in, out), HWIO
    conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    conv.bias.data = torch.from_numpy(npz[f'{name}/bias'])
    layers += [conv, nn.ReLU()]
  trunk = nn.Sequential(*layers).eval()
  trunk.requires_grad_(False)
  return trunk


def model_and_losses(trunk: nn.Sequential, content: torch.Tensor, style: torch.Tensor):
  """The tutorial's construction: walk the trunk, insert loss modules after
  the chosen ReLUs, stop after the last one."""
  model = nn.Sequential()
  content_losses, style_losses = [], []
  names = iter(CONV_LAYERS)
  name = None
  with torch.no_grad():
    for i, layer in enumerate(trunk):
      if isinstance(layer, nn.Conv2d):
        name = next(names)
      model.add_module(str(i) if not isinstance(layer, nn.ReLU) else f'relu_{name}', layer)
      if isinstance(layer, nn.ReLU) and name in CONTENT_LAYERS:
        loss = ContentLoss(model(content))
        model.add_module(f'content_loss_{name}', loss)
        content_losses.append(loss)
      if isinstance(layer, nn.ReLU) and name in STYLE_LAYERS:
        loss = StyleLoss(model(style), tuple(content.shape[2:]))
        model.add_module(f'style_loss_{name}', loss)
        style_losses.append(loss)
  return model, content_losses, style_losses


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--content', required=True)
  parser.add_argument('--style', required=True)
  parser.add_argument('--weights', required=True)
  parser.add_argument('--steps', type=int, default=50)
  parser.add_argument('--t0', type=float, required=True, help='process start, epoch s')
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--out', required=True)
  parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
  parser.add_argument('--tf32', action='store_true',
                      help='TF32 convolutions on a GPU (torch default); else float32')
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  torch.backends.cudnn.allow_tf32 = args.tf32
  torch.backends.cuda.matmul.allow_tf32 = False  # the Grams in float32, torch's default
  device = torch.device(args.device)

  content, style = load_image(args.content).to(device), load_image(args.style).to(device)
  model, content_losses, style_losses = model_and_losses(
      vgg_trunk(args.weights).to(device), content, style)
  img = content.clone().requires_grad_(True)
  optimizer = torch.optim.LBFGS([img], history_size=10, max_iter=1)
  losses, times, eval_s = [], [], []

  def objective() -> torch.Tensor:
    model(img)
    c = sum(l.loss for l in content_losses)
    s = sum(l.loss for l in style_losses) / len(style_losses)
    return CONTENT_WEIGHT * c + STYLE_WEIGHT * s + TV_WEIGHT * tv_loss(img)

  def closure() -> torch.Tensor:
    start = time.perf_counter()
    optimizer.zero_grad()
    loss = objective()
    loss.backward()
    losses.append(loss.item())  # loss of the current iterate, before this step
    eval_s.append(time.perf_counter() - start)  # after item(): the device has finished
    times.append(time.time() - args.t0)
    return loss

  setup_s = time.time() - args.t0
  for _ in range(args.steps):
    optimizer.step(closure)
  evaluations = len(eval_s)
  with torch.no_grad():  # the loss of the last iterate, which no step evaluates
    losses.append(objective().item())
    times.append(time.time() - args.t0)
  result = {'setup_s': setup_s, 'loss': losses, 'wall_s': times,
            'evaluations': evaluations,
            'steady_s_per_eval': statistics.median(eval_s[2:] or eval_s),
            'first_eval_s': eval_s[0], 'threads': torch.get_num_threads(),
            'torch_version': torch.__version__, 'device': str(device),
            'device_name': (torch.cuda.get_device_name(device) if device.type == 'cuda'
                            else 'cpu'),
            'tf32': args.tf32}
  with open(args.out, 'w') as f:
    json.dump(result, f)


if __name__ == '__main__':
  main()
