"""Each style loss against an independent float64 numpy/scipy reference on the
same features; gradients by finite differences; zero at F = S; invariance to
a permutation of positions; masks as weights of positions."""
import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import pytest
import scipy.linalg

from jaxstyle import mrf, quantiles, style

jax.config.update('jax_enable_x64', False)
H, W, C = 5, 6, 4
KINDS = ('mean_std', 'w2', 'histogram', 'sliced', 'mrf')
KEY = jax.random.key(3)


def _features(seed, h=H, w=W, c=C):
  """(1, h, w, c) activations, ReLU-like: non-negative with some zeros."""
  f = np.random.default_rng(seed).normal(1.0, 1.0, (1, h, w, c))
  return np.maximum(f, 0.0).astype(np.float32)


def _distance(kind, f, s, mask=None, key=KEY):
  loss = style.KINDS[kind]
  return loss.distance(jnp.asarray(f), loss.target(jnp.asarray(s)), mask, key, 'gatys', None)


def _ref_mean_std(f, s):
  f, s = (a.reshape(-1, a.shape[-1]).astype(np.float64) for a in (f, s))
  sd = lambda a: np.sqrt(a.var(axis=0) + style.MEAN_STD_EPS)
  return np.mean((f.mean(0) - s.mean(0)) ** 2 + (sd(f) - sd(s)) ** 2)


def _ref_w2(f, s):
  f, s = (a.reshape(-1, a.shape[-1]).astype(np.float64) for a in (f, s))
  cf, cs = (np.cov(a, rowvar=False, bias=True) for a in (f, s))
  root = scipy.linalg.sqrtm(cs)
  cross = scipy.linalg.sqrtm(root @ cf @ root)
  return (np.sum((f.mean(0) - s.mean(0)) ** 2)
          + np.trace(cf + cs - 2 * np.real(cross))) / f.shape[1]


def _ref_histogram(f, s):
  f, s = (a.reshape(-1, a.shape[-1]).astype(np.float64) for a in (f, s))
  m, m_s = f.shape[0], s.shape[0]
  total = 0.0
  for c in range(f.shape[1]):
    target = np.interp((np.arange(m) + 0.5) / m, (np.arange(m_s) + 0.5) / m_s,
                       np.sort(s[:, c]))
    total += np.mean((np.sort(f[:, c]) - target) ** 2)
  return total / f.shape[1]


def _ref_sliced(f, s):
  d = np.asarray(quantiles.directions(KEY, f.shape[-1], f.shape[-1]), np.float64)
  flat = lambda a: a.reshape(-1, a.shape[-1]).astype(np.float64) @ d
  return _ref_histogram(flat(f), flat(s))


def _ref_mrf(f, s):
  def patches(a):
    _, h, w, c = a.shape
    out = [a[0, i:i + 3, j:j + 3, :].transpose(2, 0, 1).reshape(-1)
           for i in range(h - 2) for j in range(w - 2)]
    return np.asarray(out, np.float64)
  pf, ps = patches(f), patches(s)
  ncc = (pf @ ps.T) / np.linalg.norm(ps, axis=1)[None, :]
  nearest = ps[np.argmax(ncc, axis=1)]
  return np.sum((pf - nearest) ** 2) / pf.size


REFERENCES = {'mean_std': _ref_mean_std, 'w2': _ref_w2, 'histogram': _ref_histogram,
              'sliced': _ref_sliced, 'mrf': _ref_mrf}


@pytest.mark.parametrize('kind', KINDS)
def test_matches_the_float64_reference(kind):
  f, s = _features(0), _features(1, h=6, w=7)  # the style of another size
  got = float(_distance(kind, f, s))
  want = REFERENCES[kind](f, s)
  assert got == pytest.approx(want, rel=1e-4), (got, want)


def test_mrf_patches_are_channel_major_like_the_reference():
  """conv_general_dilated_patches orders a patch's values channel by channel;
  the reference's transpose(2, 0, 1) assumes that order, and the target's
  patches must follow it too, or the nearest patch is the wrong one."""
  f = _features(2)
  p = np.asarray(mrf.patches(jnp.asarray(f)))
  np.testing.assert_array_equal(p[0], f[0, :3, :3].transpose(2, 0, 1).reshape(-1))


@pytest.mark.parametrize('kind', KINDS)
def test_zero_when_the_output_is_the_style(kind):
  s = _features(1)
  scale = float(np.mean(s ** 2))
  assert abs(float(_distance(kind, s, s))) <= 1e-4 * scale


@pytest.mark.parametrize('kind', ('mean_std', 'w2', 'histogram', 'sliced'))
def test_invariant_to_a_permutation_of_positions(kind):
  f, s = _features(0), _features(1)
  flat = f.reshape(-1, C)
  shuffled = flat[np.random.default_rng(5).permutation(len(flat))].reshape(f.shape)
  assert float(_distance(kind, shuffled, s)) == pytest.approx(float(_distance(kind, f, s)),
                                                              rel=1e-5)


