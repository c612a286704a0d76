"""cnn1d: shapes, the function it computes (numpy loops, lax, flax), gradients, vmap, training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import gbl_jax as gbl
from gbl_jax.nets.convnets import cnn1d, conv1d

HEADS = [
    gbl.heads.categorical(4),
    gbl.heads.gaussian(2),
    gbl.heads.bernoulli(),
    gbl.heads.heteroscedastic_gaussian(1),
    gbl.heads.mixture_density(3, 2),
]


@pytest.mark.parametrize("head", HEADS, ids=lambda h: h.name)
@pytest.mark.parametrize("x_shape", [(6, 20), (6, 20, 3)])
def test_params_and_outputs_have_the_stated_shapes(head, x_shape):
    model = cnn1d([4, 5], head, kernel_size=3, stride=2)
    params = model.init(jax.random.PRNGKey(0), jnp.ones(x_shape))
    in_ch = x_shape[2] if len(x_shape) == 3 else 1
    # lengths 20 -> floor((20 + 2 - 3) / 2) + 1 = 10 -> 5; the head sees 5 * 5 features
    assert jax.tree.map(lambda a: a.shape, params["conv"]) == [
        {"w": (3, in_ch, 4), "b": (4,)},
        {"w": (3, 4, 5), "b": (5,)},
    ]
    assert params["head"]["w"].shape == (25, head.out_dim)
    dist = jax.jit(model.apply)(params, jnp.ones(x_shape))
    expected = head.apply(params["head"], jnp.ones((6, 25)))
    assert type(dist) is type(expected)
    assert [a.shape for a in jax.tree.leaves(dist)] == [a.shape for a in jax.tree.leaves(expected)]


@pytest.mark.parametrize("padding, flat", [(1, 100), ("SAME", 125), ("VALID", 50), (0, 50)])
def test_mnist1d_configuration_gives_the_papers_lengths(padding, flat):
    # PyTorch's Conv1d(kernel 5, stride 2, padding 1) on length 40: 19, 9, 4 -> 100 features
    model = cnn1d([25, 25, 25], gbl.heads.categorical(10), padding=padding)
    params = model.init(jax.random.PRNGKey(0), jnp.ones((2, 40)))
    assert [layer["w"].shape for layer in params["conv"]] == [(5, 1, 25), (5, 25, 25), (5, 25, 25)]
    assert params["head"]["w"].shape == (flat, 10)
    assert jax.jit(model.apply)(params, jnp.ones((3, 40))).logits.shape == (3, 10)


def test_no_conv_layers_is_a_generalized_linear_model_of_the_flattened_input():
    model = cnn1d((), gbl.heads.bernoulli())
    x = np.random.default_rng(0).normal(size=(4, 9, 2)).astype(np.float32)
    params = model.init(jax.random.PRNGKey(0), x)
    assert params["conv"] == [] and params["head"]["w"].shape == (18, 1)
    expected = x.reshape(4, 18) @ np.asarray(params["head"]["w"])[:, 0]
    np.testing.assert_allclose(model.apply(params, x).logits, expected, rtol=1e-5, atol=1e-6)


def _numpy_conv(h, w, b, stride, lo, hi):
    """Direct loops: out[n, t, o] = b[o] + sum_{j, c} h_pad[n, stride * t + j, c] w[j, c, o]."""
    n, length, in_ch = h.shape
    k, _, out_ch = w.shape
    h_pad = np.zeros((n, length + lo + hi, in_ch))
    h_pad[:, lo : lo + length] = h
    out_len = (length + lo + hi - k) // stride + 1
    out = np.zeros((n, out_len, out_ch))
    for t in range(out_len):
        for j in range(k):
            for c in range(in_ch):
                out[:, t, :] += h_pad[:, stride * t + j, c][:, None] * w[j, c, :][None, :]
    return out + b


def _pads(length, k, stride, padding):
    if padding == "VALID":
        return 0, 0
    if padding == "SAME":  # XLA's rule: output length ceil(L / stride), the odd zero at the end
        total = max((-(-length // stride) - 1) * stride + k - length, 0)
        return total // 2, total - total // 2
    return padding, padding


@pytest.mark.parametrize(
    "kernel_size, stride, padding",
    [(5, 2, 1), (3, 1, 0), (4, 3, 2), (2, 3, "VALID"), (4, 2, "SAME"), (5, 3, "SAME")],
)
def test_forward_pass_equals_a_numpy_loop_convolution(kernel_size, stride, padding):
    model = cnn1d(
        [3, 4], gbl.heads.gaussian(2), kernel_size=kernel_size, stride=stride, padding=padding
    )
    x = np.random.default_rng(0).normal(size=(5, 17, 2)).astype(np.float32)
    params = model.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda a: a + 0.1, params)  # nonzero biases are checked too
    h = x.astype(np.float64)
    for layer in params["conv"]:
        w, b = np.asarray(layer["w"], np.float64), np.asarray(layer["b"], np.float64)
        h = np.maximum(
            _numpy_conv(h, w, b, stride, *_pads(h.shape[1], kernel_size, stride, padding)), 0
        )
    expected = h.reshape(5, -1) @ np.asarray(params["head"]["w"]) + np.asarray(params["head"]["b"])
    np.testing.assert_allclose(jax.jit(model.apply)(params, x).loc, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kernel_size, stride, padding",
    [(5, 2, 1), (1, 1, 0), (3, 4, 2), (2, 3, "VALID"), (4, 2, "SAME"), (6, 1, "SAME")],
)
def test_conv1d_equals_lax_conv_general_dilated(kernel_size, stride, padding):
    k_h, k_w, k_b = jax.random.split(jax.random.PRNGKey(0), 3)
    h = jax.random.normal(k_h, (3, 13, 4))
    params = {"w": jax.random.normal(k_w, (kernel_size, 4, 5)), "b": jax.random.normal(k_b, (5,))}
    pads = padding if isinstance(padding, str) else [(padding, padding)]
    expected = jax.lax.conv_general_dilated(
        h, params["w"], (stride,), pads, dimension_numbers=("NWC", "WIO", "NWC")
    )
    out = conv1d(params, h, stride=stride, padding=padding)
    np.testing.assert_allclose(out, expected + params["b"][None, None, :], rtol=1e-5, atol=1e-5)


def test_mnist1d_cnn_equals_flax_with_the_same_params():
    nn = pytest.importorskip("flax.linen")

    class PaperCNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = x[..., None]
            for _ in range(3):
                h = nn.relu(nn.Conv(25, (5,), strides=2, padding=[(1, 1)])(h))
            return nn.Dense(10)(h.reshape(h.shape[0], -1))

    x = jax.random.normal(jax.random.PRNGKey(0), (8, 40))
    model = cnn1d([25, 25, 25], gbl.heads.categorical(10))
    params = model.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda a: a + 0.01, params)
    variables = {
        "params": {
            f"Conv_{i}": {"kernel": layer["w"], "bias": layer["b"]}
            for i, layer in enumerate(params["conv"])
        }
    }
    variables["params"]["Dense_0"] = {"kernel": params["head"]["w"], "bias": params["head"]["b"]}
    assert jax.tree.map(jnp.shape, PaperCNN().init(jax.random.PRNGKey(0), x)) == jax.tree.map(
        jnp.shape, variables
    )
    np.testing.assert_allclose(
        model.apply(params, x).logits, PaperCNN().apply(variables, x), rtol=1e-5, atol=1e-5
    )


def test_gradient_of_nll_matches_central_differences():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(4, 11, 2)), rng.integers(0, 3, size=4)
        model = cnn1d([3, 2], gbl.heads.categorical(3), kernel_size=3, stride=2)
        params = jax.tree.map(lambda a: a + 0.05, model.init(jax.random.PRNGKey(0), x))
        assert params["conv"][0]["w"].dtype == jnp.float64
        flat, unravel = ravel_pytree(params)
        loss = jax.jit(lambda v: gbl.nll(model.apply(unravel(v), x), y))
        grad = jax.grad(loss)(flat)
        eps = 1e-6
        basis = np.eye(flat.size)
        fd = np.array([(loss(flat + eps * e) - loss(flat - eps * e)) / (2 * eps) for e in basis])
        assert np.abs(grad).max() > 1e-2
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_vmap_over_seeds_equals_each_seed_alone():
    model = cnn1d([3, 3], gbl.heads.categorical(4), kernel_size=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 16))
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    stacked = jax.jit(jax.vmap(model.init, in_axes=(0, None)))(keys, x)
    logits = jax.jit(jax.vmap(lambda p: model.apply(p, x).logits))(stacked)
    alone_fn = jax.jit(lambda key: model.apply(model.init(key, x), x).logits)
    for i, key in enumerate(keys):
        alone = alone_fn(key)
        np.testing.assert_allclose(logits[i], alone, rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits[0], logits[1])


def _bump_data(n=64, length=16):
    """Class = which half of the sequence holds a bump; separable by a small CNN."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=n)
    x = 0.3 * rng.normal(size=(n, length))
    where = rng.integers(1, length // 2 - 1, size=n) + y * (length // 2)
    x[np.arange(n), where] += 2.0
    return x.astype(np.float32), y.astype(np.int32)


def test_trains_with_gbl_sweep_and_gbl_train():
    x, y = _bump_data()
    model = cnn1d([4], gbl.heads.categorical(2), kernel_size=3)
    adam = optax.adam(0.05)
    swept = gbl.sweep(
        model, adam, (x, y), key=jax.random.PRNGKey(0), seeds=2, steps=5, batch_size=16
    )
    assert swept.final_loss.shape == (2,) and np.all(np.isfinite(swept.final_loss))
    assert swept.final_loss[0] != swept.final_loss[1]
    out = gbl.train(model, adam, (x, y), steps=5, batch_size=16, **swept.rerun(1))
    np.testing.assert_allclose(swept.final_loss[1], out.final_loss, rtol=1e-5)
    start = gbl.nll(jax.jit(model.apply)(out.init_params, x), y)
    assert not out.diverged and out.final_loss < 0.9 * start


def test_init_scheme_applies_to_every_kernel_and_the_head():
    model = cnn1d([4, 4], gbl.heads.gaussian(1), init=gbl.inits.normal(0.0))
    params = model.init(jax.random.PRNGKey(0), jnp.ones((2, 12)))
    assert all(not np.any(leaf) for leaf in jax.tree.leaves(params))
    model = cnn1d([64, 64], gbl.heads.gaussian(1), init="he_normal")
    params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.ones((2, 12)))
    # fan_in of [5, 64, 64] is 5 * 64 (not 64): std sqrt(2 / 320); 20k draws, ~0.5% error
    np.testing.assert_allclose(np.std(params["conv"][1]["w"]), np.sqrt(2 / 320), rtol=0.03)


