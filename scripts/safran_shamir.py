"""Spurious local minima of two-layer ReLU networks (Safran & Shamir 2018), counted by sweeping.

Teacher: k ReLU units with weights e_1..e_k (the standard basis of R^k), output weights fixed to
one. Student: n ReLU units, output weights fixed to one, trained by plain gradient descent from
Xavier init on the *population* loss under x ~ N(0, I_k), which has a closed form:

  E[relu(w.x) relu(v.x)] = |w||v| / (2 pi) (sin t + (pi - t) cos t),  t = angle(w, v)

(Cho & Saul 2009). Written in c = cos t, d/dc (sqrt(1 - c^2) + (pi - arccos c) c) = pi - arccos c
is finite at c = 1, but autodiff of each term alone is inf - inf = NaN there, so the kernel has a
hand-written JVP. A run fails when its final population loss is above 1e-3 (a global minimum
has loss 0). Usage: python scripts/safran_shamir.py [--seeds 500] [--steps 5000]
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from common import Timer, markdown_table, parser, pyplot, save


@jax.custom_jvp
def _arc_kernel(c):
    """sqrt(1 - c^2) + (pi - arccos c) c for c in [-1, 1]."""
    c = jnp.clip(c, -1.0, 1.0)
    return jnp.sqrt(1.0 - c * c) + (math.pi - jnp.arccos(c)) * c


@_arc_kernel.defjvp
def _arc_kernel_jvp(primals, tangents):
    (c,), (dc,) = primals, tangents
    return _arc_kernel(c), (math.pi - jnp.arccos(jnp.clip(c, -1.0, 1.0))) * dc


def relu_gram(a, b):
    """E[relu(a_i.x) relu(b_j.x)] for rows of a [p, d] and b [q, d]: [p, q]."""
    na, nb = jnp.linalg.norm(a, axis=1), jnp.linalg.norm(b, axis=1)
    cos = (a @ b.T) / (na[:, None] * nb[None, :])
    return na[:, None] * nb[None, :] * _arc_kernel(cos) / (2 * math.pi)


def population_loss(w, v):
    """1/2 E[(sum_i relu(w_i.x) - sum_j relu(v_j.x))^2] for student w [n, d], teacher v [k, d]."""
    return 0.5 * (relu_gram(w, w).sum() - 2 * relu_gram(w, v).sum() + relu_gram(v, v).sum())


def run(key, n, k, steps, lr):
    w = jax.random.normal(key, (n, k)) * math.sqrt(2.0 / (n + k))   # Xavier (Glorot) normal
    v = jnp.eye(k)
    grad = jax.grad(population_loss)

    def step(w, _):
        return w - lr * grad(w, v), None

    w, _ = jax.lax.scan(step, w, None, length=steps)
    return population_loss(w, v)


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=500)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args()
    configs = [(k, k) for k in (6, 8, 10, 12)] + [(k + 2, k) for k in (6, 8, 10, 12)]
    rows, rates = [], {}
    with Timer() as timer:
        for n, k in configs:
            keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
            losses = np.asarray(jax.jit(jax.vmap(lambda key: run(key, n, k, args.steps, args.lr)))(keys))
            failed = losses > 1e-3
            rates[(n, k)] = failed.mean()
            rows.append([k, n, args.seeds, f"{100 * failed.mean():.1f}%",
                         float(np.median(losses[failed])) if failed.any() else "-",
                         float(np.max(losses[~failed])) if (~failed).any() else "-"])
            print(rows[-1], flush=True)
    table = markdown_table(["k (teacher)", "n (student)", "seeds", "failed (loss > 1e-3)",
                            "median failed loss", "max succeeded loss"], rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ks = [6, 8, 10, 12]
    ax.plot(ks, [100 * rates[(k, k)] for k in ks], "o-", label="n = k")
    ax.plot(ks, [100 * rates[(k + 2, k)] for k in ks], "s-", label="n = k + 2")
    ax.set_xlabel("teacher units k")
    ax.set_ylabel("runs at a spurious minimum (%)")
    ax.set_title(f"GD on the population loss, {args.seeds} Xavier inits each")
    ax.legend()
    command = f"python scripts/safran_shamir.py --seeds {args.seeds} --steps {args.steps} --lr {args.lr}"
    save(args.out, "safran_shamir", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
