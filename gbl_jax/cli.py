"""The ``gbl-jax`` command line: init-sensitivity sweeps from the shell.

  gbl-jax sweep --problem xor --hidden 2 --seeds 1024 --steps 2000 --out runs/xor
  gbl-jax sweep --problem xor --lr 0.01,0.05,0.2 --init-scale 0.5,1,2 --classify --keep-params
  gbl-jax landscape --out runs/xor
  gbl-jax problems
  gbl-jax tour

Errors (bad options, a head that does not fit the problem, an --out that holds results or files
gbl-jax did not write, a sweep that would not fit in memory) print one line on stderr and exit
with status 2, never a traceback, and write nothing. Ctrl-C keeps every finished chunk;
``--resume`` completes the sweep. The run folder is ``runstore.RunFolder``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import gbl_jax
from gbl_jax import heads as heads_module
from gbl_jax import inits, nets, problems, runstore

# Defaults of `sweep`; None in the parser so that --resume can tell what was given explicitly.
SWEEP_DEFAULTS = {
    "problem": "xor", "hidden": "2", "activation": "tanh", "init": "glorot_normal", "head": None,
    "components": 3, "loss": "nll", "optimizer": "adam", "lr": None, "init_scale": 1.0,
    "steps": 2000, "batch_size": None, "seeds": 1024, "seed": 0, "chunk_size": None, "n": None,
    "log_every": None, "threshold": None, "grad_tol": None, "classify": False,
    "keep_params": False,
}
# name: (optax function, its keyword arguments, default learning rate)
OPTIMIZERS = {"adam": ("adam", {}, 0.05), "sgd": ("sgd", {}, 0.5),
              "momentum": ("sgd", {"momentum": 0.9}, 0.1)}
LOSSES = {"nll": "nll", "mse": "squared_error"}
HEADS = {name: fn for name, fn in vars(heads_module).items()
         if inspect.isfunction(fn) and fn.__module__ == heads_module.__name__
         and not name.startswith("_")}
MAX_SEED = 2**32 - 2        # jax.random.PRNGKey folds larger seeds onto smaller ones
MAX_STEPS = 2**31 - 1       # the step counter is int32
MAX_CPU_DEVICES = 1024
SUCCESS_NATS = 0.1          # classifiers: mean NLL below it is a geometric-mean p(label) > 0.905
UNEXPLAINED = 0.1           # regression: the share of the targets' spread a success leaves


class UsageError(Exception):
    """Bad input from the command line: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage too; we keep it to one line
        raise UsageError(message)


# --- checking options ----------------------------------------------------------------------
def _int(name: str, value, least: int | None = None, most: int | None = None,
         none: bool = False):
    if value is None and none:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or (least is not None and value < least) or (most is not None and value > most):
        span = (f"in [{least}, {most}]" if most is not None
                else f">= {least}" if least is not None else "")
        raise UsageError(f"--{name.replace('_', '-')} must be an integer {span}, got {value!r}")
    return value


def _numbers(name: str, value, least: float = -math.inf, strict: bool = False) -> list[float]:
    """A number, a list, or a comma list as floats; each finite and above ``least``."""
    flag = f"--{name.replace('_', '-')}"
    parts = value.split(",") if isinstance(value, str) else (
        value if isinstance(value, list) else [value])
    try:
        numbers = [float(p) if not isinstance(p, bool) else math.nan for p in parts]
    except (TypeError, ValueError):
        raise UsageError(f"{flag} must be a number or a comma list of numbers, got "
                         f"{value!r}") from None
    bound = "> " if strict else ">= "
    bad = [x for x in numbers if not math.isfinite(x) or x < least or (strict and x == least)]
    if not numbers or bad:
        raise UsageError(f"{flag} values must be finite numbers {bound}{least:g}, got {value!r}")
    if len(set(numbers)) != len(numbers):
        raise UsageError(f"{flag} values must be distinct, got {value!r}")
    return numbers


def _one_or_list(numbers: list[float]):
    return numbers[0] if len(numbers) == 1 else numbers


def _choice(name: str, value, choices) -> str:
    if value not in choices:
        raise UsageError(f"unknown {name} {value!r}; choose one of {', '.join(sorted(choices))}")
    return value


def _parse_hidden(text) -> list[int]:
    text = str(text).strip()
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


