"""The commands that read a finished sweep's run folder: ``gbl-jax landscape`` (interpolation,
barriers and basins of a kept-params sweep, ``landscape_report``), ``gbl-jax ensemble`` (what the
seeds of a --keep-predictions sweep disagree on) and ``gbl-jax compare`` (two sweeps' metric and
success, ``comparisons``). Each refuses in one line (``UsageError``) before it writes anything.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from gbl_jax.analysis import comparisons, landscape_report
from gbl_jax.analysis.comparisons import compare
from gbl_jax.cli import build, runner, sweep_report
from gbl_jax.cli.build import UsageError, check_int, check_number, check_numbers


# --- landscape -----------------------------------------------------------------------------
def landscape(args: argparse.Namespace) -> int:
    """Interpolation init -> final, barriers between seeds, and basins of a kept-params sweep."""
    import jax

    from gbl_jax.engine import results

    folder, config = build.finished_sweep(args.out)
    pairs, num = check_int("pairs", args.pairs, 2), check_int("num", args.num, 2)
    tol = check_numbers("tol", args.tol, 0.0)[0]
    build.check_named_again(args, folder, config)
    run = build.build(config)
    note = build.fingerprint(config, run)  # the data and model the sweep trained, unchanged
    if note is not None:
        print(f"gbl-jax: note: {note}", file=sys.stderr)
    try:
        index, _ = results.cell_index(run.grid, build.parse_cell(args.cell))
    except ValueError as err:
        raise UsageError(f"{folder.path}: {err} (pick one with --cell NAME=VALUE)") from None
    cell = 0
    for i, axis in zip(index, run.grid.values()):  # cell-major, as the arrays' axes run
        cell = cell * len(axis) + i
    params_like = jax.eval_shape(run.model.init, jax.random.PRNGKey(0), run.data.x)
    n_params = sum(math.prod(a.shape) for a in jax.tree.leaves(params_like))
    memory, disk = landscape_report.report_bytes(
        config["seeds"], pairs, num, n_params, math.prod(run.data.x.shape)
    )
    folder.check_space(
        memory,
        disk,
        f"{config['seeds']} seeds x {num} points, {n_params} params",
        command="landscape",
        hint="use a smaller --num (or --pairs)",
    )
    stored = folder.load_params(params_like)
    cache = runner.compile_cache(args)
    init, final, diverged, cell_values = landscape_report.cell_of(
        stored, run.grid, config["seeds"], cell
    )
    # a --model's activation is not recorded: permutations only, which keep any elementwise one
    activation = config["activation"] if config["model"] is None else "relu"
    folder.lock()
    try:
        try:
            rep = landscape_report.landscape_report(
                run.model,
                run.data,
                init,
                final,
                diverged=diverged,
                pairs=pairs,
                num=num,
                tol=tol,
                loss=run.loss,
                activation=activation,
                align_units=args.align == "weights",
            )
        except ValueError as err:
            if not str(err).startswith("align:"):
                raise
            raise UsageError(
                f"{str(err).splitlines()[0]}; pass --align none for the "
                "interpolation, barriers and basins without aligning hidden units"
            ) from None
        report = {
            "cell": cell_values,
            "seeds": config["seeds"],
            "align": args.align,
            **rep.as_dict(),
            "compile_cache": cache,
        }
        title = sweep_report.title(config, run.grid) + "".join(
            f", {k}={v:g}" for k, v in cell_values.items()
        )
        figure = landscape_report.landscape_figure(rep.curves, rep.monotone, rep.barriers, title)
        folder.finish_landscape(report, rep.curves, rep.barriers, rep.basins.labels, figure)
    finally:
        folder.close()
    paths, k = report["interpolation"], len(rep.barriers["seeds"])
    print(f"  cell                {cell_values or '(no grid)'}")
    print(
        f"  monotone paths      {paths['monotone']} of {paths['n']} non-diverged seeds "
        f"({100 * paths['monotone_share']:.1f}%)"
    )
    if k > 1:
        aligned = report["barriers"]["median_aligned"]
        print(
            f"  median barrier      {report['barriers']['median']:.4g} unaligned, "
            + ("not aligned (--align none)" if aligned is None else f"{aligned:.4g} aligned")
            + f" ({k * (k - 1) // 2} pairs of the first {k} seeds)"
        )
    print(rep.basins.summary())
    print(f"  written to          {folder.path}")
    return 0


# --- ensemble ------------------------------------------------------------------------------
ENSEMBLE_FILES = ("ensemble.csv", "ensemble.png", "ensemble.pdf")


def ensemble(args: argparse.Namespace) -> int:
    """What the seeds of a --keep-predictions sweep disagree on, and their ensembles by size."""
    import numpy as np

    from gbl_jax.analysis import plots
    from gbl_jax.analysis.predictions import disagreement, ensemble
    from gbl_jax.atomic_files import write_csv

    folder, config = build.finished_sweep(args.dir)
    build.check_named_again(args, folder, config)
    out = build.load_result(folder.path)
    if out.predictions is None:
        raise UsageError(
            f"{folder.path} kept no predictions: run the sweep with --keep-predictions"
        )
    out = build.cell_of(out, args.cell, folder.path)
    runner.compile_cache(args)
    run = build.build(config)  # the held-out labels: the data the sweep recorded, unchanged
    note = build.fingerprint(config, run)
    if note is not None:
        print(f"gbl-jax: note: {note}", file=sys.stderr)
    y = run.data.test.y
    sizes = [check_int("sizes", int(v), 1) for v in check_numbers("sizes", args.sizes, 1.0)]
    sizes = [m for m in sizes if m <= out.seeds] or [out.seeds]
    try:
        d = disagreement(out, y if run.data.test is not None else None)
        curve = ensemble(
            out,
            y,
            sizes=sizes,
            draws=check_int("draws", args.draws, 1),
            seed=check_int("seed", args.seed, 0),
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    folder.lock()
    try:
        folder.record(list(ENSEMBLE_FILES))
        frame = curve.to_frame()
        write_csv(folder.file(ENSEMBLE_FILES[0]), {k: frame[k].to_numpy() for k in frame})
        title = sweep_report.title(config, {}) + "".join(
            f", {k}={v:g}" for k, v in out.hyperparams.items()
        )
        plots.save(plots.ensemble_figure(curve, d, title=title), folder.file("ensemble"))
    finally:
        folder.close()
    print(f"  seeds               {out.seeds} ({int(np.sum(out.diverged))} diverged)")
    print(
        f"  disagreement        {d.mean:.4g} [{d.interval[0]:.4g}, {d.interval[1]:.4g}] "
        f"({d.kind})"
        + (f", {d.ratio:.3g} x the mean test error {d.test_error:.4g}" if d.ratio else "")
    )
    for row in frame.itertuples(index=False):
        values = ", ".join(f"{k} {getattr(row, k):.4g}" for k in curve.values)
        print(f"  {row.size:>4} seeds         {values}")
    print(f"  written to          {folder.path} ({', '.join(ENSEMBLE_FILES)})")
    return 0


# --- compare -------------------------------------------------------------------------------
def _threshold_of(doc: dict) -> float | None:
    value = doc.get("config", {}).get("threshold") if isinstance(doc.get("config"), dict) else None
    return float(value) if isinstance(value, (int, float)) else None


# What must agree between two runs for their values to be comparable: the data and the unit of
# the loss. The network, optimizer, steps and seeds may differ: they are what a comparison is for.
RELATED = ("problem", "n", "data_sha256", "head", "loss")


def _unrelated(configs: list) -> list[str]:
    """The RELATED entries two run folders' configs record differently, as 'name a vs b'."""
    a, b = configs
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return []
    return [
        f"{key} {a.get(key)!r} vs {b.get(key)!r}"
        for key in RELATED
        if key in a and key in b and a.get(key) != b.get(key)
    ]


