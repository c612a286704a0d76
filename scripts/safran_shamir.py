"""Spurious local minima of two-layer ReLU networks (Safran & Shamir 2018), run to convergence.

Teacher: k ReLU units with weights e_1..e_k (the standard basis of R^k), output weights fixed to
one. Student: n ReLU units, output weights fixed to one, trained by plain gradient descent from
Xavier init on the *population* loss under x ~ N(0, I_k), which has a closed form:

  E[relu(w.x) relu(v.x)] = |w||v| / (2 pi) (sin t + (pi - t) cos t),  t = angle(w, v)

(Cho & Saul 2009). Written in c = cos t, d/dc (sqrt(1 - c^2) + (pi - arccos c) c) = pi - arccos c
is finite at c = 1, but autodiff of each term alone is inf - inf = NaN there, so the kernel has a
hand-written JVP; its slope has one too, whose derivative 1 / sqrt(1 - c^2) is set to 0 at c = 1
(the limit of its product with dc^2), so the Hessian is finite at aligned units. A unit's kernel
with itself is |w|^2 / 2, written out.

The student is a ``gbl.Model`` whose params are w [n, k] and whose ``apply`` returns them; the data
are a dummy (the population loss needs none). ``gbl.sweep`` runs each seed until the gradient norm
falls below --grad-tol (or the budget ends); ``gbl.critical_points`` takes the Hessian at every
converged end point above the loss threshold (1e-3; a global minimum has loss 0 and float32 puts
it at ~1e-6). A run *fails* when it converged to such a point and the point is a minimum (no
eigenvalue below -1e-4 max(1, |largest|)). The global minima themselves are not classified: with
n > k a spare unit shrinks to w = 0, where the loss is not twice differentiable.
Usage: python scripts/safran_shamir.py [--seeds 500] [--steps 20000] [--grad-tol 1e-4]
                                      [--ks 6,8,10,12]
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gbl_jax as gbl
from common import Timer, markdown_table, parser, pyplot, save

THRESHOLD = 1e-3   # population loss above which a converged run is not at a global minimum


@jax.custom_jvp
def _arc_kernel(c):
    """sqrt(1 - c^2) + (pi - arccos c) c for c in [-1, 1]."""
    c = jnp.clip(c, -1.0, 1.0)
    return jnp.sqrt(1.0 - c * c) + (math.pi - jnp.arccos(c)) * c


@jax.custom_jvp
def _arc_slope(c):
    """pi - arccos c, the kernel's derivative."""
    return math.pi - jnp.arccos(jnp.clip(c, -1.0, 1.0))


@_arc_kernel.defjvp
def _arc_kernel_jvp(primals, tangents):
    (c,), (dc,) = primals, tangents
    return _arc_kernel(c), _arc_slope(c) * dc


@_arc_slope.defjvp
def _arc_slope_jvp(primals, tangents):
    (c,), (dc,) = primals, tangents
    # 1 / sqrt(1 - c^2) is infinite at c = 1, but there dc vanishes to first order in the angle,
    # so its term of the Hessian tends to 0.
    s = 1.0 - jnp.clip(c, -1.0, 1.0) ** 2
    safe = jnp.where(s > 0, s, 1.0)
    return _arc_slope(c), jnp.where(s > 0, jax.lax.rsqrt(safe), 0.0) * dc


def relu_gram(a, b):
    """E[relu(a_i.x) relu(b_j.x)] for rows of a [p, d] and b [q, d]: [p, q]."""
    na, nb = jnp.linalg.norm(a, axis=1), jnp.linalg.norm(b, axis=1)
    cos = (a @ b.T) / (na[:, None] * nb[None, :])
    return na[:, None] * nb[None, :] * _arc_kernel(cos) / (2 * math.pi)


def relu_self_gram(a):
    """``relu_gram(a, a)`` with the diagonal |a_i|^2 / 2 written out (its angle is always 0)."""
    diag = jnp.eye(a.shape[0], dtype=bool)
    na = jnp.linalg.norm(a, axis=1)
    cos = jnp.where(diag, 0.0, (a @ a.T) / (na[:, None] * na[None, :]))
    off = na[:, None] * na[None, :] * _arc_kernel(cos) / (2 * math.pi)
    return jnp.where(diag, 0.5 * jnp.sum(a * a, axis=1)[:, None], off)


