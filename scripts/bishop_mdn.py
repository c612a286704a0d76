"""Bishop's inverse problem: squared error, one heteroscedastic Gaussian, a 3-component MDN.

t ~ U(0, 1), x = t + 0.3 sin(2 pi t) + U(-0.1, 0.1); predict t from x. For x in about (0.35,
0.65) there are three branches, so one Gaussian (squared error: the conditional mean) cuts
through the middle while the MDN puts a component on each branch (Bishop 1994; section 6.2.2.4).
Same 1-20-out tanh network and Adam for all three; test NLL on fresh data. The squared-error
model's NLL uses a homoscedastic Gaussian whose variance is fitted afterwards (the training MSE).
Usage: python scripts/bishop_mdn.py [--steps 6000]
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save

import gbl_jax as gbl


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--n", type=int, default=1000)
    args = p.parse_args()
    train = gbl.problems.bishop_inverse(jax.random.PRNGKey(args.seed + 1), args.n)
    test = gbl.problems.bishop_inverse(jax.random.PRNGKey(args.seed + 2), args.n)
    models = {
        "squared error": (gbl.mlp([20], gbl.heads.gaussian(1)), gbl.squared_error),
        "heteroscedastic Gaussian": (
            gbl.mlp([20], gbl.heads.heteroscedastic_gaussian(1, min_scale=1e-3)),
            gbl.nll,
        ),
        "MDN, 3 components": (
            gbl.mlp([20], gbl.heads.mixture_density(3, 1, min_scale=1e-3)),
            gbl.nll,
        ),
    }
    adam = optax.adam(0.01)
    rows, fitted = [], {}
    with Timer() as timer:
        for name, (model, loss) in models.items():
            res = gbl.train(
                model, adam, train, key=jax.random.PRNGKey(args.seed), steps=args.steps, loss=loss
            )
            dist = model.apply(res.params, test.x)
            if name == "squared error":  # the ML variance of a homoscedastic Gaussian
                sigma = float(jnp.sqrt(gbl.mse(model.apply(res.params, train.x).mean(), train.y)))
                make = lambda d, s=sigma: gbl.Normal(d.loc, s)
                dist = make(dist)
            else:
                make = lambda d: d
            fitted[name] = (model, res.params, make)
            rows.append(
                [
                    name,
                    float(gbl.nll(dist, test.y)),
                    float(gbl.mse(dist.mean().reshape(test.y.shape), test.y)),
                ]
            )
            print(rows[-1], flush=True)
    table = markdown_table(["model", "test NLL (nats)", "test MSE of the mean"], rows)

    plt = pyplot()
    xs, ts = np.linspace(-0.15, 1.15, 200), np.linspace(-0.05, 1.05, 200)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (name, (model, params, make)) in zip(axes, fitted.items()):
        dist = make(model.apply(params, jnp.asarray(xs)[:, None]))
        log_p = jax.vmap(lambda t: dist.log_prob(jnp.full((xs.size, 1), t)).reshape(xs.size))(
            jnp.asarray(ts)
        )
        density = np.exp(np.asarray(log_p))
        density /= density.max(axis=0, keepdims=True)  # each column: p(t | x) up to its peak
        ax.imshow(
            density,
            origin="lower",
            aspect="auto",
            cmap="Blues",
            extent=(xs[0], xs[-1], ts[0], ts[-1]),
        )
        ax.scatter(np.asarray(train.x[:300, 0]), np.asarray(train.y[:300, 0]), s=3, c="tab:orange")
        ax.set_title(name)
        ax.set_xlabel("x")
    axes[0].set_ylabel("t")
    fig.suptitle("p(t | x), each column scaled to its peak, over the data (orange)")
    command = f"python scripts/bishop_mdn.py --steps {args.steps} --n {args.n}"
    save(args.out, "bishop_mdn", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
