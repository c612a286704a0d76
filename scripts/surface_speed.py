"""How fast gbl.surface draws MNIST-1D's loss surfaces: one call against a point-at-a-time loop.

The MLP 40-100-100-10 (ReLU), Adam(1e-2), minibatches of 100, --seeds seeds kept with their
params; then the --points x --points surface of every seed along filter-normalized directions
(Li et al. 2018) over the 4000 training examples (loss and accuracy) in one gbl.surface call,
against the reference implementation's strategy in plain JAX: one jitted call per grid point
(loss and accuracy of params + a d1 + b d2), timed on --loop-sample points after a warm-up call
and extrapolated to every point of every seed (said so in the table). The achieved FLOP/s divide
XLA's cost analysis of one forward pass (times the points) by the time; a plain float32 matmul
of --matmul x --matmul, timed alike, gives this machine's reference.
Usage: python scripts/surface_speed.py [--seeds 64] [--points 41] [--steps 500]
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from common import Timer, markdown_table, parser, save

import gbl_jax as gbl


def _forward_flops(model, params, x) -> float:
    """XLA's FLOP count of one forward pass of ``model`` on ``x``."""
    cost = jax.jit(lambda p: model.apply(p, x)).lower(params).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])


def _matmul_flops_per_s(n: int, repeats: int = 5) -> float:
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = np.inf
    for _ in range(repeats):
        begin = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - begin)
    return 2 * n**3 / best


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=64)
    p.add_argument("--points", type=int, default=41)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--loop-sample", type=int, default=200, help="grid points the loop times")
    p.add_argument("--matmul", type=int, default=2048, help="side of the reference matmul")
    args = p.parse_args()
    full = gbl.problems.mnist1d()
    data = gbl.problems.Data(full.x, full.y, full.head, "mnist1d")  # training examples only
    model = gbl.mlp([100, 100], data.head, activation="relu")
    with Timer() as timer:
        begin = time.perf_counter()
        out = gbl.sweep(
            model,
            optax.adam(1e-2),
            data,
            key=jax.random.PRNGKey(args.seed),
            seeds=args.seeds,
            steps=args.steps,
            batch_size=100,
            log_every=args.steps,
            keep_params=True,
        )
        train_s = time.perf_counter() - begin
        begin = time.perf_counter()
        s = gbl.surface(model, data, out, dims=2, points=args.points)
        surface_s = time.perf_counter() - begin

        # The reference strategy: one jitted evaluation per grid point, in a Python loop.
        @jax.jit
        def one_point(p, d1, d2, a, b, x, y):
            moved = jax.tree.map(lambda w, u, v: w + a * u + b * v, p, d1, d2)
            dist = model.apply(moved, x)
            return gbl.nll(dist, y), gbl.accuracy(dist, y)

        p0 = jax.tree.map(lambda a: a[0], out.params)
        rng = np.random.default_rng(args.seed)
        d1, d2 = (
            jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), a.dtype), p0)
            for _ in range(2)
        )
        x, y = jnp.asarray(data.x), jnp.asarray(data.y)
        jax.block_until_ready(one_point(p0, d1, d2, 0.0, 0.0, x, y))  # compile and warm up
        grid = s.coords
        picks = rng.integers(0, len(grid), size=(args.loop_sample, 2))
        begin = time.perf_counter()
        for i, j in picks:
            jax.block_until_ready(one_point(p0, d1, d2, float(grid[i]), float(grid[j]), x, y))
        loop_point_s = (time.perf_counter() - begin) / args.loop_sample
        total_points = args.seeds * args.points**2
        loop_s = loop_point_s * total_points
        flops = _forward_flops(model, p0, x) * total_points
        matmul = _matmul_flops_per_s(args.matmul)
    achieved = flops / surface_s
    loss = s.values["loss"][:, 0]
    mid = (args.points - 1) // 2
    table = markdown_table(
        [
            "seeds",
            "grid",
            "points evaluated",
            "train s",
            "gbl.surface s (one call, compile included)",
            "loop s per point (measured)",
            "loop s (extrapolated)",
            "speed-up",
            "GFLOP",
            "achieved GFLOP/s",
            f"matmul {args.matmul}^2 GFLOP/s",
            "share of matmul",
        ],
        [
            [
                args.seeds,
                f"{args.points}x{args.points}",
                total_points,
                train_s,
                surface_s,
                loop_point_s,
                loop_s,
                loop_s / surface_s,
                flops / 1e9,
                achieved / 1e9,
                matmul / 1e9,
                achieved / matmul,
            ]
        ],
    )
    table += (
        "\n\nThe loop's time is measured on "
        f"{args.loop_sample} random grid points of one seed (after a warm-up call) and "
        "extrapolated to every point of every seed. Median training loss at the center "
        f"{np.median(loss[:, mid, mid]):.4g} (the trained loss), at the grid's corners "
        f"{np.median(loss[:, [0, 0, -1, -1], [0, -1, 0, -1]]):.4g}."
    )
    fig = gbl.plots.surface_figure(
        s,
        title=f"MNIST-1D MLP 100-100 (ReLU), {args.seeds} seeds, "
        f"{args.steps} steps: filter-normalized directions",
    )
    command = (
        f"python scripts/surface_speed.py --seeds {args.seeds} --points {args.points} "
        f"--steps {args.steps} --loop-sample {args.loop_sample} --matmul {args.matmul}"
    )
    save(args.out, "surface_speed", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