def compare_runs(args: argparse.Namespace) -> int:
    """Two sweeps compared: the metric's mean, who is better, spread; with a threshold and
    paired seeds, success too (McNemar exact)."""
    from gbl_jax.engine import results

    loaded, thresholds, configs = [], [], []
    for path in (args.dir_a, args.dir_b):
        try:
            doc = results.read_doc(Path(path))
            out = results.load(Path(path))
        except ValueError as err:
            raise UsageError(str(err).removeprefix("load: ")) from None
        build.parse_cell(args.cell)  # checked whether or not a run has a grid
        out = build.cell_of(out, args.cell, path)  # the cell of whichever run has a grid
        loaded.append(out)
        thresholds.append(_threshold_of(doc))
        configs.append(doc.get("config"))
    differ = _unrelated(configs)
    if differ and not args.allow_different:
        raise UsageError(
            f"the runs were made on different data or losses ({'; '.join(differ)}): "
            "their values do not compare; pass --allow-different if you mean it"
        )
    metric = args.metric
    if args.threshold is not None:
        threshold = check_number("threshold", args.threshold)
    elif (
        metric == "final_loss"
        and thresholds[0] is not None
        and thresholds[0] == thresholds[1]
        and comparisons.pairs(loaded[0], loaded[1])
    ):
        threshold = thresholds[0]  # the runs' own success rule, where it applies
    else:
        threshold = None
    resamples = check_int("resamples", args.resamples, 100, comparisons.MAX_RESAMPLES)
    try:
        comparison = compare(
            loaded[0],
            loaded[1],
            metric=metric,
            threshold=threshold,
            resamples=resamples,
            seed=check_int("seed", args.seed, 0),
        )
    except ValueError as err:
        raise UsageError(str(err).removeprefix("compare: ")) from None
    print(f"  A  {args.dir_a}\n  B  {args.dir_b}")
    if differ:
        print(f"  different data or losses, compared as asked: {'; '.join(differ)}")
    print(comparison.summary())
    return 0


