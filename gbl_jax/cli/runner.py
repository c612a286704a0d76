"""A sweep config run into its folder: checked before anything is written, then chunk by chunk,
shared among processes, resumable, and merged and written at the end.

``plan_run`` builds the run (``build``), fills in the threshold, and refuses a sweep that would
not fit in memory or on disk before any file exists. ``run`` opens (or joins) the run folder,
computes the chunks this process owns and has not saved yet (``sweeps.run_plan``), and lets
process 0 merge them, classify the end points when asked, and write what ``sweep_report`` makes
of them. Chunk k belongs to process k mod count, so the processes of a multi-process sweep share
the work without talking; a resumed sweep skips every chunk already on disk whole, recomputes a
damaged one, and refuses one that another configuration computed (``made_by``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import NamedTuple

import jax
from tqdm import tqdm

from gbl_jax.analysis.curvature import critical_points
from gbl_jax.atomic_files import json_safe
from gbl_jax.cli import budgets, build, launch, runstore, sweep_report
from gbl_jax.cli.build import UsageError
from gbl_jax.engine import probes as gbl_probes
from gbl_jax.engine import results, sweeps
from gbl_jax.engine.chunking import tree_bytes
from gbl_jax.engine.compilation import enable_compilation_cache
from gbl_jax.engine.memory import check_sweep
from gbl_jax.nets.models import apply_model


class Planned(NamedTuple):
    """A checked sweep: the engine's plan, the built run and the structure of a chunk."""

    plan: sweeps.SweepPlan
    run: build.Built
    template: dict


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while the chunks ran; ``saved`` of the ``total`` chunks are on disk."""

    def __init__(self, saved: int, total: int):
        super().__init__(saved, total)
        self.saved, self.total = saved, total


def plan_run(config: dict, devices, folder: runstore.RunFolder) -> Planned:
    """Builds and checks everything before anything is written.

    Fills in ``config``'s threshold (and its rule), chunk_size and devices.

    Raises:
      UsageError: the config describes no runnable sweep.
      runstore.RunError: it would not fit in memory or on the folder's disk.
    """
    run = build.build(config)
    data, model, grid = run.data, run.model, run.grid
    build.set_threshold(config, build.threshold_head(config, run), data.y)
    params_like = jax.eval_shape(model.init, jax.random.PRNGKey(0), data.x)
    param_bytes = tree_bytes(params_like)
    runs = config["seeds"] * math.prod(len(v) for v in grid.values())
    logs = config["steps"] // config["log_every"]
    keep = config["keep_params"] or config["classify"]
    predictions_like = None
    if config.get("keep_predictions"):
        if data.test is None:
            raise UsageError(
                "--keep-predictions keeps each seed's predictions on the held-out "
                "split, and this data has none (a .npz with x_test and y_test, or "
                "a problem with a test split such as mnist1d)"
            )
        predictions_like = jax.eval_shape(
            lambda p, x: apply_model(model, p, x, None), params_like, data.test.x
        )
    prediction_bytes = 0 if predictions_like is None else tree_bytes(predictions_like)
    memory, disk = budgets.sweep_bytes(
        runs, logs, param_bytes, prediction_bytes, keep_params=keep, classify=config["classify"]
    )
    what = (
        f"{runs} runs x {logs} logged losses"
        + (f" and 2 x {param_bytes} bytes of params each" if keep else "")
        + (f" and {prediction_bytes} bytes of predictions each" if prediction_bytes else "")
    )
    folder.check_space(memory, disk, what)
    try:
        plan = sweeps.plan_sweep(
            model,
            run.optimizer,
            data,
            key=jax.random.PRNGKey(config["seed"]),
            seeds=(
                sweeps.crossed(init=config["crossed"][0], data=config["crossed"][1])
                if config.get("crossed")
                else config["seeds"]
            ),
            steps=config["steps"],
            batch_size=config["batch_size"],
            loss=run.loss,
            log_every=config["log_every"],
            chunk_size=config["chunk_size"],
            keep_params=keep,
            devices=devices,
            grid=grid,
            grad_tol=config["grad_tol"],
            metrics=run.metrics,
            eval_data=data.test,
            keep_predictions=bool(config.get("keep_predictions")),
            probes={n: getattr(gbl_probes, n)() for n in config.get("probe") or ()} or None,
            vary=build.VARIES[config.get("vary") or "init,data"],
        )
    except ValueError as err:
        raise UsageError(str(err).splitlines()[0]) from None
    measured = ("final_loss", *plan.cfg.metric_names)
    if config.get("metric") and config["metric"] not in measured:
        raise UsageError(
            f"--metric {config['metric']}: this run measures "
            f"{', '.join(measured)}"
            + ("" if data.test is not None else " (no held-out split: no test_ metrics)")
        )
    try:
        check_sweep(plan)  # one chunk training beside the results
    except ValueError as err:
        raise runstore.RunError(str(err)) from None
    note = build.fingerprint(config, run)  # after the memory checks: it builds the params once
    if note is not None:
        print(f"gbl-jax: note: {note}", file=sys.stderr)
    config.update(chunk_size=plan.chunk_size, devices=len(devices))
    return Planned(
        plan,
        run,
        runstore.chunk_template(
            params_like if keep else None,
            plan.cfg.metric_names,
            predictions_like,
            config.get("probe") or (),
        ),
    )


def compile_cache(args) -> str | None:
    """The compilation cache's folder a command's ``--compile-cache`` / ``--no-compile-cache``
    ask for, enabled (None when off); UsageError when it cannot be made."""
    if args.no_compile_cache:
        return None
    try:
        return str(enable_compilation_cache(args.compile_cache))
    except OSError as err:
        raise UsageError(f"--compile-cache: {err}") from None


def made_by(config: dict, devices) -> str:
    """The stamp of a chunk: the config (device count included), the precision, the platform
    and the JAX version that computed it. A resumed sweep uses a chunk only when its stamp is
    this one, so it never mixes runs of two configurations."""
    # a sweep without --grid stamps its chunks as it did before the option existed, so a sweep
    # interrupted then still resumes
    config = {
        k: v for k, v in config.items() if not (k in build.OPTIONAL_STORED and not v)
    }  # options newer than the folder
    return json.dumps(
        {
            "config": json_safe(config),
            "devices": len(devices),
            "platform": devices[0].platform,
            "x64": bool(jax.config.jax_enable_x64),
            "jax": jax.__version__,
        },
        sort_keys=True,
    )


def open_folder(
    folder: runstore.RunFolder, config: dict, *, resume: bool, force: bool, index: int, count: int
) -> None:
    """Creates (process 0 of a new sweep) or joins the run folder. Process 0 locks it for the
    whole run, whatever its process count, so no second run can use the folder meanwhile."""
    doc = {"config": config, "versions": results.versions()}
    failure = None
    try:
        if index == 0 and not resume:
            if count > 1:
                folder.check_new(force=force)
            folder.create(doc, force=force)
        elif index == 0:
            folder.lock()
            for path in folder.temporaries():  # left by a killed run; nobody else writes now
                path.unlink(missing_ok=True)
    except (runstore.RunError, OSError) as err:
        failure = err
    # every process learns whether process 0 succeeded, so none waits at a later barrier alone
    if not launch.barrier("gbl_jax_folder", count, failure is None) and failure is None:
        raise UsageError(f"process {index}: process 0 could not open {folder.path}")
    if isinstance(failure, OSError):
        raise UsageError(f"--out {folder.path}: {failure.strerror or failure}") from None
    if failure is not None:
        raise failure
    if index != 0 and not resume and build.stored_config(folder) != json_safe(config):
        raise UsageError(
            f"process {index}: {folder.file(runstore.CONFIG)} differs from this "
            "process's options; start every process with the same command"
        )


def _resumable(
    plan: sweeps.SweepPlan, folder: runstore.RunFolder, stamp: str, index: int, count: int
) -> set[int]:
    """Positions of the chunks this process computes: its own (chunk k belongs to process
    k mod count) that are not on disk whole. A damaged one of its own is deleted and said."""
    starts = list(plan.chunk_starts())
    spans = [(int(plan.runs[p]), int(plan.chunk_runs(p)[-1]) + 1) for p in starts]
    whole, damaged = folder.check_chunks(spans, stamp)
    for span, path in damaged.items():
        if spans.index(span) % count == index:
            print(
                f"gbl-jax: {path} is damaged (truncated or unreadable); recomputing its runs",
                file=sys.stderr,
            )
            path.unlink(missing_ok=True)
    return {
        p
        for k, (p, span) in enumerate(zip(starts, spans))
        if k % count == index and span not in whole
    }


def run(
    planned: Planned,
    folder: runstore.RunFolder,
    config: dict,
    *,
    resume: bool = False,
    force: bool = False,
    team: tuple[int, int] = (0, 1),
    compile_cache: str | None = None,
    progress: bool = True,
) -> dict | None:
    """Runs a planned sweep into its folder.

    Args:
      planned, config: from ``plan_run`` (the config as it filled it in).
      folder: the run folder; created here unless ``resume``.
      resume: finish the sweep in ``folder``, computing only the chunks it lacks.
      force: replace the results gbl-jax wrote in ``folder``.
      team: (this process's index, process count) in JAX's multi-process runtime.
      compile_cache: the compilation cache's folder, recorded in results.json.
      progress: a progress bar on stderr (process 0 only).

    Returns:
      What results.json holds (process 0), or None (the other processes).

    Raises:
      Interrupted: Ctrl-C while the chunks ran; the finished ones are kept.
    """
    plan, built = planned.plan, planned.run
    index, count = team
    stamp = made_by(config, plan.devices)
    open_folder(folder, config, resume=resume, force=force, index=index, count=count)
    try:
        mine = _resumable(plan, folder, stamp, index, count)
        begin = time.perf_counter()
        compile_s = plan.compile()
        total = len(plan.runs)
        bar = tqdm(
            total=total,
            initial=total - sum(len(plan.chunk_runs(p)) for p in mine),
            unit="run",
            desc="sweep",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5,
            disable=not progress or index != 0,
        )
        try:
            for chunk in sweeps.run_plan(plan, skip=lambda pos: pos not in mine):
                folder.save_chunk(chunk, stamp)
                bar.update(len(chunk.runs))
        except KeyboardInterrupt:
            bar.close()
            raise Interrupted(len(folder.done()), len(plan.chunk_starts())) from None
        bar.close()
        launch.barrier("gbl_jax_chunks", count)  # every process's chunks are on disk
        if index != 0:
            return None
        wall_s = time.perf_counter() - begin
        chunks = folder.load_chunks(planned.template, total, stamp)
        result = sweeps.merge_chunks(plan, chunks, wall_s)
        cp, classify_s = None, None
        if config["classify"]:
            flat = jax.tree.map(
                lambda a: a.reshape((-1,) + a.shape[len(plan.grid_shape) + 1 :]), result.params
            )
            if progress:  # one batched computation: no bar, but never silence
                n_params = sum(a[0].size for a in jax.tree.leaves(flat))
                print(
                    f"classifying {total} end points (the Hessian spectrum of {n_params} "
                    "params each) ...",
                    file=sys.stderr,
                    flush=True,
                )
            start = time.perf_counter()
            cp = critical_points(
                built.model,
                built.data,
                flat,
                loss=built.loss,
                grad_tol=config["grad_tol"] or 1e-3,
                diverged=result.diverged.reshape(-1),
            )
            classify_s = time.perf_counter() - start
        info = {
            "versions": results.versions(),
            "devices": [str(d) for d in plan.devices],
            "processes": count,
            "wall_s": wall_s,
            "compile_s": compile_s,
            "classify_s": classify_s,
            "compile_cache": compile_cache,
        }
        title = sweep_report.title(config, result.grid)
        return folder.finish(
            result,
            config,
            sweep_report.results_of(result, config, info, cp),
            sweep_report.figures_of(result, config, title, cp),
            cp,
        )
    finally:
        folder.close()
