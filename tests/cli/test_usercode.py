"""The user's model and data by name: imported from the current folder, checked, fingerprinted."""

import os
import re

import jax
import numpy as np
import pytest

import gbl_jax as gbl
from gbl_jax.cli import usercode

MODULE = '''
import numpy as np
import gbl_jax as gbl

def make():
    return gbl.mlp([3], gbl.heads.categorical(3))

def pair():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    return x, np.array([0, 1, 2, 0, 1, 2])

def not_a_model():
    return 42

def text():
    return "xy"

def mapping():
    return {"x": np.zeros((4, 2)), "y": np.zeros(4)}

def inf_labels():
    return np.zeros((4, 2), np.float32), np.array([0.0, 1.0, np.inf, 1.0])

def objects():
    return np.zeros((2, 1)), np.array([None, 1], dtype=object)

def lengths():
    return np.zeros((4, 2)), np.zeros(3)

def nan_data():
    return gbl.problems.Data(np.array([[0.0], [np.nan]]), np.array([0, 1]))

def broken():
    raise RuntimeError("no GPU here")

VALUE = 3
'''


@pytest.fixture()
def here(tmp_path, monkeypatch):
    """A folder holding ``usermod_<test>.py``, made the current folder; the module's name."""
    name = f"usermod_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    return name


def test_spec_is_module_colon_function_unless_a_file_has_that_name(tmp_path, monkeypatch):
    assert usercode.is_spec("pkg.mod:fn") and not usercode.is_spec("data.npz")
    assert not usercode.is_spec("a:b:c") and not usercode.is_spec("1mod:fn")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd:name").write_text("")
    assert not usercode.is_spec("odd:name")


def test_model_and_data_come_from_the_current_folder(here):
    model = usercode.load_model(f"{here}:make")
    params = model.init(np.zeros(2, np.uint32), np.zeros((4, 2), np.float32))
    assert params["head"]["w"].shape == (3, 3)
    data = usercode.load_data(f"{here}:pair")
    assert isinstance(data, gbl.problems.Data) and data.x.shape == (6, 2) and data.name == "pair"


def test_every_failure_is_one_line_naming_the_option(here):
    cases = {
        f"{here}:missing": "missing is not defined",
        f"{here}:VALUE": "is not callable",
        "no_such_module_xyz:fn": "no module named 'no_such_module_xyz'",
        f"{here}:broken": "RuntimeError: no GPU here",
        "bad spec": "module:function",
    }
    for spec, words in cases.items():
        with pytest.raises(ValueError, match=words) as err:
            usercode.load_model(spec)
        assert str(err.value).startswith(f"--model {spec}") and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="returned int, not a model"):
        usercode.load_model(f"{here}:not_a_model")
    with pytest.raises(ValueError, match="returned int; expected"):
        usercode.load_data(f"{here}:not_a_model")
    with pytest.raises(ValueError, match="--data nothing.npz: no such file"):
        usercode.load_data("nothing.npz")


@pytest.mark.parametrize(
    "fn, words",
    [
        ("text", "returned str; expected a gbl.problems.Data or an \\(x, y\\) pair"),
        ("mapping", "returned dict; expected"),
        ("inf_labels", "y\\[2\\] = inf is not finite"),
        ("objects", "y has dtype object"),
        ("lengths", "x \\[4, 2\\] and y \\[3\\] differ in length"),
        ("nan_data", "x\\[1, 0\\] = nan is not finite"),
    ],
)
def test_data_a_function_returns_is_checked_in_one_line(here, fn, words):
    with pytest.raises(ValueError, match=words) as err:
        usercode.load_data(f"{here}:{fn}")
    assert str(err.value).startswith(f"--data {here}:{fn}: ") and "\n" not in str(err.value)


def test_data_from_a_file(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x[:4], y_test=y[:4])
    data = usercode.load_data(str(tmp_path / "d.npz"))
    assert data.x.dtype == np.float32 and data.test.x.shape == (4, 3)


def test_fingerprints_change_with_any_value_and_with_the_source(here, tmp_path):
    data = usercode.load_data(f"{here}:pair")
    same = gbl.problems.Data(data.x.copy(), data.y.copy())
    assert usercode.data_fingerprint(data) == usercode.data_fingerprint(same)
    changed = data.x.copy()
    changed[5, 1] += 1e-3
    assert usercode.data_fingerprint(
        gbl.problems.Data(changed, data.y)
    ) != usercode.data_fingerprint(data)
    with_test = gbl.problems.Data(data.x, data.y, test=gbl.problems.Data(data.x[:2], data.y[:2]))
    assert usercode.data_fingerprint(with_test) != usercode.data_fingerprint(data)
    usercode.load_model(f"{here}:make")
    before = usercode.model_fingerprint(f"{here}:make")
    assert before is not None and len(before) == 64
    (tmp_path / f"{here}.py").write_text(MODULE + "\n# edited\n")
    assert usercode.model_fingerprint(f"{here}:make") != before


def test_a_folder_or_fifo_as_data_is_named_for_what_it_is(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    for path, words in ((tmp_path, "is a directory"), (fifo, "is a FIFO")):
        with pytest.raises(ValueError, match=words) as err:
            usercode.load_data(str(path))
        assert "no such file" not in str(err.value)


def test_sys_exit_in_user_code_is_an_error_not_a_success(here, tmp_path):
    (tmp_path / f"{here}_quits.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / f"{here}_leaves.py").write_text("import sys\ndef make():\n    sys.exit(0)\n")
    for spec, words in (
        (f"{here}_quits:make", f"importing {here}_quits called sys.exit(0)"),
        (f"{here}_leaves:make", f"{here}_leaves:make() called sys.exit(0)"),
    ):
        with pytest.raises(ValueError, match=re.escape(words)) as err:
            usercode.load_model(spec)
        assert str(err.value).startswith(f"--model {spec}") and "\n" not in str(err.value)


def test_the_params_fingerprint_pins_what_was_built_not_the_source():
    key, x = jax.random.PRNGKey(0), np.zeros((4, 2), np.float32)

    def built(model):
        return usercode.params_fingerprint(model.init(key, x))

    sha, shapes = built(gbl.mlp([3], gbl.heads.bernoulli()))
    assert built(gbl.mlp([3], gbl.heads.bernoulli())) == (sha, shapes)
    assert shapes["['hidden'][0]['w']"] == "float32[2, 3]" and len(sha) == 64
    wider_sha, wider = built(gbl.mlp([4], gbl.heads.bernoulli()))  # a width from elsewhere
    assert wider_sha != sha and wider["['hidden'][0]['w']"] == "float32[2, 4]"
    other_sha, other = built(gbl.mlp([3], gbl.heads.bernoulli(), init="he_normal"))
    assert other == shapes and other_sha != sha  # same tree and shapes, another init
