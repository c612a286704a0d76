"""The documentation site builds with `mkdocs build --strict`, and its API reference has an entry
for every public name of the package, each with a docstring."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gbl_jax

ROOT = Path(__file__).absolute().parents[1]


def public_names():
    """``gbl_jax.__all__``; without one, the public names that ``gbl_jax/__init__.py`` imports."""
    if hasattr(gbl_jax, "__all__"):
        return list(gbl_jax.__all__)
    tree = ast.parse((ROOT / "gbl_jax" / "__init__.py").read_text())
    return [alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
            for alias in node.names if not (alias.asname or alias.name).startswith("_")]


def test_docs_build_strictly_with_every_public_name(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")   # Material's banner, not a build warning
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    reference = (site / "reference" / "index.html").read_text()
    missing = [name for name in public_names() if f'id="gbl_jax.{name}"' not in reference]
    assert not missing, f"no entry in the built API reference for {missing}"
    for page in ("getting-started", "results", "notebooks/01_maximum_likelihood"):
        assert (site / page / "index.html").exists(), page
