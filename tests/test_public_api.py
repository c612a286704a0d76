"""The public face: ``gbl_jax.__all__`` lists every public name, each documented, and the scripts
and notebooks (written as a user would) reach gbl_jax only through those names."""

import ast
import types
from pathlib import Path

import pytest

import gbl_jax as gbl

ROOT = Path(__file__).absolute().parents[1]
USER_CODE = sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("notebooks/*.py")])
# (file, what it reaches): the only uses of internal modules, each with its reason. Every entry
# must still be in use (test_the_exceptions_are_still_needed), so none outlives its reason.
EXCEPTIONS = {
    (
        "scripts/bench.py",
        "gbl_jax.engine.sweeps",
    ): "compile_flatness times the ahead-of-time compile of "
    "one chunk (sweeps.plan_sweep(...).compile()), which no public function exposes",
    ("scripts/profile_mnist1d.py", "gbl_jax.engine.shuffle"): "times the engine's epoch order "
    "against jax.random.permutation's, an internal of training no public function exposes",
    ("scripts/profile_mnist1d.py", "gbl_jax.engine.chunking"): "raises CPU_GROUPS_ABOVE to time a "
    "sweep whose chunks run as one vmapped loop against the default one loop per core",
}


def public_modules() -> set[str]:
    return {name for name in gbl.__all__ if isinstance(getattr(gbl, name), types.ModuleType)}


def test_all_is_sorted_unique_and_complete():
    assert gbl.__all__ == sorted(set(gbl.__all__))
    missing = [name for name in gbl.__all__ if not hasattr(gbl, name)]
    assert not missing
    namespace: dict = {}
    exec("from gbl_jax import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(gbl.__all__)
    # every top-level name that is not a module and not private is listed (a new public function
    # imported into __init__ but left out of __all__ fails here)
    unlisted = [
        name
        for name, value in vars(gbl).items()
        if not name.startswith("_")
        and name not in gbl.__all__
        and not isinstance(value, types.ModuleType)
    ]
    assert not unlisted
    assert {"plots", "models", "problems", "heads", "sweep", "nll", "mlp"} <= set(gbl.__all__)


@pytest.mark.parametrize("name", gbl.__all__)
def test_every_public_name_has_a_docstring(name):
    obj = getattr(gbl, name)
    doc = obj.__doc__  # a class's own: inspect.getdoc would inherit tuple's or object's
    assert doc and doc.strip(), f"gbl.{name} has no docstring"
    # a NamedTuple without one gets "Name(field, ...)": that is not documentation
    assert not doc.startswith(f"{getattr(obj, '__name__', name)}("), f"gbl.{name}: {doc!r}"


def gbl_uses(code: str) -> list[tuple[int, str]]:
    """(line, dotted name) for every reach into gbl_jax: imports, and attribute chains on the
    names they bind (after ``import gbl_jax as gbl``, ``gbl.plots.save`` is gbl_jax.plots.save)."""
    tree = ast.parse(code)
    aliases, uses = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "gbl_jax":
                    uses.append((node.lineno, a.name))
                    aliases[a.asname or "gbl_jax"] = a.name if a.asname else "gbl_jax"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gbl_jax":
            for a in node.names:
                uses.append((node.lineno, f"{node.module}.{a.name}"))
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    # read each attribute chain once, from its outermost node
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                uses.append((node.lineno, ".".join([aliases[base.id], *reversed(chain)])))
    return sorted(uses)


def is_public(dotted: str) -> bool:
    """gbl_jax.NAME[.more] with NAME in __all__; under a public module, public names only."""
    parts = dotted.split(".")[1:]
    if not parts:
        return True
    if parts[0] not in gbl.__all__:
        return False
    if len(parts) > 1 and parts[0] in public_modules():
        module = getattr(gbl, parts[0])
        listed = getattr(module, "__all__", None)
        name = parts[1]
        return (
            not name.startswith("_")
            and hasattr(module, name)
            and (listed is None or name in listed)
        )
    return True


def within(name: str, what: str) -> bool:
    return name == what or name.startswith(what + ".")


@pytest.mark.parametrize("path", USER_CODE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scripts_and_notebooks_use_only_public_names(path):
    rel = str(path.relative_to(ROOT))
    bad = [
        f"{rel}:{line}: {name}"
        for line, name in gbl_uses(path.read_text())
        if not is_public(name)
        and not any(rel == f and within(name, what) for f, what in EXCEPTIONS)
    ]
    assert not bad, "internal names reached from user code:\n" + "\n".join(bad)


def test_the_exceptions_are_still_needed():
    for (rel, what), reason in EXCEPTIONS.items():
        uses = [name for _, name in gbl_uses((ROOT / rel).read_text())]
        assert any(within(name, what) for name in uses), (rel, reason)
        assert not is_public(what)


def test_the_checker_catches_internal_reaches():
    code = (
        "import gbl_jax as gbl\nfrom gbl_jax.engine.sweeps import plan_sweep\n"
        "from gbl_jax.analysis.plots import _axes\nimport gbl_jax.cli.runstore\n"
        "gbl.training.make_engine(gbl.problems.xor().head)\ngbl.plots.final_loss_histogram\n"
        "gbl.landscape_report.monotone_paths\n"
        "from gbl_jax import plots as p\np._quiet\n"
    )
    uses = gbl_uses(code)
    assert [name for _, name in uses if not is_public(name)] == [
        "gbl_jax.engine.sweeps.plan_sweep",
        "gbl_jax.analysis.plots._axes",
        "gbl_jax.cli.runstore",
        "gbl_jax.training.make_engine",
        "gbl_jax.plots._quiet",
    ]
    assert (5, "gbl_jax.problems.xor") in uses and (6, "gbl_jax.plots.final_loss_histogram") in uses
