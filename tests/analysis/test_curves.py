"""Tests for gbl_jax.analysis.curves: Bezier curves between trained seeds."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.analysis.curves import bernstein, curve_point


@pytest.fixture(scope="module")
def pairs():
    data = gbl.problems.two_spirals(jax.random.PRNGKey(0), 96)
    model = gbl.mlp([12], data.head)
    out = gbl.sweep(
        model,
        optax.adam(0.05),
        data,
        key=jax.random.PRNGKey(1),
        seeds=6,
        steps=400,
        keep_params=True,
    )
    a = jax.tree.map(lambda p: p[0::2], out.params)
    b = jax.tree.map(lambda p: p[1::2], out.params)
    return model, data, a, b


def test_bernstein_weights_are_the_binomial_terms():
    t = 0.3
    for n in (1, 2, 4):
        want = [math.comb(n, k) * t**k * (1 - t) ** (n - k) for k in range(n + 1)]
        np.testing.assert_allclose(bernstein(t, n), want, rtol=1e-6)
    a, m, b = {"w": jnp.array(1.0)}, {"w": jnp.array([3.0])}, {"w": jnp.array(2.0)}
    # (1-t)^2 a + 2 t (1-t) m + t^2 b at t = 0.5: 0.25 + 1.5 + 0.5
    assert float(curve_point(a, m, b, 0.5)["w"]) == pytest.approx(2.25)


def test_trained_curve_lowers_the_lines_barrier(pairs):
    model, data, a, b = pairs
    c = gbl.curve(model, data, a, b, steps=300, num=21)
    assert c.loss.shape == c.line.shape == (3, 21)
    # the line is gbl.interpolate's path; its barrier gbl.barrier's
    np.testing.assert_allclose(c.line, gbl.interpolate(model, data, a, b, num=21), rtol=1e-5)
    np.testing.assert_allclose(
        c.line_barrier, gbl.barrier(model, data, a, b, num=21), rtol=1e-5, atol=1e-6
    )
    assert np.all(c.line_barrier > 0.3)  # these pairs have a barrier
    assert np.all(c.loss.max(axis=1) < c.line.max(axis=1))
    assert np.all(c.barrier < 0.5 * c.line_barrier)
    # the ends of the curve are the two params, exactly; so are the losses there
    for t, ends in ((0.0, a), (1.0, b)):
        for got, want in zip(jax.tree.leaves(c.at(t)), jax.tree.leaves(ends)):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(c.loss[:, [0, -1]], c.line[:, [0, -1]], rtol=1e-6)
    # the middle of the trained curve, evaluated by hand, is where its loss says
    mid = jax.tree.map(lambda p: p[1], c.at(0.5))
    want = float(gbl.nll(model.apply(mid, data.x), data.y))
    assert c.loss[1, 10] == pytest.approx(want, rel=1e-4)
    frame = c.to_frame()
    assert len(frame) == 63 and set(frame) == {"pair", "t", "curve", "line", "aligned"}


def test_alignment_first_and_one_pair(pairs):
    model, data, a, b = pairs
    one_a, one_b = (jax.tree.map(lambda p: p[0], t) for t in (a, b))
    c = gbl.curve(model, data, one_a, one_b, steps=50, num=5, align="tanh")
    assert c.aligned and c.loss.shape == (5,)
    aligned = gbl.align(one_a, one_b, activation="tanh")
    for got, want in zip(jax.tree.leaves(c.params_b), jax.tree.leaves(aligned)):
        np.testing.assert_allclose(got, want)
    # alignment keeps params_b's function, so the curve's end loss is unchanged
    assert c.loss[-1] == pytest.approx(float(gbl.nll(model.apply(one_b, data.x), data.y)), rel=1e-5)
    np.testing.assert_allclose(
        c.line, gbl.interpolate(model, data, one_a, aligned, num=5), rtol=1e-5
    )


def test_bad_input(pairs):
    model, data, a, b = pairs
    with pytest.raises(ValueError, match="steps"):
        gbl.curve(model, data, a, b, steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        gbl.curve(model, data, a, b, steps=5, batch_size=10_000)
    short = jax.tree.map(lambda p: p[:2], b)
    with pytest.raises(ValueError, match="seeds"):
        gbl.curve(model, data, a, short, steps=5)