def resolve_config(raw: dict, stored: bool = False) -> dict:
    """Fills defaults and checks every option; raises UsageError with one line.

    ``raw`` holds the options as parsed, or a stored config (``stored``: every key required).
    Resolving a resolved config gives it back.
    """
    if stored:
        missing = [k for k in SWEEP_DEFAULTS if k not in raw]
        if missing:
            raise UsageError(f"lacks {', '.join(missing)}")
    config: dict[str, Any] = {k: (raw.get(k) if raw.get(k) is not None else v)
                              for k, v in SWEEP_DEFAULTS.items()}
    _choice("problem", config["problem"], problems.REGISTRY)
    config["hidden"] = ",".join(map(str, _parse_hidden(config["hidden"])))
    _choice("activation", config["activation"], nets.ACTIVATIONS)
    _choice("init", config["init"], inits.INITS)
    if config["head"] is not None:
        _choice("head", config["head"], HEADS)
    _choice("optimizer", config["optimizer"], OPTIMIZERS)
    _choice("loss", config["loss"], LOSSES)
    for name in ("steps", "seeds", "components"):
        _int(name, config[name], 1, MAX_STEPS if name == "steps" else None)
    for name in ("batch_size", "chunk_size", "n", "log_every"):
        _int(name, config[name], 1, none=True)
    _int("seed", config["seed"], 0, MAX_SEED)
    lr = config["lr"] if config["lr"] is not None else OPTIMIZERS[config["optimizer"]][2]
    config["lr"] = _one_or_list(_numbers("lr", lr, 0.0, strict=True))
    config["init_scale"] = _one_or_list(_numbers("init_scale", config["init_scale"], 0.0))
    if config["threshold"] is not None:
        config["threshold"] = _numbers("threshold", config["threshold"])
        if len(config["threshold"]) != 1:
            raise UsageError(f"--threshold takes one number, got {raw.get('threshold')!r}")
        config["threshold"] = config["threshold"][0]
        config["threshold_rule"] = raw.get("threshold_rule") or "set with --threshold"
    if config["grad_tol"] is not None:
        config["grad_tol"] = _numbers("grad_tol", config["grad_tol"], 0.0, strict=True)[0]
    for name in ("classify", "keep_params"):
        if not isinstance(config[name], bool):
            raise UsageError(f"{name} must be true or false, got {config[name]!r}")
    if config["log_every"] is None:
        config["log_every"] = max(1, -(-config["steps"] // 100))
    if config["log_every"] > config["steps"]:
        raise UsageError(f"--log-every ({config['log_every']}) must not exceed --steps "
                         f"({config['steps']})")
    if stored:
        config["devices"] = _int("devices", raw.get("devices"), 1)
        config["chunk_size"] = _int("chunk_size", raw.get("chunk_size"), 1)
    return config


# --- building the run ----------------------------------------------------------------------
def _make_head(name: str, y, components: int, problem: str):
    """The head ``name`` of gbl_jax.heads, sized from the targets ``y``."""
    y_shape = list(y.shape)
    sizes = {"components": components}
    if "classes" in inspect.signature(HEADS[name]).parameters:
        classes = int(y.max()) + 1 if y.size else 0
        if y.ndim != 1 or classes < 2:
            raise UsageError(f"--head {name} needs integer labels [N] with >= 2 classes; problem "
                             f"{problem} has y {y_shape}")
        sizes["classes"] = classes
    if "dim" in inspect.signature(HEADS[name]).parameters:
        if y.ndim != 2:
            raise UsageError(f"--head {name} needs targets [N, D]; problem {problem} has y "
                             f"{y_shape} (try --head bernoulli or categorical)")
        sizes["dim"] = y_shape[1]
    wanted = [p.name for p in inspect.signature(HEADS[name]).parameters.values()
              if p.default is inspect.Parameter.empty]
    return HEADS[name](*[sizes[p] for p in wanted])


def grid_of(config: dict) -> dict:
    """The sweep's grid: every option given several values (init_scale also when not 1)."""
    grid = {}
    lrs = config["lr"] if isinstance(config["lr"], list) else [config["lr"]]
    scales = config["init_scale"] if isinstance(config["init_scale"], list) else [
        config["init_scale"]]
    if len(lrs) > 1:
        grid["learning_rate"] = lrs
    if scales != [1.0]:
        grid["init_scale"] = scales
    return grid


class Built(NamedTuple):
    """What a config describes: the data, model, its output unit, optimizer, loss and grid."""

    data: Any
    model: Any
    head: Any
    optimizer: Any
    loss: Any
    grid: dict


BUILT_FROM = ("problem", "seed", "n", "head", "components", "hidden", "activation", "init",
              "lr", "init_scale", "optimizer", "loss")


def build(config: dict) -> Built:
    """Builds a config's run; refuses data that would not fit in memory before making it.

    The same options give the same objects within a process, so JAX compiles a repeated
    command (``cli.main`` called again from Python) only once.
    """
    return _build(tuple((k, tuple(v) if isinstance(v, list) else v)
                        for k, v in ((k, config[k]) for k in BUILT_FROM)))


@functools.lru_cache(maxsize=8)
def _build(options: tuple) -> Built:
    import jax
    import optax

    config: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in options}
    key = jax.random.PRNGKey(config["seed"] + 1)
    make = lambda k: problems.make(config["problem"], k, config["n"])   # noqa: E731
    shapes = jax.eval_shape(make, key)
    data_bytes = sum(math.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(shapes))
    if 4 * data_bytes > runstore.available_memory():
        raise UsageError(f"--n {config['n']}: the data would take {runstore.size_text(data_bytes)}"
                         f" (x4 while training); {runstore.size_text(runstore.available_memory())}"
                         " is available")
    data = make(key)
    head = (data.head if config["head"] is None
            else _make_head(config["head"], data.y, config["components"], config["problem"]))
    if head is None:
        raise UsageError(f"problem {config['problem']} names no output unit; pass --head")
    try:
        model = gbl_jax.mlp(_parse_hidden(config["hidden"]), head,
                            activation=config["activation"], init=config["init"])
    except ValueError as err:
        raise UsageError(str(err)) from None
    grid = grid_of(config)
    fn, kwargs, _ = OPTIMIZERS[config["optimizer"]]
    if "learning_rate" in grid:
        optimizer = optax.inject_hyperparams(getattr(optax, fn))(
            learning_rate=grid["learning_rate"][0], **kwargs)
    else:
        optimizer = getattr(optax, fn)(config["lr"], **kwargs)
    return Built(data, model, head, optimizer, getattr(gbl_jax, LOSSES[config["loss"]]), grid)


def threshold_rule(head_name: str, loss: str, y) -> tuple[float, float, str]:
    """(lowest reachable loss, default success threshold, the rule behind it) for a head.

    Classifiers (NLL): 0.1 nats, whatever the data. Regression: the loss of a fit that leaves
    10% of the targets' spread unexplained (R^2 = 0.9), under the head's own likelihood.
    """
    import numpy as np

    family = head_name.split("(")[0]
    y = np.asarray(y, np.float64)
    if family in ("bernoulli", "categorical"):
        targets = (y[:, None] if family == "bernoulli"
                   else np.eye(int(y.max()) + 1)[y.astype(int)])
    else:
        targets = y.reshape(len(y), -1)
    var = targets.var(axis=0)
    d = targets.shape[1]
    if loss == "mse":
        floor, value = 0.0, UNEXPLAINED * var.sum()
        rule = "mse: 10% of the targets' variance (R^2 = 0.9)"
    elif family in ("bernoulli", "categorical"):
        floor, value = 0.0, SUCCESS_NATS
        rule = (f"{family} NLL: 0.1 nats (the true label gets probability e^-0.1 = 0.905, "
                "geometric mean)")
    elif family == "gaussian":
        floor = 0.5 * d * math.log(2 * math.pi)
        value = floor + 0.5 * UNEXPLAINED * var.sum()
        rule = ("unit-variance Gaussian NLL of a fit leaving 10% of the targets' variance "
                "unexplained (R^2 = 0.9)")
    elif family == "laplace" and "learn_scale" not in head_name:
        floor = d * math.log(2)
        value = floor + UNEXPLAINED * np.abs(targets - np.median(targets, axis=0)).mean(0).sum()
        rule = ("unit-scale Laplace NLL of a fit leaving 10% of the targets' mean absolute "
                "deviation unexplained")
    else:   # learned scales: the NLL has no floor; a Gaussian with R^2 = 0.9 and its best scale
        floor = -math.inf
        value = float(np.sum(0.5 * np.log(2 * math.pi * math.e * UNEXPLAINED
                                           * np.maximum(var, 1e-12))))
        rule = ("NLL of a Gaussian with fitted variance leaving 10% of the targets' variance "
                "unexplained (R^2 = 0.9)")
    if not value > floor:   # constant targets: no spread to explain
        value = floor + SUCCESS_NATS
    return floor, float(value), f"default: {rule}"


def _set_threshold(config: dict, head_name: str, data) -> None:
    floor, value, rule = threshold_rule(head_name, config["loss"], data.y)
    if config["threshold"] is None:
        config.update(threshold=round(value, 6) if abs(value) > 1e-3 else value,
                      threshold_rule=rule)
    elif not config["threshold"] > floor:
        raise UsageError(f"--threshold {config['threshold']:g} is not above the lowest loss this "
                         f"model can reach ({floor:.6g} for {config['loss']} with {head_name}): "
                         "no seed could succeed")


def _set_cpu_devices(n: int | None) -> None:
    """One XLA CPU device per core (``n``); takes effect only before JAX starts its backend."""
    import jax

    if n is not None:
        try:
            jax.config.update("jax_num_cpu_devices", n)
        except (RuntimeError, AttributeError, KeyError):
            pass   # JAX already started (the command called in a process that used it)


def _local_devices(n: int | None):
    """The devices this process runs on: ``n`` CPU devices, or every local accelerator."""
    import jax

    devices = jax.local_devices()
    if devices[0].platform != "cpu" or n is None:
        return devices
    if len(devices) < n:
        raise UsageError(f"--cpu-devices {n}: JAX already started with {len(devices)} CPU "
                         "devices")
    return devices[:n]


def _join(args) -> tuple[int, int]:
    """Joins JAX's multi-process runtime when asked; (this process's index, process count)."""
    import jax

    cluster = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in cluster):
        if any(v is None for v in cluster):
            raise UsageError("--coordinator, --num-processes and --process-id go together")
        count = _int("num_processes", args.num_processes, 1)
        index = _int("process_id", args.process_id, 0, count - 1)
        kwargs = {"coordinator_address": args.coordinator, "num_processes": count,
                  "process_id": index}
    elif args.distributed:
        kwargs = {}   # SLURM, Open MPI, ...: JAX finds the cluster itself
    else:
        return 0, 1
    if args.out is None:
        raise UsageError("a multi-process sweep needs --out (a folder every process can reach)")
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as err:
        raise UsageError(f"joining JAX's multi-process runtime failed: "
                         f"{str(err).splitlines()[0]}") from None
    return jax.process_index(), jax.process_count()


