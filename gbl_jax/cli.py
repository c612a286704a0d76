"""The ``gbl-jax`` command line: init-sensitivity sweeps from the shell.

  gbl-jax sweep --problem xor --hidden 2 --seeds 1024 --steps 2000 --out runs/xor
  gbl-jax problems
  gbl-jax tour

Errors (bad options, a head that does not fit the problem, an --out that already holds results)
print one line on stderr and exit with status 2, never a traceback, and write nothing. Ctrl-C
keeps every finished chunk; ``--resume`` completes the sweep.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

# Defaults of `sweep`; None in the parser so that --resume can tell what was given explicitly.
SWEEP_DEFAULTS = {
    "problem": "xor", "hidden": "2", "activation": "tanh", "init": "glorot_normal", "head": None,
    "components": 3, "loss": "nll", "optimizer": "adam", "lr": None, "steps": 2000,
    "batch_size": None, "seeds": 1024, "seed": 0, "chunk_size": None, "n": None,
    "log_every": None, "threshold": 0.1,
}
DEFAULT_LR = {"adam": 0.05, "sgd": 0.5, "momentum": 0.1}
HEADS = ("gaussian", "heteroscedastic_gaussian", "laplace", "bernoulli", "categorical",
         "mixture_density")


class UsageError(Exception):
    """Bad input from the command line: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage too; we keep it to one line
        raise UsageError(message)


def _parse_hidden(text: str) -> list[int]:
    text = text.strip()
    if not text:
        return []
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--hidden must be a comma list of positive integers (e.g. 8,8) or '' "
                         f"for no hidden layer, got {text!r}") from None
    if any(w < 1 for w in widths):
        raise UsageError(f"--hidden widths must be positive, got {text!r}")
    return widths


