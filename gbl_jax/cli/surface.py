"""``gbl-jax surface DIR``: loss surfaces around a kept-params sweep's seeds, and curves between
them (``gbl.surface``, ``gbl.curve``).

Reads the run folder as ``gbl-jax ensemble`` does (a finished sweep, its own data and model),
writes ``surface[-TAG].csv``, ``surface[-TAG].json`` and ``surface[-TAG].png/.pdf`` (and with
``--curve-pairs``, ``bezier[-TAG].csv`` and ``bezier[-TAG].png/.pdf``) into the folder, and
refuses to write over files that are there already (``--tag`` names a new set).
"""

from __future__ import annotations

import argparse
import re
import sys

from gbl_jax.cli import build, runner, sweep_report
from gbl_jax.cli.build import UsageError, check_int, check_numbers


def add_parser(sub, parents) -> None:
    """Registers ``surface`` on ``sub`` (``main``'s subparsers)."""
    p = sub.add_parser(
        "surface",
        parents=parents,
        help="loss surfaces around a kept-params sweep's seeds "
        "(Li et al. 2018) and curves between them (Garipov et al. 2018)",
        description="The training and held-out loss (and accuracy) on a grid around each "
        "seed's final params along filter-normalized random directions; every seed and point "
        "in one vmapped program. Writes surface.csv, surface.json and surface.png/.pdf; with "
        "--curve-pairs, trained Bezier curves between pairs of seeds beside the straight lines "
        "(bezier.csv, bezier.png/.pdf). Existing files are never overwritten (use --tag).",
    )
    p.add_argument("dir", help="a sweep's folder, run with --keep-params")
    p.add_argument(
        "--dims", type=int, default=2, help="directions: 1 (curves) or 2 (contours; default)"
    )
    p.add_argument("--points", type=int, default=41, help="grid points per direction (default 41)")
    p.add_argument("--span", default="1.0", help="the grid covers [-span, span] (default 1)")
    p.add_argument(
        "--draws",
        type=int,
        default=1,
        help="random direction sets per seed (default 1; more give the spread over directions)",
    )
    p.add_argument(
        "--directions",
        choices=("filter", "pca"),
        default="filter",
        help="filter (default): Li et al.'s filter-normalized random directions; "
        "pca needs a trajectory, which run folders do not keep",
    )
    p.add_argument("--biases", action="store_true", help="give biases a direction too")
    p.add_argument("--seed", type=int, default=0, help="the directions' random seed (default 0)")
    p.add_argument(
        "--curve-pairs",
        type=int,
        default=0,
        help="also train Bezier curves between "
        "the first K pairs of non-diverged seeds (0, 1), (2, 3), ... (default 0)",
    )
    p.add_argument(
        "--curve-steps",
        type=int,
        default=1000,
        help="optimizer steps per curve (default 1000, Adam 0.01)",
    )
    p.add_argument(
        "--align",
        choices=("none", "weights"),
        default="none",
        help="curves: align each pair's hidden units first (gbl.mlp params only; default none)",
    )
    p.add_argument("--tag", default="", help="a name for this set of files: surface-TAG.*")
    p.add_argument(
        "--cell", action="append", metavar="NAME=VALUE", help="on a grid, the cell (once per axis)"
    )
    p.set_defaults(run=run)


def _outputs(tag: str, curves: bool) -> list[str]:
    suffix = f"-{tag}" if tag else ""
    names = [f"surface{suffix}.{ext}" for ext in ("csv", "json", "png", "pdf")]
    if curves:
        names += [f"bezier{suffix}.{ext}" for ext in ("csv", "png", "pdf")]
    return names


