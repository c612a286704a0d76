"""The code keeps one style: ruff's lint (pyflakes, import order) and its formatter pass on
everything a contributor writes, with the settings in pyproject.toml (CONTRIBUTING.md, "Style").

Ruff is in the dev extra, so these run everywhere the suite runs; both take well under a second.
"""

import subprocess
from pathlib import Path

from ruff.__main__ import find_ruff_bin

ROOT = Path(__file__).absolute().parents[1]
CHECKED = ("gbl_jax", "tests", "scripts", "notebooks")


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``ruff ARGS`` with the project's pyproject.toml and no cache written into the tree."""
    return subprocess.run(
        [find_ruff_bin(), *args, "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_lint_passes():
    out = ruff("check", *CHECKED)
    assert out.returncode == 0, out.stdout + out.stderr


def test_code_is_formatted():
    out = ruff("format", "--check", *CHECKED)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_checks_see_a_badly_written_module(tmp_path):
    """Both checks can fail: unsorted imports (gbl_jax is first party, after numpy's section), an
    unused import, and a hand-wrapped call are each caught, and the fixed file passes."""
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import gbl_jax\nimport numpy as np\nimport os\n\n"
        "x = np.zeros(3,\n             dtype=float)\nprint(gbl_jax, x)\n"
    )
    lint = ruff("check", "--output-format", "concise", str(bad), cwd=tmp_path)
    assert lint.returncode == 1
    assert "I001" in lint.stdout and "F401" in lint.stdout and "`os`" in lint.stdout
    assert ruff("format", "--check", str(bad), cwd=tmp_path).returncode == 1
    good = tmp_path / "good.py"
    good.write_text(
        "import numpy as np\n\nimport gbl_jax\n\nx = np.zeros(3, dtype=float)\nprint(gbl_jax, x)\n"
    )
    assert ruff("check", str(good), cwd=tmp_path).returncode == 0
    assert ruff("format", "--check", str(good), cwd=tmp_path).returncode == 0
