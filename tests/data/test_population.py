"""The ReLU population loss: the arc-cosine kernel against integration and Monte Carlo, and
finite gradients and Hessians where units align."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate

import gbl_jax as gbl
from gbl_jax.data.population import (
    arc_kernel,
    relu_gram,
    relu_population_loss,
    relu_self_gram,
    relu_student,
)


def _gram_by_quadrature(a, b):
    """E[relu(a.x) relu(b.x)] for a, b in R^2, x ~ N(0, I): the radial part integrates to 2."""

    def f(phi):
        u = np.array([math.cos(phi), math.sin(phi)])
        return max(a @ u, 0.0) * max(b @ u, 0.0)

    return (
        2
        * integrate.quad(f, 0, 2 * math.pi, limit=200, points=[1, 2, 3, 4, 5, 6])[0]
        / (2 * math.pi)
    )


def test_kernel_matches_quadrature_at_every_angle():
    rng = np.random.default_rng(0)
    a = np.array([1.3, 0.0])
    for angle in (0.0, 1e-3, 0.7, math.pi / 2, 2.5, math.pi - 1e-3, math.pi):
        b = 0.6 * np.array([math.cos(angle), math.sin(angle)])
        got = float(relu_gram(jnp.asarray([a], jnp.float32), jnp.asarray([b], jnp.float32))[0, 0])
        assert got == pytest.approx(_gram_by_quadrature(a, b), rel=1e-5, abs=1e-6), angle
    a, b = rng.normal(size=(2, 2))
    assert float(relu_gram(a[None], b[None])[0, 0]) == pytest.approx(
        _gram_by_quadrature(a, b), rel=1e-5
    )
    assert float(arc_kernel(1.0)) == pytest.approx(math.pi)  # aligned: |a||b| / 2
    assert float(arc_kernel(-1.0)) == pytest.approx(0.0, abs=1e-7)  # opposite: never both on


def test_population_loss_matches_monte_carlo_of_the_networks():
    rng = np.random.default_rng(1)
    w, v = rng.normal(size=(3, 5)), np.eye(5)[:2]
    x = rng.normal(size=(400_000, 5))
    err = np.maximum(x @ w.T, 0).sum(1) - np.maximum(x @ v.T, 0).sum(1)
    sample = 0.5 * err**2
    se = sample.std() / math.sqrt(len(sample))
    got = float(relu_population_loss(jnp.asarray(w, jnp.float32), jnp.asarray(v, jnp.float32)))
    assert abs(got - sample.mean()) < 4 * se
    self_gram = relu_self_gram(jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(np.diag(self_gram), 0.5 * np.sum(w * w, 1), rtol=1e-6)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(
        np.asarray(self_gram)[off],
        np.asarray(relu_gram(jnp.asarray(w), jnp.asarray(w)))[off],
        rtol=1e-5,
    )


def test_gradient_and_hessian_are_finite_where_units_align():
    student, data, loss = relu_student(4, 4)
    teacher = jnp.eye(4)
    assert float(loss(teacher, data.y)) == pytest.approx(0.0, abs=1e-6)  # the global minimum
    grad = jax.grad(loss)(teacher, data.y)
    hess = jax.hessian(loss)(teacher, data.y).reshape(16, 16)
    assert np.all(np.isfinite(hess)) and float(jnp.max(jnp.abs(grad))) < 1e-5
    assert np.linalg.eigvalsh(np.asarray(hess, np.float64)).min() > -1e-4  # a minimum: PSD
    # a generic point: the hand-written JVPs agree with central differences
    w = jax.random.normal(jax.random.PRNGKey(0), (4, 4))
    g = np.asarray(jax.grad(loss)(w, data.y))
    eps = 1e-2
    for idx in [(0, 0), (1, 3), (3, 2)]:
        e = jnp.zeros((4, 4)).at[idx].set(eps)
        fd = (float(loss(w + e, data.y)) - float(loss(w - e, data.y))) / (2 * eps)
        assert g[idx] == pytest.approx(fd, rel=1e-2, abs=1e-4)


def test_relu_student_is_a_model_for_sweep():
    student, data, loss = relu_student(6, 4)
    w = student.init(jax.random.PRNGKey(0), data.x)
    assert w.shape == (6, 4) and student.apply(w, data.x) is w
    assert data.x.shape == (1, 4) and data.y.shape == (1, 1)
    many = jax.vmap(lambda k: student.init(k, data.x))(jax.random.split(jax.random.PRNGKey(1), 500))
    assert float(jnp.std(many)) == pytest.approx(math.sqrt(2 / 10), rel=0.05)  # Xavier normal
    out = gbl.sweep(
        student, optax.sgd(0.1), data, key=jax.random.PRNGKey(0), seeds=3, steps=300, loss=loss
    )
    assert np.all(out.losses[:, -1] < out.losses[:, 0])
    for bad in (dict(n=0, k=2), dict(n=2, k=1.5)):
        with pytest.raises(ValueError):
            relu_student(**bad)