def _barrier(name: str, count: int, ok: bool = True) -> bool:
    """Waits for every process; returns process 0's ``ok``."""
    if count == 1:
        return ok
    import numpy as np
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
    return bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))


def _versions() -> dict:
    import jax
    import jaxlib

    return {"gbl_jax": gbl_jax.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "python": sys.version.split()[0]}


def _title(config: dict, grid: dict) -> str:
    from gbl_jax import plots

    shown = {k: v for k, v in config.items() if k != "threshold"}
    if "learning_rate" in grid:
        shown["lr"] = None
    title = plots.describe(shown)
    if grid:
        title += ", grid " + " x ".join(grid)
    return title + f", threshold {config['threshold']:.4g}"


def _compile_cache(args) -> str | None:
    if args.no_compile_cache:
        return None
    try:
        return str(gbl_jax.enable_compilation_cache(args.compile_cache))
    except OSError as err:
        raise UsageError(f"--compile-cache: {err}") from None


# --- sweep ---------------------------------------------------------------------------------
def _sweep(args: argparse.Namespace) -> int:
    if args.coordinator is None and args.processes is not None and _int(
            "processes", args.processes, 1, 1024) > 1:
        return _launch(args)
    distributed = any(v is not None for v in (args.coordinator, args.num_processes,
                                              args.process_id)) or args.distributed
    folder, config, cpu_devices = _resolve(args, check_out=not distributed)
    _set_cpu_devices(cpu_devices)
    team = _join(args)
    devices = _local_devices(cpu_devices)
    if args.resume and len(devices) != config["devices"]:
        raise UsageError(f"the interrupted sweep ran on {config['devices']} devices per process, "
                         f"this one has {len(devices)}; resume it on a machine like the first")
    return _run_sweep(folder, config, devices, args, team)


