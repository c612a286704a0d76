"""The public API type-checks as a user writes it: gbl.Normal(loc, 1.0) passes, a wrong call not."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).absolute().parents[1]
SCRIPT = ROOT / "tests" / "typed_user_script.py"
WRONG_CALL = '''import gbl_jax as gbl

gbl.Normal(loc=1.0)
'''


def test_typed_user_script_runs():
    runpy.run_path(str(SCRIPT), run_name="__main__")


def test_mypy_accepts_the_user_script_and_flags_a_wrong_call(tmp_path):
    pytest.importorskip("mypy")
    wrong = tmp_path / "wrong_call.py"
    wrong.write_text(WRONG_CALL)
    # follow-imports=silent: gbl_jax's own modules are read for their types, but only the two
    # files named here report errors. One run checks both, since mypy reads all of jax each time.
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--follow-imports=silent",
         "--no-incremental", "--no-error-summary", f"--cache-dir={tmp_path / 'mypy_cache'}",
         str(SCRIPT), str(wrong)],
        cwd=ROOT, env={**os.environ, "MYPYPATH": str(ROOT)}, capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    assert not [line for line in lines if SCRIPT.name in line], proc.stdout
    # The check is not vacuous: the missing scale is reported, so gbl.Normal's fields are seen.
    assert any("wrong_call.py:3: error" in line and '"scale"' in line for line in lines), (
        proc.stdout + proc.stderr)
