"""What MNIST-1D's seeds disagree on, and what an ensemble of them buys.

The MLP 40-100-100-10 (ReLU), Adam(1e-2), minibatches of 100, --seeds seeds kept with their
predictions on the 1000 held-out examples (keep_predictions=True). The pairwise disagreement of
every pair of seeds against their mean test error (Jiang et al. 2022 find the two close), and
ensembles of 1 to 128 seeds (the mixture of their predictive distributions, --draws draws per
size) scored by NLL, Brier score, accuracy and ECE; each analysis timed.
Usage: python scripts/seed_ensembles.py [--seeds 1024] [--steps 1000] [--draws 20]
"""

import time

import jax
import numpy as np
import optax
from common import Timer, int_list, markdown_table, parser, save

import gbl_jax as gbl

SIZES = "1,2,4,8,16,32,64,128"


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--seeds", type=int, default=1024)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--sizes", type=int_list, default=SIZES, help=f"ensemble sizes ({SIZES})")
    args = p.parse_args()
    data = gbl.problems.mnist1d()
    y = np.asarray(data.test.y)
    model = gbl.mlp([100, 100], data.head, activation="relu")
    with Timer() as timer:
        begin = time.perf_counter()
        out = gbl.sweep(
            model,
            optax.adam(1e-2),
            data,
            key=jax.random.PRNGKey(args.seed),
            seeds=args.seeds,
            steps=args.steps,
            batch_size=100,
            eval_data=data.test,
            metrics={"accuracy": gbl.accuracy},
            log_every=args.steps,
            keep_predictions=True,
        )
        train_s = time.perf_counter() - begin
        begin = time.perf_counter()
        d = gbl.disagreement(out, y)
        disagreement_s = time.perf_counter() - begin
        sizes = [m for m in args.sizes if m <= args.seeds]
        begin = time.perf_counter()
        curve = gbl.ensemble(out, y, sizes=sizes, draws=args.draws)
        ensemble_s = time.perf_counter() - begin
        begin = time.perf_counter()
        cal = gbl.calibration(gbl.Categorical(out.predictions.logits[0]), y)
        calibration_s = time.perf_counter() - begin
    acc = np.asarray(out.final_metrics["test_accuracy"])
    summary = markdown_table(
        [
            "seeds",
            "diverged",
            "mean test error",
            "pairwise disagreement",
            "95% CI",
            "disagreement / error",
            "seed 0's ECE",
            "train s",
            "disagreement s",
            "ensemble s",
            "calibration s",
        ],
        [
            [
                args.seeds,
                int(out.diverged.sum()),
                d.test_error,
                d.mean,
                f"[{d.interval[0]:.4f}, {d.interval[1]:.4f}]",
                d.ratio,
                cal.ece,
                train_s,
                disagreement_s,
                ensemble_s,
                calibration_s,
            ]
        ],
    )
    frame = curve.to_frame()
    rows = [
        [
            int(r["size"]),
            r["nll"],
            f"[{r['nll_low']:.4f}, {r['nll_high']:.4f}]",
            r["accuracy"],
            f"[{r['accuracy_low']:.4f}, {r['accuracy_high']:.4f}]",
            r["brier"],
            r["ece"],
        ]
        for _, r in frame.iterrows()
    ]
    table = (
        summary
        + "\n\n"
        + markdown_table(
            ["ensemble size", "NLL", "95% of draws", "accuracy", "95% of draws", "Brier", "ECE"],
            rows,
        )
    )
    print(f"single seeds: test accuracy {acc.mean():.4f} +- {acc.std():.4f}")
    fig = gbl.plots.ensemble_figure(
        curve,
        d,
        title=f"MNIST-1D MLP 100-100, {args.seeds} seeds, "
        f"{args.steps} steps, {args.draws} draws per size",
    )
    command = (
        f"python scripts/seed_ensembles.py --seeds {args.seeds} --steps {args.steps} "
        f"--draws {args.draws} --sizes {','.join(map(str, args.sizes))}"
    )
    save(args.out, "seed_ensembles", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
