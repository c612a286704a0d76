"""``gbl-jax instability``: Frankle et al. 2020's instability analysis in a run folder.

  gbl-jax instability --problem mnist1d --hidden 100 --optimizer momentum --lr 0.05 \\
      --batch-size 100 --parents 64 --steps 3000 --at 0,10,100,300,1000 --out runs/inst

The folder follows the sweeps' rules (``runstore``): a marker and a lock (one process at a
time), a manifest of the files written, everything written whole. Each finished k is saved at
once (``instability_k<k>.npz``: its barriers and the parents' state there), so ``--resume``
after an interruption runs only the k not yet saved, continuing the parents from the last one;
``--force`` replaces a finished analysis. Outputs: instability.csv (one row per k x parent x
pair), stable.csv (P(stable | k) with Wilson intervals), instability.json, instability.png/.pdf.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

from gbl_jax.analysis import plots
from gbl_jax.analysis.instability import Store, run_instability
from gbl_jax.atomic_files import atomic_write, write_csv, write_json
from gbl_jax.cli import build, runstore
from gbl_jax.cli.build import UsageError, check_int, check_number, check_numbers

COMMAND = "instability"
OUTPUTS = (
    "instability.csv",
    "stable.csv",
    "instability.json",
    "instability.png",
    "instability.pdf",
)
DEFAULTS = {
    "parents": 64,
    "children": 2,
    "at": "0,10,100,1000",
    "tol": 0.02,
    "num": 25,
    "align": "none",
}
# the sweep options this command takes (build.resolve_config checks them)
NET = (
    "problem",
    "data",
    "hidden",
    "activation",
    "init",
    "head",
    "optimizer",
    "lr",
    "steps",
    "batch_size",
    "seed",
    "n",
    "chunk_size",
    "loss",
)


def _k_file(k: int) -> str:
    return f"instability_k{k:09d}.npz"


class FolderStore(Store):
    """Each finished k of the analysis in the run folder (see the module docstring)."""

    def __init__(self, folder: runstore.RunFolder, at):
        self.folder, self.at = folder, [int(k) for k in at]

    def _read(self, k: int) -> dict:
        with np.load(self.folder.file(_k_file(k))) as f:
            return {name: f[name] for name in f.files}

    def done(self) -> dict:
        out = {}
        for k in self.at:
            if not self.folder.file(_k_file(k)).is_file():
                break
            arrays = self._read(k)
            out[k] = {n.split("/", 1)[1]: a for n, a in arrays.items() if n.startswith("barrier/")}
        return out

    def parents(self, k: int, like):
        arrays = self._read(k)
        return runstore.unflatten(
            like,
            {n.split("/", 1)[1]: a for n, a in arrays.items() if n.startswith("parents/")},
            str(_k_file(k)),
        )

    def save(self, k: int, barriers: dict, parents) -> None:
        arrays = {f"barrier/{n}": np.asarray(v) for n, v in barriers.items()}
        arrays.update({f"parents/{n}": a for n, a in runstore.flatten(parents).items()})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.folder.record([_k_file(k)])
        atomic_write(self.folder.file(_k_file(k)), buffer.getvalue())


def _settings(args) -> dict:
    """The analysis' own options, checked."""
    at = check_numbers("at", args.at if args.at is not None else DEFAULTS["at"], 0.0)
    if any(k != int(k) for k in at) or len(set(at)) != len(at):
        raise UsageError(f"--at takes distinct integer steps, got {args.at!r}")
    tol = check_number("tol", args.tol if args.tol is not None else DEFAULTS["tol"], 0.0)
    pick = lambda name: (
        getattr(args, name)
        if getattr(args, name) is not None
        # noqa
        else (DEFAULTS[name])
    )
    return {
        "parents": check_int("parents", pick("parents"), 1),
        "children": check_int("children", pick("children"), 2),
        "at": sorted(int(k) for k in at),
        "tol": tol,
        "num": check_int("num", pick("num"), 11),
        "align": pick("align"),
    }


