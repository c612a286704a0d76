"""Tests for gbl_jax.analysis.surfaces: filter normalization, the grid, PCA directions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.analysis.surfaces import default_filter_axes, filter_normalize, pca_directions


@pytest.fixture(scope="module")
def run():
    data = gbl.problems.two_spirals(jax.random.PRNGKey(0), 48)
    data = gbl.problems.Data(
        data.x,
        data.y,
        data.head,
        "spirals",
        test=gbl.problems.two_spirals(jax.random.PRNGKey(9), 32),
    )
    model = gbl.mlp([6], data.head, activation="relu")
    out = gbl.sweep(
        model,
        optax.adam(0.05),
        data,
        key=jax.random.PRNGKey(1),
        seeds=3,
        steps=120,
        log_every=10,
        keep_params=True,
        keep_trajectory=True,
        metrics={"accuracy": gbl.accuracy},
        eval_data=data.test,
    )
    return model, data, out


def _loss(model, params, data):
    return float(gbl.nll(model.apply(params, data[0]), data[1]))


def test_filter_normalize_matches_each_filters_norm():
    p = {"w": jnp.arange(1.0, 13.0).reshape(3, 4), "b": jnp.ones(4)}
    d = {"w": jnp.ones((3, 4)) * jnp.array([[1.0, 2.0, -3.0, 0.5]]), "b": jnp.ones(4)}
    out = filter_normalize(d, p, default_filter_axes(p))
    # column j of w (one output unit) rescaled to the norm of p's column j; the bias zeroed
    np.testing.assert_allclose(
        np.linalg.norm(out["w"], axis=0), np.linalg.norm(p["w"], axis=0), rtol=1e-6
    )
    np.testing.assert_allclose(
        out["w"][:, 2], -np.linalg.norm(p["w"][:, 2]) / np.sqrt(3), rtol=1e-6
    )
    assert np.all(out["b"] == 0)
    with_b = filter_normalize(d, p, default_filter_axes(p), biases=True)
    np.testing.assert_allclose(with_b["b"], np.ones(4), rtol=1e-6)  # |b| = |d| = 2


def test_origin_is_the_trained_loss_and_grid_matches_a_plain_loop(run):
    model, data, out = run
    s = gbl.surface(model, data, out, dims=2, points=5, span=0.5, draws=2)
    assert s.values["loss"].shape == (3, 2, 5, 5)
    assert set(s.values) == {"loss", "accuracy", "test_loss", "test_accuracy"}
    np.testing.assert_allclose(
        s.values["loss"][:, :, 2, 2], np.repeat(out.final_loss[:, None], 2, 1), rtol=1e-5
    )
    np.testing.assert_allclose(
        s.values["accuracy"][:, 0, 2, 2], out.final_metrics["accuracy"], atol=1e-6
    )
    np.testing.assert_allclose(
        s.values["test_loss"][:, 0, 2, 2], out.final_metrics["test_nll"], rtol=1e-5
    )
    # an independent loop: seed 1, draw 1, point (a, b) with the same directions rebuilt
    one = jax.tree.map(lambda a: a[1], out.params)
    k = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(0), 1), 1)
    dirs = []
    for kd in jax.random.split(k, 2):
        leaves, treedef = jax.tree.flatten(one)
        sub = jax.random.split(kd, len(leaves))
        d = jax.tree.unflatten(
            treedef, [jax.random.normal(s_, a.shape) for s_, a in zip(sub, leaves)]
        )
        dirs.append(filter_normalize(d, one, default_filter_axes(one)))
    for i, j in [(0, 0), (1, 3), (4, 2)]:
        a, b = s.coords[i], s.coords[j]
        moved = jax.tree.map(lambda p, u, v: p + a * u + b * v, one, *dirs)
        assert s.values["loss"][1, 1, i, j] == pytest.approx(_loss(model, moved, data), rel=1e-4)
    assert s.coords[2] == 0.0 and s.coords[0] == -0.5
    # the draws differ (a direction's picture is not the same as another's)
    assert not np.allclose(s.values["loss"][:, 0], s.values["loss"][:, 1])
    mid, low, high = s.band("loss", over="both")
    assert mid.shape == (5, 5) and np.all(low <= mid) and np.all(mid <= high)
    frame = s.to_frame()
    assert len(frame) == 3 * 2 * 25 and {"a1", "a2", "loss", "seed", "draw"} <= set(frame)


def test_filter_normalized_slice_ignores_relu_rescaling(run):
    """Scaling a ReLU layer by c and the next by 1/c keeps the function; the filter-normalized
    slice stays the same, a raw (unnormalized) direction's does not (Li et al. 2018, sec. 4)."""
    model, data, out = run
    params = jax.tree.map(lambda a: a[:1], out.params)
    c = 8.0
    scaled = {
        "hidden": [{"w": params["hidden"][0]["w"] * c, "b": params["hidden"][0]["b"] * c}],
        "head": {"w": params["head"]["w"] / c, "b": params["head"]["b"]},
    }
    one = jax.tree.map(lambda a: a[0], params)
    assert _loss(model, jax.tree.map(lambda a: a[0], scaled), data) == pytest.approx(
        _loss(model, one, data), rel=1e-5
    )
    kw = dict(dims=1, points=7, span=1.0)
    normal = gbl.surface(model, data, params, **kw).values["loss"]
    rescaled = gbl.surface(model, data, scaled, **kw).values["loss"]
    np.testing.assert_allclose(rescaled, normal, rtol=1e-4)
    raw = jax.tree.map(
        lambda a: jax.random.normal(jax.random.PRNGKey(3), (1,) + a.shape[1:]), params
    )
    raw_a = gbl.surface(model, data, params, directions=raw, **kw).values["loss"]
    raw_b = gbl.surface(model, data, scaled, directions=raw, **kw).values["loss"]
    assert np.max(np.abs(raw_a - raw_b)) > 0.1


