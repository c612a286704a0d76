"""Benchmark gbl.sweep against plain JAX strategies, a PyTorch peer and a C reference.

Usage:
  python scripts/bench.py [--rounds 5] [--out bench.json] [--large] [--skip-memory]
                          [--cpu-devices N] [--only NAME ...] [--seeds N ...]
  GPU check (the issue's 4,096 and 65,536 seeds; run from the repository root):
  PYTHONPATH=. python scripts/bench.py --only wide deep small --seeds 4096 65536 --rounds 3 \
      --skip-memory --out gpu.json
  Tiny nets against the C reference (issue 21), sharded over both cores of a 2-core machine:
  PYTHONPATH=. python scripts/bench.py --only xor spirals --rounds 2 --skip-memory \
      --cpu-devices 2 --out tiny.json

Workloads: tanh MLPs with a sigmoid output, full-batch Adam, mean Bernoulli NLL; each names its
data, seeds, steps and learning rate (WORKLOADS):
  wide   64 seeds of 2-128-1     deep  128 seeds of 2-32-32-1     small 128 seeds of 2-8-1
         (two_spirals, 256 points, Adam(1e-2), 300 steps)
  large  4096 seeds of 2-32-32-1, as above (GPU-sized: run by default on an accelerator, with
         --large on CPU)
  xor      16384 seeds of 2-2-1 on XOR's 4 points, Adam(0.05), 2000 steps    (tiny nets: no
  spirals  1024 seeds of 2-8-1 on two_spirals (256), Adam(1e-2), 300 steps    loop, plus c-ref)
--seeds N ... runs each chosen workload at each seed count instead (named e.g. deep-4096).
Contenders, each timed after one warm-up call that compiles it, in interleaved rounds (best kept):
  loop   a jitted single-seed run written with plain JAX + optax, called once per seed (left
         out above LOOP_MAX_SEEDS seeds: tens of thousands of calls measure the host; and for
         the tiny nets)
  vmap   the same run under one jit(vmap(...)) over all seeds
  sweep  gbl.sweep with its default execution, on one device
  sweep-all  gbl.sweep sharded over every device (with --cpu-devices N on CPU, which sets
         jax_num_cpu_devices = N so XLA runs one stream per core; torch uses every core by
         default)
  torch  per-seed weights stacked into batched matmuls (torch.baddbmm), torch.optim.Adam; only
         when torch is installed
  c-ref  tiny nets only: scripts/tiny_mlp_ref.c, single-threaded C (hand-written gradient,
         optax.adam's update, float32, own glorot-normal init draws), compiled into a temporary
         directory with `cc -O3 -march=native -fno-math-errno -fno-trapping-math -fopenmp-simd
         -DHID=H` (C_FLAGS). Seeds innermost: blocks of 64 seeds stored [param][seed], each block
         trained for all steps in L1, the loops over a block's seeds vectorized by GCC (AVX-512
         here) with tanh and exp written as vectorizable Cephes polynomials. -fno-math-errno and
         -fno-trapping-math are what GCC needs to vectorize (sqrtf; the masked ops of a
         branch-free tanh): 10x faster than without, same float results; no -ffast-math (no
         reassociation). Its time is the loop wall it prints (clock_gettime: init + training +
         final loss, data loading and process start excluded); skipped with a message when no
         C compiler is found or compiling fails.
Reported: run time (best round; timed calls run alone), seed-steps/s, compile time (first call
minus best; c-ref: the cc call), peak RSS growth during one further call (sampled by a thread;
c-ref: the peak RSS of its process), achieved GFLOP/s and its share of this machine's measured
float32 matmul peak (FLOPs: 6 * N * sum(fan_in * fan_out) per seed-step, matmuls only), the
warm-up call's mean final loss and fraction of seeds with final loss > 0.1. Tiny nets also:
time / vmap (against the hand-written jit(vmap)) and fraction of C (c-ref's time / this one's:
1 = as fast as the C reference). Also: sweep's compile time (ahead-of-time lowering) at 10x the
steps and 8x the seeds, and peak memory of a 100,000-seed XOR sweep (subprocess).
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import NamedTuple

# torch's OpenMP threads spin-wait after each call by default and take cores from whichever
# contender runs next (2-128-1: sweep 1.05-1.13x the plain loop with them spinning, 1.05x not);
# set before torch is imported (make_torch imports it lazily).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gbl_jax as gbl
from gbl_jax.engine import sweeps

STEPS, LR, N = 300, 1e-2, 256
LOOP_MAX_SEEDS = 1024
FAIL_LOSS = 0.1  # a seed "fails" when its final loss is above this (XOR: ~half do)


class Workload(NamedTuple):
    hidden: list
    seeds: int
    problem: str = "two_spirals"  # "two_spirals" (N points) or "xor"
    steps: int = STEPS
    lr: float = LR
    tiny: bool = False  # one hidden layer: no loop contender, a C reference instead


WORKLOADS = {
    "wide": Workload([128], 64),
    "deep": Workload([32, 32], 128),
    "small": Workload([8], 128),
    "xor": Workload([2], 16384, "xor", 2000, 0.05, tiny=True),
    "spirals": Workload([8], 1024, tiny=True),
    "large": Workload([32, 32], 4096),
}
C_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_mlp_ref.c")
C_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"]


def problem_data(problem):
    if problem == "xor":
        return gbl.problems.xor()
    return gbl.problems.two_spirals(jax.random.PRNGKey(0), N)


# ---- contenders -------------------------------------------------------------------------------


def plain_run(widths, steps, lr):
    """Single-seed training in plain JAX + optax, independent of gbl_jax."""
    opt = optax.adam(lr)

    def init(key):
        keys = jax.random.split(key, len(widths) - 1)
        return [
            (jax.random.normal(k, (i, o)) * math.sqrt(2 / (i + o)), jnp.zeros(o))
            for k, i, o in zip(keys, widths[:-1], widths[1:])
        ]

    def loss(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = jnp.tanh(h @ w + b)
        w, b = params[-1]
        return jnp.mean(optax.sigmoid_binary_cross_entropy((h @ w + b)[:, 0], y))

    def run(key, x, y):
        params = init(key)

        def step(carry, _):
            p, s = carry
            value, g = jax.value_and_grad(loss)(p, x, y)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), value

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return loss(params, x, y), losses

    return run


def make_contenders(hidden, seeds, data, steps=STEPS, lr=LR, tiny=False):
    widths = [2, *hidden, 1]
    run = plain_run(widths, steps, lr)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    x, y = data
    single = jax.jit(run)
    batched = jax.jit(jax.vmap(run, in_axes=(0, None, None)))
    model = gbl.mlp(hidden, data.head, activation="tanh")
    adam = optax.adam(lr)
    key_list = list(keys)  # sliced once: indexing a key array per call would dispatch ops
    one_device = jax.devices()[:1]
    contenders = {
        "loop": lambda: [single(k, x, y)[0] for k in key_list],
        "vmap": lambda: batched(keys, x, y)[0],
        "sweep": lambda: (
            gbl.sweep(
                model,
                adam,
                data,
                key=jax.random.PRNGKey(0),
                seeds=seeds,
                steps=steps,
                devices=one_device,
            ).final_loss
        ),
    }
    if len(jax.devices()) > 1:
        contenders["sweep-all"] = lambda: (
            gbl.sweep(
                model, adam, data, key=jax.random.PRNGKey(0), seeds=seeds, steps=steps
            ).final_loss
        )
    if seeds > LOOP_MAX_SEEDS or tiny:
        del contenders["loop"]
    torch_fn = make_torch(widths, seeds, data, steps, lr)
    if torch_fn is not None:
        contenders["torch"] = torch_fn
    if tiny:
        c_ref = CReference.build(hidden, seeds, data, steps, lr)
        if c_ref is not None:
            contenders["c-ref"] = c_ref
    return contenders


def make_torch(widths, seeds, data, steps, lr=LR):
    try:
        import torch
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the GPU whenever there is one
    x = torch.tensor(np.asarray(data.x), device=device).expand(seeds, -1, -1)
    y = torch.tensor(np.asarray(data.y), device=device).expand(seeds, -1)

    def run():
        torch.manual_seed(0)
        params = []
        for i, o in zip(widths[:-1], widths[1:]):
            w = (torch.randn(seeds, i, o, device=device) * math.sqrt(2 / (i + o))).requires_grad_()
            params.append((w, torch.zeros(seeds, 1, o, device=device, requires_grad=True)))
        opt = torch.optim.Adam([t for pair in params for t in pair], lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            h = x
            for w, b in params[:-1]:
                h = torch.tanh(torch.baddbmm(b, h, w))
            z = torch.baddbmm(params[-1][1], h, params[-1][0])[..., 0]
            per_seed = torch.nn.functional.binary_cross_entropy_with_logits(
                z, y, reduction="none"
            ).mean(1)
            per_seed.sum().backward()  # seeds are independent: the sum's gradient is per seed
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return per_seed.detach().cpu().numpy()

    return run


_C_BUILDS: dict = {}  # hidden width -> (executable or None, cc seconds)


def build_c_ref(hid):
    """Compile tiny_mlp_ref.c for hidden width ``hid`` into a temporary directory (once per
    width): (path, compile seconds), or (None, 0.0) with a printed message when there is no C
    compiler or it fails."""
    if hid in _C_BUILDS:
        return _C_BUILDS[hid]
    cc = shutil.which("cc") or shutil.which("gcc")
    result = (None, 0.0)
    if cc is None:
        print("no C compiler (cc or gcc) found: skipping the c-ref contender")
    else:
        workdir = tempfile.mkdtemp(prefix="tiny_mlp_ref_")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        exe = os.path.join(workdir, f"tiny_mlp_ref_h{hid}")
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [cc, *C_FLAGS, f"-DHID={hid}", C_SOURCE, "-o", exe, "-lm"],
                capture_output=True,
                text=True,
                timeout=300,
            )
            ok, why = proc.returncode == 0, proc.stderr.strip()[-1000:]
        except (OSError, subprocess.SubprocessError) as e:
            ok, why = False, str(e)
        if ok:
            result = (exe, time.perf_counter() - start)
        else:
            print(
                f"compiling {os.path.basename(C_SOURCE)} failed: skipping the c-ref "
                f"contender\n{why}"
            )
    _C_BUILDS[hid] = result
    return result


def write_c_data(path, x, y):
    """The C reference's data file: N, then N lines "x0 x1 y" (repr of each float32 value, which
    strtof reads back exactly)."""
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    with open(path, "w") as f:
        f.write(f"{len(y)}\n")
        f.writelines(f"{float(a)!r} {float(b)!r} {float(c)!r}\n" for (a, b), c in zip(x, y))


def run_c_ref(exe, data_path, steps, seeds, lr, init_path=None):
    """One run of the compiled reference: its JSON line (loop_s, mean_final_loss,
    fail_fraction, first_final_loss, peak_rss_kb: its VmHWM, ...) plus peak_rss_bytes."""
    args = [exe, data_path, str(steps), str(seeds), repr(float(lr))]
    if init_path is not None:
        args.append(init_path)
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-1000:]}")
    result = json.loads(proc.stdout)
    result["peak_rss_bytes"] = result.get("peak_rss_kb", 0) * 1024
    return result


class CReference:
    """The c-ref contender: calling it runs the C program once and returns its JSON line; its
    time is the loop wall it prints (``self_timed``), not the process's."""

    self_timed = True

    def __init__(self, exe, data_path, steps, seeds, lr, compile_s):
        self.exe, self.data_path, self.steps, self.seeds, self.lr = exe, data_path, steps, seeds, lr
        self.compile_s = compile_s

    @classmethod
    def build(cls, hidden, seeds, data, steps, lr):
        if len(hidden) != 1:
            raise ValueError(f"the C reference has one hidden layer, got {hidden}")
        exe, compile_s = build_c_ref(hidden[0])
        if exe is None:
            return None
        data_path = os.path.join(os.path.dirname(exe), f"data_{data.name}_{len(data.y)}.txt")
        write_c_data(data_path, data.x, data.y)
        return cls(exe, data_path, steps, seeds, lr, compile_s)

    def __call__(self):
        return run_c_ref(self.exe, self.data_path, self.steps, self.seeds, self.lr)


