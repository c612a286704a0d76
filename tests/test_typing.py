"""The public API type-checks as a user writes it, against the package as installed.

mypy (and pyright, where installed) run from a folder outside the repository with no MYPYPATH,
so ``import gbl_jax`` resolves the way it does for a user's own script: through the README's
``pip install -e '.[dev]'`` (pyproject.toml's package-dir makes that a plain path in a .pth file,
which static checkers read; setuptools' default import-hook finder they cannot follow).
"""

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).absolute().parents[1]
SCRIPT = ROOT / "tests" / "typed_user_script.py"
# Each line is an error a checker must report; they show the checker sees gbl_jax's types.
WRONG_CALLS = '''import jax.numpy as jnp
import gbl_jax as gbl

gbl.Normal(loc=1.0)
gbl.mlp([8], gbl.problems.Data(jnp.zeros((4, 2)), jnp.zeros(4)).head)
'''
# optax ships no py.typed; a user silences it the same way.
MYPY_CONFIG = "[mypy]\n\n[mypy-optax.*]\nignore_missing_imports = True\n"


def user_folder(tmp_path: Path) -> Path:
    """A folder outside the repository holding the user script and the wrong calls."""
    folder = tmp_path / "user"
    folder.mkdir()
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    (folder / "wrong_call.py").write_text(WRONG_CALLS)
    return folder


def user_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}


def test_typed_user_script_runs():
    runpy.run_path(str(SCRIPT), run_name="__main__")


def test_mypy_resolves_the_installed_package_and_flags_wrong_calls(tmp_path):
    pytest.importorskip("mypy")
    folder = user_folder(tmp_path)
    (folder / "mypy.ini").write_text(MYPY_CONFIG)
    # One run checks both files, since mypy reads all of jax each time.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-incremental",
            "--no-error-summary",
            f"--cache-dir={tmp_path / 'mypy_cache'}",
            SCRIPT.name,
            "wrong_call.py",
        ],
        cwd=folder,
        env=user_env(),
        capture_output=True,
        text=True,
    )
    lines = proc.stdout.splitlines()
    assert not [line for line in lines if SCRIPT.name in line], proc.stdout + proc.stderr
    # not vacuous: an unresolved gbl_jax would be an error above, or Any with nothing below
    assert any("wrong_call.py:4: error" in line and '"scale"' in line for line in lines), (
        proc.stdout + proc.stderr
    )
    assert any(
        "wrong_call.py:5: error" in line and '"None"' in line and '"Head"' in line for line in lines
    ), proc.stdout + proc.stderr


def test_pyright_resolves_the_installed_package_and_flags_wrong_calls(tmp_path):
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.skip("pyright is not installed (pip install 'pyright[nodejs]', in the dev extra)")
    folder = user_folder(tmp_path)
    proc = subprocess.run(
        [pyright, "--outputjson", "--pythonpath", sys.executable, SCRIPT.name, "wrong_call.py"],
        cwd=folder,
        env=user_env(),
        capture_output=True,
        text=True,
    )
    report = json.loads(proc.stdout)
    errors = [
        (Path(d["file"]).name, d["range"]["start"]["line"] + 1, d["message"])
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert not [e for e in errors if e[0] == SCRIPT.name], errors
    assert any(e[:2] == ("wrong_call.py", 4) and '"scale"' in e[2] for e in errors), errors
    assert any(
        e[:2] == ("wrong_call.py", 5) and '"None"' in e[2] and '"Head"' in e[2] for e in errors
    ), errors