@pytest.mark.parametrize('kind', ('mean_std', 'w2', 'histogram', 'sliced'))
def test_a_binary_mask_is_the_loss_of_the_masked_positions(kind):
  f, s = _features(0), _features(1)
  mask = np.zeros((H, W), np.float32)
  mask[:, :3] = 1.0
  inside = f[:, :, :3, :]
  assert float(_distance(kind, f, s, jnp.asarray(mask))) == pytest.approx(
      float(_distance(kind, inside, s)), rel=1e-5)


@pytest.mark.parametrize('kind', KINDS)
def test_gradient_matches_finite_differences(kind):
  jax.config.update('jax_enable_x64', True)
  try:
    # Distinct values: sorting and nearest patches are then locally fixed.
    f = np.random.default_rng(0).uniform(0.5, 2.0, (1, 4, 5, 3))
    s = np.random.default_rng(1).uniform(0.5, 2.0, (1, 5, 5, 3))
    loss = style.KINDS[kind]
    target = loss.target(jnp.asarray(s))
    fun = lambda f: loss.distance(f, target, None, KEY, 'gatys', None)
    check_grads(fun, (jnp.asarray(f),), order=1, modes=('rev',), atol=1e-4, rtol=1e-4)
  finally:
    jax.config.update('jax_enable_x64', False)


@pytest.mark.filterwarnings('ignore::scipy.linalg.LinAlgWarning')  # the reference's singular sqrtm
def test_w2_gradient_is_finite_at_rank_deficient_covariances():
  f = _features(0)
  f[..., 1] = 0.0  # a dead channel: a zero row and column in the covariance
  s = _features(1)
  s[..., 2] = 0.0
  loss = style.KINDS['w2']
  target = loss.target(jnp.asarray(s))
  grad = jax.grad(lambda f: loss.distance(f, target, None, None, 'gatys', None))(jnp.asarray(f))
  assert np.isfinite(np.asarray(grad)).all()
  assert float(_distance('w2', f, s)) == pytest.approx(_ref_w2(f, s), rel=1e-3)


def test_trace_sqrt_of_a_diagonal_matrix():
  m = jnp.diag(jnp.array([4.0, 9.0, 0.0]))
  assert float(style.trace_sqrt(m)) == pytest.approx(5.0)
  grad = jax.grad(style.trace_sqrt)(m)
  np.testing.assert_allclose(np.diag(grad)[:2], [0.25, 1 / 6], rtol=1e-5)
  assert np.isfinite(np.asarray(grad)).all()


def test_nearest_patches_in_chunks_equal_one_pass():
  rng = np.random.default_rng(0)
  out, rows = rng.normal(size=(7, 5)), rng.normal(size=(11, 5))
  one = mrf.nearest_patches(jnp.asarray(out), jnp.asarray(rows), chunk=64)
  chunked = mrf.nearest_patches(jnp.asarray(out), jnp.asarray(rows), chunk=3)
  np.testing.assert_array_equal(one, chunked)
  np.testing.assert_array_equal(one, np.argmax(out @ rows.T, axis=1))


def test_sliced_is_deterministic_for_a_key_and_changes_with_it():
  f, s = _features(0), _features(1)
  a, b = float(_distance('sliced', f, s)), float(_distance('sliced', f, s))
  assert a == b
  assert float(_distance('sliced', f, s, key=jax.random.key(4))) != a


def test_w2_with_fewer_positions_than_channels():
  """M < C: the M x M side of the decomposition, against the same reference."""
  f, s = _features(0, h=2, w=3, c=8), _features(1, h=4, w=4, c=8)
  assert float(_distance('w2', f, s)) == pytest.approx(_ref_w2(f, s), rel=1e-4)


@pytest.mark.parametrize('kind', ('gram', 'mean_std', 'w2', 'mrf'))
def test_sums_of_disjoint_positions_add_up_to_the_distance(kind):
  """The sums over the rows above and below a cut, each as weights that
  select them, add up to the sums of all positions, whose from_sums is the
  distance; 'mrf' weights each patch by its centre."""
  loss = style.KINDS[kind]
  f, s = jnp.asarray(_features(0, h=9, w=8)), jnp.asarray(_features(1, h=6, w=7))
  target = loss.target(s)
  mask = None if kind == 'mrf' else jnp.asarray(
      np.random.default_rng(2).uniform(0.2, 1.0, (9, 8)).astype(np.float32))
  whole = mask if mask is not None else jnp.ones((9, 8))
  above = whole * (jnp.arange(9) < 4)[:, None]
  parts = [loss.sums(f, target, w) for w in (above, whole - above)]
  added = jax.tree.map(jnp.add, *parts)
  value = loss.from_sums(added, target, 'gatys', None, (9, 8))
  assert float(value) == pytest.approx(float(loss.distance(f, target, mask, None, 'gatys', None)),
                                       rel=1e-5)
