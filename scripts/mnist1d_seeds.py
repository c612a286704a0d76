"""How spread out are the test accuracies of one model on real data over many inits (MNIST-1D)?

The question Picard (2021) asked of CIFAR-10 with 10^4 seeds, on MNIST-1D (Greydanus 2020) at
the mnist1d quickstart's settings: Adam 1e-2, minibatches of 100, 6000 steps. Models: logistic
regression (the convex control), the MLP 40-100-100-10 ReLU, and the paper's CNN (three stride-2
convs of 25 channels, ReLU, a linear head); the CNN again on the shuffled-sequence variant (its
spatial prior removed); and the MLP with only the init varying, then only the minibatch order.
Each row: mean test accuracy, std, min, max, best minus worst, over the seeds.
Usage: python scripts/mnist1d_seeds.py [--seeds 1024] [--cnn-seeds 32] [--vary-seeds 256]
       [--steps 6000]
"""

import jax
import numpy as np
import optax
from common import Timer, markdown_table, parser, pyplot, save

import gbl_jax as gbl


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument(
        "--seeds",
        type=int,
        default=1024,
        help="seeds for logistic regression and the MLP (default 1024)",
    )
    p.add_argument("--cnn-seeds", type=int, default=32, help="seeds for the CNN (default 32)")
    p.add_argument(
        "--vary-seeds",
        type=int,
        default=256,
        help="seeds for the MLP with only "
        "the init or only the minibatch order varying (default 256)",
    )
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=100)
    args = p.parse_args()
    data = gbl.problems.mnist1d()
    shuffled = gbl.problems.mnist1d(shuffle_seq=True)
    head = data.head
    adam = optax.adam(1e-2)
    key = jax.random.PRNGKey(args.seed)
    runs = [
        ("logistic regression", gbl.mlp([], head), data, args.seeds, ("init", "data")),
        (
            "MLP 100-100 ReLU",
            gbl.mlp([100, 100], head, activation="relu"),
            data,
            args.seeds,
            ("init", "data"),
        ),
        (
            "MLP, init only",
            gbl.mlp([100, 100], head, activation="relu"),
            data,
            args.vary_seeds,
            ("init",),
        ),
        (
            "MLP, minibatch order only",
            gbl.mlp([100, 100], head, activation="relu"),
            data,
            args.vary_seeds,
            ("data",),
        ),
        ("CNN 25-25-25", gbl.cnn1d([25, 25, 25], head), data, args.cnn_seeds, ("init", "data")),
        (
            "CNN, shuffled sequence",
            gbl.cnn1d([25, 25, 25], head),
            shuffled,
            args.cnn_seeds,
            ("init", "data"),
        ),
    ]
    rows, accuracies = [], {}
    with Timer() as timer:
        for name, model, d, seeds, vary in runs:
            with Timer() as one:
                # metrics (on all 5000 examples) at 10 points per run, not the default 100
                out = gbl.sweep(
                    model,
                    adam,
                    d,
                    key=key,
                    seeds=seeds,
                    steps=args.steps,
                    batch_size=args.batch_size,
                    vary=vary,
                    eval_data=d.test,
                    log_every=max(1, args.steps // 10),
                    metrics={"accuracy": gbl.accuracy},
                )
            acc = out.final_metrics["test_accuracy"][~out.diverged]
            accuracies[name] = acc
            rows.append(
                [
                    name,
                    seeds,
                    "+".join(vary),
                    float(acc.mean()),
                    float(acc.std()),
                    float(acc.min()),
                    float(acc.max()),
                    float(acc.max() - acc.min()),
                    int(out.diverged.sum()),
                    one.seconds,
                ]
            )
            print(rows[-1], flush=True)
    table = markdown_table(
        [
            "model",
            "seeds",
            "vary",
            "mean test acc",
            "std",
            "min",
            "max",
            "best - worst",
            "diverged",
            "time (s)",
        ],
        rows,
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    bins = np.linspace(
        min(a.min() for a in accuracies.values()), max(a.max() for a in accuracies.values()), 60
    )
    for name, acc in accuracies.items():
        ax.hist(
            acc,
            bins=bins,
            density=True,
            histtype="step",
            linewidth=1.5,
            label=f"{name} ({acc.size} seeds)",
        )
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("density of seeds")
    ax.set_title(
        f"MNIST-1D: test accuracy over random seeds, Adam 1e-2, batch "
        f"{args.batch_size}, {args.steps} steps",
        fontsize="medium",
    )
    ax.legend(fontsize="x-small")
    command = (
        f"python scripts/mnist1d_seeds.py --seeds {args.seeds} --cnn-seeds "
        f"{args.cnn_seeds} --vary-seeds {args.vary_seeds} --steps {args.steps}"
    )
    save(args.out, "mnist1d_seeds", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
