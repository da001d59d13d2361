"""The PyTorch implementation with torch.optim.LBFGS, as far as its text specifies it.

python -m jaxstyle.main --config configs/seeds/pytorch.py --workdir=runs/pytorch

White-noise start, average pooling, the paper's losses and layers, and
torch.optim.LBFGS's semantics: step length 1 along the L-BFGS direction with
no line search, history 100, 20 iterations per optimizer.step(). torch keeps
its history across step() calls, so the solve is one continuous L-BFGS of
20 x 25 = 500 iterations. What the text leaves open (α/β, image size, step
count, noise) is chosen in docs/faithfulness.md.
"""
import ml_collections

from configs import gatys2015

STEP_CALLS = 25  # optimizer.step(closure) calls, 20 iterations each (max_iter=20)


def get_config() -> ml_collections.ConfigDict:
  config = gatys2015.get_config()  # noise start, avg pooling, paper's losses, α/β = 1e-3
  config.init = 'uniform'
  config.optimizer = 'lbfgs'
  config.optim.lbfgs = dict(history_size=100, linesearch='none', max_linesearch=20)
  config.steps = 20 * STEP_CALLS
  return config
