"""``gbl-jax sweep --hidden 2 8 32``: the architecture as an axis.

Each model's sweep is a whole run folder of its own, ``OUT/hidden-8/`` (its chunks, lock,
resume and outputs as any sweep's), run one after another with the same options and seeds, so
seed i starts from the same key in every model. The folder ``OUT`` then holds the stacked result
(``gbl.load(OUT)``: the model axis first, ``model_axes``), ``cells.csv`` with one row per model
and cell, and the reported metric's distribution per model; the summary compares them.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Callable

import numpy as np

from gbl_jax.analysis import plots
from gbl_jax.analysis.spreads import spread
from gbl_jax.atomic_files import write_csv
from gbl_jax.cli import runstore, sweep_report
from gbl_jax.cli.build import UsageError, parse_hidden
from gbl_jax.engine import results as results_format
from gbl_jax.engine.model_sweeps import stack_models

AXIS_OPTIONS = ("hidden", "channels")
FIGURE = "models"


def normalize(args: argparse.Namespace) -> tuple[str, list[str]] | None:
    """Turns --hidden / --channels with one list back into one value (as the single sweep
    takes it); returns (option, [spec, ...]) when one got several lists: a model axis."""
    axis = None
    for name in AXIS_OPTIONS:
        values = getattr(args, name, None)
        if not isinstance(values, list):
            continue
        if len(values) == 1:
            setattr(args, name, values[0])
        elif axis is not None:
            raise UsageError(
                f"--{axis[0]} and --{name} both list several models; one model axis per sweep"
            )
        else:
            if len(set(values)) != len(values):
                raise UsageError(f"--{name} repeats a value: {values}")
            for spec in values:  # every model's spec checked before the first one runs
                parse_hidden(spec, name)
            axis = (name, values)
    return axis


def _axis_values(name: str, specs: list[str]) -> tuple[str, list[float]]:
    """The axis as the stacked result names it: each spec's width when every spec is one
    number (--hidden 2 8), else the model's position (axis "model", 0, 1, ...)."""
    parts = [spec.split(",") for spec in specs]
    if all(len(p) == 1 and p[0].strip().isdigit() for p in parts):
        return name, [float(p[0]) for p in parts]
    return "model", [float(i) for i in range(len(specs))]


def _subfolder(out: Path, name: str, spec: str) -> Path:
    return out / f"{name}-{spec.replace(',', '-') or 'none'}"


def sweep_each(
    args: argparse.Namespace,
    axis: tuple[str, list[str]],
    sweep_one: Callable[[argparse.Namespace], int],
    default_out: Path,
) -> int:
    """Runs one sweep per model of ``axis`` into subfolders of --out, then stacks them.

    Returns:
      The exit status: the first failing sweep's, else 0.
    """
    name, specs = axis
    if args.processes not in (None, 1) or args.coordinator is not None or args.distributed:
        raise UsageError(
            f"--{name} given several times runs one sweep per model in this "
            "process; run each model's sweep with its own processes instead"
        )
    if args.model is not None:
        raise UsageError(
            f"--model builds the whole network; --{name} cannot make a model axis beside it"
        )
    out = Path(args.out) if args.out is not None else default_out
    if args.resume and args.out is None:
        raise UsageError("--resume needs the --out folder of an interrupted sweep")
    if not args.resume and not args.force and out.exists() and any(out.iterdir()):
        raise UsageError(
            f"--out {out} already holds files; pass --force to replace the results "
            "gbl-jax wrote there, or choose another folder"
        )
    folders = [_subfolder(out, name, spec) for spec in specs]
    for spec, folder in zip(specs, folders):
        if args.resume and (folder / results_format.RESULTS).is_file():
            print(f"gbl-jax: {folder} is finished; kept", flush=True)
            continue
        sub = copy.copy(args)
        setattr(sub, name, spec)
        sub.out = str(folder)
        sub.resume = args.resume and folder.is_dir()
        print(f"gbl-jax: --{name} {spec} into {folder}", flush=True)
        status = sweep_one(sub)
        if status != 0:
            return status
    return _combine(out, name, specs, folders)


def _combine(out: Path, name: str, specs: list[str], folders: list[Path]) -> int:
    """Stacks the models' results into ``out``: sweep.npz and results.json, cells.csv, the
    metric's figure; prints one row per model."""
    loaded = [results_format.load(folder) for folder in folders]
    docs = [json.loads((folder / results_format.RESULTS).read_text()) for folder in folders]
    axis_name, values = _axis_values(name, specs)
    try:
        stacked = stack_models({axis_name: values}, loaded)
    except ValueError as err:
        raise UsageError(f"{out}: {err}") from None
    config = docs[0]["config"]
    metric = sweep_report.metric_name(config, stacked)
    threshold = config["threshold"]
    report = sweep_report.metric_report(stacked, config)
    stacked.save(
        out,
        overwrite=True,
        config={  # sweep_each checked --force / --resume
            "models": {
                "option": name,
                "specs": specs,
                "axis": axis_name,
                "folders": [f.name for f in folders],
            },
            "sweep": {k: v for k, v in config.items() if k != name},
            "metric": report,
        },
    )
    cells = spread(stacked).to_frame(threshold)
    columns = {k: cells[k].to_numpy() for k in cells.columns}
    if axis_name == "model":
        columns[name] = np.repeat(np.asarray(specs, object), len(cells) // len(specs))
    columns.update(runstore.metric_columns(report))
    write_csv(out / runstore.CELLS, columns)
    values_of = stacked.final_loss if metric == "final_loss" else stacked.final_metrics[metric]
    figure = plots.final_loss_by_cell(
        stacked.grid,
        values_of,
        stacked.diverged,
        threshold=threshold if metric == "final_loss" else None,
        title=f"{metric} per --{name}",
        xlabel=metric,
    )
    plots.save(figure, out / FIGURE)
    print(f"  {metric} per --{name} ({stacked.seeds} seeds each, bootstrap 95% intervals):")
    means, stds = report["mean"], report["std"]
    mean_ci = report["mean_interval"]["low"], report["mean_interval"]["high"]
    std_ci = report["std_interval"]["low"], report["std_interval"]["high"]
    for index in np.ndindex(np.shape(means)):
        labels = [f"{k}={v[i]:g}" for (k, v), i in zip(stacked.grid.items(), index)]
        if axis_name == "model":
            labels[0] = f"--{name} {specs[index[0]] or repr('')}"
        cell = " ".join(labels)
        pick = lambda a: np.asarray(a)[index]  # noqa: E731
        print(
            f"    {cell:<28} mean {pick(means):.4g} [{pick(mean_ci[0]):.4g}, "
            f"{pick(mean_ci[1]):.4g}], std {pick(stds):.3g} [{pick(std_ci[0]):.3g}, "
            f"{pick(std_ci[1]):.3g}]"
        )
    print(f"  written to {out} (each model's run in {', '.join(f.name for f in folders)})")
    return 0
