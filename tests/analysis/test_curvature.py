"""critical_points: a closed-form saddle, the convex control, Lanczos vs exact, kinds, bad input."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax import critical_points


def stack(params_list):
    return jax.tree.map(lambda *a: jnp.stack(a), *params_list)


def linear_saddle(seeds=3):
    """The 1-1-1 linear net at zero on y = x, a strict saddle."""
    x = jnp.asarray([[-2.0], [-1.0], [1.0], [2.0]])
    model = gbl.mlp([1], gbl.heads.gaussian(1), activation="identity", init="zeros")
    params = stack([model.init(jax.random.PRNGKey(i), x) for i in range(seeds)])
    return model, (x, x), params


def random_xor(hidden=(3,), seeds=5, scale=2.0):
    data = gbl.problems.xor()
    model = gbl.mlp(hidden, data.head)
    keys = jax.random.split(jax.random.PRNGKey(1), seeds)
    params = jax.vmap(lambda k: model.init(k, data.x))(keys)
    return model, data, jax.tree.map(lambda a: scale * a, params)


def test_linear_net_at_zero_is_a_strict_saddle_with_the_closed_form_spectrum():
    # f = w2 (w1 x + b1) + b2 and L = mean((f - y)^2) / 2. At zero the residual is -y and only
    # b2 moves f to first order, so H = e_b2 e_b2^T - mean(x y) (e_w1 e_w2^T + e_w2 e_w1^T)
    # - mean(y) (e_b1 e_w2^T + e_w2 e_b1^T); with mean(y) = 0 its eigenvalues are
    # -mean(x y), 0, 1, +mean(x y), and the gradient, mean(-y) e_b2, vanishes.
    model, data, params = linear_saddle()
    c = float(np.mean(np.asarray(data[0]) * np.asarray(data[1])))  # 2.5
    cp = critical_points(model, data, params)
    assert cp.method == "exact" and cp.kind.tolist() == ["saddle"] * 3
    np.testing.assert_allclose(cp.eigenvalues, np.tile([-c, 0.0, 1.0, c], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(cp.min_eig, -c, rtol=1e-6)
    np.testing.assert_allclose(cp.max_eig, c, rtol=1e-6)
    np.testing.assert_allclose(cp.grad_norm, 0.0, atol=1e-6)
    np.testing.assert_array_equal(cp.index, 0.25)
    np.testing.assert_array_equal(cp.n_flat, 1)
    y = np.asarray(data[1])
    np.testing.assert_allclose(cp.loss, 0.5 * np.mean(y**2) + 0.5 * np.log(2 * np.pi), rtol=1e-6)
    assert cp.counts() == {"minimum": 0, "saddle": 3, "not_converged": 0, "diverged": 0}
    assert all(isinstance(a, np.ndarray) for a in (cp.loss, cp.grad_norm, cp.min_eig, cp.kind))


def test_stochastic_model_is_evaluated_without_a_key():
    model, data, params = linear_saddle(seeds=2)

    def apply(p, x, key=None):
        assert key is None
        return model.apply(p, x)

    cp = critical_points(gbl.models.Model(model.init, apply, stochastic=True), data, params)
    assert cp.kind.tolist() == ["saddle", "saddle"]


def test_logistic_regression_converges_to_a_minimum_with_the_closed_form_hessian():
    k_x, k_y = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(k_x, (200, 2))
    y = jax.random.bernoulli(k_y, jax.nn.sigmoid(x @ jnp.asarray([1.5, -1.0]) + 0.5))
    data = (x, y.astype(jnp.float32))
    model = gbl.mlp((), gbl.heads.bernoulli())
    opt = optax.sgd(2.0)
    params = stack(
        [gbl.train(model, opt, data, key=jax.random.PRNGKey(i), steps=400).params for i in range(3)]
    )
    cp = critical_points(model, data, params)
    assert cp.kind.tolist() == ["minimum"] * 3
    assert np.all(cp.grad_norm < 1e-3) and np.all(cp.n_flat == 0) and np.all(cp.index == 0)
    # H = X1^T diag(p (1 - p)) X1 / N with X1 = [x, 1], in float64.
    x64 = np.asarray(x, np.float64)
    x1 = np.concatenate([x64, np.ones((200, 1))], axis=1)
    for s in range(3):
        w = np.asarray(params["head"]["w"][s], np.float64)[:, 0]
        b = float(params["head"]["b"][s][0])
        p = 1.0 / (1.0 + np.exp(-(x64 @ w + b)))
        hessian = x1.T @ (x1 * (p * (1 - p))[:, None]) / 200
        np.testing.assert_allclose(cp.eigenvalues[s], np.linalg.eigvalsh(hessian), rtol=1e-4)


@pytest.mark.parametrize("hidden, steps", [((3,), 64), ((16,), 20)])
def test_lanczos_matches_the_exact_extreme_eigenvalues(hidden, steps):
    model, data, params = random_xor(hidden)
    exact = critical_points(model, data, params)
    lanczos = critical_points(
        model, data, params, max_exact=0, lanczos_steps=steps, key=jax.random.PRNGKey(3)
    )
    assert exact.method == "exact" and lanczos.method == "lanczos"
    rho = np.maximum(np.abs(exact.min_eig), np.abs(exact.max_eig))
    np.testing.assert_array_less(np.abs(lanczos.min_eig - exact.min_eig) / rho, 1e-3)
    np.testing.assert_array_less(np.abs(lanczos.max_eig - exact.max_eig) / rho, 1e-3)
    np.testing.assert_allclose(lanczos.grad_norm, exact.grad_norm, rtol=1e-5)
    assert lanczos.eigenvalues is None and np.all(np.isnan(lanczos.index))
    np.testing.assert_array_equal(lanczos.n_flat, -1)
    np.testing.assert_array_equal(lanczos.kind, exact.kind)


def test_lanczos_finds_the_saddle():
    model, data, params = linear_saddle()
    cp = critical_points(model, data, params, max_exact=0)
    assert cp.kind.tolist() == ["saddle"] * 3
    np.testing.assert_allclose(cp.min_eig, -2.5, rtol=1e-5)


def test_chunks_with_a_padded_last_chunk_give_the_same_answer():
    model, data, params = random_xor(seeds=5)
    whole = critical_points(model, data, params)
    chunked = critical_points(model, data, params, chunk_size=2)
    np.testing.assert_allclose(chunked.eigenvalues, whole.eigenvalues, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(chunked.kind, whole.kind)


def test_random_init_is_not_converged_and_nan_or_flagged_seeds_are_diverged():
    model, data, params = random_xor(seeds=4)
    params = jax.tree.map(lambda a: a.at[1].set(jnp.nan), params)
    cp = critical_points(model, data, params, diverged=np.array([False, False, True, False]))
    assert cp.kind.tolist() == ["not_converged", "diverged", "diverged", "not_converged"]
    assert np.all(cp.grad_norm[[0, 3]] > 1e-3)
    assert np.isnan(cp.loss[1]) and np.isnan(cp.index[1]) and cp.n_flat[1] == -1
    assert np.isfinite(cp.loss[2])  # a flagged seed's numbers are still reported
    counts = cp.counts()
    assert counts == {"minimum": 0, "saddle": 0, "not_converged": 2, "diverged": 2}
    assert sum(counts.values()) == 4


def test_bad_input_raises():
    model, data, params = linear_saddle()
    one_seed = jax.tree.map(lambda a: a[0], params)
    with pytest.raises(ValueError, match=r"stacked over seeds.*should be \[seeds\] \+ \[1\]"):
        critical_points(model, data, one_seed)
    ragged = {"hidden": params["hidden"], "head": jax.tree.map(lambda a: a[:2], params["head"])}
    with pytest.raises(ValueError, match="leaf shapes"):
        critical_points(model, data, ragged)
    with pytest.raises(ValueError, match="not a params tree of this model"):
        critical_points(model, data, jax.tree.leaves(params))
    with pytest.raises(ValueError, match="grad_tol"):
        critical_points(model, data, params, grad_tol=-1.0)
    with pytest.raises(ValueError, match="eig_tol"):
        critical_points(model, data, params, eig_tol=-1e-4)
    with pytest.raises(ValueError, match=r"x \[4, 1\] and y \[3, 1\]"):
        critical_points(model, (data[0], data[1][:3]), params)
    with pytest.raises(ValueError, match=r"diverged must have shape \[seeds\] = \[3\]"):
        critical_points(model, data, params, diverged=[False, True])
    with pytest.raises(ValueError, match="chunk_size"):
        critical_points(model, data, params, chunk_size=0)


def _independent_spectra(objective, params):
    """Each seed's Hessian spectrum, unbatched and eager: jax.hessian on one seed at a time."""
    flat_SP = jax.vmap(lambda p: jax.flatten_util.ravel_pytree(p)[0])(params)
    unravel = jax.flatten_util.ravel_pytree(jax.tree.map(lambda a: a[0], params))[1]
    spectra = []
    for theta in np.asarray(flat_SP):
        hessian = np.asarray(jax.hessian(lambda t: objective(unravel(t)))(jnp.asarray(theta)))
        spectra.append(np.linalg.eigvalsh(0.5 * (hessian + hessian.T)))
    return np.stack(spectra)


