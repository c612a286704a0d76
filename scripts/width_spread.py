"""Spread of final losses against hidden width on two_spirals (cf. Choromanska et al. 2015).

One tanh hidden layer of width 2 to 256, Adam(0.01), full batch, 256 points, each seed run until
its full-data gradient norm falls below --grad-tol (checked every <= 50 steps) or --steps runs
out, so a wide net is compared where it has stopped, not where a fixed budget left it: how the
final losses of different inits fall and concentrate as the network grows.
Usage: python scripts/width_spread.py [--seeds 128] [--steps 50000] [--grad-tol 1e-4]
"""

import jax
import numpy as np
import optax
from common import Timer, int_list, markdown_table, parser, pyplot, save

import gbl_jax as gbl

WIDTHS = "2,4,8,16,32,64,128,256"


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=128)
    p.add_argument("--steps", type=int, default=50000, help="step budget of each seed")
    p.add_argument(
        "--grad-tol",
        type=float,
        default=1e-4,
        help="a seed has converged when its gradient norm falls below this",
    )
    p.add_argument("--widths", type=int_list, default=WIDTHS, help=f"hidden widths ({WIDTHS})")
    args = p.parse_args()
    widths = args.widths  # argparse applies int_list to the default too
    data = gbl.problems.two_spirals(jax.random.PRNGKey(args.seed + 1), 256)
    adam = optax.adam(0.01)
    rows, spreads = [], {}
    with Timer() as timer:
        for width in widths:
            out = gbl.sweep(
                gbl.mlp([width], data.head),
                adam,
                data,
                key=jax.random.PRNGKey(args.seed),
                seeds=args.seeds,
                steps=args.steps,
                grad_tol=args.grad_tol,
            )
            s = spreads[width] = gbl.spread(out)
            steps = out.converged_step[out.converged_step >= 0]
            rows.append(
                [
                    width,
                    s.n_diverged,
                    int(steps.size),
                    int(np.median(steps)) if steps.size else "-",
                    s.median,
                    s.std,
                    s.iqr,
                    s.q90 - s.q10,
                    s.min,
                    s.max,
                ]
            )
            print(rows[-1], flush=True)
    table = markdown_table(
        [
            "width",
            "diverged",
            "converged",
            "median step",
            "median",
            "std",
            "IQR",
            "q90 - q10",
            "min",
            "max",
        ],
        rows,
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    med = [spreads[w].median for w in widths]
    ax.fill_between(
        widths,
        [spreads[w].q10 for w in widths],
        [spreads[w].q90 for w in widths],
        alpha=0.25,
        label="10-90%",
    )
    ax.fill_between(
        widths,
        [spreads[w].q25 for w in widths],
        [spreads[w].q75 for w in widths],
        alpha=0.45,
        label="25-75%",
    )
    ax.plot(widths, med, "o-", label="median")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_yscale("log")
    ax.set_xlabel("hidden width")
    ax.set_ylabel("final NLL")
    ax.set_title(
        f"two_spirals, {args.seeds} seeds per width, Adam,\n"
        f"to |grad| < {args.grad_tol:g} (budget {args.steps} steps)",
        fontsize=10,
    )
    ax.legend()
    command = (
        f"python scripts/width_spread.py --seeds {args.seeds} --steps {args.steps} "
        f"--grad-tol {args.grad_tol:g} --widths {','.join(map(str, widths))}"
    )
    save(args.out, "width_spread", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
