"""What the stuck XOR runs converged to: the Hessian at every end point, run to convergence.

2-w-1 tanh nets (Glorot-normal init) on the four XOR points, trained full-batch by plain
gradient descent and by Adam until the gradient norm falls below --grad-tol (checked every <= 50
steps; or the budget ends). ``gbl.critical_points`` then takes the exact Hessian at each end
point. A run is solved when its NLL is below 0.1, stuck otherwise. A converged end point is a
saddle when an eigenvalue is below -1e-4 max(1, |largest|), else a minimum; eigenvalues within
that of zero are flat directions. Convergence is the sweep's test; the 2x margin given to
``critical_points`` only absorbs float32 rounding of the recomputed gradient.

Then the basin test: the stuck minima of GD with the narrowest net, each perturbed by Gaussian
noise of std sigma on every parameter, trained again the same way. From a saddle almost any
perturbation escapes; from a minimum small ones come back.
Usage: python scripts/xor_critical_points.py [--seeds 1000] [--steps 30000] [--grad-tol 2e-4]
                                            [--perturb-seeds 256] [--widths 2,3,4]
"""

from __future__ import annotations

import math
import time

import jax
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save
from jax.flatten_util import ravel_pytree

import gbl_jax as gbl
from gbl_jax import plots

SOLVED = 0.1
SIGMAS = (0.3, 1.0, 3.0)


def typical(losses: np.ndarray, top: int = 3) -> str:
    """The most common values of ``losses`` to 3 decimals, with their counts."""
    values, counts = np.unique(np.round(losses, 3), return_counts=True)
    order = np.argsort(-counts)[:top]
    return ", ".join(f"{values[i]:.3f} ({counts[i]})" for i in order)


def perturbed(net: gbl.Model, points, sigma: float) -> gbl.Model:
    """A model whose init is one of ``points`` (stacked params, drawn at random) plus noise."""
    flat_SP = jax.vmap(lambda p: ravel_pytree(p)[0])(points)
    unravel = ravel_pytree(jax.tree.map(lambda a: a[0], points))[1]

    def init(key, x):
        k_pick, k_noise = jax.random.split(key)
        base = flat_SP[jax.random.randint(k_pick, (), 0, flat_SP.shape[0])]
        return unravel(base + sigma * jax.random.normal(k_noise, base.shape, base.dtype))

    return gbl.Model(init, net.apply, name=f"stuck point + N(0, {sigma}^2)")


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=1000)
    p.add_argument("--steps", type=int, default=30000, help="step budget per run")
    p.add_argument(
        "--grad-tol",
        type=float,
        default=2e-4,
        help="a run has converged when its gradient norm falls below this",
    )
    p.add_argument(
        "--perturb-seeds", type=int, default=256, help="perturbed runs per sigma in the basin test"
    )
    p.add_argument("--widths", default="2,3,4", help="hidden widths (default 2,3,4)")
    args = p.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    data = gbl.problems.xor()
    optimizers = {"GD(0.5)": optax.sgd(0.5), "Adam(0.05)": optax.adam(0.05)}
    run = dict(key=jax.random.PRNGKey(args.seed), steps=args.steps, grad_tol=args.grad_tol)
    rows, shown, stuck_points = [], None, None
    with Timer() as timer:
        for name, opt in optimizers.items():
            for width in widths:
                model = gbl.mlp([width], data.head)
                out = gbl.sweep(model, opt, data, seeds=args.seeds, keep_params=True, **run)
                cp = gbl.critical_points(
                    model, data, out.params, grad_tol=2 * args.grad_tol, diverged=out.diverged
                )
                kind = np.where(
                    (out.converged_step < 0) & (cp.kind != "diverged"), "not_converged", cp.kind
                )
                stuck = ~out.diverged & (out.final_loss >= SOLVED)
                counts = [
                    int(np.sum(stuck & (kind == k))) for k in ("minimum", "saddle", "not_converged")
                ]
                at_min = stuck & (kind == "minimum")
                if shown is None:
                    shown = (name, width, cp, kind)
                    if at_min.any():
                        stuck_points = (model, jax.tree.map(lambda a: a[at_min], out.params))
                rows.append(
                    [
                        name,
                        width,
                        args.seeds,
                        int(np.sum(out.converged_step >= 0)),
                        int(np.sum(out.final_loss < SOLVED)),
                        int(stuck.sum()),
                        *counts,
                        float(np.median(out.final_loss[stuck])) if stuck.any() else "-",
                        typical(out.final_loss[stuck]) if stuck.any() else "-",
                        f"{np.min(cp.min_eig[at_min]):.1e}" if at_min.any() else "-",
                        f"{np.median(cp.n_flat[at_min]):.0f} of {4 * width + 1}"
                        if at_min.any()
                        else "-",
                        int(out.diverged.sum()),
                    ]
                )
                print(rows[-1], f"({time.perf_counter() - timer.start:.0f} s)", flush=True)
        basin_rows = []
        if stuck_points is not None:
            model, points = stuck_points
            for sigma in SIGMAS:
                out = gbl.sweep(
                    perturbed(model, points, sigma),
                    optimizers["GD(0.5)"],
                    data,
                    seeds=args.perturb_seeds,
                    **run,
                )
                solved = int(np.sum(out.final_loss < SOLVED))
                low, high = gbl.wilson_interval(solved, args.perturb_seeds)
                back = out.final_loss[out.final_loss >= SOLVED]
                basin_rows.append(
                    [
                        sigma,
                        args.perturb_seeds,
                        f"{solved}: {100 * solved / args.perturb_seeds:.1f}% "
                        f"[{100 * low:.1f}, {100 * high:.1f}]",
                        typical(back) if back.size else "-",
                    ]
                )
                print(basin_rows[-1], f"({time.perf_counter() - timer.start:.0f} s)", flush=True)
    table = markdown_table(
        [
            "optimizer",
            "hidden units",
            "seeds",
            "converged",
            "solved (NLL < 0.1)",
            "stuck",
            "stuck: minimum",
            "stuck: saddle",
            "stuck: not converged",
            "median stuck NLL",
            "commonest stuck NLLs (count)",
            "smallest eigenvalue at stuck minima",
            "flat directions there (median)",
            "diverged",
        ],
        rows,
    )
    if basin_rows:
        table += (
            f"\n\nBasin test: the stuck minima of {shown[0]}, {shown[1]} hidden units, plus "
            f"N(0, sigma^2) on every parameter, trained again the same way (ln(2)/2 = "
            f"{math.log(2) / 2:.4f}; (3 ln 3 - 2 ln 2)/4 = "
            f"{(3 * math.log(3) - 2 * math.log(2)) / 4:.4f})."
            "\n\n"
            + markdown_table(
                ["sigma", "runs", "escaped: solved (Wilson 95%)", "the rest end at (count)"],
                basin_rows,
            )
        )
    name, width, cp, kind = shown
    pyplot()  # the Agg backend, before the figure exists
    fig = plots.critical_points_figure(
        cp.loss,
        cp.index,
        kind,
        title=f"XOR 2-{width}-1 tanh, {name}, {args.seeds} seeds, |grad| < {args.grad_tol:g}",
    )
    command = (
        f"python scripts/xor_critical_points.py --seeds {args.seeds} --steps {args.steps} "
        f"--grad-tol {args.grad_tol:g} --perturb-seeds {args.perturb_seeds} "
        f"--widths {args.widths}"
    )
    save(args.out, "xor_critical_points", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
