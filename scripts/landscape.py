"""The loss landscape between seeds on two_spirals: straight paths, barriers, alignment and basins.

One tanh hidden layer of width 4, 16 and 64 (--widths), Adam(0.01), full batch, 256 points. Per
width: (a) the share of seeds whose straight path from init to solution is monotone (Goodfellow,
Vinyals & Saxe 2015): the loss never rises by more than 1e-3 between 25 points on the path;
(b) the barrier between every pair of the first K seeds, as trained and after weight matching
(Frankle et al. 2020; Ainsworth et al. 2023); (c) the basin census: seeds grouped by the
function they compute (predicted probabilities within --tol on every training point).
Usage: python scripts/landscape.py [--seeds 128] [--steps 2000] [--pairs-of 24] [--tol 0.1]
       [--widths 4,16,64]
"""

import itertools

import jax
import numpy as np
import optax

import gbl_jax as gbl
from common import Timer, markdown_table, parser, pyplot, save

RISE_TOL = 1e-3   # a path is monotone when no step along it raises the loss by more than this
NUM = 25


def take(params, idx):
    return jax.tree.map(lambda a: a[np.asarray(idx)], params)


def pair_barriers(model, data, params, k):
    """Barriers over all pairs of the first k seeds, unaligned and aligned: ([pairs], [pairs])."""
    pairs = list(itertools.combinations(range(k), 2))
    first, second = zip(*pairs)
    plain = gbl.barrier(model, data, take(params, first), take(params, second), num=NUM)
    matched = [gbl.align(jax.tree.map(lambda a: a[i], params), take(params, range(i + 1, k)))
               for i in range(k - 1)]
    matched = jax.tree.map(lambda *a: np.concatenate(a), *matched)   # pair order, as ``second``
    return plain, gbl.barrier(model, data, take(params, first), matched, num=NUM)


def quartiles(values):
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return q50, q25, q75


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=128)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--pairs-of", type=int, default=24, help="barriers between all pairs of the "
                   "first K seeds (default 24)")
    p.add_argument("--tol", type=float, default=0.1, help="basin tolerance on predicted "
                   "probabilities (default 0.1)")
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
            out = gbl.sweep(model, optax.adam(0.01), data, key=jax.random.PRNGKey(args.seed),
                            seeds=args.seeds, steps=args.steps, keep_params=True)
            ok = ~out.diverged
            curve = gbl.interpolate(model, data, out.init_params, out.params, num=NUM)
            rise = np.max(np.diff(curve, axis=-1), axis=-1)
            monotone = int(np.sum(ok & (rise <= RISE_TOL)))
            low, high = gbl.wilson_interval(monotone, int(ok.sum()))
            curves[width] = curve
            share = f"{100 * monotone / ok.sum():.1f} [{100 * low:.1f}, {100 * high:.1f}]"
            path_rows.append([width, int(ok.sum()), float(np.median(out.final_loss[ok])), share,
                              float(np.median(rise[ok]))])

            plain, aligned = bars[width] = pair_barriers(model, data, out.params, k)
            barrier_rows.append([width, len(plain), *quartiles(plain), *quartiles(aligned),
                                 f"{100 * np.mean(aligned < plain):.0f}%"])

            b = gbl.basins(model, data, out.params, tol=args.tol, diverged=out.diverged)
            top = [f"{100 * b.share[i]:.1f} [{100 * b.share_ci[i, 0]:.1f}, "
                   f"{100 * b.share_ci[i, 1]:.1f}] (NLL {b.loss[i]:.3g})"
                   for i in np.argsort(-b.count, kind="stable")[:3]]
            basin_rows.append([width, int(ok.sum()), len(b.count), *top, *[""] * (3 - len(top))])
            print(path_rows[-1], barrier_rows[-1], basin_rows[-1], sep="\n", flush=True)
    tables = [
        markdown_table(["width", "seeds", "median final NLL", "monotone init->final % [95% CI]",
                        "median largest rise"], path_rows),
        markdown_table(["width", "pairs", "barrier median", "q25", "q75", "aligned median",
                        "aligned q25", "aligned q75", "pairs lower after align"], barrier_rows),
        markdown_table(["width", "seeds", f"basins (tol {args.tol:g})", "largest % [95% CI]",
                        "second", "third"], basin_rows),
    ]
    plt = pyplot()
    fig, (ax_path, ax_bar) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    alphas = np.linspace(0, 1, NUM)
    for c, width in enumerate(widths):
        for s in range(min(8, args.seeds)):
            ax_path.plot(alphas, curves[width][s], color=f"C{c}", alpha=0.6, lw=1,
                         label=f"width {width}" if s == 0 else None)
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
    ax_bar.set_ylim(bottom=0)   # a barrier is >= 0: the endpoints give curve - chord = 0
    ax_bar.set_xlabel("hidden width")
    ax_bar.set_ylabel("barrier between two seeds (NLL)")
    ax_bar.set_title(f"all pairs of {k} seeds: median and quartiles", fontsize="medium")
    ax_bar.legend()
    fig.suptitle(f"two_spirals, 2-w-1 tanh, Adam(0.01), {args.steps} steps, {args.seeds} seeds")
    command = (f"python scripts/landscape.py --seeds {args.seeds} --steps {args.steps} "
               f"--pairs-of {args.pairs_of} --tol {args.tol:g} --widths {args.widths}")
    save(args.out, "landscape", "\n\n".join(tables), fig, command, timer.seconds)


if __name__ == "__main__":
    main()
