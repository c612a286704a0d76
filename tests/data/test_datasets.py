"""Real data sets (MNIST-1D, digits) against their packages, and the .npz / .csv loader."""

import random
import sys

import jax
import numpy as np
import pytest

import gbl_jax as gbl
from gbl_jax.data import datasets, problems


@pytest.fixture(scope="module")
def mnist1d_data():
    pytest.importorskip("mnist1d")
    return problems.mnist1d()


@pytest.fixture(scope="module")
def mnist1d_reference():
    pytest.importorskip("mnist1d")
    from mnist1d.data import get_dataset_args, make_dataset

    states = np.random.get_state(), random.getstate()
    try:
        return make_dataset(get_dataset_args())
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])


def test_mnist1d_is_the_package_data_bit_for_bit(mnist1d_data, mnist1d_reference):
    data, ref = mnist1d_data, mnist1d_reference
    assert data.x.shape == (4000, 40) and data.x.dtype == np.float32
    assert data.y.shape == (4000,) and data.y.dtype == np.int32
    assert data.test.x.shape == (1000, 40) and data.test.y.shape == (1000,)
    np.testing.assert_array_equal(data.x, ref["x"].astype(np.float32))
    np.testing.assert_array_equal(data.y, ref["y"].astype(np.int32))
    np.testing.assert_array_equal(data.test.x, ref["x_test"].astype(np.float32))
    np.testing.assert_array_equal(data.test.y, ref["y_test"].astype(np.int32))
    assert set(np.unique(data.y)) == set(range(10))
    assert data.head.name == "categorical(10)" and data.name == "mnist1d"
    assert data.test.head is data.head and data.test.test is None


def test_mnist1d_through_the_registry_is_the_same_data(mnist1d_data):
    via = problems.make("mnist1d", jax.random.PRNGKey(0))
    np.testing.assert_array_equal(via.x, mnist1d_data.x)
    np.testing.assert_array_equal(via.y, mnist1d_data.y)
    np.testing.assert_array_equal(via.test.x, mnist1d_data.test.x)
    assert problems.REGISTRY["mnist1d"].default_n == 4000


def test_mnist1d_leaves_the_global_rngs_as_they_were(mnist1d_data):
    datasets._mnist1d_arrays.cache_clear()  # build again, so the generator really runs
    np.random.seed(123)
    random.seed(7)
    expect_np, expect_py = np.random.rand(3), random.random()
    np.random.seed(123)
    random.seed(7)
    shuffled = problems.mnist1d(shuffle_seq=True)
    np.testing.assert_array_equal(np.random.rand(3), expect_np)
    assert random.random() == expect_py
    # The shuffled variant: same examples and labels, one fixed permutation of the 40 positions.
    assert shuffled.name == "mnist1d_shuffled" and shuffled.x.shape == (4000, 40)
    np.testing.assert_array_equal(shuffled.y, mnist1d_data.y)
    np.testing.assert_array_equal(shuffled.test.y, mnist1d_data.test.y)
    x, x_shuffled = np.asarray(mnist1d_data.x), np.asarray(shuffled.x)
    assert not np.array_equal(x, x_shuffled)
    perm = [int(np.argmin(np.abs(x - x_shuffled[:, [j]]).sum(axis=0))) for j in range(40)]
    assert sorted(perm) == list(range(40))
    np.testing.assert_allclose(x[:, perm], x_shuffled, rtol=1e-6, atol=1e-6)


def test_mnist1d_and_digits_name_the_extra_when_the_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    with pytest.raises(ImportError, match=r"pip install 'gbl_jax\[data\]'"):
        problems.mnist1d()
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"scikit-learn.*pip install 'gbl_jax\[data\]'"):
        gbl.problems.digits()


@pytest.fixture(scope="module")
def digits_raw():
    sk = pytest.importorskip("sklearn.datasets")
    bunch = sk.load_digits()
    return bunch.data, bunch.target


def test_digits_split_is_fixed_disjoint_and_covers_every_row(digits_raw):
    train, test = datasets._digits_split(1797)
    again_train, again_test = datasets._digits_split(1797)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)
    assert len(train) == 1348 and len(test) == 449
    assert not set(train) & set(test)
    assert sorted(np.concatenate([train, test])) == list(range(1797))
    data = problems.digits()
    assert data.x.shape == (1348, 64) and data.x.dtype == np.float32
    assert data.y.shape == (1348,) and data.y.dtype == np.int32
    assert data.test.x.shape == (449, 64) and data.test.y.shape == (449,)
    np.testing.assert_array_equal(data.y, digits_raw[1][train])
    np.testing.assert_array_equal(data.test.y, digits_raw[1][test])
    assert data.head.name == "categorical(10)"


