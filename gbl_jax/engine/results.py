"""A sweep's results as data: the record, one grid cell of it, a tidy table, and its folder.

``SweepResult`` is what ``gbl.sweep`` returns. ``out.cell(learning_rate=0.05)`` takes one grid
cell (a result without a grid, which every analysis function takes); ``out.to_frame()`` is one
pandas row per cell x seed; ``out.save(dir)`` and ``load(dir)`` round-trip every array exactly.

The run folder is one format, written by ``out.save`` and by ``gbl-jax sweep`` alike:

  sweep.npz       every array of the result (``ARRAYS``), written first
  results.json    ``{"format": RESULTS_FORMAT, "sweep": {...}, ...}``, written last: the folder is complete
                  once it exists. ``"sweep"`` says what the arrays are: their shapes and dtypes, the
                  grid axes in the arrays' order, the params' tree, vary, log_every, ...

``load`` refuses (ValueError, saying which) a folder of another format version, a truncated or
unreadable file, and a missing or misshapen array.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import zipfile
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gbl_jax._version import __version__
from gbl_jax.atomic_files import json_bytes, json_safe, npz_bytes, open_regular, write_together
from gbl_jax.engine import results_schema
from gbl_jax.engine.training import split_keys
from gbl_jax.probability import distributions

# the families whose kept predictions sweep.npz holds (by dataclass field)
FAMILIES = {
    cls.__name__: cls
    for cls in (
        distributions.Normal,
        distributions.Laplace,
        distributions.Bernoulli,
        distributions.Categorical,
        distributions.MixtureNormal,
        distributions.MultivariateNormalTriL,
    )
}

RESULTS_FORMAT = 3  # of results.json and sweep.npz; a folder of another format is refused by load
ARRAYS, RESULTS = "sweep.npz", "results.json"
GRID_ORDER = "the leading axes of every per-run array, in this order"
_PER_RUN = ("final_loss", "diverged", "losses", "converged_step")


class SweepResult(NamedTuple):
    """What ``sweep`` returns (host numpy arrays; ``G`` is the grid's shape, () without one).

    Attributes:
      final_loss: [*G, seeds] full-data loss after training (NaN where diverged).
      diverged: [*G, seeds] bool: the training loss, the params or the final loss went non-finite.
      losses: [*G, seeds, steps // log_every] mean training loss over each window.
      keys: [seeds, ...] the key data of each seed: ``jax.random.split(key, seeds)[i]``;
        ``rerun(i)`` gives the arguments that make ``train`` repeat a run.
      params, init_params: stacked final / initial params [*G, seeds, ...] if ``keep_params``.
      metrics: {name: [*G, seeds, T]} at the end of each window; final_metrics {name: [*G, seeds]}.
      converged_step: [*G, seeds] the step where the gradient norm fell below ``grad_tol``, -1
        if never (always -1 without ``grad_tol``).
      grid: {name: values}, the grid's axes in order ({} without a grid).
      vary: which randomness differed between seeds.
      log_every: steps per logged window; chunk_size: runs per compiled call; wall_s: seconds.
      hyperparams: {name: value} of the grid axes this result was cut at (``cell``); {} for a
        whole sweep.
      crossed: (inits, data orders) of a crossed design (``gbl.crossed``): seed s is init
        s // data orders with data order s % data orders; () otherwise.
      model_axes: names of grid axes that choose the model (``gbl.sweep_models``), not a
        hyperparameter of training; ``rerun`` leaves them out.
      predictions: with ``keep_predictions``, each run's predictive distribution on the
        held-out set: the model's distribution whose arrays lead with [*G, seeds] (NaN where a
        run diverged); None otherwise.
      trajectory: with ``keep_trajectory``, each run's params at the end of every logging
        window, leaves [*G, seeds, windows, ...]; None otherwise (not saved by ``save``).
      probes: {name: [*G, seeds, T, ...]} each probe's value at each window's end
        (``gbl.probes``; NaN once diverged); {} without probes. A probe whose value is an array
        is saved and loaded with the result.

    A NamedTuple, not a dataclass: change fields with ``out.replace(final_loss=...)`` (or
    ``out._replace``, or ``copy.replace`` on Python 3.13+); ``dataclasses.replace`` refuses
    anything that is not a dataclass.
    """

    final_loss: np.ndarray
    diverged: np.ndarray
    losses: np.ndarray
    keys: np.ndarray
    params: Any
    init_params: Any
    metrics: dict
    final_metrics: dict
    converged_step: np.ndarray
    grid: dict
    vary: tuple
    log_every: int
    chunk_size: int
    wall_s: float
    hyperparams: Mapping[str, float] = {}
    crossed: tuple = ()
    model_axes: tuple = ()
    predictions: Any = None
    trajectory: Any = None
    probes: dict = {}

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.grid.values())

    def replace(self, **changes) -> "SweepResult":
        """A copy with ``changes`` ({field: value}); an unknown field is a ValueError naming
        the fields."""
        unknown = sorted(set(changes) - set(self._fields))
        if unknown:
            verb = "is not a field" if len(unknown) == 1 else "are not fields"
            raise ValueError(
                f"replace: {unknown} {verb} of SweepResult; its fields are "
                f"{', '.join(self._fields)}"
            )
        return self._replace(**changes)

    __replace__ = replace  # copy.replace (Python 3.13)

    @property
    def seeds(self) -> int:
        return int(np.shape(self.final_loss)[-1])

    def rerun(self, seed: int, cell: tuple = ()) -> dict:
        """Keyword arguments that make ``train`` repeat run (cell, seed) of this sweep (of the
        cell's model, for a ``model_axes`` cell: those axes choose the model, not ``train``)."""
        if tuple(self.vary) == ("perturb",) and seed > 0:
            raise ValueError(
                f"rerun: seed {seed} of a vary=('perturb',) sweep is seed 0's run with "
                "one initial weight moved by one ulp, which train cannot repeat; "
                "rerun(0) is seed 0"
            )
        keys = jnp.asarray(self.keys)
        init_seed, data_seed = seed, seed
        if self.crossed:  # seed i D + d: ordinary seed i D's init, ordinary seed d's data
            init_seed, data_seed = seed // self.crossed[1] * self.crossed[1], seed % self.crossed[1]
        key = keys[init_seed] if "init" in self.vary else keys[0]
        data_key = split_keys(keys[data_seed if "data" in self.vary else 0])[1]
        cell = tuple(cell)
        if len(cell) != len(self.grid):
            raise ValueError(
                f"rerun: cell must index every grid axis {list(self.grid)}, got {cell}"
            )
        hyper = {name: float(values[j]) for (name, values), j in zip(self.grid.items(), cell)}
        hyper = {k: v for k, v in {**self.hyperparams, **hyper}.items() if k not in self.model_axes}
        return {"key": key, "data_key": data_key, "hyperparams": hyper}

    def cell(self, **values: float) -> "SweepResult":
        """One grid cell, as a result without a grid: ``out.cell(learning_rate=0.05)``.

        Every axis with more than one value must be named; a value must be on its axis (to
        float32 rounding, the precision the sweep trained with). The cell's values move to
        ``hyperparams``, so ``rerun`` still repeats its runs.

        Raises:
          ValueError: an unknown axis, an axis left out, or a value not on its axis.
        """
        index, chosen = cell_index(self.grid, values)
        take = lambda a: np.asarray(a)[index]  # noqa: E731
        tree = lambda t: None if t is None else jax.tree.map(take, t)  # noqa: E731
        return self._replace(
            final_loss=take(self.final_loss),
            diverged=take(self.diverged),
            losses=take(self.losses),
            converged_step=take(self.converged_step),
            params=tree(self.params),
            init_params=tree(self.init_params),
            metrics={k: take(v) for k, v in self.metrics.items()},
            final_metrics={k: take(v) for k, v in self.final_metrics.items()},
            predictions=tree(self.predictions),
            trajectory=tree(self.trajectory),
            probes={k: tree(v) for k, v in self.probes.items()},
            grid={},
            hyperparams={**self.hyperparams, **chosen},
        )

    def to_frame(self):
        """A tidy pandas DataFrame: one row per cell x seed.

        Columns: the grid axes by name (and the ``hyperparams`` a cell was cut at), ``seed``,
        ``final_loss``, ``diverged``, ``converged_step``, then every final metric by name.
        """
        pd = require_pandas()
        return pd.DataFrame(per_run_columns(self))

    def save(
        self, path, *, config: Mapping[str, Any] | None = None, overwrite: bool = False
    ) -> Path:
        """Writes the result to the folder ``path`` (made if needed); ``load`` reads it back.

        Args:
          path: a folder; files other than ``sweep.npz`` and ``results.json`` are left alone.
          config: anything JSON can hold that describes the run (model, optimizer, data...),
            stored under ``"config"`` in results.json.
          overwrite: replace a result already saved there (else FileExistsError). Everything
            is checked before a file is touched, and the two files are replaced as one set.

        Returns:
          The folder.

        Raises:
          ValueError: ``path`` is a file, ``config`` cannot be written as JSON (nothing written).
        """
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"save: {folder} is a file, not a folder")
        there = [n for n in (ARRAYS, RESULTS) if (folder / n).exists()]
        odd = [n for n in there if not (folder / n).is_file()]
        if odd:
            raise ValueError(f"save: {folder / odd[0]} is not a regular file; move it away")
        if there and not overwrite:
            raise FileExistsError(
                f"save: {folder} already holds a saved result ({', '.join(there)}); "
                "pass overwrite=True to replace it or choose another folder"
            )
        folder.mkdir(parents=True, exist_ok=True)
        write(folder, self, {"config": dict(config or {})})
        return folder


def cell_index(grid: dict, values: dict) -> tuple[tuple[int, ...], dict[str, float]]:
    """The index of the cell ``values`` ({name: value}) names on ``grid`` ({name: values}), and
    the cell's values; the rule of ``SweepResult.cell`` (``gbl-jax compare`` and ``landscape``'s
    ``--cell NAME=VALUE``).

    Raises:
      ValueError: an unknown axis, an axis left out, or a value not on its axis.
    """
    unknown = [name for name in values if name not in grid]
    if unknown:
        what = "is not a grid axis" if len(unknown) == 1 else "are not grid axes"
        raise ValueError(
            f"cell: {unknown} {what}; the grid's axes are "
            f"{list(grid) or '(none: this result has no grid)'}"
        )
    index, chosen = [], {}
    for name, axis in grid.items():
        axis = np.asarray(axis, np.float64)
        if name not in values:
            if len(axis) > 1:
                raise ValueError(
                    f"cell: name a value of every grid axis; {name} has {_listing(axis)}"
                )
            j = 0
        else:
            hits = np.flatnonzero(np.isclose(axis, float(values[name]), rtol=1e-6, atol=0))
            if hits.size != 1:
                raise ValueError(
                    f"cell: {name}={values[name]!r} is not on the grid; {name} has {_listing(axis)}"
                )
            j = int(hits[0])
        index.append(j)
        chosen[name] = float(axis[j])
    return tuple(index), chosen


def _listing(axis: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in axis) + "]"


def require_pandas():
    """pandas, or an ImportError that says how to get it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "tables need pandas: pip install pandas (it comes with gbl_jax; "
            "this environment lacks it)"
        ) from None
    return pandas


def grid_columns(grid: Mapping[str, Any], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """{axis name: value of every entry of an array [*grid, ...rest]} flattened row-major."""
    if not grid:
        return {}
    index = np.indices(shape).reshape(len(shape), -1)
    return {
        name: np.asarray(values, np.float64)[index[j]]
        for j, (name, values) in enumerate(grid.items())
    }


def per_run_columns(out: SweepResult) -> dict[str, np.ndarray]:
    """The columns of ``to_frame``, one entry per cell x seed (cell-major)."""
    shape = np.shape(out.final_loss)
    runs = math.prod(shape)
    columns = grid_columns(out.grid, shape)
    columns.update(
        {k: np.full(runs, float(v)) for k, v in out.hyperparams.items() if k not in columns}
    )
    columns["seed"] = np.indices(shape).reshape(len(shape), -1)[-1]
    if out.crossed:
        columns["init_seed"] = columns["seed"] // out.crossed[1]
        columns["data_seed"] = columns["seed"] % out.crossed[1]
    columns.update(
        final_loss=np.asarray(out.final_loss).reshape(-1),
        diverged=np.asarray(out.diverged, bool).reshape(-1),
        converged_step=np.asarray(out.converged_step).reshape(-1),
    )
    for name, values in out.final_metrics.items():
        if name in columns:
            raise ValueError(f"to_frame: the metric {name!r} clashes with a column of that name")
        columns[name] = np.asarray(values).reshape(-1)
    return columns


def versions() -> dict:
    """The versions a result was made with (gbl_jax, jax, jaxlib, Python)."""
    import jaxlib

    return {
        "gbl_jax": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": sys.version.split()[0],
    }


# --- the params' tree, in JSON ----------------------------------------------------------------
def _tree_spec(tree, leaves: list) -> Any:
    """A JSON description of a tree of dicts, lists, tuples and None (leaves numbered in
    ``jax.tree`` order, appended to ``leaves``); None where another node type occurs."""
    if tree is None:
        return {"none": None}
    if isinstance(tree, dict):
        if not all(isinstance(k, str) for k in tree):
            return None
        items = {}
        for k in sorted(tree):  # jax flattens dicts in sorted key order
            spec = _tree_spec(tree[k], leaves)
            if spec is None:
                return None
            items[k] = spec
        return {"dict": items}
    if type(tree) in (list, tuple):
        specs = [_tree_spec(t, leaves) for t in tree]
        return None if any(s is None for s in specs) else {type(tree).__name__: specs}
    if not jax.tree_util.all_leaves([tree]):
        return None
    leaves.append(tree)
    return {"leaf": len(leaves) - 1}


def _tree_of(spec, leaves: list) -> Any:
    kind, body = next(iter(spec.items()))
    if kind == "none":
        return None
    if kind == "leaf":
        return leaves[body]
    if kind == "dict":
        return {k: _tree_of(v, leaves) for k, v in body.items()}
    parts = [_tree_of(v, leaves) for v in body]
    return parts if kind == "list" else tuple(parts)


# --- writing and reading the folder ----------------------------------------------------------
def _arrays_of(out: SweepResult) -> tuple[dict[str, np.ndarray], Any]:
    arrays = {name: np.asarray(getattr(out, name)) for name in (*_PER_RUN, "keys")}
    arrays.update({f"metrics/{k}": np.asarray(v) for k, v in out.metrics.items()})
    arrays.update({f"final_metrics/{k}": np.asarray(v) for k, v in out.final_metrics.items()})
    tree = None
    if out.params is not None:
        leaves: list = []
        tree = _tree_spec(out.params, leaves)
        flat = jax.tree.leaves(out.params)
        init = jax.tree.leaves(out.init_params) if out.init_params is not None else None
        if init is not None and len(init) != len(flat):
            raise ValueError("save: params and init_params have different trees")
        for i, leaf in enumerate(flat):
            arrays[f"params/{i}"] = np.asarray(leaf)
            if init is not None:
                arrays[f"init_params/{i}"] = np.asarray(init[i])
    if out.predictions is not None:
        _, fields = _prediction_fields(out.predictions)
        arrays.update({f"predictions/{k}": v for k, v in fields.items()})
    for name, value in out.probes.items():
        if not isinstance(value, (np.ndarray, jax.Array)):
            raise ValueError(
                f"save: probe {name!r} returns a {type(value).__name__}, not an "
                "array; only probes whose value is one array are saved (drop it "
                "with out.replace(probes=...))"
            )
        arrays[f"probes/{name}"] = np.asarray(value)
    return arrays, tree


def _prediction_fields(dist) -> tuple[str, dict[str, np.ndarray]]:
    """(family name, {field: array}) of kept predictions, for sweep.npz; a distribution of
    another library cannot be written (its fields are not known)."""
    family = type(dist).__name__
    if FAMILIES.get(family) is not type(dist):
        raise ValueError(
            f"save: predictions of type {family} cannot be saved; only gbl_jax's "
            f"distributions ({', '.join(sorted(FAMILIES))}) can"
        )
    return family, {f.name: np.asarray(getattr(dist, f.name)) for f in dataclasses.fields(dist)}


def _describe(out: SweepResult, arrays: Mapping[str, np.ndarray], tree) -> dict:
    """What results.json says of the result's arrays (its ``"sweep"`` entry)."""
    return {
        "arrays_file": ARRAYS,
        "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype.str} for k, v in arrays.items()},
        "grid": [{"name": k, "values": [float(x) for x in v]} for k, v in out.grid.items()],
        "grid_order": GRID_ORDER,
        "hyperparams": {k: float(v) for k, v in out.hyperparams.items()},
        "seeds": out.seeds,
        "vary": list(out.vary),
        "log_every": int(out.log_every),
        "chunk_size": int(out.chunk_size),
        "wall_s": float(out.wall_s),
        "metrics": list(out.metrics),
        "final_metrics": list(out.final_metrics),
        "params": None
        if out.params is None
        else {
            "tree": tree,
            "leaves": len(jax.tree.leaves(out.params)),
            "init_params": out.init_params is not None,
        },
        "crossed": [int(n) for n in out.crossed] or None,
        "probes": list(out.probes),
        "model_axes": list(out.model_axes),
        "predictions": None
        if out.predictions is None
        else {
            "family": type(out.predictions).__name__,
            "fields": [k.split("/", 1)[1] for k in arrays if k.startswith("predictions/")],
        },
    }


def write(folder: Path, out: SweepResult, doc: Mapping[str, Any]) -> dict:
    """Writes sweep.npz and results.json = ``doc`` plus the format and the arrays' description.

    Both are made in memory first, so a ``doc`` that JSON cannot hold is refused before either
    file is touched; then they are written as one set (``atomic_files.write_together``),
    results.json last: a crash never leaves new arrays beside an old results.json.

    Raises:
      ValueError: ``doc`` holds something JSON cannot (nothing is written).
    """
    arrays, tree = _arrays_of(out)
    full = {
        **doc,
        "format": RESULTS_FORMAT,
        "sweep": _describe(out, arrays, tree),
        "versions": versions(),
    }
    try:
        text = json_bytes(full)
    except (TypeError, ValueError) as err:  # ValueError: a circular reference
        raise ValueError(
            f"save: results.json cannot hold the config: {err}; nothing was written"
        ) from None
    folder = Path(folder)
    write_together([(folder / ARRAYS, npz_bytes(arrays)), (folder / RESULTS, text)])
    return json_safe(full)


def read_doc(folder: Path) -> dict:
    """results.json of a saved result, checked for its format; ValueError says what is wrong."""
    path = Path(folder) / RESULTS
    if not Path(folder).is_dir():
        raise ValueError(f"load: {folder} is not a folder")
    if not path.exists() and not path.is_symlink():
        raise ValueError(
            f"load: {folder} has no {RESULTS}: not a saved sweep, or one that did "
            "not finish (an interrupted gbl-jax sweep: finish it with --resume)"
        )
    try:
        with open_regular(path) as f:
            doc = json.loads(f.read())
    except (OSError, ValueError) as err:
        raise ValueError(f"load: {path} is not readable JSON (truncated?): {err}") from None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if type(fmt) is not int or fmt != RESULTS_FORMAT:
        hint = (
            ": upgrade gbl_jax"
            if type(fmt) is int and fmt > RESULTS_FORMAT
            else ": rerun the sweep"
            if fmt is None or type(fmt) is int
            else f" (the integer {RESULTS_FORMAT}, not {fmt!r})"
        )
        raise ValueError(
            f"load: {path} is of format {fmt if fmt is not None else '2 or older'}; "
            f"this gbl_jax ({versions()['gbl_jax']}) reads format {RESULTS_FORMAT}" + hint
        )
    results_schema.check(doc.get("sweep"), path, tuple(FAMILIES))
    return doc


def _read_arrays(path: Path, wanted: Mapping[str, Mapping]) -> dict[str, np.ndarray]:
    try:
        file = open_regular(path)
    except FileNotFoundError:
        raise ValueError(f"load: {path} is missing") from None
    except (OSError, ValueError) as err:  # a FIFO would block np.load forever
        raise ValueError(f"load: {path} cannot be read: {err}") from None
    try:
        with file:
            archive = np.load(file, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with archive as f:
                names = set(f.files)
                missing = [k for k in wanted if k not in names]
                if missing:
                    raise KeyError(missing)
                arrays = {k: f[k] for k in wanted}
    except KeyError as err:
        raise ValueError(
            f"load: {path} lacks the array(s) {err.args[0][:4]} that results.json lists"
        ) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"load: {path} cannot be read (truncated or damaged?): {err}") from None
    for k, a in arrays.items():
        want = wanted[k]
        if list(a.shape) != list(want["shape"]) or a.dtype.str != want["dtype"]:
            raise ValueError(
                f"load: {path}: array {k!r} is {a.dtype.str} {list(a.shape)}, "
                f"results.json says {want['dtype']} {want['shape']}"
            )
    return arrays


def load(path, *, params_like=None) -> SweepResult:
    """Reads a result saved by ``out.save`` or written by ``gbl-jax sweep``.

    Args:
      path: the folder.
      params_like: a params tree of the model (e.g. ``model.init(key, x)`` or its
        ``jax.eval_shape``); needed only when the params are not made of dicts, lists and tuples
        (flax or equinox modules), whose tree a JSON file cannot describe.

    Returns:
      A ``SweepResult`` equal, array for array, to the one saved.

    Raises:
      ValueError: another format version, a results.json that does not describe the arrays
        (``results_schema``: a field missing or of the wrong type, a grid that disagrees with the
        arrays' axes), a truncated, missing or not regular file, a missing array.
    """
    folder = Path(path)
    doc = read_doc(folder)
    meta = doc["sweep"]
    arrays = _read_arrays(folder / meta["arrays_file"], meta["arrays"])
    params = init_params = None
    if meta.get("params") is not None:
        info = meta["params"]
        n = int(info["leaves"])
        leaves = [arrays[f"params/{i}"] for i in range(n)]
        init = [arrays[f"init_params/{i}"] for i in range(n)] if info["init_params"] else None
        if params_like is not None:
            treedef = jax.tree.structure(params_like)
            if treedef.num_leaves != n:
                raise ValueError(
                    f"load: params_like has {treedef.num_leaves} leaves, the saved params {n}"
                )
            build = lambda ls: jax.tree.unflatten(treedef, ls)  # noqa: E731
        elif info["tree"] is not None:
            build = lambda ls: _tree_of(info["tree"], ls)  # noqa: E731
        else:
            raise ValueError(
                f"load: {folder}'s params are a tree of modules JSON cannot describe; "
                "pass params_like= a params tree of the model (e.g. "
                "jax.eval_shape(model.init, key, x))"
            )
        params = build(leaves)
        init_params = build(init) if init is not None else None
    grid = {g["name"]: list(g["values"]) for g in meta["grid"]}
    return SweepResult(
        final_loss=arrays["final_loss"],
        diverged=arrays["diverged"],
        losses=arrays["losses"],
        keys=arrays["keys"],
        params=params,
        init_params=init_params,
        metrics={_held_out_name(k): arrays[f"metrics/{k}"] for k in meta["metrics"]},
        final_metrics={
            _held_out_name(k): arrays[f"final_metrics/{k}"] for k in meta["final_metrics"]
        },
        converged_step=arrays["converged_step"],
        grid=grid,
        vary=tuple(meta["vary"]),
        log_every=int(meta["log_every"]),
        chunk_size=int(meta["chunk_size"]),
        wall_s=math.nan if meta["wall_s"] is None else float(meta["wall_s"]),
        hyperparams=dict(meta.get("hyperparams", {})),
        crossed=tuple(meta.get("crossed") or ()),
        model_axes=tuple(meta.get("model_axes", ())),
        predictions=_predictions_of(meta.get("predictions"), arrays),
        probes={k: arrays[f"probes/{k}"] for k in meta.get("probes", [])},
    )


def _predictions_of(info, arrays) -> Any:
    if info is None:
        return None
    cls = FAMILIES[info["family"]]
    return cls(**{k: arrays[f"predictions/{k}"] for k in info["fields"]})


def _held_out_name(name: str) -> str:
    """A metric's name as this version writes it: results saved before 0.4 named the held-out
    metrics ``eval_*``, now ``test_*`` everywhere (API, command line, tables)."""
    return "test_" + name[5:] if name.startswith("eval_") else name


def stacked_of(out, where: str, *, need_init: bool = False) -> tuple[Any, Any, np.ndarray]:
    """(params, init_params, diverged) of a result without a grid, for the analysis functions.

    Raises:
      ValueError: a result with a grid (naming ``.cell``) or without kept params.
    """
    if out.grid:
        names = ", ".join(f"{k}=..." for k in out.grid)
        raise ValueError(
            f"{where}: this result has a grid {list(out.grid_shape)} "
            f"({', '.join(out.grid)}); take one cell with out.cell({names})"
        )
    if out.params is None or (need_init and out.init_params is None):
        raise ValueError(
            f"{where}: this result has no params; run the sweep with "
            "keep_params=True (gbl-jax sweep --keep-params)"
        )
    return out.params, out.init_params, np.asarray(out.diverged, bool)
