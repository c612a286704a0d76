"""Which randomness spreads the final loss: the init, the minibatch order, or both (two_spirals).

Summers & Dinneen (2021) found that each source of training noise alone spreads the final loss
about as much as all of them together, and that a one-bit change in one initial weight is enough
to end in a different model. Here: a 2-16-16-1 tanh net on 256 two_spirals points, Adam(0.01),
minibatches of 32, the same seeds four times: only the init varies, only the minibatch order
varies, both vary, and a one-bit row (every seed starts from one fixed init with one random
bit among the lowest 8 mantissa bits of one random weight flipped, and uses seed 0's minibatch
order). Eval NLL and accuracy are on 1024 held-out points.
Usage: python scripts/noise_sources.py [--seeds 256] [--steps 2000]
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save
from jax.flatten_util import ravel_pytree

import gbl_jax as gbl

LOW_BITS = 8  # the flipped bit is one of the lowest LOW_BITS mantissa bits


def accuracy(dist, y):
    return jnp.mean(dist.mode() == y)


def one_bit(model, base_key):
    """``model`` whose init is ``base_key``'s params with one bit of one nonzero weight flipped."""

    def init(key, x):
        flat, unravel = ravel_pytree(model.init(base_key, x))
        k_where, k_bit = jax.random.split(key)
        nonzero = (flat != 0).astype(jnp.float32)  # biases start at 0: a flip there is denormal
        i = jax.random.choice(k_where, flat.size, p=nonzero / jnp.sum(nonzero))
        bit = jax.random.randint(k_bit, (), 0, LOW_BITS).astype(jnp.uint32)
        bits = jax.lax.bitcast_convert_type(flat[i], jnp.uint32) ^ (jnp.uint32(1) << bit)
        return unravel(flat.at[i].set(jax.lax.bitcast_convert_type(bits, flat.dtype)))

    return gbl.Model(init, model.apply, name=f"one_bit({model.name})")


def stats(values):
    values = np.asarray(values, np.float64)
    q25, q75 = np.quantile(values, [0.25, 0.75])
    return [values.mean(), values.std(), q75 - q25, values.min(), values.max()]


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=256)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    data = gbl.problems.two_spirals(jax.random.PRNGKey(args.seed + 1), 256)
    test = gbl.problems.two_spirals(jax.random.PRNGKey(args.seed + 2), 1024)
    model = gbl.mlp([16, 16], data.head)
    key = jax.random.PRNGKey(args.seed)
    flipped = one_bit(model, jax.random.PRNGKey(args.seed + 3))
    sources = {
        "init": (model, ("init",)),
        "minibatch order": (model, ("data",)),
        "both": (model, ("init", "data")),
        "one bit of one weight": (flipped, ("init",)),
    }
    finals, rows, distinct = {}, [], None
    with Timer() as timer:
        for name, (net, vary) in sources.items():
            out = gbl.sweep(
                net,
                optax.adam(0.01),
                data,
                key=key,
                seeds=args.seeds,
                steps=args.steps,
                batch_size=args.batch_size,
                vary=vary,
                metrics={"accuracy": accuracy},
                eval_data=test,
                log_every=args.steps,
                keep_params=net is not model,
            )
            ok = ~out.diverged
            finals[name] = out.final_loss[ok]
            if net is not model:
                flat = np.stack(
                    [
                        ravel_pytree(jax.tree.map(lambda a: a[s], out.init_params))[0]
                        for s in range(args.seeds)
                    ]
                )
                distinct = len(np.unique(flat, axis=0))
            rows.append(
                [
                    name,
                    int(ok.sum()),
                    *stats(out.final_loss[ok]),
                    *stats(out.final_metrics["test_nll"][ok])[:2],
                    *stats(100 * out.final_metrics["test_accuracy"][ok])[:2],
                ]
            )
            print(rows[-1], flush=True)
    headers = [
        "varied",
        "seeds",
        "train NLL mean",
        "std",
        "IQR",
        "min",
        "max",
        "eval NLL mean",
        "eval NLL std",
        "test acc. % mean",
        "test acc. % std",
    ]
    table = markdown_table(headers, rows)
    table += (
        f"\n\nOne-bit row: {distinct} distinct initial parameter vectors among "
        f"{args.seeds} seeds (two seeds can draw the same bit)."
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.boxplot(list(finals.values()), whis=(5, 95))
    ax.set_xticks(np.arange(1, len(finals) + 1), list(finals))
    ax.set_yscale("log")
    ax.set_ylabel("final training NLL\n(whiskers 5-95%)")
    ax.set_title(
        f"two_spirals, 2-16-16-1 tanh, Adam, batch {args.batch_size}, {args.steps} steps, "
        f"{args.seeds} seeds",
        fontsize="medium",
    )
    command = (
        f"python scripts/noise_sources.py --seeds {args.seeds} --steps {args.steps} "
        f"--batch-size {args.batch_size}"
    )
    save(args.out, "noise_sources", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