def _resolve(args):
    given = {k: getattr(args, k) for k in NET if getattr(args, k, None) is not None}
    folder = runstore.RunFolder(args.out)
    if args.resume and args.force:
        raise UsageError("--resume finishes an analysis and --force replaces it: pass one")
    if not args.resume:
        config = build.resolve_config(given)
        settings = _settings(args)
        if max(settings["at"]) > config["steps"]:
            raise UsageError(f"--at {max(settings['at'])} is past --steps {config['steps']}")
        built = build.build(config)  # before the folder is made: a bad problem writes nothing
        if config["batch_size"] is None or config["batch_size"] >= len(built.data.x):
            raise UsageError(
                "the children of one parent would be identical with full batches: "
                f"pass a --batch-size below the number of examples "
                f"({len(built.data.x)})"
            )
        folder.check_new(force=args.force)
        folder.create({"command": COMMAND, "config": config, COMMAND: settings}, force=args.force)
        return folder, config, settings
    doc = folder.read_config()
    if doc.get("command") != COMMAND:
        raise UsageError(f"{folder.path} holds a sweep, not an instability analysis")
    extra = [k for k in (*given, *DEFAULTS) if k in given or getattr(args, k, None) is not None]
    if extra:
        raise UsageError(
            f"--resume reads the options from {folder.path}; drop "
            + ", ".join(f"--{k.replace('_', '-')}" for k in extra)
        )
    if folder.file("instability.json").is_file():
        raise UsageError(f"{folder.path} is finished; --force runs it again")
    folder.lock()
    return folder, doc["config"], doc[COMMAND]


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        args.out = str(Path("runs") / f"instability-{time.strftime('%Y%m%d-%H%M%S')}")
    folder, config, settings = _resolve(args)
    try:
        import jax

        built = build.build(config)
        res = run_instability(
            built.model,
            built.optimizer,
            built.data,
            key=jax.random.PRNGKey(config["seed"]),
            parents=settings["parents"],
            steps=config["steps"],
            at=settings["at"],
            children=settings["children"],
            batch_size=config["batch_size"],
            loss=built.loss,
            align=None if settings["align"] == "none" else config["activation"],
            num=settings["num"],
            chunk_size=config["chunk_size"],
            store=FolderStore(folder, settings["at"]),
        )
        folder.record(list(OUTPUTS))
        frame = res.to_frame()
        write_csv(folder.file("instability.csv"), {c: frame[c].to_numpy() for c in frame})
        rates = {}
        for name in res.barriers:
            metric = name.removeprefix("aligned_")
            rate = res.stable_rate(
                settings["tol"], metric=metric, aligned=name.startswith("aligned_")
            )
            rates[name] = rate
        columns = {"k": np.asarray(res.at)}
        for name, rate in rates.items():
            columns.update(
                {
                    f"{name}_stable": rate.stable,
                    f"{name}_n": rate.n,
                    f"{name}_rate": rate.rate,
                    f"{name}_low": rate.low,
                    f"{name}_high": rate.high,
                }
            )
        write_csv(folder.file("stable.csv"), columns)
        metric = "error" if "error" in res.barriers else "loss"
        plots.save(
            plots.instability_figure(res, tol=settings["tol"], metric=metric), folder.file(COMMAND)
        )
        report = {
            "command": COMMAND,
            "config": config,
            COMMAND: settings,
            "evaluated_on": res.evaluated_on,
            "metric": metric,
            "crossing": {n: r.crossing(0.5) for n, r in rates.items()},
            "stable_rate": {
                n: {
                    "k": [int(k) for k in r.at],
                    "rate": r.rate.tolist(),
                    "low": r.low.tolist(),
                    "high": r.high.tolist(),
                }
                for n, r in rates.items()
            },
        }
        write_json(folder.file("instability.json"), report)
    finally:
        folder.close()
    print(_summary(res, rates, settings["tol"], folder.path))
    return 0


def _summary(res, rates: dict, tol: float, out) -> str:
    lines = [
        f"instability: {res.parents} parents x {res.children} children, {res.steps} steps; "
        f"barriers on the {res.evaluated_on} set; stable: barrier < {tol:g}",
        f"{'k':>8}  " + "  ".join(f"{n:>28}" for n in rates),
    ]
    for i, k in enumerate(res.at):
        cells = []
        for name, r in rates.items():
            med = np.nanmedian(np.max(res.barriers[name][i], axis=-1))
            cells.append(f"{r.rate[i]:5.0%} [{r.low[i]:4.0%},{r.high[i]:4.0%}] med {med:7.4f}")
        lines.append(f"{int(k):>8}  " + "  ".join(f"{c:>28}" for c in cells))
    lines.append(f"wrote {out}")
    return "\n".join(lines)


def add_parser(sub, parents) -> None:
    """Registers ``gbl-jax instability`` on the subparsers ``sub``."""
    d = build.SWEEP_DEFAULTS
    p = sub.add_parser(
        COMMAND,
        parents=parents,
        allow_abbrev=False,
        help="when a run's fate is decided: children spawned at step k, barriers between them",
        description="Instability analysis (Frankle et al. 2020): parents train k "
        "steps, children continue on other data orders to --steps, and the "
        "error and loss barriers between children say whether SGD's noise "
        "after k still matters (stable: barrier < --tol).",
    )
    p.add_argument("--problem", help=f"a registered problem; default {d['problem']}")
    p.add_argument("--data", metavar="FILE|MODULE:FUNCTION", help="your own data (as sweep)")
    p.add_argument("--hidden", help=f"hidden widths, a comma list; default {d['hidden']}")
    p.add_argument("--activation", help="hidden nonlinearity; default tanh")
    p.add_argument("--init", help="init scheme; default glorot_normal")
    p.add_argument("--head", help="output unit; default: the problem's own")
    p.add_argument("--loss", help="nll (default) or mse")
    p.add_argument(
        "--optimizer",
        help="adam (default), sgd or momentum (SGD with momentum 0.9, as in the paper)",
    )
    p.add_argument("--lr", help="learning rate")
    p.add_argument("--steps", type=int, help=f"steps of every child; default {d['steps']}")
    p.add_argument(
        "--batch-size",
        type=int,
        help="minibatch size (required in effect: full batches give identical children)",
    )
    p.add_argument("--seed", type=int, help="base random seed; default 0")
    p.add_argument("--n", type=int, help="data size; default: the problem's own")
    p.add_argument("--chunk-size", type=int, help="runs per compiled call")
    p.add_argument("--parents", type=int, help=f"parents; default {DEFAULTS['parents']}")
    p.add_argument(
        "--children", type=int, help=f"children per parent and k; default {DEFAULTS['children']}"
    )
    p.add_argument("--at", help=f"spawn steps k, a comma list; default {DEFAULTS['at']}")
    p.add_argument("--tol", help=f"stable: barrier below this; default {DEFAULTS['tol']}")
    p.add_argument("--num", type=int, help=f"points on each segment; default {DEFAULTS['num']}")
    p.add_argument(
        "--align",
        choices=("weights", "none"),
        help="weights: also barriers after matching hidden units (gbl.mlp only); default none",
    )
    p.add_argument("--out", help="output folder; default runs/instability-<time>")
    p.add_argument(
        "--resume",
        action="store_true",
        help="finish the interrupted analysis in --out (the k already saved are not run again)",
    )
    p.add_argument("--force", action="store_true", help="replace the analysis in --out")
    p.set_defaults(run=run)