def test_pca_directions_against_numpy_svd(run):
    model, data, out = run
    s = gbl.surface(model, data, out, dims=2, points=3, directions="pca")
    flat = (
        lambda t, lead: np.concatenate(  # noqa: E731
            [np.asarray(a).reshape(a.shape[:lead] + (-1,)) for a in jax.tree.leaves(t)], -1
        )
    )
    m = flat(out.trajectory, 2)[0] - flat(out.params, 1)[0]
    sv = np.linalg.svd(m, compute_uv=False)
    np.testing.assert_allclose(s.explained[0], sv[:2] ** 2 / np.sum(sv**2), rtol=1e-5)
    assert np.max(np.abs(s.path[0]), axis=0) == pytest.approx([1.0, 1.0])
    np.testing.assert_allclose(s.values["loss"][:, 0, 1, 1], out.final_loss, rtol=1e-5)
    dirs, _, _ = pca_directions(out.trajectory, out.params, 2)
    d = flat(dirs, 2)[0]  # [2, n]
    cos = d @ d.T / np.outer(np.linalg.norm(d, axis=1), np.linalg.norm(d, axis=1))
    np.testing.assert_allclose(cos, np.eye(2), atol=1e-5)  # orthogonal directions


def test_bad_input(run):
    model, data, out = run
    with pytest.raises(ValueError, match="directions must be one of"):
        gbl.surface(model, data, out, directions="random")
    with pytest.raises(ValueError, match="keep_trajectory"):
        gbl.surface(model, data, out.replace(trajectory=None), directions="pca")
    with pytest.raises(ValueError, match="leaf shapes"):
        gbl.surface(model, data, out, dims=2, directions=jax.tree.map(lambda a: a[:1], out.params))
    with pytest.raises(ValueError, match="filter axis"):
        gbl.surface(model, data, out, filter_axes=lambda p: jax.tree.map(lambda a: 5, p))
    with pytest.raises(ValueError, match="points"):
        gbl.surface(model, data, out, points=1)
    with pytest.raises(ValueError, match="keep_params"):
        gbl.surface(model, data, out.replace(params=None))