# --- their options -------------------------------------------------------------------------
def add_landscape_parser(sub, parents) -> None:
    """Registers ``landscape`` on ``sub`` (``main``'s subparsers)."""
    land = sub.add_parser(
        "landscape",
        parents=parents,
        help="the loss landscape of a sweep run with --keep-params",
        description="Loss along init -> final per "
        "seed, barriers between seeds (unaligned and aligned) and basins.",
    )
    land.add_argument("--out", required=True, help="the sweep's folder")
    land.add_argument(
        "--pairs",
        type=int,
        default=16,
        help="barriers between the first K non-diverged seeds (default 16)",
    )
    land.add_argument(
        "--tol",
        default=0.05,
        help="basins: largest max-abs difference of predictions within a basin (default 0.05)",
    )
    land.add_argument("--num", type=int, default=25, help="points on each path (default 25)")
    land.add_argument(
        "--cell",
        action="append",
        metavar="NAME=VALUE",
        help="on a grid, the cell (once per axis with several values, as compare takes it)",
    )
    land.add_argument(
        "--align",
        choices=("weights", "none"),
        default="weights",
        help="weights "
        "(default): barriers also after matching hidden units by their weights "
        "(gbl.mlp params only); none: without, for any model (flax, equinox, CNN)",
    )
    land.set_defaults(run=landscape)


def add_ensemble_parser(sub, parents) -> None:
    """Registers ``ensemble`` on ``sub`` (``main``'s subparsers)."""
    e = sub.add_parser(
        "ensemble",
        parents=parents,
        help="what the seeds of a --keep-predictions sweep "
        "disagree on, and their ensembles by size",
        description="Pairwise "
        "disagreement between seeds on the held-out split, and ensembles of "
        "seeds (the mixture of their predictive distributions) by size: NLL, "
        "Brier, accuracy and ECE, or NLL and squared error; writes ensemble.csv "
        "and ensemble.png/.pdf into the run folder.",
    )
    e.add_argument("dir", help="a sweep's folder, run with --keep-predictions")
    e.add_argument(
        "--sizes",
        default="1,2,4,8,16,32,64,128",
        help="ensemble sizes, a comma "
        "list (those above the seed count are dropped; default 1,2,4,...,128)",
    )
    e.add_argument("--draws", type=int, default=20, help="ensembles drawn per size (default 20)")
    e.add_argument("--seed", type=int, default=0, help="the draws' random seed (default 0)")
    e.add_argument(
        "--cell", action="append", metavar="NAME=VALUE", help="on a grid, the cell (once per axis)"
    )
    e.set_defaults(run=ensemble)


def add_compare_parser(sub, parents) -> None:
    """Registers ``compare`` on ``sub`` (``main``'s subparsers)."""
    c = sub.add_parser(
        "compare",
        parents=parents,
        help="compare two sweeps' per-seed values",
        description="Compare two sweeps on the same data: a metric's mean "
        "difference with a bootstrap interval and a test (Wilcoxon signed-rank "
        "when the seeds pair, same --seed and seeds; Mann-Whitney otherwise), "
        "P(A better than B), and the spread ratio with Brown-Forsythe's test; "
        "with a threshold and paired seeds, success with McNemar's exact test.",
    )
    c.add_argument("dir_a", help="the first sweep's folder (gbl-jax sweep --out, or out.save)")
    c.add_argument("dir_b", help="the second sweep's folder")
    c.add_argument(
        "--metric",
        default="final_loss",
        help="the per-seed value compared: "
        "final_loss (default), test_accuracy, test_nll, accuracy, ...",
    )
    c.add_argument(
        "--allow-different",
        action="store_true",
        help="compare runs made on different data, problem, head or loss (refused by default)",
    )
    c.add_argument(
        "--threshold",
        help="success: the metric better than this (below for a "
        "loss, above for an accuracy), seeds paired; default for final_loss: the "
        "runs' own threshold when both recorded the same and the seeds pair",
    )
    c.add_argument(
        "--cell",
        action="append",
        metavar="NAME=VALUE",
        help="on a grid, the cell to compare (once per axis; applied to each run that has a grid)",
    )
    c.add_argument(
        "--resamples", type=int, default=10000, help="bootstrap resamples (default 10000)"
    )
    c.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed (default 0)")
    c.set_defaults(run=compare_runs)