def population_loss(w, v):
    """1/2 E[(sum_i relu(w_i.x) - sum_j relu(v_j.x))^2] for student w [n, d], teacher v [k, d]."""
    return 0.5 * (relu_self_gram(w).sum() - 2 * relu_gram(w, v).sum() + relu_gram(v, v).sum())


def student(n: int, k: int) -> gbl.Model:
    """n ReLU units on R^k, Xavier (Glorot) normal; ``apply`` hands the weights to the loss."""
    def init(key, x):
        return jax.random.normal(key, (n, k), x.dtype) * math.sqrt(2.0 / (n + k))

    return gbl.Model(init, lambda w, x: w, name=f"student n={n}")


def run_config(n, k, args):
    """Sweeps one (n, k) and classifies the end points above ``THRESHOLD``; returns a dict."""
    model, teacher = student(n, k), jnp.eye(k)
    loss = lambda w, y: population_loss(w, teacher)   # noqa: E731  (y: the dummy targets)
    data = (jnp.zeros((1, k)), jnp.zeros((1, 1)))
    out = gbl.sweep(model, optax.sgd(args.lr), data, key=jax.random.PRNGKey(args.seed),
                    seeds=args.seeds, steps=args.steps, grad_tol=args.grad_tol, keep_params=True,
                    loss=loss)
    converged = out.converged_step >= 0
    high = converged & (out.final_loss > THRESHOLD)
    kind = np.full(args.seeds, "", dtype=object)
    min_eig = np.full(args.seeds, np.nan)
    if high.any():
        # 2x margin: the recomputed gradient norm differs from the sweep's in float32 rounding.
        cp = gbl.critical_points(model, data, out.params[high], loss=loss,
                                 grad_tol=2 * args.grad_tol)
        kind[high], min_eig[high] = cp.kind, cp.min_eig
    return {"out": out, "converged": converged, "spurious": high & (kind == "minimum"),
            "saddle": high & (kind == "saddle"), "min_eig": min_eig}


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=500)
    p.add_argument("--steps", type=int, default=20000, help="step budget per run")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--grad-tol", type=float, default=1e-4,
                   help="a run has converged when its gradient norm falls below this")
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
            rows.append([
                k, n, args.seeds, n_conv,
                int(np.median(out.converged_step[conv])) if n_conv else "-",
                f"{n_bad}: {100 * n_bad / n_conv:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
                if n_conv else "-",
                int(r["saddle"].sum()), args.seeds - n_conv,
                float(np.median(losses)) if n_bad else "-",
                f"{eigs.min():.3g} .. {eigs.max():.3g}" if n_bad else "-"])
            print(rows[-1], f"({time.perf_counter() - timer.start:.0f} s)", flush=True)
    table = markdown_table(
        ["k (teacher)", "n (student)", "seeds", "converged", "median steps",
         "at a spurious minimum (% of converged [Wilson 95%])", "at a saddle", "not converged",
         "median spurious loss", "smallest Hessian eigenvalue there (min .. max)"], rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for offset, marker, label in ((0, "o-", "n = k"), (2, "s-", "n = k + 2")):
        rate, low, high = (100 * np.asarray([rates[(k + offset, k)][i] for k in ks])
                           for i in range(3))
        ax.errorbar(ks, rate, yerr=[rate - low, high - rate], fmt=marker, capsize=3, label=label)
    ax.set_xlabel("teacher units k")
    ax.set_ylabel("converged runs at a\nspurious minimum (%)")
    ax.set_title(f"GD to |grad| < {args.grad_tol:g}, {args.seeds} Xavier inits each", fontsize=10)
    ax.legend()
    command = (f"python scripts/safran_shamir.py --seeds {args.seeds} --steps {args.steps} "
               f"--lr {args.lr} --grad-tol {args.grad_tol:g} --ks {args.ks}")
    save(args.out, "safran_shamir", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
