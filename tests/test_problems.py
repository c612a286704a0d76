"""Problems: shapes, determinism, the stated constructions, the registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gbl_jax as gbl
from gbl_jax import problems

KEY = jax.random.PRNGKey(3)


def test_xor_is_xor():
    x, y = problems.xor()
    np.testing.assert_array_equal(y, np.logical_xor(x[:, 0], x[:, 1]).astype(np.float32))


@pytest.mark.parametrize("name", sorted(problems.REGISTRY))
def test_registered_problems_are_deterministic_and_fit_their_head(name):
    a, b = problems.make(name, KEY, 40 if name != "xor" else None), problems.make(name, KEY, 40 if name != "xor" else None)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.x.ndim == 2 and a.y.shape[0] == a.x.shape[0]
    model = gbl.mlp([3], a.head)
    dist = model.apply(model.init(KEY, a.x.shape[1]), a.x)
    assert np.isfinite(float(gbl.nll(dist, a.y)))
    assert problems.REGISTRY[name].description
    if name != "xor":
        c = problems.make(name, jax.random.PRNGKey(4), 40)
        assert not np.array_equal(a.x, c.x)


def test_bishop_inverse_follows_its_formula():
    x, t = problems.bishop_inverse(KEY, 2000)
    assert x.shape == (2000, 1) and t.shape == (2000, 1)
    residual = np.asarray(x - t - 0.3 * jnp.sin(2 * jnp.pi * t))
    assert residual.min() >= -0.1 - 1e-6 and residual.max() <= 0.1 + 1e-6 and residual.std() > 0.05
    assert 0 <= float(t.min()) and float(t.max()) <= 1


def test_teacher_student_labels_with_a_planted_relu_net():
    x, y = problems.teacher_student(KEY, 500, 5, 3)
    assert x.shape == (500, 5) and y.shape == (500, 1)
    assert np.all(np.asarray(y) >= 0)
    # E[relu(w.x)] = 1 / sqrt(2 pi) per unit-norm teacher row: 3 rows.
    np.testing.assert_allclose(float(y.mean()), 3 / np.sqrt(2 * np.pi), rtol=0.1)


def test_two_spirals_and_circles_are_balanced_classification():
    for data in (problems.two_spirals(KEY, 100), problems.circles(KEY, 100)):
        assert data.x.shape == (100, 2) and data.y.shape == (100,)
        assert float(data.y.mean()) == 0.5


def test_unknown_problem_and_bad_sizes_raise():
    with pytest.raises(ValueError, match="two_spirals"):
        problems.make("spiral", KEY)
    with pytest.raises(ValueError, match="n must be"):
        problems.sine(KEY, 0)
