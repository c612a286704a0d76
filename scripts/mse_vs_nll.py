"""Squared error against NLL behind a confidently wrong sigmoid and softmax (section 6.2.2.2-3).

One unit, input x = 1 for every example; the init puts the logit of the right answer at -10
(sigmoid: z = -10 for y = 1; softmax: logits (10, -10, 0) for label 1). Plain gradient descent.
The NLL gradient is ~1 there and learning starts at once; squared error's is ~1e-4 and it
barely moves. Usage: python scripts/mse_vs_nll.py [--steps 400] [--lr 0.5]
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save

import gbl_jax as gbl

N = 16


def fixed(weights):
    """An init scheme that returns the given weight matrix (a confidently wrong unit)."""
    return lambda key, shape, dtype=jnp.float32: jnp.asarray(weights, dtype).reshape(shape)


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=0.5)
    args = p.parse_args()
    x = jnp.ones((N, 1))
    units = {
        "sigmoid": (
            gbl.mlp((), gbl.heads.bernoulli(), init=fixed([[-10.0]])),
            jnp.ones(N),
            lambda d: d.probs(),
        ),
        "softmax": (
            gbl.mlp((), gbl.heads.categorical(3), init=fixed([[10.0, -10.0, 0.0]])),
            jnp.ones(N, jnp.int32),
            lambda d: d.probs()[:, 1],
        ),
    }
    sgd = optax.sgd(args.lr)
    rows, curves = [], {}
    with Timer() as timer:
        for unit, (model, y, p_right) in units.items():
            params0 = model.init(jax.random.PRNGKey(0), 1)
            for loss_name, loss in (("NLL", gbl.nll), ("squared error", gbl.squared_error)):
                grad = jax.grad(lambda prm: loss(model.apply(prm, x), y))(params0)
                g0 = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grad))))
                # p(right answer) after each step: train k steps for a few k (each one compile).
                checkpoints = np.unique(np.geomspace(1, args.steps, 12).astype(int))
                probs = []
                for k in checkpoints:
                    res = gbl.train(
                        model, sgd, (x, y), key=jax.random.PRNGKey(0), steps=int(k), loss=loss
                    )
                    probs.append(float(p_right(model.apply(res.params, x))[0]))
                curves[(unit, loss_name)] = (checkpoints, probs)
                half = next((int(k) for k, pr in zip(checkpoints, probs) if pr > 0.5), None)
                rows.append(
                    [
                        unit,
                        loss_name,
                        g0,
                        float(p_right(model.apply(params0, x))[0]),
                        probs[-1],
                        f"<= {half}" if half else f"> {args.steps}",
                    ]
                )
                print(rows[-1], flush=True)
    table = markdown_table(
        [
            "unit",
            "loss",
            "|gradient| at init",
            "p(right) at init",
            f"p(right) after {args.steps} steps",
            "steps to p(right) > 0.5",
        ],
        rows,
    )
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, unit in zip(axes, units):
        for loss_name in ("NLL", "squared error"):
            k, probs = curves[(unit, loss_name)]
            ax.plot(k, probs, "o-", label=loss_name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{unit} unit, confidently wrong at init")
        ax.set_xlabel(f"gradient descent steps (lr {args.lr})")
        ax.legend()
    axes[0].set_ylabel("p(right answer)")
    command = f"python scripts/mse_vs_nll.py --steps {args.steps} --lr {args.lr}"
    save(args.out, "mse_vs_nll", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