# ---- measurement ------------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(fn) -> float:
    """Wall time of one call (nothing else running in the process)."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def peak_rss_growth(fn) -> int:
    """Peak RSS growth during one call, sampled every 2 ms by a thread. Measured in a call of
    its own: the sampler takes the GIL every 2 ms, which delays a contender that does host work
    between device calls (sweep's chunk loop) more than one that only waits."""
    base, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss() - base)
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    jax.block_until_ready(fn())
    done.set()
    thread.join()
    return max(peak[0], _rss() - base)


def matmul_peak_gflops(n=1024, repeats=20):
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    f = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(f(a, a))
    best = min(timed(lambda: f(a, a)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def flops_per_seed_step(widths, n=N):
    return 6 * n * sum(i * o for i, o in zip(widths[:-1], widths[1:]))


def first_call(fn):
    """The warm-up call: (wall seconds, final losses as a flat numpy array or the C reference's
    JSON line)."""
    start = time.perf_counter()
    out = fn() if getattr(fn, "self_timed", False) else jax.block_until_ready(fn())
    wall = time.perf_counter() - start
    if getattr(fn, "self_timed", False):
        return out["loop_s"], out
    return wall, np.asarray(out, np.float64).ravel()


def run_time(fn) -> float:
    """A timed call: the wall time, or the loop time a self-timed contender (c-ref) reports."""
    return fn()["loop_s"] if getattr(fn, "self_timed", False) else timed(fn)


def bench_workload(name, work: Workload, data, rounds, peak):
    hidden, seeds, steps = work.hidden, work.seeds, work.steps
    contenders = make_contenders(hidden, seeds, data, steps, work.lr, work.tiny)
    first, outcome = {}, {}
    for k, fn in contenders.items():
        first[k], out = first_call(fn)
        if isinstance(out, dict):
            outcome[k] = (out["mean_final_loss"], out["fail_fraction"])
        else:
            outcome[k] = (float(np.mean(out)), float(np.mean(out > FAIL_LOSS)))
    best = {k: math.inf for k in contenders}
    for _ in range(rounds):
        for k, fn in contenders.items():
            best[k] = min(best[k], run_time(fn))
    best = {
        k: (
            t,
            contenders[k]().get("peak_rss_bytes", 0)
            if k == "c-ref"
            else peak_rss_growth(contenders[k]),
        )
        for k, t in best.items()
    }
    flops = flops_per_seed_step([2, *hidden, 1], len(data.y)) * seeds * steps
    rows = []
    for k, (t, mem) in best.items():
        if k == "c-ref":
            compile_s = contenders[k].compile_s
        else:
            compile_s = max(first[k] - t, 0.0) if k != "torch" else 0.0
        row = {
            "workload": name,
            "problem": work.problem,
            "hidden": hidden,
            "seeds": seeds,
            "steps": steps,
            "lr": work.lr,
            "contender": k,
            "run_s": t,
            "first_call_s": first[k],
            "compile_s": compile_s,
            "seed_steps_per_s": seeds * steps / t,
            "peak_rss_mb": mem / 2**20,
            "gflops": flops / t / 1e9,
            "peak_fraction": flops / t / 1e9 / peak,
            "mean_final_loss": outcome[k][0],
            "fail_fraction": outcome[k][1],
        }
        if work.tiny:
            row["time_over_vmap"] = t / best["vmap"][0]
            row["fraction_of_c"] = best["c-ref"][0] / t if "c-ref" in best else None
        rows.append(row)
    plain_best = min(best[k][0] for k in ("loop", "vmap") if k in best)
    ratios = {
        k: best[k][0] / plain_best for k in best if k.startswith("sweep") or k in ("torch", "c-ref")
    }
    return rows, ratios


def compile_flatness(data):
    """sweep's compile time (AOT lower + compile of one chunk) at 300 steps and 128 seeds, at
    10x the steps and at 8x the seeds (deep workload, one device)."""
    out = []
    for steps, seeds in ((300, 128), (3000, 128), (300, 1024)):
        adam = optax.adam(LR)  # a fresh optimizer object: nothing cached
        model = gbl.mlp([32, 32], data.head)
        plan = sweeps.plan_sweep(
            model,
            adam,
            data,
            key=jax.random.PRNGKey(0),
            seeds=seeds,
            steps=steps,
            devices=jax.devices()[:1],
        )
        out.append(
            {
                "steps": steps,
                "seeds": seeds,
                "chunk_size": plan.chunk_size,
                "compile_s": plan.compile(),
            }
        )
    return out


def grid_vs_loop(rounds=3, seeds=256, steps=2000, lrs=(0.01, 0.02, 0.05, 0.1, 0.2)):
    """5 learning rates x 256 seeds of 2-2-1 on XOR: one ``sweep(grid=...)`` against a Python
    loop of 5 sweeps, compile included (fresh model and optimizer objects every round)."""
    data = gbl.problems.xor()
    key = jax.random.PRNGKey(0)

    def grid():
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.05)
        out = gbl.sweep(
            gbl.mlp([2], data.head),
            opt,
            data,
            key=key,
            seeds=seeds,
            steps=steps,
            grid={"learning_rate": list(lrs)},
            devices=jax.devices()[:1],
        )
        return out.final_loss

    def loop():
        return [
            gbl.sweep(
                gbl.mlp([2], data.head),
                optax.adam(lr),
                data,
                key=key,
                seeds=seeds,
                steps=steps,
                devices=jax.devices()[:1],
            ).final_loss
            for lr in lrs
        ]

    times = {"grid": [], "loop": []}
    for _ in range(rounds):
        for name, fn in (("grid", grid), ("loop", loop)):
            with gbl.count_compiles() as count:
                times[name].append(timed(fn))
            times[f"{name}_compiles"] = count.training
    looped, gridded = np.stack(loop()), grid()
    return {
        "cells": len(lrs),
        "seeds": seeds,
        "steps": steps,
        "grid_s": min(times["grid"]),
        "loop_s": min(times["loop"]),
        "grid_compiles": times["grid_compiles"],
        "loop_compiles": times["loop_compiles"],
        "max_difference": float(np.max(np.abs(looped - gridded))),
        "same_success": bool(np.array_equal(looped < 0.1, gridded < 0.1)),
        "speedup": min(times["loop"]) / min(times["grid"]),
    }


def compaction(rounds=2, seeds=256, steps=20000, grad_tol=1e-4, k=6, n=8, lr=0.1):
    """Run to convergence (Safran & Shamir, teacher k = 6, student n = 8, GD on the population
    loss): repacking the active runs between segments against freezing them in place."""
    model, data, loss = gbl.population.relu_student(n, k)
    sgd = optax.sgd(lr)
    kw = dict(
        key=jax.random.PRNGKey(0),
        seeds=seeds,
        steps=steps,
        grad_tol=grad_tol,
        loss=loss,
        devices=jax.devices()[:1],
    )
    run = {c: (lambda c=c: gbl.sweep(model, sgd, data, compact=c, **kw)) for c in (True, False)}
    first = {c: timed(lambda c=c: run[c]().final_loss) for c in run}
    best = {c: min(timed(lambda c=c: run[c]().final_loss) for _ in range(rounds)) for c in run}
    a, b = run[True](), run[False]()
    conv = a.converged_step
    return {
        "seeds": seeds,
        "budget": steps,
        "grad_tol": grad_tol,
        "k": k,
        "n": n,
        "compact_s": best[True],
        "frozen_s": best[False],
        "compact_first_s": first[True],
        "frozen_first_s": first[False],
        "speedup": best[False] / best[True],
        "converged": int((conv >= 0).sum()),
        "median_converged_step": float(np.median(conv[conv >= 0])) if (conv >= 0).any() else None,
        "max_converged_step": int(conv.max()),
        "equal_steps": bool(np.array_equal(conv, b.converged_step)),
        "max_loss_difference": float(np.nanmax(np.abs(a.final_loss - b.final_loss))),
    }


MEMORY_SCRIPT = """
import resource, time, jax, optax, gbl_jax as gbl
data = gbl.problems.xor()
start = time.perf_counter()
out = gbl.sweep(gbl.mlp([16], data.head), optax.adam(0.05), data, key=jax.random.PRNGKey(0),
                seeds=100_000, steps=2000)
s = gbl.spread(out)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - start,
      out.chunk_size, s.success_rate(0.01))
"""


def hundred_thousand_seeds():
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True
    )
    peak_mb, wall, chunk, success = proc.stdout.split()
    return {
        "seeds": 100_000,
        "network": "2-16-1",
        "problem": "xor",
        "steps": 2000,
        "peak_rss_mb": float(peak_mb),
        "wall_s": float(wall),
        "chunk_size": int(chunk),
        "success_rate_below_0.01": float(success),
    }


