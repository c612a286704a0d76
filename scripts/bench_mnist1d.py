"""Time gbl.sweep against a hand-written jit(vmap) and a PyTorch peer on MNIST-1D.

Usage:
  python scripts/bench_mnist1d.py [--only mlp cnn] [--seeds N] [--steps T [T ...]] [--rounds 3]
                                  [--cpu-devices N] [--skip-sharded] [--no-torch]
                                  [--out bench_mnist1d.json]

Data: gbl.problems.mnist1d() (x [4000, 40], y [4000]); Adam(1e-2), minibatches of 100, the
categorical NLL. Workloads (--seeds / --steps replace both counts; several --steps run in turn):
  mlp  256 seeds x 6000 steps of the MLP 40-100-100-10, ReLU
  cnn   16 seeds x 1000 steps of gbl.cnn1d([25, 25, 25], categorical(10)) (the MNIST-1D CNN)
Contenders, on one device unless named -all:
  hand       jax.jit(jax.vmap(train))(keys): per seed, k_init, k_data = split(key); the init
             (glorot normal, zero biases: the MLP's from its own dense layers, the CNN's from
             gbl.cnn1d's init); a nested lax.scan over epochs and the steps of an epoch, each
             epoch's permutation permutation(fold_in(k_data, epoch), 4000) drawn once and cut
             into minibatches (the last 4000 mod 100 examples unused); optax adam; the mean
             training loss and the full-data loss at the end. The CNN's forward is gbl.cnn1d's
             apply; the loss is optax's softmax cross entropy, the MLP all plain JAX.
  sweep      gbl.sweep(model, adam, data, key, seeds, steps, batch_size=100, log_every=steps,
             devices=jax.devices()[:1]): its default chunking, one logged window (the same
             evaluation work as hand's), its finiteness checks. Seeds get the same keys as
             hand's, so both start from the same params and see the same minibatches.
  sweep-all  the same sweep sharded over every device (--cpu-devices, default every core; left
             out with --skip-sharded or with one device)
  torch      PyTorch (when installed: pip install 'gbl_jax[torch]'; left out with --no-torch):
             the seeds stacked into batched weights [seeds, in, out] (torch.baddbmm; the CNN's
             convolutions as im2col by Tensor.unfold and one baddbmm, as gbl.cnn1d's), glorot-
             normal weights and zero biases, one torch.optim.Adam(foreach=True) over the
             stacked tensors, per-seed minibatches gathered from a per-seed permutation each
             epoch (torch.argsort of uniform draws), the summed per-seed mean cross-entropy
             (each seed's gradient is its own), every core's thread (torch.set_num_threads).
             Its own random init and data order: its final losses are comparable in mean only.
Compile time, measured apart from the timed calls: hand's is jit(...).lower(keys).compile();
sweep's is a first call minus a second call of the same program, both on as few seeds as give
the full run's chunk size (every seed when the chunk is capped by the seed count). The timed
calls compile no training program (counted with gbl.count_compiles) and run in interleaved rounds
(hand, sweep, sweep-all, hand, ...); best and median per contender, and the ratio hand time
over contender time (> 1: faster than hand) of medians and of bests, all from the same run.
Mean final losses are printed per contender: the same work gives the same losses up to float
rounding grown over the steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time

# torch's OpenMP threads spin-wait after each call by default and take cores from whichever
# contender runs next; set before torch is imported (make_torch imports it lazily).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gbl_jax as gbl

LR, BATCH = 1e-2, 100
WORKLOADS = {"mlp": (256, 6000), "cnn": (16, 1000)}
MLP_WIDTHS = [40, 100, 100, 10]
CNN_CHANNELS = [25, 25, 25]
WARMUP_SEEDS_PER_DEVICE = 16  # a sweep warm-up on this many seeds per device, when that is
#                                enough to give the full run's chunk size (checked)


# ---- the hand-written contender -----------------------------------------------------------------


def mlp_init(key, widths=MLP_WIDTHS):
    """Glorot-normal weights (std sqrt(2 / (in + out))), zero biases: one key per layer."""
    keys = jax.random.split(key, len(widths) - 1)
    return [
        {"w": math.sqrt(2.0 / (i + o)) * jax.random.normal(k, (i, o)), "b": jnp.zeros(o)}
        for k, i, o in zip(keys, widths[:-1], widths[1:])
    ]


def mlp_logits(params, x):
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return h @ params[-1]["w"] + params[-1]["b"]


def hand_train(init, logits, x, y, steps, opt):
    """train(key) -> (final full-data loss, mean training loss) of one seed."""
    n = x.shape[0]
    per_epoch = n // BATCH
    epochs, tail = divmod(steps, per_epoch)

    def loss(params, xb, yb):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits(params, xb), yb))

    def step(carry, idx):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params, x[idx], y[idx])
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    def epoch(k_data, carry, e, length):
        order = jax.random.permutation(jax.random.fold_in(k_data, e), n)
        carry, values = jax.lax.scan(step, carry, order[: length * BATCH].reshape(length, BATCH))
        return carry, jnp.sum(values)

    def train(key):
        k_init, k_data = jax.random.split(key)
        params = init(k_init)
        carry, total = (params, opt.init(params)), jnp.zeros(())
        if epochs:
            carry, sums = jax.lax.scan(
                lambda c, e: epoch(k_data, c, e, per_epoch), carry, jnp.arange(epochs)
            )
            total = jnp.sum(sums)
        if tail:
            carry, tail_sum = epoch(k_data, carry, epochs, tail)
            total = total + tail_sum
        return loss(carry[0], x, y), total / steps

    return train


# ---- the PyTorch peer ------------------------------------------------------------------------------


def make_torch(name, seeds, steps, data):
    """() -> per-seed final full-data losses [seeds] of PyTorch's batched-weights training, or
    None when torch is missing."""
    try:
        import torch
    except ImportError:
        print("torch is not installed (pip install 'gbl_jax[torch]'): no torch contender")
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    x = torch.tensor(np.asarray(data.x), dtype=torch.float32)
    y = torch.tensor(np.asarray(data.y), dtype=torch.long)
    n = x.shape[0]
    per_epoch = n // BATCH
    k, stride, pad = 5, 2, 1

    def glorot(fan_in, fan_out, *shape):
        return (torch.randn(seeds, *shape) * math.sqrt(2.0 / (fan_in + fan_out))).requires_grad_()

    def bias(o):
        return torch.zeros(seeds, 1, o, requires_grad=True)

    def build():
        """Fresh params, the same every call (torch.manual_seed(0))."""
        torch.manual_seed(0)
        if name == "mlp":
            return [(glorot(i, o, i, o), bias(o)) for i, o in zip(MLP_WIDTHS[:-1], MLP_WIDTHS[1:])]
        layers, c_in, length = [], 1, x.shape[1]
        for c_out in CNN_CHANNELS:
            layers.append((glorot(k * c_in, k * c_out, k * c_in, c_out), bias(c_out)))
            c_in, length = c_out, (length + 2 * pad - k) // stride + 1
        return layers + [(glorot(length * c_in, 10, length * c_in, 10), bias(10))]

    def logits(layers, xb):  # xb [seeds, B, 40] -> [seeds, B, 10]
        s_, b_ = xb.shape[:2]
        if name == "mlp":
            h = xb
            for w, b in layers[:-1]:
                h = torch.relu(torch.baddbmm(b, h, w))
            return torch.baddbmm(layers[-1][1], h, layers[-1][0])
        h = xb[..., None]  # [seeds, B, L, C]
        for w, b in layers[:-1]:
            h = torch.nn.functional.pad(h, (0, 0, pad, pad))
            win = h.unfold(2, k, stride)  # [seeds, B, L_out, C, k]
            l_out = win.shape[2]
            cols = win.reshape(s_, b_ * l_out, -1)
            h = torch.relu(torch.baddbmm(b, cols, w)).reshape(s_, b_, l_out, -1)
        return torch.baddbmm(layers[-1][1], h.reshape(s_, b_, -1), layers[-1][0])

    def per_seed_loss(layers, xb, yb):
        z = logits(layers, xb)
        return (
            torch.nn.functional.cross_entropy(z.reshape(-1, 10), yb.reshape(-1), reduction="none")
            .reshape(yb.shape)
            .mean(1)
        )

    def run():
        layers = build()
        params = [t for pair in layers for t in pair]
        opt = torch.optim.Adam(params, lr=LR, foreach=True)
        order = None
        for t in range(steps):
            if t % per_epoch == 0:
                order = torch.argsort(torch.rand(seeds, n), dim=1)
            idx = order[:, (t % per_epoch) * BATCH : (t % per_epoch + 1) * BATCH]
            opt.zero_grad(set_to_none=True)
            per_seed_loss(layers, x[idx], y[idx]).sum().backward()
            opt.step()
        with torch.no_grad():  # the full-data loss, 500 examples at a time
            parts = [
                per_seed_loss(
                    layers, x[i : i + 500].expand(seeds, -1, -1), y[i : i + 500].expand(seeds, -1)
                )
                * len(x[i : i + 500])
                for i in range(0, n, 500)
            ]
            return (sum(parts) / n).numpy()

    return run


# ---- contenders -----------------------------------------------------------------------------------


def timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - start, out


def make_contenders(name, seeds, steps, data, sharded, with_torch=True):
    """{contender: (compile s, call -> per-seed final losses [seeds])}."""
    x, y = jnp.asarray(data.x), jnp.asarray(data.y)
    key = jax.random.PRNGKey(0)
    opt = optax.adam(LR)  # one object: every sweep call after the first reuses its compilation
    if name == "mlp":
        model = gbl.mlp(MLP_WIDTHS[1:-1], data.head, activation="relu")
        train = hand_train(mlp_init, mlp_logits, x, y, steps, opt)
    else:
        model = gbl.cnn1d(CNN_CHANNELS, gbl.heads.categorical(10))
        train = hand_train(
            lambda k: model.init(k, x[:BATCH]),
            lambda p, xb: model.apply(p, xb).logits,
            x,
            y,
            steps,
            opt,
        )

    keys = jax.random.split(key, seeds)
    start = time.perf_counter()
    hand = jax.jit(jax.vmap(train)).lower(keys).compile()
    contenders = {"hand": (time.perf_counter() - start, lambda: hand(keys)[0])}

    def sweep_fn(devices, n_seeds=seeds):
        return lambda: gbl.sweep(
            model,
            opt,
            data,
            key=key,
            seeds=n_seeds,
            steps=steps,
            batch_size=BATCH,
            log_every=steps,
            devices=devices,
        )

    device_sets = {"sweep": jax.devices()[:1]}
    if sharded and len(jax.devices()) > 1:
        device_sets["sweep-all"] = jax.devices()
    for contender, devices in device_sets.items():
        warm = min(seeds, WARMUP_SEEDS_PER_DEVICE * len(devices))
        first, out = timed(sweep_fn(devices, warm))
        if out.chunk_size >= warm and warm < seeds:  # chunk capped by the warm-up's seed count
            warm = seeds
            first, out = timed(sweep_fn(devices, warm))
        second = timed(sweep_fn(devices, warm))[0]
        call = sweep_fn(devices)
        contenders[contender] = (first - second, lambda call=call: call().final_loss)
    torch_run = make_torch(name, seeds, steps, data) if with_torch else None
    if torch_run is not None:  # a 2-step warm-up first: its time stands in the compile column
        warm_up = timed(make_torch(name, seeds, 2, data))[0]
        contenders["torch"] = (warm_up, torch_run)
    return contenders


def bench_workload(name, seeds, steps, data, rounds, sharded, with_torch=True):
    contenders = make_contenders(name, seeds, steps, data, sharded, with_torch)
    times = {c: [] for c in contenders}
    finals, compiles = {}, {c: 0 for c in contenders}
    for r in range(rounds):
        for c, (_, fn) in contenders.items():
            with gbl.count_compiles() as count:
                t, finals[c] = timed(fn)
            times[c].append(t)
            compiles[c] += count.compiled if c == "hand" else count.training
            print(
                f"{name} round {r + 1}/{rounds} {c:>9}: {t:8.2f} s  (load average "
                f"{os.getloadavg()[0]:.1f})",
                flush=True,
            )
    med = {c: statistics.median(ts) for c, ts in times.items()}
    best = {c: min(ts) for c, ts in times.items()}
    rows = []
    for c in contenders:
        final = np.asarray(finals[c])
        rows.append(
            {
                "workload": name,
                "contender": c,
                "seeds": seeds,
                "steps": steps,
                "compile_s": contenders[c][0],
                "times_s": times[c],
                "best_s": best[c],
                "median_s": med[c],
                "seed_steps_per_s": seeds * steps / med[c],
                "ratio_median": med["hand"] / med[c],
                "ratio_best": best["hand"] / best[c],
                "paired_ratios": [h / t for h, t in zip(times["hand"], times[c])],
                "mean_final_loss": float(np.nanmean(final)),
                # torch draws its own init and data order: only its mean is comparable
                "max_abs_final_loss_difference_vs_hand": None
                if c == "torch"
                else float(np.nanmax(np.abs(final - np.asarray(finals["hand"])))),
                "non_finite": int((~np.isfinite(final)).sum()),
                "compiles_in_timed_calls": compiles[c],
            }
        )
    return rows


def markdown(rows) -> str:
    lines = [
        "| workload | contender | seeds | steps | compile s | best s | median s | "
        "seed-steps/s (median) | hand / this, medians | hand / this, bests | "
        "mean final loss |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['contender']} | {r['seeds']} | {r['steps']} | "
            f"{r['compile_s']:.1f} | {r['best_s']:.3f} | {r['median_s']:.3f} | "
            f"{r['seed_steps_per_s']:,.0f} | {r['ratio_median']:.2f} | "
            f"{r['ratio_best']:.2f} | {r['mean_final_loss']:.4f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--seeds", type=int, help="seeds of every chosen workload")
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        help="steps of every chosen workload (several: each in turn)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="CPU devices (jax_num_cpu_devices; default: every core)",
    )
    parser.add_argument(
        "--skip-sharded",
        action="store_true",
        help="leave out sweep-all (the sweep sharded over every device)",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch peer")
    parser.add_argument("--out", default="bench_mnist1d.json")
    args = parser.parse_args()
    gbl.use_cpu_cores(args.cpu_devices)  # before the first computation starts the CPU backend

    data = gbl.problems.mnist1d()
    device = jax.devices()[0]
    info = {
        "jax": jax.__version__,
        "optax": optax.__version__,
        "platform": device.platform,
        "device": device.device_kind,
        "devices": len(jax.devices()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_start": os.getloadavg(),
    }
    print(json.dumps(info), flush=True)
    start = time.perf_counter()
    rows = []
    for name, steps in [
        (name, steps) for name in args.only for steps in (args.steps or [WORKLOADS[name][1]])
    ]:
        workload_rows = bench_workload(
            name,
            args.seeds or WORKLOADS[name][0],
            steps,
            data,
            args.rounds,
            not args.skip_sharded,
            not args.no_torch,
        )
        rows += workload_rows
        for r in workload_rows:
            difference = r["max_abs_final_loss_difference_vs_hand"]
            same = (
                "its own init and data order"
                if difference is None
                else f"max |difference| from hand's {difference:.1e}"
            )
            print(
                f"{name} {r['contender']:>9}: best {r['best_s']:.2f} s, median "
                f"{r['median_s']:.2f} s, compile {r['compile_s']:.1f} s, hand / this "
                f"{r['ratio_median']:.3f} (medians), {r['ratio_best']:.3f} (bests); mean final "
                f"loss {r['mean_final_loss']:.5f} ({same}, {r['non_finite']} non-finite)"
                f"; compiles in timed calls {r['compiles_in_timed_calls']}",
                flush=True,
            )
    info.update(load_average_end=os.getloadavg(), wall_s=time.perf_counter() - start)
    with open(args.out, "w") as f:
        json.dump({"info": info, "rows": rows}, f, indent=1)
    print(f"wrote {args.out} ({info['wall_s']:.0f} s)")
    print(markdown(rows))


if __name__ == "__main__":
    main()