def _resolve(args: argparse.Namespace, check_out: bool = True):
    """(run folder, config, CPU devices per process) of a new or resumed sweep, all checked."""
    given = {k: getattr(args, k) for k in SWEEP_DEFAULTS if getattr(args, k) is not None}
    folder = runstore.RunFolder(args.out or _default_out(given))
    if args.resume and args.force:
        raise UsageError("--resume finishes a sweep and --force replaces it: pass one")
    if not args.resume:
        config = resolve_config(given)
        if check_out:
            folder.check_new(force=args.force)
        cpu_devices = _int("cpu_devices", args.cpu_devices, 1, MAX_CPU_DEVICES, none=True)
        if cpu_devices is None and "xla_force_host_platform_device_count" not in os.environ.get(
                "XLA_FLAGS", ""):
            cpu_devices = os.cpu_count() or 1
        return folder, config, cpu_devices
    if args.out is None:
        raise UsageError("--resume needs the --out folder of an interrupted sweep")
    config = _stored_config(folder)
    for key, value in given.items():
        if resolve_config({**config, key: value}, stored=True)[key] != config[key]:
            raise UsageError(f"--{key.replace('_', '-')} {value} conflicts with the "
                             f"interrupted sweep's {config[key]!r} (drop it to resume)")
    if args.cpu_devices is not None and args.cpu_devices != config["devices"]:
        raise UsageError(f"--cpu-devices {args.cpu_devices} conflicts with the interrupted "
                         f"sweep's {config['devices']} devices (chunks computed on another "
                         "device count can differ in the last bits); drop it to resume")
    return folder, config, config["devices"]


def _stored_config(folder: runstore.RunFolder) -> dict:
    try:
        return resolve_config(folder.read_config()["config"], stored=True)
    except UsageError as err:
        raise UsageError(f"{folder.file(runstore.CONFIG)} is not a valid sweep config: "
                         f"{err}") from None