def run(args: argparse.Namespace) -> int:
    """The surface command (see the module)."""
    import jax
    import numpy as np

    from gbl_jax.analysis import plots
    from gbl_jax.analysis.curves import curve
    from gbl_jax.analysis.surfaces import surface
    from gbl_jax.atomic_files import write_csv, write_json

    if args.tag and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.tag):
        raise UsageError(f"--tag must be letters, digits, '_', '.' or '-', got {args.tag!r}")
    dims = check_int("dims", args.dims, 1, 2)
    points = check_int("points", args.points, 2)
    draws = check_int("draws", args.draws, 1)
    span = check_numbers("span", args.span, 0.0, strict=True)[0]
    pairs = check_int("curve-pairs", args.curve_pairs, 0)
    steps = check_int("curve-steps", args.curve_steps, 1)
    if args.directions == "pca":
        raise UsageError(
            "--directions pca needs each seed's trajectory, which run folders do "
            "not keep; use gbl.surface(model, data, gbl.sweep(..., "
            "keep_trajectory=True), directions='pca') from Python"
        )
    folder, config = build.finished_sweep(args.dir)
    names = _outputs(args.tag, pairs > 0)
    taken = [n for n in names if folder.file(n).exists()]
    if taken:
        raise UsageError(
            f"{folder.path} already holds {', '.join(taken)}; pass --tag NAME "
            "to write a new set beside them"
        )
    build.check_named_again(args, folder, config)
    out = build.load_result(folder.path)
    if out.params is None:
        raise UsageError(f"{folder.path} kept no params: run the sweep with --keep-params")
    out = build.cell_of(out, args.cell, folder.path)
    cache = runner.compile_cache(args)
    built = build.build(config)
    note = build.fingerprint(config, built)
    if note is not None:
        print(f"gbl-jax: note: {note}", file=sys.stderr)
    ok = np.flatnonzero(~np.asarray(out.diverged, bool))
    if pairs and 2 * pairs > len(ok):
        raise UsageError(
            f"--curve-pairs {pairs} needs {2 * pairs} non-diverged seeds; the sweep has {len(ok)}"
        )
    activation = config["activation"] if config["model"] is None else None
    if pairs and args.align == "weights" and activation is None:
        raise UsageError(
            "--align weights needs gbl.mlp params (this sweep ran a --model); pass --align none"
        )
    try:
        s = surface(
            built.model,
            built.data,
            out,
            dims=dims,
            points=points,
            span=span,
            directions="filter",
            draws=draws,
            key=jax.random.PRNGKey(args.seed),
            biases=args.biases,
            loss=built.loss,
        )
        c = None
        if pairs:
            take = lambda idx: jax.tree.map(lambda a: np.asarray(a)[idx], out.params)  # noqa
            c = curve(
                built.model,
                built.data,
                take(ok[0 : 2 * pairs : 2]),
                take(ok[1 : 2 * pairs : 2]),
                steps=steps,
                loss=built.loss,
                key=jax.random.PRNGKey(args.seed),
                align=activation if args.align == "weights" else None,
            )
    except ValueError as err:
        raise UsageError(str(err)) from None
    mid = (points - 1) // 2
    center = {n: v[(slice(None), 0) + (mid,) * dims] for n, v in s.values.items()}
    edge = {
        n: np.nanmax(v.reshape(v.shape[0], -1), axis=1)
        for n, v in s.values.items()
        if n.endswith("loss")
    }
    report = {
        "cell": dict(out.hyperparams),
        "seeds": out.seeds,
        "dims": dims,
        "points": points,
        "span": span,
        "draws": draws,
        "directions": "filter",
        "biases": args.biases,
        "seed": args.seed,
        "diverged": int(np.sum(s.diverged)),
        "center": {n: [float(x) for x in v] for n, v in center.items()},
        "max_on_grid": {n: [float(x) for x in v] for n, v in edge.items()},
        "compile_cache": cache,
    }
    if c is not None:
        report["curves"] = {
            "pairs": [
                [int(a), int(b)] for a, b in zip(ok[0 : 2 * pairs : 2], ok[1 : 2 * pairs : 2])
            ],
            "steps": steps,
            "aligned": c.aligned,
            "barrier": [float(x) for x in c.barrier],
            "line_barrier": [float(x) for x in c.line_barrier],
        }
    title = sweep_report.title(config, {}) + "".join(
        f", {k}={v:g}" for k, v in out.hyperparams.items()
    )
    folder.lock()
    try:
        folder.record(names)
        frame = s.to_frame()
        write_csv(folder.file(names[0]), {k: frame[k].to_numpy() for k in frame})
        write_json(folder.file(names[1]), report)
        plots.save(plots.surface_figure(s, title=title), folder.file(names[2][:-4]))
        if c is not None:
            frame = c.to_frame()
            write_csv(folder.file(names[4]), {k: frame[k].to_numpy() for k in frame})
            plots.save(plots.curve_figure(c, title=title), folder.file(names[5][:-4]))
    finally:
        folder.close()
    loss = np.asarray(center["loss"])[~s.diverged]
    print(f"  seeds               {out.seeds} ({int(np.sum(s.diverged))} diverged)")
    print(
        f"  grid                {points}^{dims} points over [-{span:g}, {span:g}], "
        f"{draws} draw(s) per seed, filter-normalized"
    )
    if loss.size:
        print(f"  loss at the center  median {np.median(loss):.4g} (the trained loss)")
        print(f"  largest on grid     median {np.nanmedian(edge['loss'][~s.diverged]):.4g}")
    if c is not None:
        print(
            f"  curves              {pairs} pairs: median barrier {np.median(c.barrier):.4g} "
            f"on the curve, {np.median(c.line_barrier):.4g} on the line"
        )
    print(f"  written to          {folder.path} ({', '.join(names)})")
    return 0
