"""Where the time of a MNIST-1D sweep goes: the step's parts, the epoch's order, one data stream.

Usage:
  python scripts/profile_mnist1d.py [--seeds 256] [--steps 40] [--rounds 3] [--out FILE]

The workload of scripts/bench_mnist1d.py (MLP 40-100-100-10 ReLU, Adam(1e-2), minibatches of
100, 256 seeds) on one device. Each part is one jitted ``vmap`` over the seeds of a ``lax.scan``
of ``--steps`` steps (milliseconds per step of all seeds), timed in interleaved rounds, best of
``--rounds``:

  step        the whole hand-written step: gather, forward, backward, Adam
  fwd+bwd     gather, forward and backward, a plain SGD update (no Adam)
  adam        Adam's update alone (its gradient is the params)
  gather      the minibatch gathers alone
  order-jax   one epoch's order for every seed: jax.random.permutation(key, 4000) vmapped
              (milliseconds per epoch, not per step)
  order-gbl   the same permutations by the engine's single-operand sorts (gbl_jax.engine.shuffle),
              checked equal to order-jax
  sweep       gbl.sweep over --seeds x 300 steps (seconds), every seed its own data order
  sweep-init  the same with vary=("init",): one data order for all (one key, one permutation
              per epoch and one gather for all, the first layer one matmul)
  sweep-1loop the sweep with every chunk one vmapped loop (chunking.CPU_GROUPS_ABOVE raised
              out of reach), against the default of one loop per core for large chunks
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gbl_jax as gbl
from gbl_jax.engine import chunking, shuffle

WIDTHS, BATCH, LR = [40, 100, 100, 10], 100, 1e-2


def init(key):
    keys = jax.random.split(key, len(WIDTHS) - 1)
    return [
        {"w": math.sqrt(2.0 / (i + o)) * jax.random.normal(k, (i, o)), "b": jnp.zeros(o)}
        for k, i, o in zip(keys, WIDTHS[:-1], WIDTHS[1:])
    ]


def loss(params, xb, yb):
    h = xb
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    logits = h @ params[-1]["w"] + params[-1]["b"]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))


def parts(x, y, opt):
    """{name: fn(params, opt_state, idx [seeds, steps, B], keys)} of the step's parts."""

    def scan(step, carry, idx):
        return jax.lax.scan(step, carry, idx)

    def full(p, s, idx, keys):
        def step(c, i):
            p, s = c
            value, g = jax.value_and_grad(loss)(p, x[i], y[i])
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), value

        return jax.vmap(lambda p, s, i: scan(step, (p, s), i))(p, s, idx)

    def fwd_bwd(p, s, idx, keys):
        def step(p, i):
            value, g = jax.value_and_grad(loss)(p, x[i], y[i])
            return jax.tree.map(lambda a, b: a - LR * b, p, g), value

        return jax.vmap(lambda p, i: scan(step, p, i))(p, idx)

    def adam(p, s, idx, keys):
        def step(c, i):
            p, s = c
            u, s = opt.update(p, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.vmap(lambda p, s, i: scan(step, (p, s), i))(p, s, idx)

    def gather(p, s, idx, keys):
        def step(c, i):
            return c + jnp.sum(x[i]) + jnp.sum(y[i]), None

        return jax.vmap(lambda i: scan(step, jnp.zeros(()), i)[0])(idx)

    def order_jax(p, s, idx, keys):
        return jax.vmap(lambda k: jax.random.permutation(k, x.shape[0]))(keys)

    def order_gbl(p, s, idx, keys):
        return jax.vmap(lambda k: shuffle.permutation(k, x.shape[0]))(keys)

    return {
        "step": full,
        "fwd+bwd": fwd_bwd,
        "adam": adam,
        "gather": gather,
        "order-jax": order_jax,
        "order-gbl": order_gbl,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--sweep-steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="profile_mnist1d.json")
    args = parser.parse_args()

    data = gbl.problems.mnist1d()
    x, y = jnp.asarray(data.x), jnp.asarray(data.y)
    opt = optax.adam(LR)
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    params = jax.vmap(init)(keys)
    opt_state = jax.vmap(opt.init)(params)
    idx = jax.vmap(
        lambda k: jax.random.permutation(k, x.shape[0])[: args.steps * BATCH].reshape(
            args.steps, BATCH
        )
    )(keys)
    inputs = (params, opt_state, idx, keys)
    fns = {name: jax.jit(fn).lower(*inputs).compile() for name, fn in parts(x, y, opt).items()}
    same = np.array_equal(
        np.asarray(fns["order-jax"](*inputs)), np.asarray(fns["order-gbl"](*inputs))
    )
    model = gbl.mlp(WIDTHS[1:-1], data.head, activation="relu")

    def sweep(vary, one_loop=False):
        def call():
            saved = chunking.CPU_GROUPS_ABOVE
            chunking.CPU_GROUPS_ABOVE = 2**62 if one_loop else saved
            try:
                return gbl.sweep(
                    model,
                    opt,
                    data,
                    key=jax.random.PRNGKey(0),
                    seeds=args.seeds,
                    steps=args.sweep_steps,
                    batch_size=BATCH,
                    log_every=args.sweep_steps,
                    vary=vary,
                    devices=jax.devices()[:1],
                ).final_loss
            finally:
                chunking.CPU_GROUPS_ABOVE = saved

        return call

    sweeps = {
        "sweep": sweep(("init", "data")),
        "sweep-init": sweep(("init",)),
        "sweep-1loop": sweep(("init", "data"), one_loop=True),
    }
    for fn in sweeps.values():
        jax.block_until_ready(fn())  # compiles

    times = {name: [] for name in [*fns, *sweeps]}
    for r in range(args.rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*inputs))
            per = 1 if name.startswith("order") else args.steps
            times[name].append((time.perf_counter() - start) / per * 1e3)
        for name, fn in sweeps.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
        print(f"round {r + 1}/{args.rounds} (load average {os.getloadavg()[0]:.1f})", flush=True)
    best = {name: min(ts) for name, ts in times.items()}
    epoch_steps = x.shape[0] // BATCH
    rows = {
        "seeds": args.seeds,
        "load_average_end": os.getloadavg(),
        "jax": jax.__version__,
        "device": jax.devices()[0].device_kind,
        "times": times,
        "best": best,
        "orders_identical": same,
        "order_jax_per_step_ms": best["order-jax"] / epoch_steps,
        "order_gbl_per_step_ms": best["order-gbl"] / epoch_steps,
        "order_speedup": best["order-jax"] / best["order-gbl"],
        "sweep_init_speedup": best["sweep"] / best["sweep-init"],
        "loop_per_core_speedup": best["sweep-1loop"] / best["sweep"],
    }
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    print(
        f"{args.seeds} seeds, best of {args.rounds} (step parts: ms per step of all seeds; "
        f"orders: ms per epoch of {epoch_steps} steps; sweeps: s for {args.sweep_steps} steps)"
    )
    for name, value in best.items():
        print(f"  {name:>10}: {value:9.2f}")
    print(
        f"epoch order: jax {rows['order_jax_per_step_ms']:.2f} ms a step against the engine's "
        f"{rows['order_gbl_per_step_ms']:.2f} ({rows['order_speedup']:.2f}x; identical: {same});"
        f" one data stream: {rows['sweep_init_speedup']:.2f}x the sweep's speed; one loop per "
        f"core: {rows['loop_per_core_speedup']:.2f}x one loop's speed"
    )


if __name__ == "__main__":
    main()