def markdown(result) -> str:
    """The benchmark's tables in markdown, for BENCHMARKS.md."""
    tiny = [r for r in result["rows"] if "time_over_vmap" in r]
    lines = (
        []
        if tiny and len(tiny) == len(result["rows"])
        else [
            "| workload | contender | run s | compile s | seed-steps/s | GFLOP/s | % of matmul peak "
            "| peak RSS growth MB | time / best plain |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    )
    for r in result["rows"]:
        if "time_over_vmap" in r:
            continue
        plain = min(
            x["run_s"]
            for x in result["rows"]
            if x["workload"] == r["workload"] and x["contender"] in ("loop", "vmap")
        )
        lines.append(
            f"| {r['workload']} ({r['seeds']} x 2-{'-'.join(map(str, r['hidden']))}-1) "
            f"| {r['contender']} | {r['run_s']:.3f} | {r['compile_s']:.2f} "
            f"| {r['seed_steps_per_s']:,.0f} | {r['gflops']:.1f} "
            f"| {100 * r['peak_fraction']:.1f} | {r['peak_rss_mb']:.1f} "
            f"| {r['run_s'] / plain:.2f} |"
        )
    if tiny:
        lines += [""] * bool(lines) + [
            "| tiny net | contender | run s | compile s | seed-steps/s "
            "| x hand vmap (vmap s / run s) | fraction of C (c-ref s / run s) | mean final loss "
            "| final loss > 0.1 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in tiny:
            frac = "" if r["fraction_of_c"] is None else f"{r['fraction_of_c']:.3f}"
            lines.append(
                f"| {r['workload']} ({r['seeds']} x 2-{'-'.join(map(str, r['hidden']))}-1,"
                f" {r['problem']}, {r['steps']} steps, Adam({r['lr']:g})) "
                f"| {r['contender']} | {r['run_s']:.3f} | {r['compile_s']:.2f} "
                f"| {r['seed_steps_per_s']:,.0f} | {1 / r['time_over_vmap']:.2f} "
                f"| {frac} | {r['mean_final_loss']:.4f} | {r['fail_fraction']:.3f} |"
            )
    lines += ["", "| steps | seeds | chunk | sweep compile s |", "|---|---|---|---|"]
    lines += [
        f"| {r['steps']} | {r['seeds']} | {r['chunk_size']} | {r['compile_s']:.2f} |"
        for r in result["compile_flatness"]
    ]
    grid = result.get("grid")
    if grid:
        lines += [
            "",
            "| grid workload | one sweep(grid=...) s | loop of sweeps s | speedup | "
            "compiles (grid / loop) | max abs difference | same successes |",
            "|---|---|---|---|---|---|---|",
            f"| {grid['cells']} lr x {grid['seeds']} seeds, XOR 2-2-1, {grid['steps']} steps "
            f"| {grid['grid_s']:.2f} | {grid['loop_s']:.2f} | {grid['speedup']:.1f}x | "
            f"{grid['grid_compiles']} / {grid['loop_compiles']} | "
            f"{grid['max_difference']:.1e} | {grid['same_success']} |",
        ]
    comp = result.get("compaction")
    if comp:
        lines += [
            "",
            "| run to convergence | compacted s | frozen in place s | speedup | "
            "converged | median / max converged step | same steps |",
            "|---|---|---|---|---|---|---|",
            f"| Safran-Shamir k={comp['k']}, n={comp['n']}, {comp['seeds']} seeds, budget "
            f"{comp['budget']}, grad_tol {comp['grad_tol']:g} | {comp['compact_s']:.2f} | "
            f"{comp['frozen_s']:.2f} | {comp['speedup']:.1f}x | {comp['converged']} | "
            f"{comp['median_converged_step']} / {comp['max_converged_step']} | "
            f"{comp['equal_steps']} |",
        ]
    memory = result.get("hundred_thousand_seeds")
    if memory:
        lines += [
            "",
            f"100,000 seeds of 2-16-1 on XOR, 2000 steps: peak RSS "
            f"{memory['peak_rss_mb']:.0f} MB, {memory['wall_s']:.0f} s, chunk "
            f"{memory['chunk_size']}.",
        ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="bench.json")
    parser.add_argument("--large", action="store_true", help="run the GPU-sized workload on CPU")
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="expose N CPU devices (jax_num_cpu_devices) so sweep can shard across cores",
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS) + ["grid", "compaction"])
    parser.add_argument(
        "--seeds",
        nargs="*",
        type=int,
        metavar="N",
        help="run each chosen workload at these seed counts instead",
    )
    parser.add_argument(
        "--markdown", metavar="JSON", help="print the tables of a saved run and exit"
    )
    args = parser.parse_args()
    if args.cpu_devices:  # before the first computation starts the CPU backend
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return

    device = jax.devices()[0]
    data = problem_data("two_spirals")
    peak = matmul_peak_gflops()
    info = {
        "jax": jax.__version__,
        "platform": device.platform,
        "device": device.device_kind,
        "devices": len(jax.devices()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "matmul_peak_gflops": peak,
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        print("torch is not installed: skipping the PyTorch peer (pip install torch)")
    print(json.dumps(info))

    rows, ratios, extra = [], {}, {}
    with_large = args.large or device.platform != "cpu"
    names = args.only or [n for n in WORKLOADS if with_large or n != "large"] + [
        "grid",
        "compaction",
    ]
    for name, fn in (("grid", grid_vs_loop), ("compaction", compaction)):
        if name in names:
            names.remove(name)
            extra[name] = fn()
            print(name, json.dumps(extra[name]), flush=True)
    runs = [(name, WORKLOADS[name]) for name in names]
    if args.seeds:
        runs = [(f"{name}-{s}", work._replace(seeds=s)) for name, work in runs for s in args.seeds]
    for name, work in runs:
        rounds = 1 if name == "large" and device.platform == "cpu" else args.rounds
        work_data = data if work.problem == "two_spirals" else problem_data(work.problem)
        workload_rows, ratios[name] = bench_workload(name, work, work_data, rounds, peak)
        rows += workload_rows
        for r in workload_rows:
            print(
                f"{name:>6} {r['contender']:>6}  run {r['run_s']:7.3f} s  compile {r['compile_s']:5.2f} s  "
                f"{r['seed_steps_per_s']:11.0f} seed-steps/s  {r['gflops']:6.2f} GFLOP/s "
                f"({100 * r['peak_fraction']:4.1f}% of peak)  +{r['peak_rss_mb']:7.1f} MB  "
                f"final loss {r['mean_final_loss']:.4f} ({r['fail_fraction']:.3f} > {FAIL_LOSS})"
                + (f"  time / vmap {r['time_over_vmap']:.3f}" if "time_over_vmap" in r else "")
                + (f"  fraction of C {r['fraction_of_c']:.3f}" if r.get("fraction_of_c") else ""),
                flush=True,
            )
        print(
            f"{name:>6} time / best plain: "
            + ", ".join(f"{k} {v:.3f}" for k, v in ratios[name].items()),
            flush=True,
        )

    flat = compile_flatness(data) if rows else []
    for r in flat:
        print(
            f"compile flatness: steps {r['steps']:5d} seeds {r['seeds']:5d} (chunk {r['chunk_size']}): "
            f"compile {r['compile_s']:.2f} s"
        )
    memory = None if args.skip_memory else hundred_thousand_seeds()
    if memory:
        print(
            f"100,000 seeds of 2-16-1 on XOR, 2000 steps: peak RSS {memory['peak_rss_mb']:.0f} MB, "
            f"{memory['wall_s']:.1f} s, chunk {memory['chunk_size']}"
        )
    with open(args.out, "w") as f:
        json.dump(
            {
                "info": info,
                "rows": rows,
                "time_over_best_plain": ratios,
                "compile_flatness": flat,
                "hundred_thousand_seeds": memory,
                **extra,
            },
            f,
            indent=1,
        )
    print(f"wrote {args.out}")
    print(
        markdown(
            {"rows": rows, "compile_flatness": flat, "hundred_thousand_seeds": memory, **extra}
        )
    )


if __name__ == "__main__":
    main()
