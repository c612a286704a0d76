"""The documentation site builds with `mkdocs build --strict`, its API reference has an entry
for every public name of the package, and the notebooks' stored renderings (with their outputs
and figures) were made from the notebooks as they are."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gbl_jax

ROOT = Path(__file__).absolute().parents[1]


def public_names():
    """``gbl_jax.__all__`` (tests/test_public_api.py holds it complete)."""
    return list(gbl_jax.__all__)


def test_docs_build_strictly_with_every_public_name(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # Material's banner, not a build warning
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    reference = (site / "reference" / "index.html").read_text()
    missing = [name for name in public_names() if f'id="gbl_jax.{name}"' not in reference]
    assert not missing, f"no entry in the built API reference for {missing}"
    for page in ("getting-started", "results", "notebooks/01_maximum_likelihood"):
        assert (site / page / "index.html").exists(), page
    # every notebook page shows its outputs: a figure under a cell
    for notebook in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        html = (site / "notebooks" / notebook.stem / "index.html").read_text()
        assert "figure_1.png" in html, f"{notebook.name} is shown without its outputs"


def _hooks():
    sys.path.insert(0, str(ROOT / "docs" / "_hooks"))
    try:
        import gbl_docs
    finally:
        sys.path.pop(0)
    return gbl_docs


def test_every_notebook_has_a_rendering_of_its_current_source():
    """Edit a notebook and its stored page goes stale: re-render with
    `python docs/_hooks/gbl_docs.py` (the docs would otherwise show it without outputs)."""
    pytest.importorskip("mkdocs")
    hooks = _hooks()
    stale = [
        p.name for p in sorted(hooks.NOTEBOOKS.glob("[0-9]*.py")) if hooks.stored_page(p) is None
    ]
    assert not stale, (
        f"rendered pages missing or stale for {stale}: run python docs/_hooks/gbl_docs.py"
    )


def test_a_changed_notebook_is_not_served_its_old_outputs(tmp_path):
    pytest.importorskip("mkdocs")
    hooks = _hooks()
    source = sorted(hooks.NOTEBOOKS.glob("[0-9]*.py"))[0]
    copy = tmp_path / source.name
    copy.write_text(source.read_text())
    assert (hooks.stored_page(copy) is None) == (hooks.stored_page(source) is None)
    copy.write_text(source.read_text() + "\n# an edit\n")
    assert hooks.stored_page(copy) is None
