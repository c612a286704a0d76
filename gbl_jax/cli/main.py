"""The ``gbl-jax`` command line: init-sensitivity sweeps from the shell.

  gbl-jax sweep --problem xor --hidden 2 --seeds 1024 --steps 2000 --out runs/xor
  gbl-jax sweep --problem xor --lr 0.01,0.05,0.2 --init-scale 0.5,1,2 --classify --keep-params
  gbl-jax sweep --problem xor --optimizer adam --grid b1=0.8,0.9 --grid learning_rate=0.01,0.05
  gbl-jax landscape --out runs/xor
  gbl-jax compare runs/xor-adam runs/xor-sgd
  gbl-jax problems
  gbl-jax tour

Errors (bad options, a head that does not fit the problem, an --out that holds results or files
gbl-jax did not write, a sweep that would not fit in memory) print one line on stderr and exit
with status 2, never a traceback, and write nothing. Ctrl-C keeps every finished chunk;
``--resume`` completes the sweep.

This module parses options, dispatches and prints. ``build`` checks a config, reconciles it with
a resumed sweep's folder and builds its run, ``runner`` runs it into its folder
(``runstore.RunFolder``) within the command line's ``budgets``, ``launch`` starts and joins the
processes of a multi-process sweep, and ``reports`` runs the commands that read a finished
sweep's folder (landscape, ensemble, compare).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

from gbl_jax._version import __version__
from gbl_jax.cli import (
    build,
    launch,
    model_axis,
    reports,
    runner,
    runstore,
    surface,
    sweep_report,
)
from gbl_jax.cli import instability as instability_cli
from gbl_jax.cli.build import SWEEP_DEFAULTS, UsageError, check_int
from gbl_jax.data import problems
from gbl_jax.nets import inits
from gbl_jax.nets.mlp import ACTIVATIONS, mlp


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "--grad-tol -1e-4" is a value to check, not an unknown option (argparse's own pattern
        # knows only -1 and -.5)
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,[-+.\deE]*)*$"
        )

    def error(self, message):  # argparse would print the usage too; we keep it to one line
        raise UsageError(message)


# --- sweep ---------------------------------------------------------------------------------
def _sweep(args: argparse.Namespace) -> int:
    axis = model_axis.normalize(args)
    if axis is not None:  # --hidden (or --channels) given several times: one sweep per model
        name, specs = axis
        problem = args.problem or SWEEP_DEFAULTS["problem"]
        if args.data:
            problem = Path(str(args.data).split(":")[-1]).stem
        default = (
            Path("runs") / f"{problem}-{name}-{'+'.join(s.replace(',', '-') for s in specs)}"
            f"-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        return model_axis.sweep_each(args, axis, _sweep, default)
    if (
        args.coordinator is None
        and args.processes is not None
        and check_int("processes", args.processes, 1, 1024) > 1
    ):
        return launch.launch_sweep(args)
    distributed = (
        any(v is not None for v in (args.coordinator, args.num_processes, args.process_id))
        or args.distributed
    )
    folder, config = build.resolve_sweep(args, check_out=not distributed)
    cpu_devices = launch.cpu_devices(args, config)
    launch.set_cpu_devices(cpu_devices)
    team = launch.join_runtime(args)
    devices = launch.local_devices(cpu_devices)
    if args.resume and len(devices) != config["devices"]:
        raise UsageError(
            f"the interrupted sweep ran on {config['devices']} devices per process, "
            f"this one has {len(devices)}; resume it on a machine like the first"
        )
    planned = runner.plan_run(config, devices, folder)
    cache = runner.compile_cache(args)
    try:
        results = runner.run(
            planned,
            folder,
            config,
            resume=args.resume,
            force=args.force,
            team=team,
            compile_cache=cache,
        )
    except runner.Interrupted as stop:
        print(
            f"gbl-jax: interrupted; {stop.saved} of {stop.total} chunks are saved in "
            f"{folder.path}; finish with: gbl-jax sweep --out {folder.path} --resume",
            file=sys.stderr,
        )
        return 130
    except OSError as err:  # a full disk mid-run: what is on disk is whole, so resume
        if not folder.file(runstore.CONFIG).is_file():
            raise
        raise UsageError(
            f"cannot write {err.filename or folder.path}: "
            f"{err.strerror or err}; the finished chunks are kept; make room, then "
            f"finish with: gbl-jax sweep --out {folder.path} --resume"
        ) from None
    if results is not None:  # process 0 writes and prints
        print(sweep_report.summary(results, folder.path))
    return 0


# --- small commands ------------------------------------------------------------------------
def _problems(args: argparse.Namespace) -> int:
    width = max(map(len, problems.REGISTRY))
    for name, problem in sorted(problems.REGISTRY.items()):
        print(f"{name:<{width}}  {problem.description} (default n={problem.default_n})")
    return 0


def _tour(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp
    import optax

    from gbl_jax.data import problems as tour_problems
    from gbl_jax.engine.training import train
    from gbl_jax.nets import heads
    from gbl_jax.probability import diagnostics
    from gbl_jax.probability.costs import mse, nll
    from gbl_jax.probability.distributions import Normal

    key = jax.random.PRNGKey(check_int("seed", args.seed, 0, build.MAX_SEED))
    k_f, k_y = jax.random.split(key)
    f = jax.random.normal(k_f, (256, 2))
    y = f + jax.random.normal(k_y, (256, 2))
    nll_value = nll(Normal(f, 1.0), y)
    half_mse = 0.5 * mse(f, y) + jnp.log(2 * jnp.pi)
    print("Maximum likelihood with a unit Gaussian is 1/2 squared error + C (section 6.2.1.1):")
    print(f"  nll = {float(nll_value):.6f}   1/2 mse + log(2 pi) = {float(half_mse):.6f}")
    print("\nGradient reaching a sigmoid unit whose target is 1 (section 6.2.2.2):")
    logits = jnp.asarray([-10.0, -3.0, 0.0, 3.0, 10.0])
    report = diagnostics.saturation_report(logits, jnp.ones_like(logits))
    print(f"  {'logit':>6}  {'|grad NLL|':>11}  {'|grad SE|':>11}  {'ratio':>9}")
    for z, a, b, r in zip(
        logits.tolist(),
        report.nll_grad_norm.tolist(),
        report.squared_error_grad_norm.tolist(),
        report.ratio.tolist(),
    ):
        print(f"  {z:>6.1f}  {a:>11.4g}  {b:>11.4g}  {r:>9.3g}")
    print("  NLL saturates only when the answer is right; squared error also when it is wrong.")
    data = tour_problems.xor()
    print("\nTraining a 2-8-1 tanh network on XOR with Adam, 500 steps:")
    res = train(mlp([8], heads.bernoulli()), optax.adam(0.05), data, key=key, steps=500)
    for step in (0, 100, 200, 300, 400, 499):
        print(f"  step {step:>4}  nll {float(res.losses[step]):.5f}")
    print(f"  final nll {float(res.final_loss):.5f}")
    return 0


def parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gbl-jax",
        description="Gradient-based learning (Deep Learning 6.2) in JAX: init-sensitivity sweeps.",
    )
    parser.add_argument("--version", action="version", version=f"gbl-jax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cache = _Parser(add_help=False)
    cache.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="folder of JAX's persistent compilation cache; default ~/.cache/gbl_jax/xla",
    )
    cache.add_argument("--no-compile-cache", action="store_true", help="compile afresh")
    named = _Parser(add_help=False)  # a finished sweep's own code, named again to be run
    named.add_argument(
        "--model",
        metavar="MODULE:FUNCTION",
        help="the sweep's --model: its "
        "code runs only when named here (checked against the recorded "
        "fingerprints)",
    )
    named.add_argument(
        "--data",
        metavar="FILE|MODULE:FUNCTION",
        help="the sweep's --data: a module:function runs only when named here",
    )
    _add_sweep_parser(sub, [cache])
    reports.add_landscape_parser(sub, [cache, named])
    reports.add_ensemble_parser(sub, [cache, named])
    surface.add_parser(sub, [cache, named])
    reports.add_compare_parser(sub, [cache])
    instability_cli.add_parser(sub, [])
    p = sub.add_parser("problems", help="list the problems")
    p.set_defaults(run=_problems)
    t = sub.add_parser("tour", help="a one-minute tour of section 6.2 in numbers")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.set_defaults(run=_tour)
    return parser


def _add_sweep_parser(sub, parents) -> None:
    """Registers ``sweep`` on ``sub`` (``parser``'s subparsers)."""
    d = SWEEP_DEFAULTS
    s = sub.add_parser(
        "sweep",
        parents=parents,
        allow_abbrev=False,
        help="train from many random inits; report the loss spread",
        description="Train one model from "
        "many random initializations at once and report how spread out the final "
        "losses are.",
    )
    s.add_argument(
        "--problem", help=f"a registered problem (gbl-jax problems); default {d['problem']}"
    )
    s.add_argument(
        "--data",
        metavar="FILE|MODULE:FUNCTION",
        help="your own data instead of "
        "--problem: a .npz (x, y, optionally x_test, y_test) or .csv (last column y) "
        "file, or a function returning a gbl.problems.Data or an (x, y) pair",
    )
    s.add_argument(
        "--model",
        metavar="MODULE:FUNCTION",
        help="your own network: a function "
        "returning a gbl.Model (imported from the current folder or the installed "
        "packages); replaces --hidden, --channels, --head",
    )
    s.add_argument(
        "--hidden",
        nargs="+",
        metavar="WIDTHS",
        help="hidden widths as a comma "
        f"list, '' for none (the convex control); default {d['hidden']}; several "
        "lists (--hidden 2 8 32) make a model axis: one sweep per model in "
        "OUT/hidden-W/, stacked in OUT",
    )
    s.add_argument(
        "--channels",
        nargs="+",
        metavar="WIDTHS",
        help="a 1-D CNN instead of the "
        "mlp: conv widths as a comma list (kernel 5, stride 2, ReLU; 25,25,25 is the "
        "MNIST-1D paper's CNN); several lists make a model axis as --hidden",
    )
    s.add_argument(
        "--activation", choices=sorted(ACTIVATIONS), help="hidden nonlinearity; default tanh"
    )
    s.add_argument("--init", choices=sorted(inits.INITS), help="init scheme; default glorot_normal")
    s.add_argument(
        "--head", choices=sorted(build.HEADS), help="output unit; default: the problem's own"
    )
    s.add_argument(
        "--components", type=int, help="mixture components for --head mixture_density; default 3"
    )
    s.add_argument(
        "--loss",
        choices=sorted(build.LOSSES),
        help="nll (default) or squared error of the head's mean (behind the same sigmoid/softmax)",
    )
    s.add_argument("--optimizer", choices=sorted(build.OPTIMIZERS), help="default adam")
    s.add_argument(
        "--lr",
        help="learning rate, or a comma list for a grid; default "
        + ", ".join(f"{v[2]:g} {k}" for k, v in build.OPTIMIZERS.items()),
    )
    s.add_argument(
        "--init-scale",
        help="every weight matrix's init times this, or a comma list for a grid; default 1",
    )
    s.add_argument(
        "--grid",
        action="append",
        metavar="NAME=VALUES",
        help="a numeric "
        "hyperparameter of the optimizer (adam: b1, b2, eps, ...; momentum: momentum) "
        "or init_scale: one value, or a comma list for a grid axis; repeat for more "
        "axes. --lr and --init-scale are --grid learning_rate=... and --grid "
        "init_scale=...; the axes run learning_rate, init_scale, then the others by "
        "name",
    )
    s.add_argument("--steps", type=int, help=f"optimizer steps per seed; default {d['steps']}")
    s.add_argument("--batch-size", type=int, help="minibatch size; default full batch")
    s.add_argument("--seeds", type=int, help=f"number of random inits; default {d['seeds']}")
    s.add_argument(
        "--crossed",
        metavar="INITS,ORDERS",
        help="a crossed design: every one of "
        "INITS inits trained with every one of ORDERS data orders (INITS x ORDERS "
        "seeds; needs --batch-size); the summary splits the metric's variance into "
        "init, data order and residual",
    )
    s.add_argument(
        "--metric",
        help="the per-seed value the summary, cells.csv and results.json "
        "report with bootstrap intervals: final_loss, test_accuracy, test_nll, "
        "accuracy, ...; default test_accuracy for a classifier with a held-out "
        "split, else final_loss",
    )
    s.add_argument("--seed", type=int, help="base random seed (the data uses seed + 1); default 0")
    s.add_argument(
        "--chunk-size",
        type=int,
        help="runs per compiled call; default: chosen from the model size and device",
    )
    s.add_argument("--n", type=int, help="data size; default: the problem's own")
    s.add_argument(
        "--log-every", type=int, help="steps per point of the loss curves; default steps/100"
    )
    s.add_argument(
        "--threshold",
        help="a seed succeeds when its final loss is below this; "
        "default: 0.1 nats for classifiers, the loss of an R^2 = 0.9 fit for regression",
    )
    s.add_argument(
        "--grad-tol",
        help="run each seed until its gradient norm falls below this (adds converged_step)",
    )
    s.add_argument(
        "--classify",
        action="store_true",
        default=None,
        help="classify each end point (minimum, saddle, not converged) from its Hessian",
    )
    s.add_argument(
        "--keep-params",
        action="store_true",
        default=None,
        help="store every seed's initial and final params in sweep.npz (for gbl-jax landscape)",
    )
    s.add_argument(
        "--keep-predictions",
        action="store_true",
        default=None,
        help="store every "
        "seed's predictive distribution on the held-out split in sweep.npz "
        "(gbl.load(DIR).predictions; for gbl-jax ensemble)",
    )
    s.add_argument(
        "--probe",
        action="append",
        metavar="NAME",
        help="evaluate a probe at the "
        "end of every logged window: sharpness (the top Hessian eigenvalue), "
        "grad_norm, distance_from_init; repeat for several (gbl.load(DIR).probes)",
    )
    s.add_argument(
        "--vary",
        help="which randomness differs between seeds: init,data "
        "(default), init, data, or perturb (seed 0's run with one initial weight "
        "moved by one ulp)",
    )
    s.add_argument("--out", help="output folder; default runs/<problem>-h<hidden>-<time>")
    s.add_argument(
        "--resume",
        action="store_true",
        help="finish the interrupted sweep in --out "
        "(a sweep of your --model or --data module:function needs it named again: a "
        "folder never runs the code it names)",
    )
    s.add_argument("--force", action="store_true", help="replace results gbl-jax wrote in --out")
    s.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="on CPU, shard the runs over "
        "this many XLA devices (default: one per core); per process",
    )
    s.add_argument(
        "--processes",
        type=int,
        help="run N local processes that join JAX's "
        "multi-process runtime and share the chunks (needs --out)",
    )
    s.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="join a multi-process sweep "
        "(with --num-processes and --process-id; every process the same command)",
    )
    s.add_argument("--num-processes", type=int, help="processes in the multi-process sweep")
    s.add_argument("--process-id", type=int, help="this process's index, 0 writes the results")
    s.add_argument(
        "--join-timeout",
        default="120",
        metavar="SECONDS",
        help="how long a process waits for the coordinator and the others (default 120)",
    )
    s.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process sweep whose processes JAX finds itself (SLURM, Open MPI)",
    )
    s.set_defaults(run=_sweep)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"gbl-jax: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the command writes files; the library never picks a backend
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parser().parse_args(argv)
        args.argv = argv
        with warnings.catch_warnings():  # a library warning, one line like the errors
            warnings.showwarning = _one_line_warning
            return args.run(args)
    except (UsageError, ValueError, OSError) as err:
        print(f"gbl-jax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gbl-jax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
