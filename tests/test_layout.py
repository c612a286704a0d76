"""The folders show the architecture: imports run one way between gbl_jax's subpackages, and
nothing inside the package imports the package face ``gbl_jax``."""

import ast
from pathlib import Path

ROOT = Path(__file__).absolute().parents[1]
PACKAGE = ROOT / "gbl_jax"
# Bottom to top: a module may import from its own folder and from folders before it.
LAYERS = ("", "probability", "nets", "data", "engine", "analysis", "cli")


def _imports(path: Path):
    """(line, imported gbl_jax module) for every ``import``/``from`` in ``path``, at any depth."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gbl_jax":
                yield from ((node.lineno, f"gbl_jax.{a.name}") for a in node.names)
            elif node.module.startswith("gbl_jax."):
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("gbl_jax"))


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else ""


def test_every_module_sits_in_a_layer_folder():
    stray = [
        p.relative_to(PACKAGE)
        for p in PACKAGE.rglob("*.py")
        if p.parent != PACKAGE and p.parent.name not in LAYERS
    ]
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert not stray, stray
    assert top == ["__init__.py", "_version.py", "atomic_files.py", "checks.py"], top


def test_imports_run_one_way_and_never_through_the_face():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and rel.parent == Path("."):
            continue  # the face imports everything it shows
        mine = LAYERS.index(rel.parts[0] if len(rel.parts) > 1 else "")
        for line, module in _imports(path):
            if module == "gbl_jax" or module in {f"gbl_jax.{n}" for n in ("__version__",)}:
                wrong.append(f"{rel}:{line} imports the package face")
                continue
            theirs = _layer(module)
            if theirs and LAYERS.index(theirs) > mine:
                wrong.append(f"{rel}:{line} ({rel.parts[0]}) imports {module} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    """The rule above can fail: an engine module importing the command line is caught."""
    module = tmp_path / "probe.py"
    module.write_text("from gbl_jax.cli import runner\nimport gbl_jax\n")
    found = [m for _, m in _imports(module)]
    assert found == ["gbl_jax.cli", "gbl_jax"]
    assert LAYERS.index(_layer("gbl_jax.cli.runner")) > LAYERS.index("engine")
    assert _layer("gbl_jax.checks") == "" and _layer("gbl_jax.engine") == "engine"
