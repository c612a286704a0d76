"""Problems: shapes, determinism, the stated constructions, the registry, the Data record."""

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gbl_jax as gbl
from gbl_jax.data import problems

KEY = jax.random.PRNGKey(3)
FIXED = {"xor": None, "mnist1d": "mnist1d", "digits": "sklearn"}  # key-free; package needed


def test_xor_is_xor():
    x, y = problems.xor()
    np.testing.assert_array_equal(y, np.logical_xor(x[:, 0], x[:, 1]).astype(np.float32))


@pytest.mark.parametrize("name", sorted(problems.REGISTRY))
def test_registered_problems_are_deterministic_and_fit_their_head(name):
    if FIXED.get(name):
        pytest.importorskip(FIXED[name])
    n = None if name == "xor" else 40
    a, b = problems.make(name, KEY, n), problems.make(name, KEY, n)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.x.ndim == 2 and a.y.shape[0] == a.x.shape[0]
    model = gbl.mlp([3], a.head)
    dist = model.apply(model.init(KEY, a.x.shape[1]), a.x)
    assert np.isfinite(float(gbl.nll(dist, a.y)))
    assert problems.REGISTRY[name].description
    c = problems.make(name, jax.random.PRNGKey(4), n)
    assert np.array_equal(a.x, c.x) == (name in FIXED)


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


def test_data_stays_a_pair_with_positional_fields_and_no_test_by_default():
    x, y = jnp.zeros((3, 2)), jnp.ones(3)
    data = problems.Data(x, y, gbl.heads.bernoulli(), "pair")
    assert data[0] is data.x is x and data[1] is data.y is y
    a, b = data
    assert a is x and b is y and len(data) == 2
    assert data.head.name == "bernoulli()" and data.name == "pair" and data.test is None
    assert len(jax.tree.leaves(data)) == 2
    assert "test" not in repr(data)


def test_data_test_split_rides_through_tree_map_and_jit():
    test = problems.Data(jnp.zeros((2, 2)), jnp.ones(2), None, "toy_test")
    data = problems.Data(jnp.zeros((3, 2)), jnp.ones(3), gbl.heads.bernoulli(), "toy", test=test)
    assert len(jax.tree.leaves(data)) == 4
    mapped = jax.tree.map(lambda a: a + 1, data)
    assert isinstance(mapped, problems.Data) and isinstance(mapped.test, problems.Data)
    assert mapped.head is data.head and mapped.name == "toy" and mapped.test.name == "toy_test"
    np.testing.assert_array_equal(mapped.test.x, np.ones((2, 2)))
    np.testing.assert_array_equal(mapped.test.y, 2 * np.ones(2))
    through = jax.jit(lambda d: d)(data)
    assert isinstance(through.test, problems.Data) and through.test.x.shape == (2, 2)
    assert "test=Data(name='toy_test'" in repr(data)


def test_data_copies_and_pickles_with_its_fields():
    test = problems.Data(np.zeros((2, 2)), np.ones(2), None, "toy_test")
    data = problems.Data(np.zeros((3, 2)), np.ones(3), None, "toy", test=test)
    for again in (copy.copy(data), pickle.loads(pickle.dumps(data))):
        assert isinstance(again, problems.Data) and again.name == "toy"
        np.testing.assert_array_equal(again.y, data.y)
        assert again.test.name == "toy_test" and again.test.test is None


def test_fixed_data_sets_take_their_first_n_and_keep_the_test_split_whole():
    pytest.importorskip("sklearn")
    full = problems.digits()
    assert problems.REGISTRY["digits"].default_n == len(full.y)
    part = problems.make("digits", KEY, 100)
    np.testing.assert_array_equal(part.x, full.x[:100])
    np.testing.assert_array_equal(part.y, full.y[:100])
    np.testing.assert_array_equal(part.test.x, full.test.x)
    with pytest.raises(ValueError, match="at most its 1348"):
        problems.make("digits", KEY, 1349)
    with pytest.raises(ValueError, match="n must be"):
        problems.make("digits", KEY, 0)


def test_cubic_is_the_deep_ensembles_toy():
    data = problems.cubic(jax.random.PRNGKey(0))
    x, y = np.asarray(data.x), np.asarray(data.y)
    assert x.shape == y.shape == (20, 1) and np.all(np.abs(x) <= 4)
    residual = y - x**3
    assert 1.0 < residual.std() < 6.0  # noise 3 on 20 points
    tx = np.asarray(data.test.x)
    assert tx.shape == (200, 1) and tx.min() == -6.0 and tx.max() == 6.0
    assert data.head.name.startswith("heteroscedastic_gaussian")
    big = problems.cubic(jax.random.PRNGKey(1), 20000, noise=3.0)
    assert np.std(np.asarray(big.y) - np.asarray(big.x) ** 3) == pytest.approx(3.0, rel=0.03)
    assert problems.make("cubic", jax.random.PRNGKey(0)).x.shape == (20, 1)
    with pytest.raises(ValueError, match="noise and test_range must be positive"):
        problems.cubic(jax.random.PRNGKey(0), noise=0.0)
