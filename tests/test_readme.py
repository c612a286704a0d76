"""The Python examples of the README and of every documentation page run as written.

Each file's ```python blocks run in order, in one fresh process per file, so a page's examples
may build on its earlier blocks but never on another page's.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).absolute().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
# What a page's examples import beyond the package's own dependencies.
NEEDS = {"models.md": ("flax", "equinox"), "real-data.md": ("sklearn",)}


def python_blocks(path):
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def test_the_examples_are_found():
    assert len(python_blocks(ROOT / "README.md")) >= 1
    assert sum(len(python_blocks(path)) for path in PAGES) >= 10


@pytest.mark.parametrize(
    "path", [p for p in PAGES if python_blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_python_blocks_run(path):
    for module in NEEDS.get(path.name, ()):
        pytest.importorskip(module)
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-c", "\n".join(python_blocks(path))],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
