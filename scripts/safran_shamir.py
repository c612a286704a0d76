"""Spurious local minima of two-layer ReLU networks (Safran & Shamir 2018), run to convergence.

Teacher: k ReLU units with weights e_1..e_k (the standard basis of R^k), output weights fixed to
one. Student: n ReLU units, output weights fixed to one, trained by plain gradient descent from
Xavier init on the *population* loss under x ~ N(0, I_k), which has a closed form (the
arc-cosine kernel, Cho & Saul 2009): ``gbl.population.relu_student(n, k)`` gives the student
(a ``gbl.Model`` whose params are w [n, k]), dummy data and the loss. ``gbl.sweep`` runs each
seed until the gradient norm falls below --grad-tol (or the budget ends); ``gbl.critical_points`` takes the Hessian at every
converged end point above the loss threshold (1e-3; a global minimum has loss 0 and float32 puts
it at ~1e-6). A run *fails* when it converged to such a point and the point is a minimum (no
eigenvalue below -1e-4 max(1, |largest|)). The global minima themselves are not classified: with
n > k a spare unit shrinks to w = 0, where the loss is not twice differentiable.
Usage: python scripts/safran_shamir.py [--seeds 500] [--steps 20000] [--grad-tol 1e-4]
                                      [--ks 6,8,10,12]
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save

import gbl_jax as gbl

THRESHOLD = 1e-3  # population loss above which a converged run is not at a global minimum


def run_config(n, k, args):
    """Sweeps one (n, k) and classifies the end points above ``THRESHOLD``; returns a dict."""
    model, data, loss = gbl.population.relu_student(n, k)
    out = gbl.sweep(
        model,
        optax.sgd(args.lr),
        data,
        key=jax.random.PRNGKey(args.seed),
        seeds=args.seeds,
        steps=args.steps,
        grad_tol=args.grad_tol,
        keep_params=True,
        loss=loss,
    )
    converged = out.converged_step >= 0
    high = converged & (out.final_loss > THRESHOLD)
    kind = np.full(args.seeds, "", dtype=object)
    min_eig = np.full(args.seeds, np.nan)
    if high.any():
        # 2x margin: the recomputed gradient norm differs from the sweep's in float32 rounding.
        cp = gbl.critical_points(
            model, data, out.params[high], loss=loss, grad_tol=2 * args.grad_tol
        )
        kind[high], min_eig[high] = cp.kind, cp.min_eig
    return {
        "out": out,
        "converged": converged,
        "spurious": high & (kind == "minimum"),
        "saddle": high & (kind == "saddle"),
        "min_eig": min_eig,
    }


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=500)
    p.add_argument("--steps", type=int, default=20000, help="step budget per run")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument(
        "--grad-tol",
        type=float,
        default=1e-4,
        help="a run has converged when its gradient norm falls below this",
    )
    p.add_argument("--ks", default="6,8,10,12", help="teacher widths k (default 6,8,10,12)")
    args = p.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    configs = [(k, k) for k in ks] + [(k + 2, k) for k in ks]
    rows, rates = [], {}
    with Timer() as timer:
        for n, k in configs:
            r = run_config(n, k, args)
            out, conv, spurious = r["out"], r["converged"], r["spurious"]
            n_conv, n_bad = int(conv.sum()), int(spurious.sum())
            low, high = gbl.wilson_interval(n_bad, n_conv)
            rates[(n, k)] = (n_bad / n_conv if n_conv else np.nan, low, high)
            losses, eigs = out.final_loss[spurious], r["min_eig"][spurious]
            rows.append(
                [
                    k,
                    n,
                    args.seeds,
                    n_conv,
                    int(np.median(out.converged_step[conv])) if n_conv else "-",
                    f"{n_bad}: {100 * n_bad / n_conv:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
                    if n_conv
                    else "-",
                    int(r["saddle"].sum()),
                    args.seeds - n_conv,
                    float(np.median(losses)) if n_bad else "-",
                    f"{eigs.min():.3g} .. {eigs.max():.3g}" if n_bad else "-",
                ]
            )
            print(rows[-1], f"({time.perf_counter() - timer.start:.0f} s)", flush=True)
    table = markdown_table(
        [
            "k (teacher)",
            "n (student)",
            "seeds",
            "converged",
            "median steps",
            "at a spurious minimum (% of converged [Wilson 95%])",
            "at a saddle",
            "not converged",
            "median spurious loss",
            "smallest Hessian eigenvalue there (min .. max)",
        ],
        rows,
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for offset, marker, label in ((0, "o-", "n = k"), (2, "s-", "n = k + 2")):
        rate, low, high = (
            100 * np.asarray([rates[(k + offset, k)][i] for k in ks]) for i in range(3)
        )
        ax.errorbar(ks, rate, yerr=[rate - low, high - rate], fmt=marker, capsize=3, label=label)
    ax.set_xlabel("teacher units k")
    ax.set_ylabel("converged runs at a\nspurious minimum (%)")
    ax.set_title(f"GD to |grad| < {args.grad_tol:g}, {args.seeds} Xavier inits each", fontsize=10)
    ax.legend()
    command = (
        f"python scripts/safran_shamir.py --seeds {args.seeds} --steps {args.steps} "
        f"--lr {args.lr} --grad-tol {args.grad_tol:g} --ks {args.ks}"
    )
    save(args.out, "safran_shamir", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