def _positive(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return
    if value is None or value < 1:
        raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def _make_head(name: str, y, components: int, problem: str):
    from gbl_jax import heads

    y_shape = tuple(y.shape)
    if name == "bernoulli":
        return heads.bernoulli()
    if name == "categorical":
        classes = int(y.max()) + 1 if y.size else 0
        if classes < 2:
            raise UsageError(f"--head categorical needs integer labels with >= 2 classes; problem "
                             f"{problem} has y {list(y_shape)}")
        return heads.categorical(classes)
    if len(y_shape) != 2:
        raise UsageError(f"--head {name} needs targets [N, D]; problem {problem} has y "
                         f"{list(y_shape)} (try --head bernoulli or categorical)")
    dim = y_shape[1]
    if name == "mixture_density":
        return heads.mixture_density(components, dim)
    return getattr(heads, name)(dim)


def resolve_config(args: argparse.Namespace) -> dict:
    """Fills defaults and checks every option; raises UsageError with one line."""
    from gbl_jax import problems

    config = {k: (getattr(args, k) if getattr(args, k) is not None else v)
              for k, v in SWEEP_DEFAULTS.items()}
    if config["problem"] not in problems.REGISTRY:
        raise UsageError(f"unknown problem {config['problem']!r}; choose one of "
                         f"{', '.join(sorted(problems.REGISTRY))}")
    _parse_hidden(config["hidden"])
    for name in ("steps", "seeds", "components"):
        _positive(name, config[name])
    for name in ("batch_size", "chunk_size", "n", "log_every"):
        _positive(name, config[name], allow_none=True)
    if config["lr"] is None:
        config["lr"] = DEFAULT_LR[config["optimizer"]]
    if not config["lr"] > 0:
        raise UsageError(f"--lr must be positive, got {config['lr']}")
    if config["log_every"] is None:
        config["log_every"] = max(1, -(-config["steps"] // 100))
    if config["log_every"] > config["steps"]:
        raise UsageError(f"--log-every ({config['log_every']}) must not exceed --steps "
                         f"({config['steps']})")
    return config


def build(config: dict):
    """The problem data, model, optimizer and loss a config describes."""
    import jax
    import optax

    import gbl_jax as gbl
    from gbl_jax import problems

    data = problems.make(config["problem"], jax.random.PRNGKey(config["seed"] + 1), config["n"])
    head = (data.head if config["head"] is None
            else _make_head(config["head"], data.y, config["components"], config["problem"]))
    try:
        model = gbl.mlp(_parse_hidden(config["hidden"]), head, activation=config["activation"],
                        init=config["init"])
    except ValueError as err:
        raise UsageError(str(err)) from None
    lr = config["lr"]
    optimizer = {"adam": optax.adam(lr), "sgd": optax.sgd(lr),
                 "momentum": optax.sgd(lr, momentum=0.9)}[config["optimizer"]]
    loss = gbl.nll if config["loss"] == "nll" else gbl.squared_error
    return data, model, optimizer, loss


def _versions() -> dict:
    import jax
    import jaxlib

    import gbl_jax

    return {"gbl_jax": gbl_jax.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "python": sys.version.split()[0]}


def _default_out(config: dict) -> Path:
    hidden = config["hidden"].replace(",", "-") or "none"
    return Path("runs") / f"{config['problem']}-h{hidden}-{time.strftime('%Y%m%d-%H%M%S')}"


def _summary_table(config: dict, spread, wall_s: float, compile_s: float, out: Path) -> str:
    rows = [("problem", config["problem"]), ("hidden", config["hidden"] or "(none)"),
            ("optimizer", f"{config['optimizer']} lr={config['lr']}"),
            ("steps", config["steps"]), ("seeds", spread.n), ("diverged", spread.n_diverged)]
    for name in ("mean", "std", "min", "q10", "median", "q90", "max"):
        rows.append((name, f"{getattr(spread, name):.6g}"))
    rate = spread.success_rate(config["threshold"])
    rows.append((f"final loss < {config['threshold']:g}", f"{100 * rate:.1f}% of non-diverged"))
    rows.append(("time", f"{wall_s:.1f} s (compile {compile_s:.1f} s)"))
    rows.append(("written to", str(out)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _sweep(args: argparse.Namespace) -> int:
    from gbl_jax import runstore

    out = Path(args.out) if args.out else None
    if args.resume:
        if out is None or not (out / runstore.CONFIG).exists():
            raise UsageError(f"--resume needs an --out folder from an interrupted sweep; "
                             f"{out} has no {runstore.CONFIG}")
        import json
        stored = json.loads((out / runstore.CONFIG).read_text())["config"]
        for key, value in vars(args).items():
            if key in SWEEP_DEFAULTS and value is not None and value != stored[key]:
                raise UsageError(f"--{key.replace('_', '-')} {value} conflicts with the "
                                 f"interrupted sweep's {stored[key]!r} (drop it to resume)")
        config = stored
    else:
        config = resolve_config(args)
        out = out or _default_out(config)
        if runstore.has_results(out) and not args.force:
            raise UsageError(f"--out {out} already holds results; pass --resume to finish it or "
                             "--force to replace it")
    runstore.check_writable(out)
    return _run_sweep(config, out, fresh=not args.resume)


def _run_sweep(config: dict, out: Path, fresh: bool) -> int:
    import shutil

    import jax
    import numpy as np
    from tqdm import tqdm

    import gbl_jax as gbl
    from gbl_jax import plots, runstore, sweeps

    data, model, optimizer, loss = build(config)
    try:
        plan = sweeps.plan_sweep(model, optimizer, data, key=jax.random.PRNGKey(config["seed"]),
                                 seeds=config["seeds"], steps=config["steps"],
                                 batch_size=config["batch_size"], loss=loss,
                                 log_every=config["log_every"], chunk_size=config["chunk_size"])
    except ValueError as err:
        raise UsageError(str(err)) from None
    config = dict(config, chunk_size=plan.chunk_size, devices=len(plan.devices))
    if fresh:
        if out.exists():   # only with --force; remove just what a sweep writes
            for name in runstore.OUTPUTS:
                target = out / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        runstore.write_json(out / runstore.CONFIG, {"config": config, "versions": _versions()})
    done = runstore.done_chunks(out)
    begin = time.perf_counter()
    compile_s = plan.compile()
    total = len(plan.runs)
    todo = sum(len(plan.chunk_runs(p)) for p in plan.chunk_starts()
               if int(plan.runs[p]) not in done)
    bar = tqdm(total=total, initial=total - todo, unit="seed",
               desc="sweep", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    try:
        for chunk in sweeps.run_plan(plan, skip=lambda pos: int(plan.runs[pos]) in done):
            runstore.save_chunk(out, chunk)
            bar.update(len(chunk.runs))
    except KeyboardInterrupt:
        bar.close()
        finished = len(runstore.done_chunks(out))
        print(f"gbl-jax: interrupted; {finished} of {len(plan.chunk_starts())} chunks are saved in "
              f"{out}; finish with: gbl-jax sweep --out {out} --resume", file=sys.stderr)
        return 130
    bar.close()
    wall_s = time.perf_counter() - begin

    merged = runstore.load_chunks(out, config["seeds"])
    spread = gbl.spread(merged["final_loss"], merged["diverged"])
    runstore.write_final_losses_csv(out / "final_losses.csv", merged["final_loss"],
                                    merged["diverged"])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, losses=merged["losses"], log_every=config["log_every"],
                        keys=sweeps.key_data(plan.keys))
    runstore.atomic_write(out / "curves.npz", buffer.getvalue())
    title = plots.describe(config)
    threshold = config["threshold"]
    diverged = merged["diverged"]
    plots.save(plots.final_loss_histogram(merged["final_loss"], diverged, threshold=threshold,
                                          title=title), out / "final_losses")
    success = ~diverged & (np.where(diverged, np.inf, merged["final_loss"]) < threshold)
    plots.save(plots.loss_curves_by_outcome(merged["losses"], config["log_every"], success=success,
                                            diverged=diverged, title=title), out / "curves")
    runstore.write_json(out / runstore.RESULTS, {
        "config": config, "versions": _versions(),
        "devices": [str(d) for d in plan.devices],
        "spread": spread.as_dict(),
        "success_rate": {"threshold": threshold, "rate": spread.success_rate(threshold)},
        "wall_s": wall_s, "compile_s": compile_s,
    })
    print(_summary_table(config, spread, wall_s, compile_s, out))
    return 0


def _problems(args: argparse.Namespace) -> int:
    from gbl_jax import problems

    width = max(map(len, problems.REGISTRY))
    for name, problem in sorted(problems.REGISTRY.items()):
        print(f"{name:<{width}}  {problem.description} (default n={problem.default_n})")
    return 0


def _tour(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp
    import optax

    import gbl_jax as gbl

    key = jax.random.PRNGKey(args.seed)
    k_f, k_y = jax.random.split(key)
    f = jax.random.normal(k_f, (256, 2))
    y = f + jax.random.normal(k_y, (256, 2))
    nll = gbl.nll(gbl.Normal(f, 1.0), y)
    half_mse = 0.5 * gbl.mse(f, y) + jnp.log(2 * jnp.pi)
    print("Maximum likelihood with a unit Gaussian is 1/2 squared error + C (section 6.2.1.1):")
    print(f"  nll = {float(nll):.6f}   1/2 mse + log(2 pi) = {float(half_mse):.6f}")
    print("\nGradient reaching a sigmoid unit whose target is 1 (section 6.2.2.2):")
    logits = jnp.asarray([-10.0, -3.0, 0.0, 3.0, 10.0])
    report = gbl.diagnostics.saturation_report(logits, jnp.ones_like(logits))
    print(f"  {'logit':>6}  {'|grad NLL|':>11}  {'|grad SE|':>11}  {'ratio':>9}")
    for z, a, b, r in zip(logits.tolist(), report.nll_grad_norm.tolist(),
                          report.squared_error_grad_norm.tolist(), report.ratio.tolist()):
        print(f"  {z:>6.1f}  {a:>11.4g}  {b:>11.4g}  {r:>9.3g}")
    print("  NLL saturates only when the answer is right; squared error also when it is wrong.")
    data = gbl.problems.xor()
    print("\nTraining a 2-8-1 tanh network on XOR with Adam, 500 steps:")
    res = gbl.train(gbl.mlp([8], data.head), optax.adam(0.05), data, key=key, steps=500)
    for step in (0, 100, 200, 300, 400, 499):
        print(f"  step {step:>4}  nll {float(res.losses[step]):.5f}")
    print(f"  final nll {float(res.final_loss):.5f}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gbl-jax", description="Gradient-based learning (Deep Learning 6.2) "
                     "in JAX: init-sensitivity sweeps.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    d = SWEEP_DEFAULTS
    s = sub.add_parser("sweep", help="train from many random inits; report the loss spread",
                       description="Train one model from many random initializations at once and "
                       "report how spread out the final losses are.")
    s.add_argument("--problem", help=f"a registered problem (gbl-jax problems); default {d['problem']}")
    s.add_argument("--hidden", help="hidden widths as a comma list, '' for none (the convex "
                   f"control); default {d['hidden']}")
    s.add_argument("--activation", choices=["tanh", "relu", "sigmoid", "softplus", "gelu",
                                            "identity"], help="hidden nonlinearity; default tanh")
    s.add_argument("--init", help="init scheme: glorot_normal, glorot_uniform, he_normal, "
                   "he_uniform, lecun_normal, orthogonal, zeros; default glorot_normal")
    s.add_argument("--head", choices=HEADS, help="output unit; default: the problem's own")
    s.add_argument("--components", type=int, help="mixture components for --head "
                   "mixture_density; default 3")
    s.add_argument("--loss", choices=["nll", "mse"], help="nll (default) or squared error of the "
                   "head's mean (behind the same sigmoid/softmax)")
    s.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], help="default adam")
    s.add_argument("--lr", type=float, help="learning rate; default 0.05 adam, 0.5 sgd, "
                   "0.1 momentum (0.9)")
    s.add_argument("--steps", type=int, help=f"optimizer steps per seed; default {d['steps']}")
    s.add_argument("--batch-size", type=int, help="minibatch size; default full batch")
    s.add_argument("--seeds", type=int, help=f"number of random inits; default {d['seeds']}")
    s.add_argument("--seed", type=int, help="base random seed (the data uses seed + 1); default 0")
    s.add_argument("--chunk-size", type=int, help="seeds per compiled call; default: chosen from "
                   "the model size and device")
    s.add_argument("--n", type=int, help="data size; default: the problem's own")
    s.add_argument("--log-every", type=int, help="steps per point of the loss curves; default "
                   "steps/100")
    s.add_argument("--threshold", type=float, help="a seed succeeds when its final loss is below "
                   "this; default 0.1")
    s.add_argument("--out", help="output folder; default runs/<problem>-h<hidden>-<time>")
    s.add_argument("--resume", action="store_true", help="finish the interrupted sweep in --out")
    s.add_argument("--force", action="store_true", help="replace results already in --out")
    s.add_argument("--cpu-devices", type=int, default=None, help="on CPU, run the seeds on this "
                   "many XLA devices (one per core; default: the number of cores)")
    s.set_defaults(run=_sweep)
    p = sub.add_parser("problems", help="list the problems")
    p.set_defaults(run=_problems)
    t = sub.add_parser("tour", help="a one-minute tour of section 6.2 in numbers")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.set_defaults(run=_tour)
    return parser


def _set_cpu_devices(n: int | None) -> None:
    """Before jax is imported: one XLA CPU device per core, so sweeps shard across cores."""
    n = n or os.cpu_count() or 1
    if n < 1:
        raise UsageError(f"--cpu-devices must be positive, got {n}")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags and "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def _stored_devices(args: argparse.Namespace) -> int | None:
    """On --resume, the device count the interrupted sweep used (its chunks depend on it)."""
    if not (args.resume and args.out):
        return None
    try:
        import json
        return json.loads((Path(args.out) / "config.json").read_text())["config"].get("devices")
    except (OSError, ValueError, KeyError):
        return None


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")   # the command writes files; the library never picks a backend
    try:
        args = _parser().parse_args(argv)
        if args.command == "sweep":
            _set_cpu_devices(args.cpu_devices or _stored_devices(args))
        return args.run(args)
    except (UsageError, ValueError) as err:
        print(f"gbl-jax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gbl-jax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
