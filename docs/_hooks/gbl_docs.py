"""MkDocs hooks for the gbl_jax site: notebooks as pages, a reference with every public name.

Notebooks are jupytext percent-format ``.py`` files in ``notebooks/``; each becomes the page
``notebooks/<stem>.md``: its markdown cells as they are, its code cells as Python blocks. They
are not executed by default: all ten take minutes, and the test suite executes them anyway
(``tests/test_notebooks.py``). ``GBL_DOCS_EXECUTE=1 mkdocs build`` runs each in a fresh kernel
first and renders what it printed and the figures it drew under its cells.

The API reference (``docs/reference.md``) is written by hand, grouped by topic; the build fails
when a name the package makes public (``gbl_jax.__all__``) has no ``::: gbl_jax.NAME`` entry
there, so a new public name cannot ship undocumented.
"""

from __future__ import annotations

import ast
import base64
import os
import pathlib
import re

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
REFERENCE = "reference.md"


def public_names() -> list[str]:
    """``gbl_jax.__all__``, read from the source; without one, the names ``__init__`` imports."""
    tree = ast.parse((ROOT / "gbl_jax" / "__init__.py").read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            try:
                return list(ast.literal_eval(node.value))
            except ValueError:   # built by an expression: ask the package itself
                import gbl_jax
                return list(gbl_jax.__all__)
    names = [alias.asname or alias.name for node in tree.body
             if isinstance(node, ast.ImportFrom) for alias in node.names]
    return [name for name in names if not name.startswith("_")]


def on_pre_build(config) -> None:
    text = (pathlib.Path(config["docs_dir"]) / REFERENCE).read_text()
    listed = set(re.findall(r"^::: gbl_jax\.(\w+)\s*$", text, flags=re.M))
    missing = [name for name in public_names() if name not in listed]
    if missing:
        raise PluginError(f"{REFERENCE} has no entry for the public name(s) {', '.join(missing)}: "
                          f"add a '::: gbl_jax.NAME' line for each")


def _execute(nb, path: pathlib.Path) -> None:
    import nbclient

    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env_path]))
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if env_path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = env_path


def _outputs(cell, stem: str, figures: dict[str, bytes]) -> list[str]:
    """Markdown for a code cell's outputs: printed text as a text block, figures as images."""
    parts = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if out.get("output_type") == "stream":
            parts.append(f"```text\n{out['text'].rstrip()}\n```")
        elif "image/png" in data:
            name = f"{stem}/figure_{len(figures) + 1}.png"
            figures[name] = base64.b64decode(data["image/png"])
            parts.append(f"![figure {len(figures)}]({name})")
        elif "text/plain" in data:
            parts.append(f"```text\n{data['text/plain'].rstrip()}\n```")
    return parts


def notebook_page(path: pathlib.Path, execute: bool) -> tuple[str, dict[str, bytes]]:
    """The markdown page of one notebook and its figures (name -> PNG bytes, when executed)."""
    import jupytext

    nb = jupytext.read(path)
    if execute:
        _execute(nb, path)
    run = ("Executed for this page." if execute else
           "Shown as source, not executed here: the test suite runs it from a clean kernel. "
           f"Open it with `jupytext --to notebook notebooks/{path.name}` (or the `.py` directly "
           "in Jupyter with the jupytext extension).")
    note = f'!!! note "notebooks/{path.name}"\n    {run}'
    parts, figures = [], {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        elif cell.cell_type == "code" and cell.source.strip():
            parts.append(f"```python\n{cell.source}\n```")
            parts.extend(_outputs(cell, path.stem, figures))
        if i == 0:
            parts.append(note)
    return "\n\n".join(parts) + "\n", figures


def on_files(files, config):
    execute = os.environ.get("GBL_DOCS_EXECUTE") == "1"
    for path in sorted(NOTEBOOKS.glob("[0-9]*.py")):
        page, figures = notebook_page(path, execute)
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=page))
        for name, png in figures.items():
            files.append(File.generated(config, f"notebooks/{name}", content=png))
    return files