def _launch(args: argparse.Namespace) -> int:
    """``--processes N``: checks the sweep, then runs N local processes that join JAX's
    multi-process runtime and share its chunks; process 0 writes the results."""
    import signal
    import socket
    import subprocess

    if args.out is None:
        raise UsageError("--processes needs --out (the folder the processes share)")
    folder, config, cpu_devices = _resolve(args)
    if args.cpu_devices is None and not args.resume:   # the cores shared among the processes
        cpu_devices = max(1, (os.cpu_count() or 1) // args.processes)
    _set_cpu_devices(cpu_devices)
    _plan(dict(config), _local_devices(cpu_devices), folder)   # refuse here, once, if it fails
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv, skip = [], False
    for token in args.argv:
        if skip or token.startswith(("--processes", "--cpu-devices")):
            skip = token in ("--processes", "--cpu-devices") and not skip
            continue
        argv.append(token)
    if not args.resume:
        argv += ["--cpu-devices", str(cpu_devices)]
    workers = [subprocess.Popen([sys.executable, "-m", "gbl_jax.cli", *argv, "--coordinator",
                                 f"127.0.0.1:{port}", "--num-processes", str(args.processes),
                                 "--process-id", str(i)]) for i in range(args.processes)]
    print(f"gbl-jax: started {len(workers)} processes (pids "
          f"{', '.join(str(w.pid) for w in workers)}), coordinator 127.0.0.1:{port}",
          file=sys.stderr, flush=True)
    failed = None
    try:
        while failed is None and None in [w.poll() for w in workers]:
            failed = next(((i, w.returncode) for i, w in enumerate(workers) if w.returncode),
                          None)
            time.sleep(0.1)
    finally:   # one process gone: the others would wait for it at the next barrier. JAX's
        # runtime catches SIGTERM (preemption notices); every chunk file is whole or absent.
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGKILL)
        for w in workers:
            w.wait()
    failed = failed or next(((i, w.returncode) for i, w in enumerate(workers) if w.returncode),
                            None)
    if failed:
        i, code = failed
        print(f"gbl-jax: error: process {i} exited with status {code}; the finished chunks are "
              f"kept in {folder.path}; finish with: gbl-jax sweep --out {folder.path} --resume",
              file=sys.stderr)
        return 2 if code == 2 else 1
    return 0


def _default_out(given: dict) -> Path:
    hidden = str(given.get("hidden", SWEEP_DEFAULTS["hidden"])).replace(",", "-") or "none"
    problem = given.get("problem", SWEEP_DEFAULTS["problem"])
    return Path("runs") / f"{problem}-h{hidden}-{time.strftime('%Y%m%d-%H%M%S')}"


def _plan(config: dict, devices, folder: runstore.RunFolder):
    """Builds and checks everything before anything is written: (plan, ``Built``, the
    structure of a chunk's results)."""
    import jax

    from gbl_jax import sweeps

    run = build(config)
    data, model, grid = run.data, run.model, run.grid
    _set_threshold(config, run.head.name, data)
    params_like = jax.eval_shape(model.init, jax.random.PRNGKey(0), data.x)
    param_bytes = sum(math.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(params_like))
    runs = config["seeds"] * math.prod(len(v) for v in grid.values())
    logs = config["steps"] // config["log_every"]
    keep = config["keep_params"] or config["classify"]
    memory, disk = runstore.footprint(runs, logs, param_bytes, keep_params=keep,
                                      classify=config["classify"])
    what = f"{runs} runs x {logs} logged losses" + (
        f" and 2 x {param_bytes} bytes of params each" if keep else "")
    folder.check_space(memory, disk, what)
    try:
        plan = sweeps.plan_sweep(model, run.optimizer, data,
                                 key=jax.random.PRNGKey(config["seed"]), seeds=config["seeds"],
                                 steps=config["steps"], batch_size=config["batch_size"],
                                 loss=run.loss, log_every=config["log_every"],
                                 chunk_size=config["chunk_size"],
                                 keep_params=keep, devices=devices, grid=grid,
                                 grad_tol=config["grad_tol"])
    except ValueError as err:
        raise UsageError(str(err)) from None
    config.update(chunk_size=plan.chunk_size, devices=len(devices))
    return plan, run, runstore.chunk_template(params_like if keep else None)


def _open(folder: runstore.RunFolder, config: dict, args, index: int, count: int) -> None:
    """Creates (process 0 of a new sweep) or joins the run folder and locks it; one process
    locks it exclusively, the processes of a multi-process sweep share the lock."""
    doc = {"config": config, "versions": _versions()}
    failure = None
    try:
        if index == 0 and not args.resume:
            if count > 1:
                folder.check_new(force=args.force)
            folder.create(doc, force=args.force, shared=count > 1)
    except (runstore.RunError, OSError) as err:
        failure = err
    if not _barrier("gbl_jax_folder", count, failure is None) and failure is None:
        raise UsageError(f"process {index}: process 0 could not open {folder.path}")
    if isinstance(failure, OSError):
        raise UsageError(f"--out {folder.path}: {failure.strerror or failure}") from None
    if failure is not None:
        raise failure
    if index == 0 and not args.resume:
        return
    if count > 1 and not args.resume and _stored_config(folder) != runstore.json_safe(config):
        raise UsageError(f"process {index}: {folder.file(runstore.CONFIG)} differs from this "
                         "process's options; start every process with the same command")
    folder.lock(shared=count > 1)


