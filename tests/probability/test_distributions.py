"""Distributions against scipy.stats, distrax and closed forms; transforms; extremes; shapes."""

import chex
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from scipy import special, stats

import gbl_jax as gbl

RNG = np.random.default_rng(0)
N, K, D = 6, 3, 2


def _f32(x):
    return jnp.asarray(x, jnp.float32)


# ---- log_prob against scipy at random parameters -------------------------------------------


def test_normal_and_laplace_match_scipy():
    loc, scale, y = RNG.normal(size=(N, D)), RNG.uniform(0.1, 3, (N, D)), RNG.normal(size=(N, D))
    np.testing.assert_allclose(
        gbl.Normal(_f32(loc), _f32(scale)).log_prob(_f32(y)),
        stats.norm.logpdf(y, loc, scale),
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        gbl.Laplace(_f32(loc), _f32(scale)).log_prob(_f32(y)),
        stats.laplace.logpdf(y, loc, scale),
        rtol=1e-5,
        atol=1e-5,
    )


def test_bernoulli_and_categorical_match_scipy():
    z, yb = RNG.normal(0, 3, N), RNG.integers(0, 2, N)
    np.testing.assert_allclose(
        gbl.Bernoulli(_f32(z)).log_prob(_f32(yb)),
        stats.bernoulli.logpmf(yb, special.expit(z)),
        rtol=1e-5,
        atol=1e-6,
    )
    logits, yc = RNG.normal(0, 3, (N, K)), RNG.integers(0, K, N)
    expected = special.log_softmax(logits, axis=-1)[np.arange(N), yc]
    np.testing.assert_allclose(
        gbl.Categorical(_f32(logits)).log_prob(jnp.asarray(yc)), expected, rtol=1e-5, atol=1e-6
    )


def _random_tril(n, d):
    tril = np.tril(RNG.normal(size=(n, d, d)))
    idx = np.arange(d)
    tril[:, idx, idx] = RNG.uniform(0.3, 2, (n, d))
    return tril


# ---- moments, entropy, sampling ---------------------------------------------------------------


def test_moments_and_entropy_match_scipy():
    loc, scale = RNG.normal(size=4), RNG.uniform(0.1, 3, 4)
    n, lp = gbl.Normal(_f32(loc), _f32(scale)), gbl.Laplace(_f32(loc), _f32(scale))
    np.testing.assert_allclose(n.variance(), stats.norm.var(loc, scale), rtol=1e-5)
    np.testing.assert_allclose(n.entropy(), stats.norm.entropy(loc, scale), rtol=1e-5)
    np.testing.assert_allclose(lp.variance(), stats.laplace.var(loc, scale), rtol=1e-5)
    np.testing.assert_allclose(lp.entropy(), stats.laplace.entropy(loc, scale), rtol=1e-5)
    z = RNG.normal(0, 3, 4)
    b = gbl.Bernoulli(_f32(z))
    np.testing.assert_allclose(b.mean(), special.expit(z), rtol=1e-5)
    np.testing.assert_allclose(b.variance(), stats.bernoulli.var(special.expit(z)), rtol=1e-4)
    np.testing.assert_allclose(b.entropy(), stats.bernoulli.entropy(special.expit(z)), rtol=1e-4)
    logits = np.array([[0.0, 1.0, -np.inf], [2.0, -1.0, 0.5]])
    c = gbl.Categorical(_f32(logits))
    np.testing.assert_allclose(
        c.entropy(), [stats.entropy(special.softmax(r)) for r in logits], rtol=1e-5
    )
    np.testing.assert_array_equal(c.mode(), [1, 0])
    tril = _random_tril(2, 3)
    mvn = gbl.MultivariateNormalTriL(_f32(np.zeros((2, 3))), _f32(tril))
    np.testing.assert_allclose(
        mvn.entropy(),
        [stats.multivariate_normal(np.zeros(3), t @ t.T).entropy() for t in tril],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        mvn.variance(), np.diagonal(tril @ np.swapaxes(tril, 1, 2), 0, 1, 2), rtol=1e-5
    )


