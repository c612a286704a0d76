"""The model protocol: hand-written, residual, image, flax (linen and NNX), equinox and stochastic
models go through train and sweep with defaults; Data is a real pair and a pytree; bad models are
refused."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.data import problems
from gbl_jax.engine import chunking, sweeps

KEY = jax.random.PRNGKey(3)
ADAM = optax.adam(0.05)
XOR = problems.xor()


def tuple_model():
    """Hand-written 2-4-1 tanh net with tuple params, as a researcher would write it."""

    def init(key, x):
        k1, k2 = jax.random.split(key)
        return (
            jax.random.normal(k1, (x.shape[1], 4)),
            jnp.zeros(4),
            jax.random.normal(k2, (4,)) * 0.5,
            jnp.zeros(()),
        )

    def apply(params, x):
        w1, b1, w2, b2 = params
        return gbl.Bernoulli(jnp.tanh(x @ w1 + b1[None, :]) @ w2 + b2)

    return gbl.Model(init, apply, name="tuple-net")


def residual_model(width=4, blocks=2):
    """x -> dense -> (h + tanh(h W_k)) per block -> logit: a residual net as nested dicts."""

    def init(key, x):
        keys = jax.random.split(key, blocks + 2)
        return {
            "in": jax.random.normal(keys[0], (x.shape[1], width)) * 0.5,
            "b": jnp.zeros(width),
            "blocks": [jax.random.normal(k, (width, width)) * 0.3 for k in keys[1:-1]],
            "out": jax.random.normal(keys[-1], (width,)) * 0.5,
        }

    def apply(params, x):
        h = x @ params["in"] + params["b"][None, :]
        for w in params["blocks"]:
            h = h + jnp.tanh(h @ w)
        return gbl.Bernoulli(h @ params["out"])

    return gbl.Model(init, apply, name="residual")


def test_data_is_a_real_pair_and_a_pytree():
    x, y = XOR
    assert XOR[0] is XOR.x and XOR[1] is XOR.y and len(XOR) == 2 and x is XOR.x
    leaves, tree = jax.tree.flatten(XOR)
    assert len(leaves) == 2
    doubled = jax.tree.map(lambda a: 2 * a, XOR)
    assert isinstance(doubled, problems.Data) and doubled.head is XOR.head and doubled.name == "xor"
    np.testing.assert_array_equal(doubled.x, 2 * XOR.x)
    jitted = jax.jit(lambda d: d)(XOR)
    assert isinstance(jitted, problems.Data) and jitted.name == "xor"


@pytest.mark.parametrize("make", [tuple_model, residual_model], ids=["tuple", "residual"])
def test_hand_written_models_train_and_sweep_with_defaults(make):
    model = make()
    out = gbl.sweep(model, ADAM, XOR, key=KEY, seeds=8, steps=300, keep_params=True)
    assert out.final_loss.shape == (8,) and out.chunk_size >= 1 and not out.diverged.any()
    keys = jax.random.split(KEY, 8)
    single = gbl.train(model, ADAM, XOR, key=keys[5], steps=300)
    np.testing.assert_allclose(out.final_loss[5], single.final_loss, rtol=1e-4, atol=1e-6)
    assert jax.tree.structure(single.params) == jax.tree.structure(
        jax.tree.map(lambda a: a[0], out.params)
    )
    assert out.final_loss.min() < 0.1  # some seeds solve XOR


def test_image_shaped_inputs_and_numpy_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4, 4, 1)).astype(np.float32)  # [N, H, W, C]
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.float32)

    def init(key, xs):
        return {"w": jax.random.normal(key, xs.shape[1:]) * 0.1, "b": jnp.zeros(())}

    def apply(params, xs):
        return gbl.Bernoulli(jnp.sum(xs * params["w"][None], axis=(1, 2, 3)) + params["b"])

    out = gbl.sweep(gbl.Model(init, apply), optax.adam(0.1), (x, y), key=KEY, seeds=4, steps=200)
    assert out.final_loss.shape == (4,) and np.all(out.final_loss < 0.3)


def test_flax_module():
    nn = pytest.importorskip("flax.linen")

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(jnp.tanh(nn.Dense(8)(x)))

    model = gbl.models.from_flax(MLP(), lambda z: gbl.Bernoulli(z[:, 0]))
    out = gbl.sweep(model, ADAM, XOR, key=KEY, seeds=4, steps=300)
    assert out.final_loss.shape == (4,) and out.final_loss.max() < 0.05
    single = gbl.train(model, ADAM, XOR, key=jax.random.split(KEY, 4)[2], steps=300)
    np.testing.assert_allclose(out.final_loss[2], single.final_loss, rtol=1e-4, atol=1e-6)


def test_a_flax_module_with_batch_statistics_is_refused_up_front():
    """BatchNorm(use_running_average=True) would train its statistics as weights, silently."""
    nn = pytest.importorskip("flax.linen")

    class Normed(nn.Module):
        running: bool

        @nn.compact
        def __call__(self, x):
            h = nn.BatchNorm(use_running_average=self.running)(nn.Dense(4)(x))
            return nn.Dense(1)(h)

    for running in (True, False):
        model = gbl.models.from_flax(Normed(running), lambda z: gbl.Bernoulli(z[:, 0]))
        with pytest.raises(
            ValueError,
            match=r"model.init\(key, x\) failed.*Normed has the "
            r"variable collection\(s\) \['batch_stats'\]",
        ):
            gbl.train(model, ADAM, XOR, key=KEY, steps=2)


def test_equinox_module_and_a_built_module_is_refused():
    eqx = pytest.importorskip("equinox")
    make = lambda key: eqx.nn.MLP(2, 1, 8, 1, activation=jnp.tanh, key=key)  # noqa: E731
    model = gbl.models.from_equinox(make, lambda z: gbl.Bernoulli(z[:, 0]))
    out = gbl.sweep(model, ADAM, XOR, key=KEY, seeds=4, steps=300)
    assert out.final_loss.shape == (4,) and out.final_loss.max() < 0.05
    assert np.ptp(out.losses[:, 0]) > 0  # every seed has its own init
    with pytest.raises(ValueError, match="function key -> module"):
        gbl.models.from_equinox(make(KEY), lambda z: gbl.Bernoulli(z[:, 0]))


def nnx_mlp(nnx, *, norm=None, dropout=0.0, keep_rngs=False):
    """A 2-8-1 tanh net as an NNX module; ``norm`` (a class) after the hidden layer; dropout
    draws from ``rngs`` when it is given and is off when it is None (or from a stream the module
    keeps, with ``keep_rngs``)."""

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(2, 8, rngs=rngs)
            self.norm = norm(8, rngs=rngs) if norm else None
            self.drop = nnx.Dropout(dropout, rngs=rngs if keep_rngs else None)
            self.out = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x, rngs=None):
            h = jnp.tanh(self.hidden(x))
            h = self.norm(h) if self.norm else h
            return self.out(self.drop(h, deterministic=rngs is None, rngs=rngs))

    return lambda key: Net(nnx.Rngs(key))


def to_bernoulli(z):
    return gbl.Bernoulli(z[:, 0])


def test_nnx_module_matches_the_module_itself_and_trains():
    nnx = pytest.importorskip("flax.nnx")
    make = nnx_mlp(nnx)
    model = gbl.models.from_nnx(make, to_bernoulli)
    params, module = model.init(KEY, XOR.x), make(KEY)
    np.testing.assert_allclose(model.apply(params, XOR.x).logits, module(XOR.x)[:, 0], rtol=1e-6)
    # the gradient through merge is nnx.grad's on the stateful module, leaf for leaf
    grads = jax.grad(lambda p: gbl.nll(model.apply(p, XOR.x), XOR.y))(params)
    want = nnx.grad(lambda m: gbl.nll(to_bernoulli(m(XOR.x)), XOR.y))(module)
    assert jax.tree.structure(grads) == jax.tree.structure(want)
    for got, ref in zip(jax.tree.leaves(grads), jax.tree.leaves(want)):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 1e-3  # not all zero

    out = gbl.sweep(model, ADAM, XOR, key=KEY, seeds=4, steps=300)
    assert out.final_loss.shape == (4,) and out.final_loss.max() < 0.05
    assert np.ptp(out.losses[:, 0]) > 0  # every seed has its own init
    single = gbl.train(model, ADAM, XOR, key=jax.random.split(KEY, 4)[2], steps=300)
    np.testing.assert_allclose(out.final_loss[2], single.final_loss, rtol=1e-4, atol=1e-6)


def test_nnx_refuses_a_built_module_batch_statistics_and_a_kept_rng_stream():
    """A pure apply holds every non-Param variable at its first value: BatchNorm statistics
    would never update, and a kept stream would give the same dropout mask every step."""
    nnx = pytest.importorskip("flax.nnx")
    with pytest.raises(ValueError, match="function key -> module"):
        gbl.models.from_nnx(nnx_mlp(nnx)(KEY), to_bernoulli)
    with pytest.raises(ValueError, match=r"Net holds variable\(s\) of type \['BatchStat'\]"):
        gbl.models.from_nnx(nnx_mlp(nnx, norm=nnx.BatchNorm), to_bernoulli)
    with pytest.raises(ValueError, match=r"\['RngCount', 'RngKey'\].*same numbers every step"):
        gbl.models.from_nnx(nnx_mlp(nnx, dropout=0.5, keep_rngs=True), to_bernoulli)
    normed = gbl.models.from_nnx(nnx_mlp(nnx, norm=nnx.LayerNorm), to_bernoulli)
    assert np.isfinite(gbl.train(normed, ADAM, XOR, key=KEY, steps=5).final_loss)


def test_stochastic_nnx_module_draws_dropout_from_the_data_key():
    nnx = pytest.importorskip("flax.nnx")
    model = gbl.models.from_nnx(nnx_mlp(nnx, dropout=0.5), to_bernoulli, stochastic=True)
    assert model.stochastic
    k_a, k_b = jax.random.split(KEY)
    a = gbl.train(model, ADAM, XOR, key=KEY, steps=50, data_key=k_a)
    b = gbl.train(model, ADAM, XOR, key=KEY, steps=50, data_key=k_b)
    assert not np.allclose(a.losses, b.losses)  # the dropout masks follow the data key
    out = gbl.sweep(model, ADAM, XOR, key=KEY, seeds=2, steps=50)
    assert np.all(np.isfinite(out.final_loss)) and np.ptp(out.losses[:, 1]) > 0
    # evaluation passes rngs=None: deterministic, so the final loss is that of the final params
    final = gbl.nll(model.apply(a.params, XOR.x), XOR.y)
    np.testing.assert_allclose(a.final_loss, final, rtol=1e-6)
    np.testing.assert_array_equal(
        model.apply(a.params, XOR.x).logits, model.apply(a.params, XOR.x, key=None).logits
    )


def dropout_model(rate=0.5):
    """A 2-16-1 net with inverted dropout on the hidden layer; deterministic when key is None."""

    def init(key, x):
        k1, k2 = jax.random.split(key)
        return (
            jax.random.normal(k1, (x.shape[1], 16)),
            jnp.zeros(16),
            jax.random.normal(k2, (16,)) * 0.3,
        )

    def apply(params, x, key=None):
        w1, b1, w2 = params
        h = jnp.tanh(x @ w1 + b1[None, :])
        if key is not None:
            h = h * jax.random.bernoulli(key, 1 - rate, h.shape) / (1 - rate)
        return gbl.Bernoulli(h @ w2)

    return gbl.Model(init, apply, name="dropout", stochastic=True)


def test_stochastic_model_gets_a_key_per_step_from_the_data_stream():
    model = dropout_model()
    k_a, k_b = jax.random.split(KEY)
    a = gbl.train(model, ADAM, XOR, key=KEY, steps=100, data_key=k_a)
    again = gbl.train(model, ADAM, XOR, key=KEY, steps=100, data_key=k_a)
    b = gbl.train(model, ADAM, XOR, key=KEY, steps=100, data_key=k_b)
    np.testing.assert_array_equal(a.losses, again.losses)
    assert not np.allclose(a.losses, b.losses)  # the dropout masks follow the data key
    np.testing.assert_array_equal(a.init_params[0], b.init_params[0])  # the init follows key
    # evaluation is deterministic (key=None): the final loss is the loss of the final params
    final = gbl.nll(model.apply(a.params, XOR.x), XOR.y)
    np.testing.assert_allclose(a.final_loss, final, rtol=1e-6)


def test_objects_that_are_not_models_are_refused():
    class NoApply:
        def init(self, key, x):
            return {}

    for bad, message in [(NoApply(), "lacks apply"), (object(), "lacks init and apply")]:
        with pytest.raises(ValueError, match=message):
            gbl.train(bad, ADAM, XOR, key=KEY, steps=5)
        with pytest.raises(ValueError, match=message):
            gbl.sweep(bad, ADAM, XOR, key=KEY, seeds=2, steps=5)


def test_mlp_init_takes_inputs_or_in_dim_and_follows_the_data_dtype():
    model = gbl.mlp([3], XOR.head)
    a, b = model.init(KEY, XOR.x), model.init(KEY, 2)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(u, v)
    assert model.init(KEY, np.int64(2))["head"]["w"].shape == (3, 1)
    with pytest.raises(ValueError, match="in_dim"):
        model.init(KEY, XOR.x[:, 0])


def test_chunk_size_comes_from_the_step_not_the_layout():
    spirals = problems.two_spirals(KEY, 256)
    cpu = jax.devices("cpu")[:1]
    sizes = {}
    for name, model in [
        ("tuple", tuple_model()),
        ("residual", residual_model(width=64, blocks=3)),
        ("mlp", gbl.mlp([8], spirals.head)),
    ]:
        sizes[name] = sweeps.plan_sweep(
            model, ADAM, spirals, key=KEY, seeds=4096, steps=300, devices=cpu
        ).chunk_size
    assert sizes["tuple"] >= 64 and sizes["mlp"] >= 64
    assert sizes["residual"] == chunking.CPU_SIDE_BY_SIDE


def test_a_namespace_with_init_and_apply_is_a_model():
    data = gbl.problems.xor()
    model = gbl.mlp([2], data.head)
    duck = types.SimpleNamespace(init=model.init, apply=model.apply)  # unhashable
    opt = optax.sgd(0.1)
    got = gbl.train(duck, opt, data, key=jax.random.PRNGKey(0), steps=20)
    want = gbl.train(model, opt, data, key=jax.random.PRNGKey(0), steps=20)
    np.testing.assert_array_equal(got.losses, want.losses)
