"""MixtureNormal: against an independent float64 sum, at extreme targets and scales (no NaN
gradients; one component is exactly a Normal), and to second order against plain autodiff."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized
from scipy import special, stats

import gbl_jax as gbl

RNG = np.random.default_rng(1)
N, K, D = 6, 3, 2


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def _assert_no_nan(tree):
    for leaf in jax.tree.leaves(tree):
        assert not np.any(np.isnan(leaf)), tree


def test_mixture_matches_independent_float64_sum():
    logits, loc = RNG.normal(size=(N, K)), RNG.normal(size=(N, K, D))
    scale, y = RNG.uniform(0.2, 2, (N, K, D)), RNG.normal(size=(N, D))
    comp = stats.norm.logpdf(y[:, None, :], loc, scale).sum(-1) + special.log_softmax(logits, -1)
    got = gbl.MixtureNormal(_f32(logits), _f32(loc), _f32(scale)).log_prob(_f32(y))
    np.testing.assert_allclose(got, special.logsumexp(comp, axis=-1), rtol=1e-5, atol=1e-5)


def test_mixture_positive_infinite_logit_is_the_limit():
    """A +inf logit takes all the weight (two share it): the density and gradients of that limit,
    in closed form, never NaN."""
    loc, scale, y = _f32([[[0.0], [1.0], [3.0]]]), _f32([[[1.0], [2.0], [1.0]]]), _f32([[0.5]])
    lp = lambda z, m: gbl.MixtureNormal(z, m, scale).log_prob(y).sum()  # noqa: E731
    for logits, w in (
        ([np.inf, 0.0, 0.0], [1.0, 0.0, 0.0]),
        ([np.inf, np.inf, 0.0], [0.5, 0.5, 0.0]),
    ):
        dens = np.array(w) * stats.norm.pdf(0.5, [0.0, 1.0, 3.0], [1.0, 2.0, 1.0])
        resp = dens / dens.sum()
        value, (g_logits, g_loc) = jax.value_and_grad(lp, argnums=(0, 1))(_f32([logits]), loc)
        np.testing.assert_allclose(value, np.log(dens.sum()), rtol=1e-6)
        np.testing.assert_allclose(g_logits[0], resp - np.array(w), atol=1e-6)  # d/dz = r - w
        np.testing.assert_allclose(
            g_loc[0, :, 0],
            resp * (0.5 - np.array([0.0, 1.0, 3.0])) / np.array([1.0, 4.0, 1.0]),
            atol=1e-6,
        )
        d = gbl.MixtureNormal(_f32([logits]), loc, scale)
        np.testing.assert_allclose(d.weights()[0], w, atol=1e-7)
        np.testing.assert_allclose(d.mean()[0], [np.dot(w, [0.0, 1.0, 3.0])], atol=1e-6)


def test_mixture_far_target_and_zero_weight_component():
    logits = _f32([[0.0, -np.inf, 1.0]])
    loc = _f32([[[0.0], [5.0], [1.0]]])
    scale = _f32([[[1.0], [1.0], [2.0]]])
    y = _f32([[2e3]])  # 1e3 of the widest scale away from every component
    d = gbl.MixtureNormal(logits, loc, scale)
    comp = stats.norm.logpdf(2e3, [0.0, 1.0], [1.0, 2.0]) + special.log_softmax([0.0, 1.0])
    np.testing.assert_allclose(d.log_prob(y), [special.logsumexp(comp)], rtol=1e-6)
    grads = jax.grad(lambda p: gbl.nll(gbl.MixtureNormal(*p), y))((logits, loc, scale))
    for g in grads:
        assert np.all(np.isfinite(g))
    closed = gbl.diagnostics.mixture_nll_grads(d, y)
    np.testing.assert_allclose(grads[0], closed.logits, atol=1e-6)
    np.testing.assert_allclose(grads[1], closed.loc, rtol=1e-5)
    np.testing.assert_allclose(grads[0][0, 1], 0.0)  # the zero-weight component gets no gradient
    np.testing.assert_allclose(closed.responsibilities, [[0.0, 0.0, 1.0]], atol=1e-6)


def _mixture_nll(params, y):
    return jax.value_and_grad(lambda p: gbl.nll(gbl.MixtureNormal(*p), y))(params)


def _normal_nll(params, y):
    return jax.value_and_grad(lambda p: gbl.nll(gbl.Normal(*p), y))(params)


class TestMixtureExtremes(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((1e20, 1.0), (0.5, 1e-30), (1.5, 2.0))
    def test_one_component_is_a_normal(self, target, scale):
        y = _f32([[target]])
        value, (g_logits, g_loc, g_scale) = self.variant(_mixture_nll)(
            (jnp.zeros((1, 1)), jnp.zeros((1, 1, 1)), jnp.full((1, 1, 1), scale, jnp.float32)), y
        )
        n_value, (n_loc, n_scale) = self.variant(_normal_nll)(
            (jnp.zeros((1, 1)), jnp.full((1, 1), scale, jnp.float32)), y
        )
        _assert_no_nan((value, g_logits, g_loc, g_scale))
        np.testing.assert_array_equal(value, n_value)
        np.testing.assert_array_equal(g_logits, [[0.0]])
        np.testing.assert_array_equal(g_loc[..., 0], n_loc)
        np.testing.assert_array_equal(g_scale[..., 0], n_scale)

    @chex.variants(with_jit=True, without_jit=True)
    def test_far_target_pulls_only_the_nearest_component(self):
        params = (jnp.zeros((1, 2)), _f32([[[0.0], [1e19]]]), jnp.ones((1, 2, 1)))
        value, (g_logits, g_loc, g_scale) = self.variant(_mixture_nll)(params, _f32([[1e20]]))
        _assert_no_nan((g_logits, g_loc, g_scale))
        assert value == np.inf  # true value 4e39 is beyond float32
        np.testing.assert_allclose(g_logits, [[0.5, -0.5]])  # pi - responsibilities
        np.testing.assert_allclose(g_loc[..., 0], [[0.0, -9e19]], rtol=1e-6)
        np.testing.assert_array_equal(g_scale[..., 0], [[0.0, -np.inf]])  # true -8.1e39

    @chex.variants(with_jit=True, without_jit=True)
    def test_tiny_scales_give_no_nan(self):
        y = _f32([[0.5]])
        tiny = (jnp.zeros((1, 2)), jnp.zeros((1, 2, 1)), jnp.full((1, 2, 1), 1e-30, jnp.float32))
        value, grads = self.variant(_mixture_nll)(tiny, y)
        _assert_no_nan(grads)
        assert value == np.inf
        # One tiny component beside a unit one: exact, and the tiny one gets exactly no gradient.
        mixed = (jnp.zeros((1, 2)), jnp.zeros((1, 2, 1)), _f32([[[1e-30], [1.0]]]))
        value, (g_logits, g_loc, g_scale) = self.variant(_mixture_nll)(mixed, y)
        np.testing.assert_allclose(value, np.log(2.0) - stats.norm.logpdf(0.5), rtol=1e-6)
        np.testing.assert_allclose(g_logits, [[0.5, -0.5]], rtol=1e-6)
        np.testing.assert_allclose(g_loc[..., 0], [[0.0, -0.5]], rtol=1e-6)
        np.testing.assert_allclose(g_scale[..., 0], [[0.0, 0.75]], rtol=1e-6)


def test_mixture_hessian_vector_product_matches_plain_autodiff():
    """The hand-written JVPs must stay right to second order (curvature.py differentiates twice)."""
    logits, loc = _f32(RNG.normal(size=(1, K))), _f32(RNG.normal(size=(1, K, D)))
    scale, y = _f32(RNG.uniform(0.5, 2, (1, K, D))), _f32(RNG.normal(size=(1, D)))

    def plain(p):
        z = (y[:, None, :] - p[1]) / p[2]
        comp = jnp.sum(-0.5 * jnp.square(z) - jnp.log(p[2]) - 0.5 * np.log(2 * np.pi), axis=-1)
        return -jax.nn.logsumexp(jax.nn.log_softmax(p[0]) + comp, axis=-1).mean()

    def hvp(f):  # forward over reverse, as jax.hessian and Lanczos do it
        return jax.jit(lambda p, v: jax.jvp(jax.grad(f), (p,), (v,))[1])

    params = (logits, loc, scale)
    direction = jax.tree.map(lambda a: _f32(RNG.normal(size=a.shape)), params)
    ours = hvp(lambda p: gbl.nll(gbl.MixtureNormal(*p), y))(params, direction)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(hvp(plain)(params, direction))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