def test_samples_have_the_stated_moments():
    key = jax.random.PRNGKey(1)
    m = 200_000
    dists = {
        "normal": gbl.Normal(_f32([0.5, -1.0]), _f32([2.0, 0.3])),
        "laplace": gbl.Laplace(_f32([0.5, -1.0]), _f32([2.0, 0.3])),
        "bernoulli": gbl.Bernoulli(_f32([-1.0, 2.0])),
        "mixture": gbl.MixtureNormal(
            _f32([[0.0, 1.0]]), _f32([[[-2.0], [3.0]]]), _f32([[[0.5], [1.0]]])
        ),
        "mvn": gbl.MultivariateNormalTriL(_f32([1.0, -1.0]), _f32([[1.0, 0.0], [0.8, 0.5]])),
    }
    for name, d in dists.items():
        s = d.sample(key, (m,))
        assert s.shape == (m,) + d.batch_shape + tuple(d.event_shape), name
        se = np.sqrt(np.asarray(d.variance()) / m)
        assert np.all(np.abs(s.mean(0) - d.mean()) < 5 * se), name
        np.testing.assert_allclose(s.var(0), d.variance(), rtol=0.03, err_msg=name)
    c = gbl.Categorical(_f32([[0.0, 1.0, -np.inf]]))
    counts = np.bincount(np.asarray(c.sample(key, (m,))).ravel(), minlength=3) / m
    np.testing.assert_allclose(counts, np.asarray(c.probs())[0], atol=0.005)
    assert counts[2] == 0


# ---- jit, vmap, grad ----------------------------------------------------------------------------


