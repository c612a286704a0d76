"""The loss landscape between seeds on two_spirals: straight paths, barriers, alignment and basins.

One tanh hidden layer of width 4, 16 and 64 (--widths), Adam(0.01), full batch, 256 points. Per
width: (a) the share of seeds whose straight path from init to solution is monotone (Goodfellow,
Vinyals & Saxe 2015): the loss never rises between 25 points on the path (a rise below 1e-6
relative is float noise: the rule of ``landscape_report`` and ``gbl-jax landscape``);
(b) the barrier between every pair of the first K usable seeds, as trained and after weight
matching (Frankle et al. 2020; Ainsworth et al. 2023); (c) the basin census: seeds grouped by
the function they compute (predicted probabilities within --tol on every training point).
All three come from ``landscape_report``, as the command line computes them.
Usage: python scripts/landscape.py [--seeds 128] [--steps 2000] [--pairs-of 24] [--tol 0.1]
       [--widths 4,16,64]
"""

import jax
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save

import gbl_jax as gbl

landscape_report = gbl.landscape_report.landscape_report

NUM = 25


def quartiles(values):
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return q50, q25, q75


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=128)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument(
        "--pairs-of",
        type=int,
        default=24,
        help="barriers between all pairs of the first K seeds (default 24)",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=0.1,
        help="basin tolerance on predicted probabilities (default 0.1)",
    )
    p.add_argument("--widths", default="4,16,64", help="hidden widths (default 4,16,64)")
    args = p.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    data = gbl.problems.two_spirals(jax.random.PRNGKey(args.seed + 1), 256)
    k = min(args.pairs_of, args.seeds)
    path_rows, barrier_rows, basin_rows = [], [], []
    curves, bars = {}, {}
    with Timer() as timer:
        for width in widths:
            model = gbl.mlp([width], data.head)
            out = gbl.sweep(
                model,
                optax.adam(0.01),
                data,
                key=jax.random.PRNGKey(args.seed),
                seeds=args.seeds,
                steps=args.steps,
                keep_params=True,
            )
            rep = landscape_report(
                model,
                data,
                out.init_params,
                out.params,
                diverged=out.diverged,
                pairs=k,
                num=NUM,
                tol=args.tol,
            )
            ok, doc = rep.usable, rep.as_dict()
            interp = doc["interpolation"]
            low, high = interp["interval_95"]
            rise = np.max(np.diff(rep.curves, axis=-1), axis=-1)
            curves[width] = rep.curves
            share = f"{100 * interp['monotone_share']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
            path_rows.append(
                [
                    width,
                    int(ok.sum()),
                    float(np.median(out.final_loss[ok])),
                    share,
                    float(np.median(rise[ok])),
                ]
            )

            a, b = np.triu_indices(len(rep.barriers["seeds"]), 1)
            plain, aligned = bars[width] = (
                rep.barriers["unaligned"][a, b],
                rep.barriers["aligned"][a, b],
            )
            barrier_rows.append(
                [
                    width,
                    len(plain),
                    *quartiles(plain),
                    *quartiles(aligned),
                    f"{100 * np.mean(aligned < plain):.0f}%",
                ]
            )

            basin = rep.basins
            top = [
                f"{100 * basin.share[i]:.1f} [{100 * basin.share_ci[i, 0]:.1f}, "
                f"{100 * basin.share_ci[i, 1]:.1f}] (NLL {basin.loss[i]:.3g})"
                for i in np.argsort(-basin.count, kind="stable")[:3]
            ]
            basin_rows.append(
                [width, int(ok.sum()), len(basin.count), *top, *[""] * (3 - len(top))]
            )
            print(path_rows[-1], barrier_rows[-1], basin_rows[-1], sep="\n", flush=True)
    tables = [
        markdown_table(
            [
                "width",
                "seeds",
                "median final NLL",
                "monotone init->final % [95% CI]",
                "median largest rise",
            ],
            path_rows,
        ),
        markdown_table(
            [
                "width",
                "pairs",
                "barrier median",
                "q25",
                "q75",
                "aligned median",
                "aligned q25",
                "aligned q75",
                "pairs lower after align",
            ],
            barrier_rows,
        ),
        markdown_table(
            [
                "width",
                "seeds",
                f"basins (tol {args.tol:g})",
                "largest % [95% CI]",
                "second",
                "third",
            ],
            basin_rows,
        ),
    ]
    plt = pyplot()
    fig, (ax_path, ax_bar) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    alphas = np.linspace(0, 1, NUM)
    for c, width in enumerate(widths):
        for s in range(min(8, args.seeds)):
            ax_path.plot(
                alphas,
                curves[width][s],
                color=f"C{c}",
                alpha=0.6,
                lw=1,
                label=f"width {width}" if s == 0 else None,
            )
    ax_path.set_yscale("log")
    ax_path.set_xlabel("a: (1 - a) init + a final")
    ax_path.set_ylabel("training NLL")
    ax_path.set_title("init -> final, 8 seeds a width", fontsize="medium")
    ax_path.legend()
    for offset, (label, j) in zip((-0.04, 0.04), (("as trained", 0), ("after align", 1))):
        med, q25, q75 = np.array([quartiles(bars[w][j]) for w in widths]).T
        x = np.array(widths) * (1 + offset)
        ax_bar.errorbar(x, med, yerr=[med - q25, q75 - med], fmt="o-", capsize=3, label=label)
    ax_bar.set_xscale("log", base=2)
    ax_bar.set_xticks(widths, [str(w) for w in widths])
    ax_bar.set_yscale("symlog", linthresh=0.01)
    ax_bar.set_ylim(bottom=0)  # a barrier is >= 0: the endpoints give curve - chord = 0
    ax_bar.set_xlabel("hidden width")
    ax_bar.set_ylabel("barrier between two seeds (NLL)")
    ax_bar.set_title(f"all pairs of {k} seeds: median and quartiles", fontsize="medium")
    ax_bar.legend()
    fig.suptitle(f"two_spirals, 2-w-1 tanh, Adam(0.01), {args.steps} steps, {args.seeds} seeds")
    command = (
        f"python scripts/landscape.py --seeds {args.seeds} --steps {args.steps} "
        f"--pairs-of {args.pairs_of} --tol {args.tol:g} --widths {args.widths}"
    )
    save(args.out, "landscape", "\n\n".join(tables), fig, command, timer.seconds)


if __name__ == "__main__":
    main()