def _run_sweep(folder: runstore.RunFolder, config: dict, devices, args,
               team: tuple[int, int]) -> int:
    import jax
    from tqdm import tqdm

    from gbl_jax import sweeps

    index, count = team
    plan, run, template = _plan(config, devices, folder)
    cache = _compile_cache(args)
    _open(folder, config, args, index, count)
    try:
        done = folder.done()
        mine = {p for k, p in enumerate(plan.chunk_starts()) if k % count == index
                and (int(plan.runs[p]), int(plan.chunk_runs(p)[-1]) + 1) not in done}
        begin = time.perf_counter()
        compile_s = plan.compile()
        total = len(plan.runs)
        bar = tqdm(total=total, initial=total - sum(len(plan.chunk_runs(p)) for p in mine),
                   unit="run", desc="sweep", file=sys.stderr, dynamic_ncols=True,
                   mininterval=0.5, disable=index != 0)
        try:
            for chunk in sweeps.run_plan(plan, skip=lambda pos: pos not in mine):
                folder.save_chunk(chunk)
                bar.update(len(chunk.runs))
        except KeyboardInterrupt:
            bar.close()
            print(f"gbl-jax: interrupted; {len(folder.done())} of {len(plan.chunk_starts())} "
                  f"chunks are saved in {folder.path}; finish with: gbl-jax sweep --out "
                  f"{folder.path} --resume", file=sys.stderr)
            return 130
        bar.close()
        _barrier("gbl_jax_chunks", count)   # every process's chunks are on disk
        if index != 0:
            return 0
        wall_s = time.perf_counter() - begin
        chunks = folder.load_chunks(template, total)
        result = sweeps.merge_chunks(plan, chunks, wall_s)
        cp = None
        if config["classify"]:
            flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[len(plan.grid_shape) + 1:]),
                                result.params)
            cp = gbl_jax.critical_points(run.model, run.data, flat, loss=run.loss,
                                         grad_tol=config["grad_tol"] or 1e-3,
                                         diverged=result.diverged.reshape(-1))
        info = {"versions": _versions(), "devices": [str(d) for d in plan.devices],
                "processes": count, "wall_s": wall_s, "compile_s": compile_s,
                "compile_cache": cache, "title": _title(config, result.grid)}
        results = folder.finish(result, config, info, cp)
    finally:
        folder.close()
    print(_summary(results, folder.path))
    return 0


