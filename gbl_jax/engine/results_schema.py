"""The schema of results.json's ``"sweep"`` entry, checked whole before ``results.load`` uses it.

``check(meta, path)`` raises one ValueError naming the first field that is missing, of the wrong
type, or disagrees with another field (a grid axis whose length is not the arrays' axis, an array
that a metric or a params leaf needs and the listing lacks, a params tree whose leaves are not
numbered 0..n-1 once each), so a hand-edited or damaged file is refused in one line instead of
failing with a KeyError deep inside ``load``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, NoReturn, Sequence

import numpy as np

_PER_RUN = {"final_loss": "f", "diverged": "b", "converged_step": "iu", "losses": "f"}


def _fail(path, field: str, message: str) -> NoReturn:
    raise ValueError(f"load: {path}: \"sweep\".{field} {message}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value) -> bool:
    return type(value) is int


def _is_number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _field(meta: Mapping, path, name: str, ok, want: str, optional: bool = False, within: str = ""):
    if name not in meta:
        if optional:
            return None
        _fail(path, within + name, f"is missing; it must be {want}")
    value = meta[name]
    if not ok(value):
        _fail(path, within + name, f"must be {want}, got {_shown(value)}")
    return value


def _names(value) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(v, str) and v for v in value)
        and len(set(value)) == len(value)
    )


def _array_entry(value) -> bool:
    if not (
        isinstance(value, dict)
        and isinstance(value.get("dtype"), str)
        and isinstance(value.get("shape"), list)
        and all(_is_int(n) and n >= 0 for n in value["shape"])
    ):
        return False
    try:
        np.dtype(value["dtype"])
    except TypeError:
        return False
    return True


def _grid_entry(value) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and value["name"]
        and isinstance(value.get("values"), list)
        and len(value["values"]) > 0
        and all(_is_number(v) for v in value["values"])
    )


def _leaf_numbers(spec, path, field: str) -> list[int]:
    """The leaf numbers of a params tree's description (``results._tree_spec``), in order."""
    if not (isinstance(spec, dict) and len(spec) == 1):
        _fail(
            path,
            field,
            "must be one of {\"leaf\": n}, {\"dict\": ...}, {\"list\": [...]}, "
            f"{{\"tuple\": [...]}}, {{\"none\": null}}; got {_shown(spec)}",
        )
    kind, body = next(iter(spec.items()))
    if kind == "none" and body is None:
        return []
    if kind == "leaf" and _is_int(body):
        return [body]
    if kind == "dict" and isinstance(body, dict):
        return [n for k, v in body.items() for n in _leaf_numbers(v, path, f"{field}.{k}")]
    if kind in ("list", "tuple") and isinstance(body, list):
        return [n for i, v in enumerate(body) for n in _leaf_numbers(v, path, f"{field}[{i}]")]
    _fail(
        path,
        field,
        f"has a node {kind!r} holding {_shown(body)}; a tree is made of leaf "
        "(a number), dict, list, tuple and none nodes",
    )


