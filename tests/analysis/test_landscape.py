"""Tests for gbl_jax.analysis.landscape: interpolation, barriers, weight matching and basins."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax import align, barrier, basins, interpolate


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _loss(model, data, params):
    return float(gbl.nll(model.apply(params, data[0]), data[1]))


def _signed_permutation(params, perms, signs):
    """Hidden unit j of layer l becomes signs[l][j] * old unit perms[l][j]: the same function."""
    layers, prev, prev_sign = [], None, None
    for layer, perm, sign in zip(params["hidden"], perms, signs):
        w = layer["w"] if prev is None else layer["w"][prev] * prev_sign[:, None]
        layers.append({"w": w[:, perm] * sign[None, :], "b": layer["b"][perm] * sign})
        prev, prev_sign = perm, sign
    head = {"w": params["head"]["w"][prev] * prev_sign[:, None], "b": params["head"]["b"]}
    return {"hidden": layers, "head": head}


def _random_signed_permutation(key, params, flip=True):
    perms, signs = [], []
    for layer in params["hidden"]:
        key, k_perm, k_sign = jax.random.split(key, 3)
        width = layer["b"].shape[0]
        perms.append(jax.random.permutation(k_perm, width))
        signs.append(
            jnp.where(jax.random.bernoulli(k_sign, 0.5, (width,)), -1.0, 1.0)
            if flip
            else jnp.ones(width)
        )
    return _signed_permutation(params, perms, signs)


def _assert_trees_close(a, b, atol):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=0, atol=atol), a, b)


def test_interpolating_a_point_with_itself_is_flat():
    data = gbl.problems.circles(jax.random.PRNGKey(0), 64)
    model = gbl.mlp([8], data.head)
    params = model.init(jax.random.PRNGKey(1), data.x)
    curve = interpolate(model, data, params, params, num=11)
    assert curve.shape == (11,)
    np.testing.assert_allclose(curve, _loss(model, data, params), rtol=1e-6)
    assert abs(float(barrier(model, data, params, params))) <= 1e-6


def test_logistic_regression_path_is_convex():
    data = gbl.problems.circles(jax.random.PRNGKey(0), 128)
    model = gbl.mlp((), gbl.heads.bernoulli(), init=gbl.inits.normal(3.0))
    params_a = model.init(jax.random.PRNGKey(1), data.x)
    params_b = model.init(jax.random.PRNGKey(2), data.x)
    curve = interpolate(model, data, params_a, params_b, num=41)
    assert np.all(np.diff(curve, 2) >= -1e-6)
    assert float(barrier(model, data, params_a, params_b, num=41)) <= 1e-6


def test_endpoints_and_stacked_seeds_match_single_calls():
    data = gbl.problems.two_spirals(jax.random.PRNGKey(0), 64)
    model = gbl.mlp([8, 8], data.head)
    seeds_a = [model.init(k, data.x) for k in jax.random.split(jax.random.PRNGKey(1), 3)]
    seeds_b = [model.init(k, data.x) for k in jax.random.split(jax.random.PRNGKey(2), 3)]
    curve = interpolate(model, data, seeds_a[0], seeds_b[0], num=7)
    np.testing.assert_allclose(curve[0], _loss(model, data, seeds_a[0]), rtol=1e-6)
    np.testing.assert_allclose(curve[-1], _loss(model, data, seeds_b[0]), rtol=1e-6)

    single = np.stack([interpolate(model, data, a, b, num=7) for a, b in zip(seeds_a, seeds_b)])
    for chunk_size in (None, 2):  # 2 seeds per chunk pads the last chunk
        stacked = interpolate(
            model, data, _stack(seeds_a), _stack(seeds_b), num=7, chunk_size=chunk_size
        )
        assert stacked.shape == (3, 7)
        np.testing.assert_allclose(stacked, single, rtol=1e-5, atol=1e-6)
    broadcast = np.stack([interpolate(model, data, a, seeds_b[0], num=7) for a in seeds_a])
    np.testing.assert_allclose(
        interpolate(model, data, _stack(seeds_a), seeds_b[0], num=7),
        broadcast,
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        barrier(model, data, seeds_b[0], _stack(seeds_a), num=7),
        [barrier(model, data, seeds_b[0], a, num=7) for a in seeds_a],
        rtol=1e-5,
        atol=1e-6,
    )


def test_init_that_cannot_be_traced_falls_back_on_tree_shapes():
    net = gbl.mlp([4], gbl.heads.bernoulli())
    model = gbl.Model(lambda key, in_dim: net.init(key, int(in_dim)), net.apply, "int-init")
    data = gbl.problems.xor()
    params = [net.init(k, 2) for k in jax.random.split(jax.random.PRNGKey(0), 2)]
    assert interpolate(model, data, _stack(params), params[0], num=5).shape == (2, 5)
    assert interpolate(model, data, params[1], params[0], num=5).shape == (5,)
    for stacked in (None, True):
        assert interpolate(
            model, data, _stack(params), _stack(params), num=5, stacked=stacked
        ).shape == (2, 5)


def test_align_undoes_a_signed_permutation_of_a_trained_net():
    data = gbl.problems.two_spirals(jax.random.PRNGKey(0), 128)
    model = gbl.mlp([16, 16], data.head)
    params = gbl.train(model, optax.adam(0.02), data, key=jax.random.PRNGKey(1), steps=1000).params
    assert _loss(model, data, params) < 0.2
    shuffled = _random_signed_permutation(jax.random.PRNGKey(2), params)
    np.testing.assert_allclose(
        model.apply(shuffled, data.x).probs(), model.apply(params, data.x).probs(), atol=1e-5
    )

    unaligned = float(barrier(model, data, params, shuffled))
    aligned_params = align(params, shuffled, activation="tanh")
    aligned = float(barrier(model, data, params, aligned_params))
    assert unaligned > 0.5
    assert aligned < 1e-4
    _assert_trees_close(aligned_params, params, atol=1e-6)

    stacked = align(params, _stack([shuffled, params]))
    _assert_trees_close(stacked, _stack([params, params]), atol=1e-6)


def test_align_keeps_the_function_and_relu_never_flips_signs():
    data = gbl.problems.two_spirals(jax.random.PRNGKey(0), 64)
    for activation in ("tanh", "relu"):
        model = gbl.mlp([6, 5], data.head, activation=activation)
        ref, params = (model.init(k, data.x) for k in jax.random.split(jax.random.PRNGKey(3)))
        params = jax.tree.map(lambda a: a + 0.1, params)  # nonzero biases
        aligned = align(ref, params, activation=activation)
        assert jax.tree.structure(aligned) == jax.tree.structure(params)
        np.testing.assert_allclose(
            model.apply(aligned, data.x).probs(), model.apply(params, data.x).probs(), atol=1e-6
        )
        if activation == "relu":
            # Every unit's (incoming weights, bias) is one of the original units' own, unnegated.
            units = lambda p: sorted(
                map(
                    tuple,
                    np.concatenate(  # noqa: E731
                        [np.asarray(p["hidden"][0]["w"]), np.asarray(p["hidden"][0]["b"])[None]]
                    ).T,
                )
            )
            assert units(aligned) == units(params)
            shuffled = _random_signed_permutation(jax.random.PRNGKey(4), params, flip=False)
            _assert_trees_close(align(params, shuffled, activation="relu"), params, atol=1e-6)


def test_align_rejects_what_is_not_an_mlp():
    model = gbl.mlp([4], gbl.heads.bernoulli())
    params = model.init(jax.random.PRNGKey(0), 2)
    with pytest.raises(ValueError, match="not gbl.mlp params"):
        align(params, {"w": jnp.zeros((2, 4))})
    with pytest.raises(ValueError, match="not gbl.mlp params"):
        align({"layers": []}, params)
    with pytest.raises(ValueError, match="layer shapes"):
        align(params, gbl.mlp([5], gbl.heads.bernoulli()).init(jax.random.PRNGKey(0), 2))
    with pytest.raises(ValueError, match="unknown activation"):
        align(params, params, activation="swish")


def _train_seeds(model, data, key, seeds, steps, learning_rate):
    x, y = data
    opt = optax.adam(learning_rate)

    def train(key):
        params = model.init(key, x)

        def step(carry, _):
            params, state = carry
            grads = jax.grad(lambda p: gbl.nll(model.apply(p, x), y))(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        return jax.lax.scan(step, (params, opt.init(params)), None, length=steps)[0][0]

    return jax.jit(jax.vmap(train))(jax.random.split(key, seeds))


def test_xor_basins_separate_solved_from_stuck_seeds():
    data = gbl.problems.xor()
    model = gbl.mlp([2], data.head)
    params = _train_seeds(model, data, jax.random.PRNGKey(0), 64, 2000, 0.05)
    final = np.asarray(jax.vmap(lambda p: gbl.nll(model.apply(p, data.x), data.y))(params))
    solved = final < 0.1
    assert 0 < solved.sum() < 64

    out = basins(model, data, params, tol=0.05)
    assert out.labels.shape == (64,) and np.all(out.labels >= 0)
    assert out.count.sum() == 64 and np.all(np.diff(out.loss) >= 0)
    solved_basins = [b for b in range(len(out.count)) if out.loss[b] < 0.1]
    for b in range(len(out.count)):
        assert len(set(solved[out.labels == b])) == 1, "a basin mixes solved and stuck seeds"
        assert out.share_ci[b, 0] <= out.share[b] <= out.share_ci[b, 1]
        assert out.labels[out.leader[b]] == b
    assert out.count[solved_basins].sum() == solved.sum()
    assert out.share[solved_basins].sum() == pytest.approx(solved.mean(), abs=1e-12)
    assert np.all(final[out.labels > max(solved_basins)] > 0.3)  # ln(2)/2 and above
    assert "share" in out.summary()

    broken = jax.tree.map(lambda a: a.at[5].set(jnp.nan), params)
    flagged = np.zeros(64, bool)
    flagged[7] = True
    out = basins(model, data, broken, diverged=flagged)
    assert out.labels[5] == -1 and out.labels[7] == -1 and out.count.sum() == 62
    np.testing.assert_allclose(out.share.sum(), 1.0)


def test_bad_input_raises():
    data = gbl.problems.xor()
    model = gbl.mlp([2], data.head)
    params = model.init(jax.random.PRNGKey(0), data.x)
    wider = gbl.mlp([3], data.head).init(jax.random.PRNGKey(0), data.x)
    with pytest.raises(ValueError, match="num"):
        interpolate(model, data, params, params, num=1)
    with pytest.raises(ValueError):
        interpolate(model, data, params, wider)
    with pytest.raises(ValueError, match="structure"):
        barrier(model, data, params, {"hidden": [], "head": params["head"]})
    two, three = (_stack([params] * n) for n in (2, 3))
    with pytest.raises(ValueError, match="number of seeds"):
        interpolate(model, data, two, three)
    with pytest.raises(ValueError, match="stacked"):
        basins(model, data, params)


def test_basins_of_a_model_that_returns_an_array_compare_the_array():
    """An array output's mean() is one number: every seed would share one basin."""
    eye = jnp.eye(3)
    params = jnp.stack([eye, eye + 0.001, eye[::-1]])  # outputs with equal means
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 3))
    linear = gbl.Model(lambda k, x: jnp.eye(3), lambda w, x: x @ w)
    out = basins(linear, (x, x), params, loss=lambda f, y: jnp.mean((f - y) ** 2))
    assert out.labels.tolist() == [0, 0, 1] and out.count.tolist() == [2, 1]
    np.testing.assert_allclose(
        out.loss,
        [0.001**2 * 3 * np.mean(np.sum(x, 1) ** 2) / 6, np.mean((x[:, ::-1] - x) ** 2)],
        rtol=1e-3,
    )


