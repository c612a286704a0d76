"""Is XOR's init sensitivity also a learning-rate effect? Failures over learning rate x init scale.

XOR with 2 tanh hidden units (the book's section 6.1 net), Glorot-normal weights times an init
scale, 2000 full-batch steps of Adam and of plain gradient descent, each over its own five
log-spaced learning rates. A seed fails when its final NLL is above 0.1 or it diverged; each
cell gives the failure rate with a Wilson 95% interval. Each optimizer is one ``gbl.sweep``
over the grid, common random numbers: seed i starts from the same unscaled init in every cell.
Usage: python scripts/lr_init_grid.py [--seeds 1024] [--steps 2000]
"""

import jax
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save

import gbl_jax as gbl
from gbl_jax import plots

THRESHOLD = 0.1
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
OPTIMIZERS = {  # name: (optimizer with an injectable learning rate, learning rates)
    "Adam": (
        optax.inject_hyperparams(optax.adam)(learning_rate=0.05),
        (0.003, 0.01, 0.03, 0.1, 0.3),
    ),
    "GD": (optax.inject_hyperparams(optax.sgd)(learning_rate=0.5), (0.03, 0.1, 0.3, 1.0, 3.0)),
}


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=1024)
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args()
    data = gbl.problems.xor()
    model = gbl.mlp([2], data.head)
    results = {}
    with Timer() as timer:
        for name, (opt, lrs) in OPTIMIZERS.items():
            grid = {"learning_rate": list(lrs), "init_scale": list(SCALES)}
            out = gbl.sweep(
                model,
                opt,
                data,
                key=jax.random.PRNGKey(args.seed),
                seeds=args.seeds,
                steps=args.steps,
                grid=grid,
            )
            failed = out.diverged | ~(np.nan_to_num(out.final_loss, nan=np.inf) <= THRESHOLD)
            k = failed.sum(axis=-1)
            low, high = gbl.wilson_interval(k, np.full_like(k, args.seeds))
            results[name] = (grid, k / args.seeds, low, high, out.diverged.sum(axis=-1))
            print(f"{name}: {out.wall_s:.0f} s", flush=True)
    rows = []
    for i in range(len(next(iter(OPTIMIZERS.values()))[1])):
        for j, scale in enumerate(SCALES):
            row = [scale]
            for name, (grid, rate, low, high, diverged) in results.items():
                cell = f"{100 * rate[i, j]:.1f} [{100 * low[i, j]:.1f}, {100 * high[i, j]:.1f}]"
                row += [grid["learning_rate"][i], cell, int(diverged[i, j])]
            rows.append(row)
    headers = ["init scale"] + [
        h for name in results for h in (f"{name} lr", f"{name} failed % [95% CI]", "diverged")
    ]
    table = markdown_table(headers, rows)
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(results), figsize=(6.2 * len(results), 4.6), layout="constrained"
    )
    for ax, (name, (grid, rate, low, high, _)) in zip(axes, results.items()):
        # grid_heatmap shows success; its "±" is the half-width of the same Wilson interval
        plots.grid_heatmap(
            grid,
            1 - rate,
            threshold=THRESHOLD,
            low=1 - high,
            high=1 - low,
            ax=ax,
            title=f"{name}: XOR 2-2-1 tanh, {args.seeds} seeds a cell, {args.steps} steps",
        )
    command = f"python scripts/lr_init_grid.py --seeds {args.seeds} --steps {args.steps}"
    save(args.out, "lr_init_grid", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