def _pct(rate, low, high) -> str:
    if rate is None:
        return "n/a (every seed diverged)"
    return f"{100 * rate:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _summary(results: dict, out: Path) -> str:
    """The printed table: the spread (or one row per grid cell), the threshold and its rule."""
    config, spread, rate = results["config"], results["spread"], results["success_rate"]
    ci = rate["interval_95"]
    threshold = f"{results['threshold']['value']:.6g}"
    rows = [("problem", config["problem"]), ("hidden", config["hidden"] or "(none)"),
            ("optimizer", f"{config['optimizer']} lr={config['lr']}"),
            ("steps", config["steps"]), ("seeds", config["seeds"])]
    lines = []
    if "grid" not in results:
        rows.append(("diverged", spread["n_diverged"]))
        for name in ("mean", "std", "min", "q10", "median", "q90", "max"):
            value = spread[name]
            rows.append((name, "n/a" if value is None else f"{value:.6g}"))
        rows.append((f"final loss < {threshold}", _pct(rate["rate"], ci["low"], ci["high"])
                     + (" of non-diverged (95% CI)" if rate["rate"] is not None else "")))
    else:
        import itertools

        grid = results["grid"]
        rows.append(("grid", " x ".join(f"{k} ({len(v)})" for k, v in grid.items())))
        lines.append(f"  {'cell':<32}  {'diverged':>8}  {'median':>10}  success < {threshold} "
                     "(95% CI)")
        for idx in itertools.product(*(range(len(v)) for v in grid.values())):
            pick = lambda a: _at(a, idx)   # noqa: E731
            cell = " ".join(f"{k}={v[i]:g}" for (k, v), i in zip(grid.items(), idx))
            median = pick(spread["median"])
            lines.append(f"  {cell:<32}  {int(pick(spread['n_diverged'])):>8}  "
                         f"{'n/a' if median is None else f'{median:.4g}':>10}  "
                         f"{_pct(pick(rate['rate']), pick(ci['low']), pick(ci['high']))}")
    rows.append(("threshold", f"{threshold} ({results['threshold']['rule']})"))
    if "converged" in results:
        conv = results["converged"]
        rows.append((f"grad norm < {conv['grad_tol']:g}", f"{conv['runs']} runs"))
    if "critical_points" in results:
        rows.append(("end points", ", ".join(f"{n} {k}" for k, n in
                                             results["critical_points"]["counts"].items())))
    if "note" in results:
        rows.append(("note", results["note"]))
    rows.append(("time", f"{results['wall_s']:.1f} s (compile {results['compile_s']:.1f} s)"))
    rows.append(("written to", str(out)))
    width = max(len(k) for k, _ in rows)
    table = [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(table + lines)


def _at(nested, idx):
    for i in idx:
        nested = nested[i]
    return nested


# --- landscape -----------------------------------------------------------------------------
def _landscape(args: argparse.Namespace) -> int:
    """Interpolation init -> final, barriers between seeds, and basins of a kept-params sweep."""
    import jax
    import numpy as np

    folder = runstore.RunFolder(args.out)
    doc = folder.read_config()
    try:
        config = resolve_config(doc["config"], stored=True)
    except UsageError as err:
        raise UsageError(f"{folder.file(runstore.CONFIG)} is not a valid sweep config: "
                         f"{err}") from None
    if not folder.file(runstore.RESULTS).is_file():
        raise UsageError(f"{folder.path} holds an unfinished sweep; finish it with --resume")
    pairs, num = _int("pairs", args.pairs, 2), _int("num", args.num, 2)
    tol = _numbers("tol", args.tol, 0.0)[0]
    run = build(config)
    cells = math.prod(len(v) for v in run.grid.values())
    cell = _int("cell", args.cell, 0, cells - 1)
    params_like = jax.eval_shape(run.model.init, jax.random.PRNGKey(0), run.data.x)
    stored = folder.load_params(params_like)
    cache = _compile_cache(args)
    pick = lambda a: np.asarray(a).reshape((cells, config["seeds"]) + np.shape(a)[  # noqa: E731
        len(run.grid) + 1:])[cell]
    final, init = (jax.tree.map(pick, stored[k]) for k in ("params", "init_params"))
    diverged = pick(stored["diverged"]).astype(bool)
    folder.lock()
    try:
        curves = gbl_jax.interpolate(run.model, run.data, init, final, num=num, loss=run.loss)
        ok = ~diverged & np.all(np.isfinite(curves), axis=1)
        steps = np.diff(curves, axis=1)
        monotone = ok & np.all(steps <= 1e-6 * (1 + np.abs(curves[:, :-1])), axis=1)
        ids = np.flatnonzero(ok)[:pairs]
        a, b = np.triu_indices(len(ids), 1)
        take = lambda tree, idx: jax.tree.map(lambda x: x[idx], tree)   # noqa: E731
        matrices = {"seeds": ids.tolist(), "unaligned": np.zeros((len(ids),) * 2),
                    "aligned": np.zeros((len(ids),) * 2)}
        if len(a):
            upper = gbl_jax.barrier(run.model, run.data, take(final, ids[a]), take(final, ids[b]),
                                    num=num, loss=run.loss, stacked=True)
            aligned = [gbl_jax.align(take(final, i), take(final, ids[k + 1:]),
                                     activation=config["activation"])
                       for k, i in enumerate(ids[:-1])]
            aligned = jax.tree.map(lambda *x: np.concatenate(x), *aligned)
            upper_aligned = gbl_jax.barrier(run.model, run.data, take(final, ids[a]), aligned,
                                            num=num, loss=run.loss, stacked=True)
            for name, values in (("unaligned", upper), ("aligned", upper_aligned)):
                matrices[name][a, b] = matrices[name][b, a] = values
        basins = gbl_jax.basins(run.model, run.data, final, tol=tol, loss=run.loss,
                                diverged=diverged)
        low, high = gbl_jax.wilson_interval(int(monotone.sum()), int(ok.sum()))
        cell_values = {k: v[i] for (k, v), i in zip(run.grid.items(), np.unravel_index(
            cell, tuple(len(v) for v in run.grid.values())))}
        report = {
            "cell": cell_values, "seeds": config["seeds"], "diverged": int(diverged.sum()),
            "interpolation": {"num": num, "monotone": int(monotone.sum()), "n": int(ok.sum()),
                              "monotone_share": monotone.sum() / max(ok.sum(), 1),
                              "interval_95": [low, high]},
            "barriers": {**matrices, "median": _median(matrices["unaligned"], a, b),
                         "median_aligned": _median(matrices["aligned"], a, b)},
            "basins": {"tol": tol, "count": basins.count, "share": basins.share,
                       "share_ci": basins.share_ci, "loss": basins.loss,
                       "leader": basins.leader},
            "compile_cache": cache,
        }
        title = _title(config, run.grid) + "".join(f", {k}={v:g}" for k, v in cell_values.items())
        folder.finish_landscape(report, curves, monotone, matrices, basins.labels, title)
    finally:
        folder.close()
    print(f"  cell                {cell_values or '(no grid)'}")
    print(f"  monotone paths      {int(monotone.sum())} of {int(ok.sum())} non-diverged seeds "
          f"({100 * report['interpolation']['monotone_share']:.1f}%)")
    if len(a):
        print(f"  median barrier      {report['barriers']['median']:.4g} unaligned, "
              f"{report['barriers']['median_aligned']:.4g} aligned ({len(a)} pairs of the first "
              f"{len(ids)} seeds)")
    print(basins.summary())
    print(f"  written to          {folder.path}")
    return 0


def _median(matrix, a, b):
    import numpy as np

    return float(np.median(matrix[a, b])) if len(a) else None


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

    gbl = gbl_jax
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
    res = gbl.train(gbl.mlp([8], gbl.heads.bernoulli()), optax.adam(0.05), data, key=key,
                    steps=500)
    for step in (0, 100, 200, 300, 400, 499):
        print(f"  step {step:>4}  nll {float(res.losses[step]):.5f}")
    print(f"  final nll {float(res.final_loss):.5f}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gbl-jax", description="Gradient-based learning (Deep Learning 6.2) "
                     "in JAX: init-sensitivity sweeps.")
    parser.add_argument("--version", action="version", version=f"gbl-jax {gbl_jax.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cache = _Parser(add_help=False)
    cache.add_argument("--compile-cache", metavar="DIR", help="folder of JAX's persistent "
                       "compilation cache; default ~/.cache/gbl_jax/xla")
    cache.add_argument("--no-compile-cache", action="store_true", help="compile afresh")
    d = SWEEP_DEFAULTS
    s = sub.add_parser("sweep", parents=[cache], allow_abbrev=False, help="train from many random inits; report "
                       "the loss spread", description="Train one model from many random "
                       "initializations at once and report how spread out the final losses are.")
    s.add_argument("--problem", help=f"a registered problem (gbl-jax problems); default {d['problem']}")
    s.add_argument("--hidden", help="hidden widths as a comma list, '' for none (the convex "
                   f"control); default {d['hidden']}")
    s.add_argument("--activation", choices=sorted(nets.ACTIVATIONS),
                   help="hidden nonlinearity; default tanh")
    s.add_argument("--init", choices=sorted(inits.INITS), help="init scheme; default "
                   "glorot_normal")
    s.add_argument("--head", choices=sorted(HEADS), help="output unit; default: the problem's own")
    s.add_argument("--components", type=int, help="mixture components for --head "
                   "mixture_density; default 3")
    s.add_argument("--loss", choices=sorted(LOSSES), help="nll (default) or squared error of "
                   "the head's mean (behind the same sigmoid/softmax)")
    s.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="default adam")
    s.add_argument("--lr", help="learning rate, or a comma list for a grid; default "
                   + ", ".join(f"{v[2]:g} {k}" for k, v in OPTIMIZERS.items()))
    s.add_argument("--init-scale", help="every weight matrix's init times this, or a comma list "
                   "for a grid; default 1")
    s.add_argument("--steps", type=int, help=f"optimizer steps per seed; default {d['steps']}")
    s.add_argument("--batch-size", type=int, help="minibatch size; default full batch")
    s.add_argument("--seeds", type=int, help=f"number of random inits; default {d['seeds']}")
    s.add_argument("--seed", type=int, help="base random seed (the data uses seed + 1); default 0")
    s.add_argument("--chunk-size", type=int, help="runs per compiled call; default: chosen from "
                   "the model size and device")
    s.add_argument("--n", type=int, help="data size; default: the problem's own")
    s.add_argument("--log-every", type=int, help="steps per point of the loss curves; default "
                   "steps/100")
    s.add_argument("--threshold", help="a seed succeeds when its final loss is below this; "
                   "default: 0.1 nats for classifiers, the loss of an R^2 = 0.9 fit for regression")
    s.add_argument("--grad-tol", help="run each seed until its gradient norm falls below this "
                   "(adds converged_step)")
    s.add_argument("--classify", action="store_true", default=None, help="classify each end "
                   "point (minimum, saddle, not converged) from its Hessian")
    s.add_argument("--keep-params", action="store_true", default=None, help="store every seed's "
                   "initial and final params in params.npz (for gbl-jax landscape)")
    s.add_argument("--out", help="output folder; default runs/<problem>-h<hidden>-<time>")
    s.add_argument("--resume", action="store_true", help="finish the interrupted sweep in --out")
    s.add_argument("--force", action="store_true", help="replace results gbl-jax wrote in --out")
    s.add_argument("--cpu-devices", type=int, default=None, help="on CPU, shard the runs over "
                   "this many XLA devices (default: one per core); per process")
    s.add_argument("--processes", type=int, help="run N local processes that join JAX's "
                   "multi-process runtime and share the chunks (needs --out)")
    s.add_argument("--coordinator", metavar="HOST:PORT", help="join a multi-process sweep "
                   "(with --num-processes and --process-id; every process the same command)")
    s.add_argument("--num-processes", type=int, help="processes in the multi-process sweep")
    s.add_argument("--process-id", type=int, help="this process's index, 0 writes the results")
    s.add_argument("--distributed", action="store_true", help="join a multi-process sweep whose "
                   "processes JAX finds itself (SLURM, Open MPI)")
    s.set_defaults(run=_sweep)
    land = sub.add_parser("landscape", parents=[cache], help="the loss landscape of a sweep "
                          "run with --keep-params", description="Loss along init -> final per "
                          "seed, barriers between seeds (unaligned and aligned) and basins.")
    land.add_argument("--out", required=True, help="the sweep's folder")
    land.add_argument("--pairs", type=int, default=16, help="barriers between the first K "
                      "non-diverged seeds (default 16)")
    land.add_argument("--tol", default=0.05, help="basins: largest max-abs difference of "
                      "predictions within a basin (default 0.05)")
    land.add_argument("--num", type=int, default=25, help="points on each path (default 25)")
    land.add_argument("--cell", type=int, default=0, help="on a grid, the cell (cell-major "
                      "index, default 0)")
    land.set_defaults(run=_landscape)
    p = sub.add_parser("problems", help="list the problems")
    p.set_defaults(run=_problems)
    t = sub.add_parser("tour", help="a one-minute tour of section 6.2 in numbers")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.set_defaults(run=_tour)
    return parser


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")   # the command writes files; the library never picks a backend
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = _parser().parse_args(argv)
        args.argv = argv
        return args.run(args)
    except (UsageError, ValueError, OSError) as err:
        print(f"gbl-jax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gbl-jax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