def check(meta: Any, path, prediction_families: Sequence[str] = ()) -> None:
    """Checks the ``"sweep"`` entry of results.json against the arrays' schema.

    Args:
      meta: the entry, as JSON parsed it.
      path: results.json, for the messages.
      prediction_families: the distribution names kept predictions may have.

    Raises:
      ValueError: naming the field and what it holds.
    """
    path = Path(path)
    if not isinstance(meta, dict):
        raise ValueError(f"load: {path} has no \"sweep\" entry describing its arrays")
    _field(
        meta,
        path,
        "arrays_file",
        lambda v: (
            isinstance(v, str) and v and "/" not in v and "\\" not in v and v not in (".", "..")
        ),
        "a file name beside results.json",
    )
    arrays = _field(
        meta,
        path,
        "arrays",
        lambda v: isinstance(v, dict),
        "{name: {\"shape\": [...], \"dtype\": ...}}",
    )
    for name, entry in arrays.items():
        if not _array_entry(entry):
            _fail(
                path,
                f"arrays.{name}",
                f"must be {{\"shape\": [n, ...], \"dtype\": a numpy dtype}}, got {_shown(entry)}",
            )
    grid = _field(
        meta,
        path,
        "grid",
        lambda v: isinstance(v, list),
        "a list of {\"name\": ..., \"values\": [...]}",
    )
    for i, entry in enumerate(grid):
        if not _grid_entry(entry):
            _fail(
                path,
                f"grid[{i}]",
                f"must be {{\"name\": a name, \"values\": [finite numbers]}}, got {_shown(entry)}",
            )
    names = [g["name"] for g in grid]
    if len(set(names)) != len(names):
        _fail(path, "grid", f"names an axis twice: {names}")
    _field(
        meta,
        path,
        "hyperparams",
        lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values()),
        "{name: a finite number}",
        optional=True,
    )
    _field(meta, path, "vary", _names, "a list of distinct names")
    _field(
        meta,
        path,
        "model_axes",
        lambda v: _names(v) and set(v) <= {g["name"] for g in grid},
        "a list of distinct names of grid axes",
        optional=True,
    )
    for name in ("log_every", "chunk_size"):
        _field(meta, path, name, lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    _field(
        meta,
        path,
        "wall_s",
        lambda v: v is None or _is_number(v),
        "a number of seconds (null if not finite)",
    )
    metrics = _field(meta, path, "metrics", _names, "a list of distinct names")
    final_metrics = _field(meta, path, "final_metrics", _names, "a list of distinct names")
    params = _field(
        meta,
        path,
        "params",
        lambda v: v is None or isinstance(v, dict),
        "null or {\"tree\": ..., \"leaves\": n, \"init_params\": true or false}",
    )
    if params is not None:
        leaves = _field(
            params,
            path,
            "leaves",
            lambda v: _is_int(v) and v >= 0,
            "an integer >= 0",
            within="params.",
        )
        _field(
            params,
            path,
            "init_params",
            lambda v: isinstance(v, bool),
            "true or false",
            within="params.",
        )
        _field(
            params,
            path,
            "tree",
            lambda v: True,
            "a tree, or null for one JSON cannot describe",
            within="params.",
        )
        if params["tree"] is not None:
            numbers = _leaf_numbers(params["tree"], path, "params.tree")
            if sorted(numbers) != list(range(leaves)):
                _fail(
                    path,
                    "params.tree",
                    f"numbers its leaves {sorted(numbers)[:8]}; "
                    f"\"leaves\" says {leaves}, numbered 0..{leaves - 1} "
                    "once each",
                )

    predictions = _field(
        meta,
        path,
        "predictions",
        lambda v: (
            v is None
            or (
                isinstance(v, dict)
                and v.get("family") in prediction_families
                and _names(v.get("fields"))
            )
        ),
        f"null or {{\"family\": one of {sorted(prediction_families)}, \"fields\": [names]}}",
        optional=True,
    )
    wanted = [
        *_PER_RUN,
        "keys",
        *(f"metrics/{k}" for k in metrics),
        *(f"final_metrics/{k}" for k in final_metrics),
    ]
    if params is not None:
        wanted += [f"params/{i}" for i in range(leaves)]
        wanted += [f"init_params/{i}" for i in range(leaves)] if params["init_params"] else []
    if predictions is not None:
        wanted += [f"predictions/{k}" for k in predictions["fields"]]
    missing = [k for k in wanted if k not in arrays]
    if missing:
        _fail(path, "arrays", f"lacks {missing[:4]}, which the result needs")

    grid_shape = [len(g["values"]) for g in grid]
    final = arrays["final_loss"]["shape"]
    if len(final) != len(grid) + 1 or final[:-1] != grid_shape:
        listed = ", ".join(f"{n} ({k})" for n, k in zip(names, grid_shape)) or "no axes"
        _fail(
            path,
            "grid",
            f"lists {listed} but the per-run arrays are {final} (grid axes, then "
            "seeds): the grid disagrees with the arrays' axes",
        )
    runs = final
    for name, kinds in _PER_RUN.items():
        entry = arrays[name]
        if np.dtype(entry["dtype"]).kind not in kinds:
            _fail(path, f"arrays.{name}", f"has dtype {entry['dtype']}")
    expect = {
        "diverged": runs,
        "converged_step": runs,
        **{f"final_metrics/{k}": runs for k in final_metrics},
    }
    for name, shape in expect.items():
        if arrays[name]["shape"] != shape:
            _fail(
                path,
                f"arrays.{name}",
                f"is {arrays[name]['shape']}, final_loss {runs}; they must agree",
            )
    for name in ["losses", *(f"metrics/{k}" for k in metrics)]:
        shape = arrays[name]["shape"]
        if len(shape) != len(runs) + 1 or shape[:-1] != runs:
            _fail(path, f"arrays.{name}", f"is {shape}; it must be {runs} + [logged points]")
    for name in wanted:
        if name.startswith(("params/", "init_params/", "predictions/")):
            shape = arrays[name]["shape"]
            if shape[: len(runs)] != runs:
                _fail(path, f"arrays.{name}", f"is {shape}; it must start with {runs}")
    keys = arrays["keys"]["shape"]
    if not keys or keys[0] != runs[-1]:
        _fail(path, "arrays.keys", f"is {keys}; it must hold one key per seed ({runs[-1]})")
    _field(
        meta,
        path,
        "seeds",
        lambda v: v == runs[-1] and _is_int(v),
        f"the number of seeds, {runs[-1]}",
        optional=True,
    )
    _field(
        meta,
        path,
        "crossed",
        lambda v: (
            v is None
            or (
                isinstance(v, list)
                and len(v) == 2
                and all(_is_int(n) and n >= 1 for n in v)
                and v[0] * v[1] == runs[-1]
            )
        ),
        f"null or [inits, data orders] whose product is the seeds, {runs[-1]}",
        optional=True,
    )
