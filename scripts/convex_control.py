"""The convex control: logistic regression lands on the same loss from every init; an MLP does not.

Data: circles (256 points), not linearly separable, so logistic regression has a unique finite
minimum (on separable data it would have none: the weights grow without bound). Both models get
the same optimizer, steps and seeds. Usage: python scripts/convex_control.py [--seeds 512]
"""

import jax
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save

import gbl_jax as gbl


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=512)
    p.add_argument("--steps", type=int, default=3000)
    args = p.parse_args()
    data = gbl.problems.circles(jax.random.PRNGKey(args.seed + 1), 256)
    adam = optax.adam(0.05)
    models = {
        "logistic regression (convex)": gbl.mlp((), data.head, init=gbl.inits.normal(3.0)),
        "MLP 2-3-1 tanh": gbl.mlp([3], data.head, init=gbl.inits.normal(3.0)),
    }
    rows, finals = [], {}
    with Timer() as timer:
        for name, model in models.items():
            out = gbl.sweep(
                model,
                adam,
                data,
                key=jax.random.PRNGKey(args.seed),
                seeds=args.seeds,
                steps=args.steps,
            )
            s = gbl.spread(out)
            finals[name] = out.final_loss[~out.diverged]
            rows.append([name, s.n, s.n_diverged, s.mean, s.std, s.min, s.max, s.max - s.min])
            print(rows[-1], flush=True)
    table = markdown_table(
        ["model", "seeds", "diverged", "mean", "std", "min", "max", "max - min"], rows
    )
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    for ax, (name, losses) in zip(axes, finals.items()):
        # the convex losses agree to ~1e-6: show their deviation from the median, not an offset
        ax.hist(losses - np.median(losses), bins=40)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3), useOffset=False)
        ax.set_title(f"{name}\nmedian {np.median(losses):.4g}", fontsize="medium")
        ax.set_xlabel("final NLL minus its median")
    axes[0].set_ylabel("seeds")
    fig.suptitle(f"circles, {args.seeds} inits ~ N(0, 3^2), Adam, {args.steps} steps")
    command = f"python scripts/convex_control.py --seeds {args.seeds} --steps {args.steps}"
    save(args.out, "convex_control", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
