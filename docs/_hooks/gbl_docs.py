"""MkDocs hooks for the gbl_jax site: notebooks as pages, a reference with every public name.

Notebooks are jupytext percent-format ``.py`` files in ``notebooks/``; each becomes the page
``notebooks/<stem>.md``: its markdown cells as they are, its code cells as Python blocks, and
under them what the cell printed and the figures it drew. Executing all ten takes minutes, so
the outputs are rendered once and stored: ``python docs/_hooks/gbl_docs.py`` executes every
notebook in a fresh kernel and writes ``notebooks/rendered/<stem>.md`` (with the SHA-256 of the
source it ran) and its figures. The build uses a stored page only while its hash matches the
notebook (``tests/test_docs.py`` fails on a stale one); otherwise the page is the source alone.
``GBL_DOCS_EXECUTE=1 mkdocs build`` executes them at build time instead.

The API reference (``docs/reference.md``) is written by hand, grouped by topic; the build fails
when a name the package makes public (``gbl_jax.__all__``) has no ``::: gbl_jax.NAME`` entry
there, so a new public name cannot ship undocumented.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import pathlib
import re
import sys

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
RENDERED = NOTEBOOKS / "rendered"
HASH_LINE = "<!-- rendered from notebooks/{name}, source sha256 {digest} -->"
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


def source_digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_page(path: pathlib.Path) -> tuple[str, dict[str, bytes]] | None:
    """The stored rendering of a notebook and its figures, if it was made from this source."""
    page = RENDERED / f"{path.stem}.md"
    if not page.is_file():
        return None
    text = page.read_text()
    if not text.startswith(HASH_LINE.format(name=path.name, digest=source_digest(path))):
        return None
    figures = {f"{path.stem}/{png.name}": png.read_bytes()
               for png in sorted((RENDERED / path.stem).glob("*.png"))}
    return text, figures


def render_all(names: list[str] | None = None) -> None:
    """Executes every notebook (or those whose file name starts with one of ``names``) and
    stores its page and figures in ``notebooks/rendered/``."""
    import shutil

    for path in sorted(NOTEBOOKS.glob("[0-9]*.py")):
        if names and not any(path.name.startswith(n) for n in names):
            continue
        print(f"executing {path.name} ...", flush=True)
        page, figures = notebook_page(path, execute=True)
        shutil.rmtree(RENDERED / path.stem, ignore_errors=True)
        (RENDERED / path.stem).mkdir(parents=True)
        for name, png in figures.items():
            (RENDERED / name).write_bytes(png)
        header = HASH_LINE.format(name=path.name, digest=source_digest(path))
        (RENDERED / f"{path.stem}.md").write_text(f"{header}\n{page}")


def notebook_page(path: pathlib.Path, execute: bool) -> tuple[str, dict[str, bytes]]:
    """The markdown page of one notebook and its figures (name -> PNG bytes, when executed)."""
    import jupytext

    nb = jupytext.read(path)
    if execute:
        _execute(nb, path)
    run = ("Executed from a clean kernel for this page (the test suite runs it too)."
           if execute else
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
        stored = None if execute else stored_page(path)
        page, figures = stored or notebook_page(path, execute)
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=page))
        for name, png in figures.items():
            files.append(File.generated(config, f"notebooks/{name}", content=png))
    return files


if __name__ == "__main__":   # python docs/_hooks/gbl_docs.py [09 ...]: those notebooks only
    sys.exit(render_all(sys.argv[1:]))
