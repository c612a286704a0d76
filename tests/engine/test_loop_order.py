"""The step loop's carry order: leaves sorted by where the forward pass first reads them."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.engine import training
from gbl_jax.engine.loop_order import LoopCarry, first_use_order
from gbl_jax.engine.runconfig import check_run
from gbl_jax.engine.training import make_engine, split_keys

XOR = gbl.problems.xor()


def _paths(tree, order):
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    return [paths[i] for i in order]


def _order_of(model, data):
    params = model.init(jax.random.PRNGKey(0), data.x)
    treedef = jax.tree.structure(params)
    fn = lambda leaves, x, y: gbl.nll(model.apply(jax.tree.unflatten(treedef, leaves), x), y)  # noqa
    return params, first_use_order(fn, jax.tree.leaves(params), data.x, data.y)


def test_mlp_params_in_layer_order_not_dict_order():
    params, order = _order_of(gbl.mlp([4, 3], XOR.head), XOR)
    # the dict flattens head first and b before w; the forward pass reads the other way round
    assert _paths(params, range(6))[:2] == ["['head']['b']", "['head']['w']"]
    assert _paths(params, order) == [
        "['hidden'][0]['w']",
        "['hidden'][0]['b']",
        "['hidden'][1]['w']",
        "['hidden'][1]['b']",
        "['head']['w']",
        "['head']['b']",
    ]


def test_reads_inside_nested_calls_count_not_the_call():
    @jax.jit
    def inner(a, b):  # one pjit equation reads both; inside, b is read first
        return jnp.sin(b) * 2.0 + a

    fn = lambda leaves: inner(leaves[0], leaves[1]) + jax.nn.relu(leaves[2]).sum()  # noqa
    leaves = [jnp.ones(3), jnp.ones(3), jnp.ones(3)]
    assert first_use_order(fn, leaves) == (1, 0, 2)


def test_unread_leaves_go_last_and_ties_keep_their_order():
    fn = lambda leaves: leaves[2] * leaves[1] + leaves[2]  # noqa: E731 (one multiply reads 2, 1)
    leaves = [jnp.ones(()), jnp.ones(()), jnp.ones(())]
    assert first_use_order(fn, leaves) == (1, 2, 0)


def test_loop_carry_round_trip():
    tree = {"b": [jnp.arange(2.0), jnp.arange(3.0)], "a": jnp.arange(4.0)}
    carry = LoopCarry(tree, (2, 0, 1))  # leaves: a, b[0], b[1]
    packed = carry.pack(tree)
    assert [p.shape for p in packed] == [(3,), (4,), (2,)]
    back = carry.unpack(packed)
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    for got, want in zip(jax.tree.leaves(back), jax.tree.leaves(tree)):
        np.testing.assert_array_equal(got, want)


def test_flax_params_ordered_by_layer():
    nn = pytest.importorskip("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            hidden = jnp.tanh(nn.Dense(4)(x))  # Dense_0: built first, read first
            return nn.Dense(1)(hidden)

    module = Net()
    params = module.init(jax.random.PRNGKey(0), XOR.x)
    treedef = jax.tree.structure(params)
    fn = lambda leaves, x: module.apply(jax.tree.unflatten(treedef, leaves), x)  # noqa: E731
    order = first_use_order(fn, jax.tree.leaves(params), XOR.x)
    assert _paths(params, order) == [
        f"['params']['Dense_{i}']['{leaf}']" for i in (0, 1) for leaf in ("kernel", "bias")
    ]


def test_engine_in_reading_order_computes_the_same_runs(monkeypatch):
    # minibatches and a 2-layer net, vmapped over seeds as a sweep runs them
    orders = []
    spy = lambda *a: orders.append(first_use_order(*a)) or orders[-1]  # noqa: E731
    monkeypatch.setattr(training, "first_use_order", spy)
    data = gbl.problems.two_spirals(jax.random.PRNGKey(3), 64)
    cfg, (x, y, ex, ey) = check_run(
        gbl.mlp([6, 5], data.head),
        optax.adam(0.02),
        data,
        key=jax.random.PRNGKey(0),
        steps=60,
        batch_size=16,
        loss=gbl.nll,
        log_every=10,
    )
    keys = jax.vmap(split_keys)(jax.random.split(jax.random.PRNGKey(0), 4))
    out = {}
    for flag in (False, True):
        run = make_engine(cfg, reading_order=flag).run
        out[flag] = jax.jit(jax.vmap(lambda a, b: run(a, b, {}, x, y, ex, ey)))(*keys)
        # only the reading-order engine asks for the order, and gets the layers' order
        assert bool(orders) == flag
    assert orders[0] == (3, 2, 5, 4, 1, 0)  # dict: head b, w; hidden[0] b, w; hidden[1] b, w
    for a, b in zip(jax.tree.leaves(out[False]), jax.tree.leaves(out[True])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert np.all(np.isfinite(out[True]["final_loss"]))