def _cases():
    y_int = jnp.asarray(RNG.integers(0, K, N))
    return {
        "normal": (
            gbl.Normal(_f32(RNG.normal(size=N)), _f32(RNG.uniform(0.5, 2, N))),
            _f32(RNG.normal(size=N)),
            lambda d: distrax.Normal(d.loc, d.scale),
        ),
        "laplace": (
            gbl.Laplace(_f32(RNG.normal(size=N)), _f32(RNG.uniform(0.5, 2, N))),
            _f32(RNG.normal(size=N)),
            lambda d: distrax.Laplace(d.loc, d.scale),
        ),
        "bernoulli": (
            gbl.Bernoulli(_f32(RNG.normal(size=N))),
            _f32(RNG.integers(0, 2, N)),
            lambda d: distrax.Bernoulli(logits=d.logits),
        ),
        "categorical": (
            gbl.Categorical(_f32(RNG.normal(size=(N, K)))),
            y_int,
            lambda d: distrax.Categorical(logits=d.logits),
        ),
        "mixture": (
            gbl.MixtureNormal(
                _f32(RNG.normal(size=(N, K))),
                _f32(RNG.normal(size=(N, K, D))),
                _f32(RNG.uniform(0.5, 2, (N, K, D))),
            ),
            _f32(RNG.normal(size=(N, D))),
            lambda d: distrax.MixtureSameFamily(
                distrax.Categorical(logits=d.logits), distrax.MultivariateNormalDiag(d.loc, d.scale)
            ),
        ),
        "mvn": (
            gbl.MultivariateNormalTriL(_f32(RNG.normal(size=(N, D))), _f32(_random_tril(N, D))),
            _f32(RNG.normal(size=(N, D))),
            lambda d: distrax.MultivariateNormalTri(d.loc, d.scale_tril),
        ),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_jit_vmap_grad_agree_with_distrax(name):
    dist, y, to_distrax = _cases()[name]
    eager = dist.log_prob(y)
    np.testing.assert_allclose(
        jax.jit(lambda d, v: d.log_prob(v))(dist, y), eager, rtol=1e-5, atol=1e-5
    )
    per_example = jax.vmap(lambda d, v: d.log_prob(v[None])[0])(
        jax.tree.map(lambda p: p[:, None], dist), y
    )
    np.testing.assert_allclose(per_example, eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(eager, to_distrax(dist).log_prob(y), rtol=1e-4, atol=1e-4)
    ours = jax.grad(lambda d: gbl.nll(d, y))(dist)
    theirs = jax.grad(lambda d: gbl.nll(to_distrax(d), y))(dist)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_distributions_are_pytrees():
    d = gbl.MixtureNormal(jnp.zeros((2, 3)), jnp.zeros((2, 3, 1)), jnp.ones((2, 3, 1)))
    leaves, treedef = jax.tree.flatten(d)
    assert [leaf.shape for leaf in leaves] == [(2, 3), (2, 3, 1), (2, 3, 1)]
    doubled = jax.tree.map(lambda a: 2 * a, d)
    assert isinstance(doubled, gbl.MixtureNormal)
    np.testing.assert_array_equal(doubled.scale, 2 * np.ones((2, 3, 1)))
    out = jax.jit(lambda x: gbl.Normal(x, jnp.ones_like(x)))(jnp.zeros(3))
    assert isinstance(out, gbl.Normal) and out.loc.shape == (3,)


# ---- extreme values -------------------------------------------------------------------------------


def _bernoulli_log_prob_and_grad(z, y):
    return gbl.Bernoulli(z).log_prob(y), jax.grad(lambda t: gbl.Bernoulli(t).log_prob(y).sum())(z)


class TestBernoulliExtremes(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_extreme_logits(self):
        z, y = (a.ravel() for a in np.meshgrid([1e4, -1e4, 50.0, -50.0, 0.0], [0.0, 1.0]))
        lp, grad = self.variant(_bernoulli_log_prob_and_grad)(_f32(z), _f32(y))
        chex.assert_tree_all_finite((lp, grad))
        np.testing.assert_allclose(-lp, np.logaddexp(0.0, np.where(y == 0, z, -z)), rtol=1e-6)
        np.testing.assert_allclose(grad, y - special.expit(z), atol=1e-7)

    @chex.variants(with_jit=True, without_jit=True)
    def test_infinite_logits_are_exact(self):
        z = _f32([np.inf, -np.inf, 3e38, -3e38])
        right, wrong = _f32([1.0, 0.0, 1.0, 0.0]), _f32([0.0, 1.0, 0.0, 1.0])
        lp, grad = self.variant(_bernoulli_log_prob_and_grad)(z, right)
        np.testing.assert_array_equal(lp, [0.0, 0.0, 0.0, 0.0])
        np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0, 0.0])  # y - sigmoid(z)
        lp, grad = self.variant(_bernoulli_log_prob_and_grad)(z, wrong)
        np.testing.assert_array_equal(lp, _f32([-np.inf, -np.inf, -3e38, -3e38]))
        np.testing.assert_array_equal(grad, [-1.0, 1.0, -1.0, 1.0])


def test_bernoulli_infinite_logits_pass_validate_and_nan_does_not():
    d = gbl.Bernoulli(_f32([np.inf, -np.inf]))
    gbl.validate(d, _f32([1.0, 0.0]))
    np.testing.assert_array_equal(d.entropy(), [0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        gbl.validate(gbl.Bernoulli(_f32([np.nan, 0.0])))


def test_categorical_extreme_logits():
    logits = _f32([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]])
    y = jnp.asarray([1, 2, 0])
    value = -gbl.Categorical(logits).log_prob(y)
    np.testing.assert_allclose(value, [2e4, 0.0, np.log(2.0)], rtol=1e-6)
    grad = jax.grad(lambda z: -gbl.Categorical(z).log_prob(y).sum())(logits)
    np.testing.assert_allclose(grad, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-6)


def test_categorical_positive_infinite_logits_are_the_limit():
    """softmax -> uniform over the +inf classes: log p 0 (or -log 2 for two), -inf elsewhere; the
    gradient is its limit one_hot(y) - p, never NaN (as Bernoulli at z = +-inf)."""
    logits = _f32(
        [[np.inf, 0.0, 0.0], [np.inf, 0.0, 0.0], [np.inf, np.inf, -np.inf], [1.0, 2.0, -np.inf]]
    )
    y = jnp.asarray([0, 1, 0, 1])
    limit = np.array([[1, 0, 0], [1, 0, 0], [0.5, 0.5, 0], special.softmax([1.0, 2.0, -np.inf])])
    d = gbl.Categorical(logits)
    np.testing.assert_array_equal(d.log_prob(y)[:3], _f32([0.0, -np.inf, -np.log(2.0)]))
    np.testing.assert_allclose(d.log_prob(y)[3], np.log(limit[3, 1]), rtol=1e-6)
    grad = jax.jit(jax.grad(lambda z: d.__class__(z).log_prob(y).sum()))(logits)
    np.testing.assert_allclose(grad, np.eye(3)[[0, 1, 0, 1]] - limit, atol=1e-6)
    np.testing.assert_allclose(d.probs(), limit, atol=1e-7)
    np.testing.assert_allclose(
        d.entropy(), [0.0, 0.0, np.log(2.0), stats.entropy(limit[3])], rtol=1e-6
    )
    gbl.validate(d, y)  # exact now, like Bernoulli's infinite logits
    np.testing.assert_array_equal(d.mode(), [0, 0, 0, 1])


def _loc_scale_value_and_grad(cls):
    """(log p summed per row, its gradients w.r.t. loc and scale)."""
    return lambda y, loc, s: (
        cls(loc, s).log_prob(y).sum(-1),
        jax.grad(lambda m, t: cls(m, t).log_prob(y).sum(), argnums=(0, 1))(loc, s),
    )


_LOC_SCALE_VALUE_AND_GRAD = {
    "normal": _loc_scale_value_and_grad(gbl.Normal),
    "laplace": _loc_scale_value_and_grad(gbl.Laplace),
}


class TestLocScaleExtremes(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("normal", "laplace")
    def test_gradients_at_extreme_scales(self, family):
        scale = np.float32([1e-30, 1e-20, 1e-10, 1.0, 1e10, 1e20, 1e30])[:, None]  # one per row
        y = _f32(np.array([0.0, 0.5, -2.0]) * scale)
        value, (g_loc, g_scale) = self.variant(_LOC_SCALE_VALUE_AND_GRAD[family])(
            y, jnp.zeros(y.shape), jnp.broadcast_to(_f32(scale), y.shape)
        )
        zf = np.asarray(y, np.float64) / scale
        if family == "normal":
            exp_value = stats.norm.logpdf(zf).sum(-1) - 3 * np.log(scale[:, 0])
            exp_loc, exp_scale = zf / scale, (zf**2 - 1) / scale
        else:
            exp_value = stats.laplace.logpdf(zf).sum(-1) - 3 * np.log(scale[:, 0])
            exp_loc, exp_scale = np.sign(zf) / scale, (np.abs(zf) - 1) / scale
        chex.assert_tree_all_finite((value, g_loc, g_scale))
        np.testing.assert_allclose(value, exp_value, rtol=1e-5)
        np.testing.assert_allclose(g_loc, exp_loc, rtol=1e-5)
        np.testing.assert_allclose(g_scale, exp_scale, rtol=1e-5)


def test_distrax_gives_nan_where_we_do_not():
    """The motivating failure: autodiff through (y - loc) / scale squares the scale."""
    g = jax.grad(lambda s: distrax.Normal(0.0, s).log_prob(0.0))(jnp.float32(1e-25))
    ours = jax.grad(lambda s: gbl.Normal(0.0, s).log_prob(0.0))(jnp.float32(1e-25))
    assert not np.isfinite(g)
    np.testing.assert_allclose(ours, -1e25, rtol=1e-6)


# ---- domains, validate, shapes ---------------------------------------------------------------


def test_out_of_range_labels_give_minus_inf():
    lp = gbl.Categorical(jnp.zeros((4, 3))).log_prob(jnp.asarray([0, 3, -1, 2]))
    lp = np.asarray(lp)
    assert lp[1] == -np.inf and lp[2] == -np.inf and np.all(np.isfinite(lp[[0, 3]]))
    lb = gbl.Bernoulli(jnp.zeros(3)).log_prob(_f32([1.0, 2.0, -1.0]))
    assert np.isfinite(lb[0]) and lb[1] == -np.inf and lb[2] == -np.inf


def test_validate_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        gbl.validate(gbl.Categorical(jnp.zeros((2, 3))), jnp.asarray([0, 3]))
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        gbl.validate(gbl.Normal(jnp.zeros(2), _f32([1.0, 0.0])))
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        gbl.validate(
            gbl.MixtureNormal(jnp.zeros((1, 2)), jnp.zeros((1, 2, 1)), -jnp.ones((1, 2, 1)))
        )
    with pytest.raises(ValueError, match="not lower triangular"):
        gbl.validate(gbl.MultivariateNormalTriL(jnp.zeros(2), _f32([[1.0, 0.5], [0.0, 1.0]])))
    with pytest.raises(ValueError, match="singular"):
        gbl.validate(gbl.MultivariateNormalTriL(jnp.zeros(2), _f32([[1.0, 0.0], [0.3, 0.0]])))
    with pytest.raises(ValueError, match="must be 0 or 1"):
        gbl.validate(gbl.Bernoulli(jnp.zeros(2)), _f32([0.0, 0.5]))
    with pytest.raises(ValueError, match="integer dtype"):
        gbl.validate(gbl.Categorical(jnp.zeros((2, 3))), _f32([0.0, 1.0]))
    with pytest.raises(TypeError, match="eager"):
        jax.jit(lambda s: gbl.validate(gbl.Normal(0.0, s)))(1.0)
    gbl.validate(gbl.Normal(jnp.zeros(2), 1.0), jnp.zeros(2))  # good input passes


@pytest.mark.parametrize(
    "make, y",
    [
        (lambda: gbl.Normal(jnp.zeros((5, 1)), 1.0), jnp.zeros(5)),
        (lambda: gbl.Laplace(jnp.zeros(5), 1.0), jnp.zeros((5, 1))),
        (lambda: gbl.Bernoulli(jnp.zeros((5, 1))), jnp.zeros(5)),
        (lambda: gbl.Categorical(jnp.zeros((5, 3))), jnp.zeros((5, 3), jnp.int32)),
        (
            lambda: gbl.MixtureNormal(jnp.zeros((5, 3)), jnp.zeros((5, 3, 2)), 1.0),
            jnp.zeros((5, 1)),
        ),
        (lambda: gbl.MultivariateNormalTriL(jnp.zeros((5, 2)), jnp.eye(2)), jnp.zeros((5, 3))),
    ],
)
def test_shape_mismatch_raises_at_trace_time(make, y):
    with pytest.raises(ValueError, match="shape") as err:
        jax.jit(lambda v: gbl.nll(make(), v))(y)
    assert str(list(y.shape)).replace(" ", "") in str(err.value).replace(" ", "")


@pytest.mark.parametrize(
    "make",
    [
        lambda: gbl.Normal(jnp.zeros((5, 2)), jnp.ones((5, 1))),
        lambda: gbl.MixtureNormal(jnp.zeros((5, 3)), jnp.zeros((5, 2, 2)), 1.0),
        lambda: gbl.MultivariateNormalTriL(jnp.zeros((5, 2)), jnp.zeros((5, 3, 3))),
    ],
)
def test_inconsistent_parameters_raise(make):
    with pytest.raises(ValueError, match="shape"):
        make().log_prob(jnp.zeros((5, 2)))


def test_broadcast_params_spell_out_scalars_dtypes_and_the_shared_factor():
    loc, scale = gbl.Laplace(jnp.arange(6.0).reshape(3, 2), 2).broadcast_params()
    assert loc.shape == scale.shape == (3, 2) and scale.dtype == jnp.float32
    np.testing.assert_array_equal(scale, np.full((3, 2), 2.0))
    logits, m_loc, m_scale = gbl.MixtureNormal(
        jnp.zeros((4, 3)), jnp.ones((4, 3, 2)), 0.5
    ).broadcast_params()
    assert (logits.shape, m_loc.shape, m_scale.shape) == ((4, 3), (4, 3, 2), (4, 3, 2))
    np.testing.assert_array_equal(m_scale, np.full((4, 3, 2), 0.5))
    # the shared [D, D] factor, its upper triangle dropped, once per batch element
    factor = _f32([[1.0, 9.0], [0.5, 2.0]])
    mvn_loc, tril = gbl.MultivariateNormalTriL(jnp.zeros((3, 2)), factor).broadcast_params()
    assert mvn_loc.shape == (3, 2) and tril.shape == (3, 2, 2)
    np.testing.assert_array_equal(tril, np.broadcast_to(np.tril(np.asarray(factor)), (3, 2, 2)))
    with pytest.raises(ValueError, match=r"loc \[3, 2\], scale_tril \[3, 3\]"):
        gbl.MultivariateNormalTriL(jnp.zeros((3, 2)), jnp.eye(3)).broadcast_params()


def test_float_labels_for_categorical_raise():
    with pytest.raises(ValueError, match="integer dtype"):
        gbl.Categorical(jnp.zeros((4, 3))).log_prob(jnp.zeros(4))


def test_zero_scale_is_a_point_mass_not_nan():
    y = _f32([0.0, 1.0])
    lp = gbl.Normal(jnp.zeros(2), jnp.zeros(2)).log_prob(y)
    np.testing.assert_array_equal(lp, [np.inf, -np.inf])
    assert np.isnan(gbl.Laplace(0.0, -1.0).log_prob(jnp.float32(0.0)))
    g = jax.grad(lambda s: gbl.Normal(jnp.zeros(2), s).log_prob(y).sum())(_f32([0.0, 2.0]))
    assert np.all(np.isfinite(g))


# ---- properties (hypothesis) ---------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_logit = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(z=_logit, y=st.sampled_from([0.0, 1.0]))
def test_property_sigmoid_nll_gradient_is_sigmoid_minus_y(z, y):
    grad = jax.grad(lambda t: -gbl.Bernoulli(t).log_prob(jnp.float32(y)))(jnp.float32(z))
    np.testing.assert_allclose(
        grad, special.expit(np.float64(z)) - y, atol=1e-6
    )  # a few float32 ulps


@settings(max_examples=40, deadline=None)
@given(
    logits=st.lists(_logit, min_size=2, max_size=5),
    shift=st.floats(-100, 100, width=32),
    label=st.integers(0, 4),
)
def test_property_softmax_is_shift_invariant_and_normalized(logits, shift, label):
    z = jnp.asarray([logits], jnp.float32)
    label = jnp.asarray([label % len(logits)])
    lp = gbl.Categorical(z).log_prob(label)
    np.testing.assert_allclose(
        gbl.Categorical(z + shift).log_prob(label), lp, atol=1e-2 + 1e-6 * abs(float(lp[0]))
    )
    all_lp = jnp.stack(
        [gbl.Categorical(z).log_prob(jnp.asarray([k]))[0] for k in range(len(logits))]
    )
    np.testing.assert_allclose(float(jax.nn.logsumexp(all_lp)), 0.0, atol=1e-5)
    assert np.isfinite(float(lp[0]))


@settings(max_examples=40, deadline=None)
@given(
    loc=st.floats(-1e3, 1e3, width=32), log10_scale=st.floats(-30, 30), z=st.floats(-3, 3, width=32)
)
def test_property_normal_matches_scipy_across_scales(loc, log10_scale, z):
    scale = np.float32(10.0**log10_scale)
    y = np.float32(loc + z * scale)
    if not (np.isfinite(y) and scale > 0):
        return
    got = gbl.Normal(jnp.float32(loc), jnp.float32(scale)).log_prob(jnp.float32(y))
    zf = (np.float64(y) - np.float64(np.float32(loc))) / np.float64(scale)
    np.testing.assert_allclose(
        got, stats.norm.logpdf(zf) - np.log(np.float64(scale)), rtol=1e-4, atol=1e-4
    )


def test_samples_share_the_probability_of_several_infinite_logits():
    draws = gbl.Categorical(jnp.array([jnp.inf, jnp.inf, 0.0])).sample(
        jax.random.PRNGKey(0), (4000,)
    )
    counts = np.bincount(np.asarray(draws), minlength=3) / 4000
    np.testing.assert_allclose(counts, [0.5, 0.5, 0.0], atol=0.03)  # 4000 draws: sd 0.008