def test_bad_arguments_raise_naming_the_values():
    head = gbl.heads.categorical(3)
    with pytest.raises(ValueError, match=r"channels \[25, 0\].*0"):
        cnn1d([25, 0], head)
    with pytest.raises(ValueError, match="kernel_size.*0"):
        cnn1d([4], head, kernel_size=0)
    with pytest.raises(ValueError, match="stride.*-1"):
        cnn1d([4], head, stride=-1)
    with pytest.raises(ValueError, match="padding.*-2"):
        cnn1d([4], head, padding=-2)
    with pytest.raises(ValueError, match="padding.*'full'"):
        cnn1d([4], head, padding="full")
    with pytest.raises(ValueError, match="head.*dict"):
        cnn1d([4], {"w": 1})
    with pytest.raises(ValueError, match="activation"):
        cnn1d([4], head, activation="swishy")
    model = cnn1d([4, 4], head)
    with pytest.raises(ValueError, match=r"\[N, L\] or \[N, L, C\].*\[5\]"):
        model.init(jax.random.PRNGKey(0), jnp.ones(5))
    with pytest.raises(ValueError, match=r"\[2, 8, 1, 1\]"):
        model.init(jax.random.PRNGKey(0), jnp.ones((2, 8, 1, 1)))
    # 6 -> floor((6 + 2 - 5) / 2) + 1 = 2, and a window of 5 does not fit 2 + 2 padded zeros
    with pytest.raises(ValueError, match=r"length 6 are too short: conv layer 1 gets length 2"):
        model.init(jax.random.PRNGKey(0), jnp.ones((2, 6)))
    params = model.init(jax.random.PRNGKey(0), jnp.ones((2, 40)))
    with pytest.raises(ValueError, match=r"length 5 are too short"):
        model.apply(params, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"1 input channels.*\[2, 40, 3\] with 3"):
        model.apply(params, jnp.ones((2, 40, 3)))