@pytest.mark.parametrize("n, d, k, hidden", [(398, 30, 2, ()), (120, 6, 5, ()), (60, 3, 4, (5,))])
def test_softmax_models_get_the_hessian_of_an_independent_log_softmax(n, d, k, hidden):
    # Issue 30: jit(vmap(hessian)) of the library's log_softmax gave 0.54 errors on [398, 30] x 2
    # classes (XLA:CPU's YNNPACK fusion of a broadcast, a reduction and a subtraction): convex
    # softmax regressions came out as saddles. The reference is jax.nn.log_softmax, per seed.
    kx, ky, kp = jax.random.split(jax.random.PRNGKey(n), 3)
    x = jax.random.normal(kx, (n, d))
    y = jax.random.randint(ky, (n,), 0, k)
    model = gbl.mlp(list(hidden), gbl.heads.categorical(k))
    params = jax.vmap(lambda key: model.init(key, x))(jax.random.split(kp, 4))

    def objective(p):
        logits = model.apply(p, x).logits
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    expected = _independent_spectra(objective, params)
    cp = critical_points(model, (x, y), params, grad_tol=1e6)
    np.testing.assert_allclose(cp.eigenvalues, expected, atol=2e-5 * np.abs(expected).max())
    if not hidden:  # the convex control: a softmax regression has no negative curvature
        assert cp.kind.tolist() == ["minimum"] * 4


def test_mixture_density_models_get_the_hessian_of_an_independent_mixture():
    kx, ky, kp = jax.random.split(jax.random.PRNGKey(3), 3)
    x = jax.random.uniform(kx, (80, 1), minval=-2.0, maxval=2.0)
    y = jnp.sin(2.0 * x) + 0.3 * jax.random.normal(ky, (80, 1))
    model = gbl.mlp([4], gbl.heads.mixture_density(3, 1))
    params = jax.vmap(lambda key: model.init(key, x))(jax.random.split(kp, 3))

    def objective(p):
        dist = model.apply(p, x)
        log_w = jax.nn.log_softmax(dist.logits)  # [N, K]
        z = (y[:, None, :] - dist.loc) / dist.scale  # [N, K, 1]
        log_n = jnp.sum(-0.5 * z**2 - jnp.log(dist.scale) - 0.5 * np.log(2 * np.pi), axis=-1)
        return -jnp.mean(jax.scipy.special.logsumexp(log_w + log_n, axis=1))

    expected = _independent_spectra(objective, params)
    cp = critical_points(model, (x, y), params, grad_tol=1e6)
    np.testing.assert_allclose(cp.eigenvalues, expected, atol=2e-5 * np.abs(expected).max())
