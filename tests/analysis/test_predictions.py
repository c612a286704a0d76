"""calibration, disagreement and ensembles: against hand computations, loops and scipy."""

import itertools
import json

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import gbl_jax as gbl

RNG = np.random.default_rng(0)


def _loop_ece(probs, y, bins):
    """Guo et al.'s ECE by a loop over bins: confidence in ((m - 1) / M, m / M]."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    total = 0.0
    for m in range(1, bins + 1):
        inside = (conf > (m - 1) / bins) & (conf <= m / bins)
        if m == 1:
            inside |= conf == 0
        if inside.any():
            total += (
                inside.sum()
                / len(y)
                * abs(np.mean(pred[inside] == y[inside]) - np.mean(conf[inside]))
            )
    return total


def test_calibration_by_hand_and_against_a_loop():
    # four examples, two bins: confidences 0.9, 0.8 (bin 2), 0.6, 0.7 (bin 2); labels make
    # bin 2 right on 0.9, 0.6 and wrong on 0.8, 0.7: acc 0.5, conf 0.75, ECE 0.25
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    dist = gbl.Categorical(jnp.log(jnp.asarray(probs)))
    cal = gbl.calibration(dist, jnp.asarray([0, 0, 0, 0]), bins=2)
    assert cal.ece == pytest.approx(0.25, abs=1e-6)
    np.testing.assert_array_equal(cal.count, [0, 4])
    assert cal.accuracy[1] == pytest.approx(0.5) and cal.confidence[1] == pytest.approx(0.75)
    assert np.isnan(cal.accuracy[0])
    # a random classifier over 10 classes, 15 bins, against the loop
    logits = RNG.normal(size=(500, 10)) * 2
    y = RNG.integers(0, 10, 500)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ece = gbl.calibration(gbl.Categorical(jnp.asarray(logits)), jnp.asarray(y)).ece
    assert ece == pytest.approx(_loop_ece(p, y, 15), rel=1e-5)
    # a Bernoulli is two classes
    z = RNG.normal(size=200)
    yb = RNG.integers(0, 2, 200)
    pb = 1 / (1 + np.exp(-z))
    bern = gbl.calibration(gbl.Bernoulli(jnp.asarray(z)), jnp.asarray(yb), bins=10)
    assert bern.ece == pytest.approx(_loop_ece(np.stack([1 - pb, pb], 1), yb, 10), rel=1e-5)
    assert list(bern.to_frame().columns) == ["low", "high", "count", "accuracy", "confidence"]
    with pytest.raises(ValueError, match=r"y has shape \[3\] but the predictions are for \[200\]"):
        gbl.calibration(gbl.Bernoulli(jnp.asarray(z)), jnp.zeros(3, int))
    with pytest.raises(ValueError, match="Bernoulli or Categorical"):
        gbl.calibration(gbl.Normal(jnp.zeros(3), 1.0), jnp.zeros(3))


def test_disagreement_of_classifiers_against_a_loop_over_pairs():
    logits = RNG.normal(size=(7, 60, 4))
    y = RNG.integers(0, 4, 60)
    d = gbl.disagreement(gbl.Categorical(jnp.asarray(logits)), jnp.asarray(y), resamples=500)
    labels = logits.argmax(axis=-1)
    expected = np.array([[np.mean(labels[i] != labels[j]) for j in range(7)] for i in range(7)])
    np.testing.assert_allclose(d.matrix, expected, atol=1e-6)
    pairs = [expected[i, j] for i, j in itertools.permutations(range(7), 2)]
    assert d.mean == pytest.approx(np.mean(pairs)) and d.kind == "argmax"
    assert d.interval[0] <= d.mean <= d.interval[1]
    assert d.test_error == pytest.approx(np.mean(labels != y[None]))
    assert d.ratio == pytest.approx(d.mean / d.test_error)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        gbl.disagreement(gbl.Categorical(jnp.asarray(logits[:1])))


def test_disagreement_of_gaussians_is_the_mean_squared_difference_of_means():
    loc = RNG.normal(size=(5, 30, 2))
    d = gbl.disagreement(gbl.Normal(jnp.asarray(loc), 1.0), resamples=200)
    expected = np.array([[np.mean((loc[i] - loc[j]) ** 2) for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(d.matrix, expected, rtol=1e-5, atol=1e-6)
    assert d.kind == "squared" and d.test_error is None and d.ratio is None


def test_ensembles_of_classifiers_by_hand():
    logits = RNG.normal(size=(4, 50, 3)) * 2
    y = RNG.integers(0, 3, 50)
    curve = gbl.ensemble(
        gbl.Categorical(jnp.asarray(logits)), jnp.asarray(y), sizes=(1, 4), draws=5
    )
    p = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    mix = p.mean(axis=0)  # size 4 of 4 seeds: every draw is the whole set
    onehot = np.eye(3)[y]
    np.testing.assert_allclose(curve.values["nll"][1], -np.mean(np.log(mix[np.arange(50), y])))
    np.testing.assert_allclose(curve.values["brier"][1], np.mean(np.sum((mix - onehot) ** 2, -1)))
    np.testing.assert_allclose(curve.values["accuracy"][1], np.mean(mix.argmax(-1) == y))
    np.testing.assert_allclose(curve.values["ece"][1], _loop_ece(mix, y, 15), rtol=1e-6)
    singles = [-np.mean(np.log(p[m][np.arange(50), y])) for m in range(4)]
    for value in curve.values["nll"][0]:  # a size-1 ensemble is one of the members
        assert np.min(np.abs(np.asarray(singles) - value)) < 1e-6
    assert curve.mean("nll")[1] <= np.mean(singles)  # a mixture's NLL: Jensen
    frame = curve.to_frame()
    assert frame["size"].tolist() == [1, 4] and "brier_high" in frame
    with pytest.raises(ValueError, match=r"sizes must be between 1 and the 4 seeds"):
        gbl.ensemble(gbl.Categorical(jnp.asarray(logits)), jnp.asarray(y), sizes=(8,))


def test_an_ensemble_of_gaussians_has_the_exact_mixture_nll():
    loc = RNG.normal(size=(3, 40, 1))
    scale = RNG.uniform(0.5, 2.0, size=(3, 40, 1))
    y = RNG.normal(size=(40, 1))
    curve = gbl.ensemble(
        gbl.Normal(jnp.asarray(loc), jnp.asarray(scale)), jnp.asarray(y), sizes=(3,), draws=2
    )
    dens = np.mean(
        [scipy.stats.norm.pdf(y[:, 0], loc[m, :, 0], scale[m, :, 0]) for m in range(3)], axis=0
    )
    np.testing.assert_allclose(curve.values["nll"][0], -np.mean(np.log(dens)), rtol=1e-6)
    # the core's MixtureNormal with equal weights gives the same NLL
    mixture = gbl.MixtureNormal(
        jnp.zeros((40, 3)),
        jnp.asarray(loc.transpose(1, 0, 2)),
        jnp.asarray(scale.transpose(1, 0, 2)),
    )
    assert float(gbl.nll(mixture, jnp.asarray(y))) == pytest.approx(
        -np.mean(np.log(dens)), rel=1e-5
    )
    np.testing.assert_allclose(curve.values["mse"][0], np.mean((loc.mean(0) - y) ** 2))


def test_a_sweep_keeps_each_seeds_predictions_for_the_analyses(tmp_path):
    import jax
    import optax

    train = gbl.problems.circles(jax.random.PRNGKey(1), 48)
    test = gbl.problems.circles(jax.random.PRNGKey(2), 20)
    model = gbl.mlp([3], train.head)
    out = gbl.sweep(
        model,
        optax.adam(0.05),
        train,
        key=jax.random.PRNGKey(0),
        seeds=5,
        steps=40,
        eval_data=test,
        keep_params=True,
        keep_predictions=True,
        grid={"init_scale": [0.5, 1.0]},
    )
    assert isinstance(out.predictions, gbl.Bernoulli)
    assert out.predictions.logits.shape == (2, 5, 20)
    by_hand = jax.vmap(jax.vmap(lambda p: model.apply(p, test.x).logits))(out.params)
    np.testing.assert_allclose(out.predictions.logits, by_hand, rtol=1e-6, atol=1e-6)
    cell = out.cell(init_scale=1.0)
    d = gbl.disagreement(cell, test.y.astype(int))
    np.testing.assert_allclose(d.matrix, gbl.disagreement(cell.predictions).matrix)
    curve = gbl.ensemble(cell, test.y.astype(int), sizes=(1, 5), draws=3)
    assert curve.values["nll"].shape == (2, 3)
    with pytest.raises(ValueError, match=r"has a grid \[2\]; take one cell"):
        gbl.disagreement(out)
    folder = cell.replace(params=None, init_params=None).save(tmp_path / "p")
    saved = gbl.load(folder)
    np.testing.assert_array_equal(saved.predictions.logits, cell.predictions.logits)
    doc = json.loads((folder / "results.json").read_text())
    doc["sweep"]["predictions"]["family"] = "Poisson"  # a family sweep.npz cannot rebuild
    (folder / "results.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"\"sweep\".predictions must be null or .*'Bernoulli'"):
        gbl.load(folder)
    plain = gbl.sweep(model, optax.adam(0.05), train, key=jax.random.PRNGKey(0), seeds=2, steps=5)
    with pytest.raises(ValueError, match="kept no predictions; sweep with keep_predictions"):
        gbl.ensemble(plain, test.y)
    with pytest.raises(ValueError, match="keep_predictions=True keeps .* pass eval_data"):
        gbl.sweep(
            model,
            optax.adam(0.05),
            train,
            key=jax.random.PRNGKey(0),
            seeds=2,
            steps=5,
            keep_predictions=True,
        )


def test_kept_gaussian_predictions_with_a_fixed_scale_make_a_mixture():
    import jax
    import optax

    data = gbl.problems.sine(jax.random.PRNGKey(0), 40)
    test = gbl.problems.sine(jax.random.PRNGKey(1), 15)
    model = gbl.mlp([4], data.head)  # a unit-variance Gaussian: its scale is one number a run
    out = gbl.sweep(
        model,
        optax.adam(0.02),
        data,
        key=jax.random.PRNGKey(0),
        seeds=3,
        steps=30,
        eval_data=test,
        keep_predictions=True,
    )
    curve = gbl.ensemble(out, test.y, sizes=(3,), draws=1)
    loc = np.asarray(out.predictions.loc, np.float64)
    y = np.asarray(test.y, np.float64)
    dens = np.mean([scipy.stats.norm.pdf(y[:, 0], loc[m, :, 0], 1.0) for m in range(3)], axis=0)
    np.testing.assert_allclose(curve.values["nll"][0, 0], -np.mean(np.log(dens)), rtol=1e-5)


def test_a_flax_model_keeps_its_predictions_too(tmp_path):
    import jax
    import optax

    nn = pytest.importorskip("flax.linen")

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(jnp.tanh(nn.Dense(8)(x)))

    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 2)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    data = gbl.problems.Data(jnp.asarray(x), jnp.asarray(y), None, "blobs")
    model = gbl.models.from_flax(MLP(), lambda z: gbl.Categorical(z))
    out = gbl.sweep(
        model,
        optax.adam(0.05),
        data,
        key=jax.random.PRNGKey(0),
        seeds=3,
        steps=20,
        eval_data=(x[:10], y[:10]),
        keep_params=True,
        keep_predictions=True,
    )
    by_hand = jax.vmap(lambda p: model.apply(p, jnp.asarray(x[:10])).logits)(out.params)
    np.testing.assert_allclose(out.predictions.logits, by_hand, rtol=1e-6, atol=1e-6)
    loaded = gbl.load(out.replace(params=None, init_params=None).save(tmp_path / "flax"))
    np.testing.assert_array_equal(loaded.predictions.logits, out.predictions.logits)
    assert gbl.ensemble(loaded, y[:10], sizes=(3,), draws=1).values["accuracy"].shape == (1, 1)