def test_flax_and_equinox_models():
    """Any model: flax's Dense kernels are [in, out] (the default filter axis, the last);
    equinox's Linear weights are [out, in], so its filters are axis 0 (filter_axes=)."""
    nn = pytest.importorskip("flax.linen")
    eqx = pytest.importorskip("equinox")
    xor = gbl.problems.xor()

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(jnp.tanh(nn.Dense(4)(x)))

    flax_model = gbl.models.from_flax(MLP(), lambda z: gbl.Bernoulli(z[:, 0]))
    make = lambda key: eqx.nn.MLP(2, 1, 4, 1, activation=jnp.tanh, key=key)  # noqa: E731
    eqx_model = gbl.models.from_equinox(make, lambda z: gbl.Bernoulli(z[:, 0]))
    rows = lambda p: jax.tree.map(lambda a: 0 if np.ndim(a) >= 2 else None, p)  # noqa: E731
    for model, axes in ((flax_model, None), (eqx_model, rows)):
        out = gbl.sweep(
            model,
            optax.adam(0.1),
            xor,
            key=jax.random.PRNGKey(0),
            seeds=2,
            steps=100,
            keep_params=True,
        )
        s = gbl.surface(model, xor, out, dims=1, points=3, filter_axes=axes)
        np.testing.assert_allclose(s.values["loss"][:, 0, 1], out.final_loss, rtol=1e-5)
        assert np.all(s.values["loss"][:, 0, [0, 2]] > s.values["loss"][:, 0, [1]])
        one = jax.tree.map(lambda a: a[0], out.params)
        d = filter_normalize(
            jax.tree.map(jnp.ones_like, one), one, rows(one) if axes else default_filter_axes(one)
        )
        for dl, pl in zip(jax.tree.leaves(d), jax.tree.leaves(one)):
            if np.ndim(pl) >= 2:  # one filter per output unit: [in, out] or [out, in]
                axis = 1 if axes else 0
                np.testing.assert_allclose(
                    np.linalg.norm(dl, axis=axis), np.linalg.norm(pl, axis=axis), rtol=1e-5
                )
    a = jax.tree.map(lambda p: p[0], out.params)
    b = jax.tree.map(lambda p: p[1], out.params)
    c = gbl.curve(eqx_model, xor, a, b, steps=20, num=3)
    for got, want in zip(jax.tree.leaves(c.at(1.0)), jax.tree.leaves(b)):
        np.testing.assert_array_equal(got, want)


def test_mean_interval_matches_scipy_bootstrap():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(1)
    loss = rng.gamma(2.0, size=(40, 3, 5))  # [seeds, draws, points]
    s = gbl.Surface(np.linspace(-1, 1, 5), {"loss": loss}, "filter", np.zeros(40, bool))
    mean, low, high = s.mean_interval("loss", over="seeds", resamples=20_000)
    per_seed = loss.mean(axis=1)
    np.testing.assert_allclose(mean, per_seed.mean(axis=0))
    ref = bootstrap(
        (per_seed,), np.mean, n_resamples=20_000, method="percentile", axis=0, random_state=2
    ).confidence_interval
    se = per_seed.std(axis=0) / np.sqrt(40)
    assert np.max(np.abs(low - ref.low) / se) < 0.1 and np.max(np.abs(high - ref.high) / se) < 0.1
    _, d_low, d_high = s.mean_interval("loss", over="draws")
    assert np.all(d_low <= loss.mean(axis=0).mean(axis=0)) and d_low.shape == (5,)
    flat = gbl.Surface(s.coords, {"loss": np.ones((4, 2, 5))}, "filter", np.zeros(4, bool))
    _, lo, hi = flat.mean_interval()
    np.testing.assert_array_equal(lo, hi)
