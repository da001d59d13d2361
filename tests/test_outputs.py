"""The loop's recorder: metrics lines, checkpoints, and the non-finite guard."""
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from jaxstyle import objective
from jaxstyle.app import checkpoint, outputs
from jaxstyle.errors import NumericalError
from jaxstyle.optimize import Progress

TERMS = {'loss': 3.0, 'content_loss': 1.0, 'style_loss': 2.0, 'tv_loss': 0.0,
         'grad_norm_content': 0.5, 'grad_norm_style': 4.0, 'grad_norm_tv': 0.0, 'image': 5.0}


def _config(**fields):
  config = default.get_config()
  config.update(dict(steps=10, log_every=1, save_every=0, checkpoint_every=1,
                     tensorboard=False, **fields))
  return config


def _progress(step, value=1.0):
  return Progress(step, jnp.full((1, 2, 2, 3), value), {'s': jnp.full((3,), value)})


def test_non_finite_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  began = time.time()
  recorder = outputs.Recorder(tmp_path, _config(), 'digest')
  for step in (0, 1, 2):
    recorder(_progress(step, float(step)), TERMS)
  with pytest.raises(NumericalError, match='step 3: style_loss not finite; last good checkpoint: '
                                           'step 2'):
    recorder(_progress(3, np.nan), {**TERMS, 'style_loss': np.nan})
  with pytest.raises(NumericalError, match='step 4: image not finite'):
    recorder(_progress(4, np.inf), {**TERMS, 'image': np.inf})
  recorder.close()
  with np.load(tmp_path / checkpoint.FILENAME) as f:
    assert int(f['step']) == 2 and np.all(f['leaf_000'] == 2.0)
  records = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records] == [0, 1, 2]
  assert records[0]['grad_norm_style'] == 4.0 and set(records[0]) == {
      'step', 'scale', *objective.TERMS, *objective.GRAD_NORMS, 'wall_s', 'time'}
  times = [r['time'] for r in records]
  assert began <= times[0] <= times[1] <= times[2] <= time.time()


def test_resumed_recorder_drops_metrics_after_the_checkpoint(tmp_path):
  lines = [json.dumps({'step': s, 'scale': 0, **{k: 1.0 for k in objective.TERMS}, 'wall_s': s})
           for s in range(6)]
  (tmp_path / 'metrics.jsonl').write_text('\n'.join(lines) + '\n')
  resumed = checkpoint.Checkpoint(3, None, None, 3.0)
  recorder = outputs.Recorder(tmp_path, _config(), 'digest', resumed)
  recorder(_progress(4), TERMS)
  recorder.close()
  records = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records] == [0, 1, 2, 3, 4]
  assert records[-1]['wall_s'] >= 3.0
  assert (tmp_path / 'loss_curve.png').stat().st_size > 0


def test_scales_count_steps_on_and_checkpoint_at_their_ends(tmp_path):
  config = _config()
  config.log_every = config.checkpoint_every = 0
  recorder = outputs.Recorder(tmp_path, config, 'digest', steps=5)
  for scale, first, last, local_steps in ((0, 0, 2, (0, 2)), (1, 2, 5, (0, 3))):
    recorder.begin_scale(scale, first, last)
    for step in local_steps:
      recorder(_progress(step), TERMS)
    with np.load(tmp_path / checkpoint.FILENAME) as f:
      assert (int(f['step']), int(f['scale'])) == (last, scale)
  recorder.close()
  records = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [(r['scale'], r['step']) for r in records] == [(0, 0), (0, 2), (1, 2), (1, 5)]
  resumed = checkpoint.Checkpoint(2, None, None, 1.0, scale=0)
  outputs.Recorder(tmp_path, _config(), 'digest', resumed, steps=5).close()
  records = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [(r['scale'], r['step']) for r in records] == [(0, 0), (0, 2)]


def test_tensorboard_events_are_written_without_importing_torch(tmp_path):
  """A stand-in torch module on the path counts its imports: none while the
  recorder loads tensorboardX and writes events, and a later import still works."""
  fake = tmp_path / 'fake'
  fake.mkdir()
  (fake / 'torch.py').write_text('import os\nIMPORTED = os.environ["MARK"]\n'
                                 'open(IMPORTED, "a").write("imported\\n")\n')
  mark, workdir = tmp_path / 'mark', tmp_path / 'run'
  workdir.mkdir()
  script = textwrap.dedent(f"""
      import pathlib
      import jax.numpy as jnp
      from configs import default
      from jaxstyle.app import outputs
      from jaxstyle.optimize import Progress
      config = default.get_config()
      config.update(dict(steps=2, log_every=1, save_every=0, checkpoint_every=0,
                         tensorboard=True))
      recorder = outputs.Recorder(pathlib.Path({str(workdir)!r}), config, 'digest')
      recorder(Progress(0, jnp.zeros((1, 2, 2, 3)), {{}}), {TERMS!r})
      recorder.close()
      assert not pathlib.Path({str(mark)!r}).exists(), 'tensorboardX imported torch'
      import torch
      print(torch.IMPORTED)
      """)
  root = pathlib.Path(__file__).parent.parent
  env = {**os.environ, 'MARK': str(mark),
         'PYTHONPATH': os.pathsep.join([str(fake), str(root)])}
  result = subprocess.run([sys.executable, '-c', script], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == str(mark) and mark.read_text() == 'imported\n'
  events = list((workdir / 'tensorboard').iterdir())
  assert len(events) == 1 and events[0].stat().st_size > 0