def test_basins_of_a_model_that_returns_its_params_need_predict():
    """relu_student's apply returns its weights: compared raw, permuted units split a solution;
    mean() (before) put all seeds in one basin, spurious minima included."""
    student, data, loss = gbl.population.relu_student(3, 3)
    eye = jnp.eye(3)
    params = jnp.stack([eye, eye + 0.001, jnp.full((3, 3), 1 / 3), eye[::-1]])  # equal means
    with pytest.raises(ValueError, match="returns its params.*pass predict="):
        basins(student, data, params, loss=loss)
    probe = jax.random.normal(jax.random.PRNGKey(0), (64, 3))
    out = basins(
        student, data, params, loss=loss, predict=lambda w: jax.nn.relu(probe @ w.T).sum(-1)
    )
    assert out.labels.tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(out.loss[0], 0.0, atol=1e-6)
    assert basins(student, data, params, loss=loss, predict=lambda w: w).count.tolist() == [
        1,
        2,
        1,
    ]  # weight by weight, as asked


def test_basins_refuse_an_output_with_nothing_to_compare():
    class Opaque:  # not a pytree: no arrays to read
        def log_prob(self, y):
            return jnp.zeros(y.shape[0])

    model = gbl.Model(lambda k, x: {"w": jnp.zeros(2)}, lambda p, x: Opaque())
    data = (jnp.zeros((4, 2)), jnp.zeros(4))
    with pytest.raises(ValueError, match="pass predict="):
        basins(model, data, {"w": jnp.zeros((3, 2))}, loss=lambda d, y: jnp.sum(d.log_prob(y)))
