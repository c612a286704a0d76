"""Share of failed seeds on XOR against hidden width, with Adam and with plain gradient descent.

A seed fails when its final NLL is above 0.1 (a solved XOR reaches ~1e-3; the usual local
minimum sits at 0.35 or 0.48). 2000 full-batch steps, tanh, Glorot-normal init.
Usage: python scripts/xor_failure_rates.py [--seeds 1000] [--steps 2000]
"""

import jax
import numpy as np
import optax
from common import Timer, int_list, markdown_table, parser, pyplot, save

import gbl_jax as gbl

WIDTHS = "2,3,4,8"


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=1000)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--widths", type=int_list, default=WIDTHS, help=f"hidden widths ({WIDTHS})")
    args = p.parse_args()
    widths = args.widths  # argparse applies int_list to the default too
    data = gbl.problems.xor()
    optimizers = {"Adam(0.05)": optax.adam(0.05), "GD(0.5)": optax.sgd(0.5)}
    rates, rows = {}, []
    with Timer() as timer:
        for width in widths:
            model = gbl.mlp([width], data.head)
            row = [width]
            for name, opt in optimizers.items():
                out = gbl.sweep(
                    model,
                    opt,
                    data,
                    key=jax.random.PRNGKey(args.seed),
                    seeds=args.seeds,
                    steps=args.steps,
                )
                s = gbl.spread(out)
                low, high = s.success_interval(0.1)
                rates[(name, width)] = (1 - s.success_rate(0.1), 1 - high, 1 - low)
                rate, lo, hi = (100 * r for r in rates[(name, width)])
                row += [f"{rate:.1f}% [{lo:.1f}, {hi:.1f}]", s.n_diverged]
            rows.append(row)
            print(row, flush=True)
    headers = ["hidden units"] + [
        h for name in optimizers for h in (f"failed, {name} [Wilson 95%]", "diverged")
    ]
    table = markdown_table(headers, rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    for name in optimizers:
        rate, low, high = (np.array([100 * rates[(name, w)][j] for w in widths]) for j in range(3))
        ax.errorbar(widths, rate, yerr=[rate - low, high - rate], fmt="o-", capsize=3, label=name)
    ax.set_xlabel("hidden tanh units")
    ax.set_ylabel("failed seeds (%, Wilson 95%)")
    ax.set_title(f"XOR, {args.seeds} seeds, {args.steps} steps")
    ax.legend()
    command = (
        f"python scripts/xor_failure_rates.py --seeds {args.seeds} --steps {args.steps} "
        f"--widths {','.join(map(str, widths))}"
    )
    save(args.out, "xor_failure_rates", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