def test_digits_are_standardized_with_the_training_statistics(digits_raw):
    raw, _ = digits_raw
    train, test = datasets._digits_split(1797)
    data = problems.digits()
    x, x_test = np.asarray(data.x, np.float64), np.asarray(data.test.x, np.float64)
    assert np.isfinite(x).all() and np.isfinite(x_test).all()
    std = raw[train].std(axis=0)
    varying = std > 0
    assert (~varying).any()  # pixel 0 is blank on every image: divided by 1, not 0
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0)[varying], 1, rtol=1e-5)
    np.testing.assert_array_equal(x[:, ~varying], 0)
    column = 20
    by_hand = (raw[test, column] - raw[train, column].mean()) / raw[train, column].std()
    np.testing.assert_allclose(x_test[:, column], by_hand, rtol=1e-5)
    assert abs(x_test[:, column].mean()) > 1e-4  # the test rows were not standardized by their own


def test_load_npz_with_a_test_split(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "blobs.npz"
    np.savez(
        path,
        x=rng.normal(size=(6, 3)),
        y=np.array([0, 1, 2, 0, 1, 2]),
        x_test=rng.normal(size=(2, 3)),
        y_test=np.array([4, 1]),
        extra=np.zeros(2),
    )
    data = problems.load(path)
    assert data.name == "blobs" and data.test.name == "blobs_test"
    assert data.x.dtype == np.float32 and data.y.dtype == np.int32 and data.y.shape == (6,)
    assert data.head.name == "categorical(5)" and data.test.head is data.head  # 1 + max of both
    with np.load(path) as raw:
        np.testing.assert_array_equal(data.x, raw["x"].astype(np.float32))
        np.testing.assert_array_equal(data.test.y, raw["y_test"])


def test_load_reads_float_targets_as_regression(tmp_path):
    np.savez(tmp_path / "flat.npz", x=np.ones((4, 2)), y=np.array([0.5, 1.0, 2.0, 3.0]))
    flat = problems.load(str(tmp_path / "flat.npz"))
    assert flat.y.shape == (4, 1) and flat.y.dtype == np.float32
    assert flat.head.name == "gaussian(1)" and flat.test is None
    np.savez(tmp_path / "wide.npz", x=np.ones((4, 2)), y=np.arange(8.0).reshape(4, 2))
    wide = problems.load(tmp_path / "wide.npz")
    assert wide.y.shape == (4, 2) and wide.y.dtype == np.float32 and wide.head.name == "gaussian(2)"
    np.savez(tmp_path / "binary.npz", x=np.ones((4, 2)), y=np.array([0.0, 1.0, 1.0, 0.0]))
    binary = problems.load(tmp_path / "binary.npz")
    assert binary.y.dtype == np.int32 and binary.head.name == "categorical(2)"


@pytest.mark.parametrize("header", ["", "a,b,label\n"])
def test_load_csv_takes_the_last_column_as_y(tmp_path, header):
    path = tmp_path / "table.csv"
    path.write_text(header + "1.5,2,0\n3,4.25,1\n\n5,6,2\n")
    data = problems.load(path)
    np.testing.assert_array_equal(data.x, np.array([[1.5, 2], [3, 4.25], [5, 6]], np.float32))
    np.testing.assert_array_equal(data.y, np.array([0, 1, 2], np.int32))
    assert data.name == "table" and data.test is None and data.head.name == "categorical(3)"


def test_load_csv_takes_pandas_default_column_names_as_a_header(tmp_path):
    # pandas' DataFrame(array).to_csv(index=False) writes the header 0,1,2: rows, not data
    path = tmp_path / "frame.csv"
    path.write_text("0,1,2\n0.5,0.25,0\n1.5,2,1\n3,4,2\n")
    with pytest.warns(UserWarning, match=r"frame.csv: line 1 \(0,1,2\) taken as a header"):
        data = problems.load(path)
    np.testing.assert_array_equal(data.x, np.array([[0.5, 0.25], [1.5, 2], [3, 4]], np.float32))
    np.testing.assert_array_equal(data.y, np.array([0, 1, 2], np.int32))


def test_load_csv_reads_a_first_row_of_other_numbers_as_data(tmp_path, recwarn):
    path = tmp_path / "rows.csv"
    path.write_text("0,2,1\n1,0,0\n")
    np.testing.assert_array_equal(problems.load(path).y, np.array([1, 0], np.int32))
    assert not recwarn.list


def test_load_csv_accepts_a_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeff1,2,0\n3,4,1\n".encode())  # a BOM before the first number
    data = problems.load(path)
    np.testing.assert_array_equal(data.x, np.array([[1, 2], [3, 4]], np.float32))
    np.testing.assert_array_equal(data.y, np.array([0, 1], np.int32))


def declaring_npz(path, shape):
    """A small .npz whose x.npy declares ``shape`` float64 but holds no data (what a compressed
    file of zeros looks like before it is read: megabytes that inflate to gigabytes)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": shape}
        )
        archive.writestr("x.npy", header.getvalue())
        y = io.BytesIO()
        np.save(y, np.zeros(1))
        archive.writestr("y.npy", y.getvalue())
    return path


def test_declared_bytes_reads_the_headers_not_the_data(tmp_path):
    path = declaring_npz(tmp_path / "bomb.npz", (10**6, 10**6))
    assert path.stat().st_size < 1000
    assert datasets.declared_bytes(path) == 8 * 10**12 + 8
    np.savez(tmp_path / "real.npz", x=np.zeros((5, 3), np.float32), y=np.zeros(5, np.int64))
    assert datasets.declared_bytes(tmp_path / "real.npz") == 5 * 3 * 4 + 5 * 8
    (tmp_path / "t.csv").write_text("1,2\n3,4\n")
    assert datasets.declared_bytes(tmp_path / "t.csv") == 8 * 4
    assert datasets.declared_bytes(tmp_path / "nope.npz") is None
    refused = "bomb.npz: array x (does not fit in memory|could not be read)"
    with pytest.raises(ValueError, match=refused):
        problems.load(path)  # 8 TB refused (or, overcommitted, its data missing): a ValueError


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def _csv(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


X, Y = np.zeros((3, 2)), np.zeros(3)

BAD_FILES = {
    "missing": (lambda p: p / "nope.npz", "no such file"),
    "suffix": (lambda p: _csv(p, "1,2\n").rename(p / "bad.txt"), "unknown suffix '.txt'"),
    "empty": (lambda p: _csv(p, ""), "is empty"),
    "blank csv": (lambda p: _csv(p, "a,b\n\n"), "no data rows"),
    "lacks y": (lambda p: _npz(p, x=X, target=Y), r"lacks the array y; it has x, target"),
    "x_test alone": (lambda p: _npz(p, x=X, y=Y, x_test=X), "has x_test but not y_test"),
    "lengths": (lambda p: _npz(p, x=X, y=np.zeros(4)), r"x \[3, 2\] and y \[4\] differ in length"),
    "test width": (
        lambda p: _npz(p, x=X, y=Y, x_test=np.zeros((2, 5)), y_test=np.zeros(2)),
        r"x \[3, 2\] and x_test \[2, 5\] differ",
    ),
    "1-D x": (lambda p: _npz(p, x=np.zeros(3), y=Y), r"x has shape \[3\]"),
    "strings": (lambda p: _npz(p, x=np.array([["a"]]), y=np.zeros(1)), "dtype <U1"),
    "NaN": (
        lambda p: _npz(p, x=np.array([[0.0, 1.0], [2.0, np.nan]]), y=np.zeros(2)),
        r"x\[1, 1\] = nan is not finite",
    ),
    "inf y": (lambda p: _npz(p, x=X, y=np.array([0.5, np.inf, 1.0])), r"y\[1\] = inf"),
    "overflow": (lambda p: _npz(p, x=np.array([[1e39]]), y=np.zeros(1)), "beyond float32"),
    "negative label": (lambda p: _npz(p, x=X, y=np.array([0, -1, 1])), r"y\[1\] = -1"),
    "not a number": (lambda p: _csv(p, "1,2,0\n3,x,1\n"), "line 2, column 2 is 'x', not a number"),
    "empty cell": (lambda p: _csv(p, "1,2,0\n3,,1\n"), "line 2, column 2 is empty"),
    "nan cell": (lambda p: _csv(p, "h1,h2\n1,0\ninf,1\n"), "line 3, column 1 is 'inf', not finite"),
    "ragged": (lambda p: _csv(p, "1,2,0\n3,1\n"), "line 2 has 2 columns, line 1 has 3"),
    "one column": (lambda p: _csv(p, "1\n2\n"), "has 1 column"),
    "not an archive": (lambda p: _csv(p, "1,2\n").rename(p / "bad.npz"), "not a readable .npz"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_load_names_what_is_wrong_with_a_bad_file(tmp_path, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(ValueError, match=message) as err:
        problems.load(path)
    assert str(path) in str(err.value)
