"""Does width shrink the spread of test accuracy? MNIST-1D, crossed inits x data orders per width.

One ReLU hidden layer of each width, Adam(1e-2), minibatches of 100, every one of --inits inits
trained with every one of --orders data orders (gbl.crossed). Per width: the test accuracy's mean
and std with bootstrap 95% intervals, its variance split into init, data order and interaction +
residual (gbl.variance_components), and Jordan (2024)'s binomial prediction of the std from the
per-example correctness of the seeds (what test-set sampling alone would give); then each width
against the narrowest (gbl.compare: paired seeds, the spread ratio with Brown-Forsythe's test).
The last table times each analysis at this seed count against the one-at-a-time way: a Python
loop over bootstrap resamples, and the per-pair loop of a two-way table.
Usage: python scripts/seed_variance.py [--widths 16,64,256] [--inits 32] [--orders 32]
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from common import Timer, int_list, markdown_table, parser, pyplot, save

import gbl_jax as gbl

WIDTHS = "16,64,256"
RESAMPLES = 2000


def correctness(model, params, x, y, chunk: int = 256) -> np.ndarray:
    """[seeds, n] whether each seed's argmax label is right on each held-out example."""
    right = jax.jit(jax.vmap(lambda p: jnp.argmax(model.apply(p, x).logits, -1) == y))
    seeds = jax.tree.leaves(params)[0].shape[0]
    return np.concatenate(
        [
            np.asarray(right(jax.tree.map(lambda a: a[lo : lo + chunk], params)))
            for lo in range(0, seeds, chunk)
        ]
    )


def loop_bootstrap(values, resamples, rng) -> tuple:
    """The one-at-a-time percentile bootstrap of the std: one resample per Python iteration."""
    stats = [np.std(rng.choice(values, values.size)) for _ in range(resamples)]
    return tuple(np.quantile(stats, [0.025, 0.975]))


def loop_components(table) -> np.ndarray:
    """The two-way ANOVA by explicit loops over inits and orders."""
    n_i, n_d = table.shape
    grand = sum(table[i, d] for i in range(n_i) for d in range(n_d)) / (n_i * n_d)
    rows = [sum(table[i, d] for d in range(n_d)) / n_d for i in range(n_i)]
    cols = [sum(table[i, d] for i in range(n_i)) / n_i for d in range(n_d)]
    resid = sum(
        (table[i, d] - rows[i] - cols[d] + grand) ** 2 for i in range(n_i) for d in range(n_d)
    ) / ((n_i - 1) * (n_d - 1))
    ms_i = n_d * sum((r - grand) ** 2 for r in rows) / (n_i - 1)
    ms_d = n_i * sum((c - grand) ** 2 for c in cols) / (n_d - 1)
    return np.array([(ms_i - resid) / n_d, (ms_d - resid) / n_i, resid])


def timed(fn, *args, **kwargs):
    begin = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - begin


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--widths", type=int_list, default=WIDTHS, help=f"hidden widths ({WIDTHS})")
    p.add_argument("--inits", type=int, default=32)
    p.add_argument("--orders", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args()
    data = gbl.problems.mnist1d()
    test_x, test_y = jnp.asarray(data.test.x), jnp.asarray(data.test.y)
    adam = optax.adam(1e-2)
    design = gbl.crossed(init=args.inits, data=args.orders)
    rows, compare_rows, time_rows, outs, stats = [], [], [], {}, {}
    with Timer() as timer:
        for width in args.widths:
            model = gbl.mlp([width], data.head, activation="relu")
            out, train_s = timed(
                gbl.sweep,
                model,
                adam,
                data,
                key=jax.random.PRNGKey(args.seed),
                seeds=design,
                steps=args.steps,
                batch_size=100,
                eval_data=data.test,
                metrics={"accuracy": gbl.accuracy},
                log_every=args.steps,
                keep_params=True,
            )
            outs[width] = out._replace(params=None, init_params=None)
            s, spread_s = timed(gbl.spread, out, metric="test_accuracy")
            (low, high), interval_s = timed(s.interval, "std", resamples=RESAMPLES)
            right, correct_s = timed(correctness, model, out.params, test_x, test_y)
            vc, vc_s = timed(
                gbl.variance_components,
                out,
                metric="test_accuracy",
                correct=right,
                resamples=RESAMPLES,
            )
            acc = np.asarray(out.final_metrics["test_accuracy"], np.float64)
            np.testing.assert_allclose(right.mean(axis=1), acc, atol=1e-6)
            stats[width] = (s, vc)
            mean_low, mean_high = s.interval("mean")
            rows.append(
                [
                    width,
                    s.n_diverged,
                    s.mean,
                    f"[{mean_low:.4f}, {mean_high:.4f}]",
                    s.std,
                    f"[{low:.4f}, {high:.4f}]",
                    vc.binomial_std,
                    vc.init,
                    vc.data,
                    vc.residual,
                    s.seeds_for(0.001),
                    train_s,
                ]
            )
            print(rows[-1], flush=True)
            _, loop_s = timed(loop_bootstrap, acc, RESAMPLES, np.random.default_rng(0))
            _, loop_table_s = timed(loop_components, acc.reshape(args.inits, args.orders))
            time_rows.append(
                [
                    width,
                    spread_s,
                    interval_s,
                    loop_s,
                    vc_s,
                    loop_table_s * (RESAMPLES + 1),
                    correct_s,
                ]
            )
        base = args.widths[0]
        for width in args.widths[1:]:
            c, compare_s = timed(
                gbl.compare, outs[width], outs[base], metric="test_accuracy", resamples=2000
            )
            compare_rows.append(
                [
                    f"{width} vs {base}",
                    c.paired,
                    c.mean_diff,
                    f"[{c.mean_diff_ci[0]:.4f}, {c.mean_diff_ci[1]:.4f}]",
                    c.test_p,
                    c.prob_better,
                    c.spread_ratio,
                    f"[{c.spread_ratio_ci[0]:.3f}, {c.spread_ratio_ci[1]:.3f}]",
                    c.spread_p,
                    compare_s,
                ]
            )
    table = "\n\n".join(
        [
            markdown_table(
                [
                    "width",
                    "diverged",
                    "mean test acc",
                    "95% CI",
                    "std",
                    "95% CI",
                    "binomial std",
                    "var init",
                    "var data",
                    "var residual",
                    "seeds for +-0.001",
                    "train s",
                ],
                rows,
            ),
            markdown_table(
                [
                    "widths",
                    "paired",
                    "mean diff",
                    "95% CI",
                    "Wilcoxon p",
                    "P(wider better)",
                    "std ratio",
                    "95% CI",
                    "Brown-Forsythe p",
                    "compare s",
                ],
                compare_rows,
            ),
            markdown_table(
                [
                    "width",
                    "spread s",
                    "std interval s",
                    "std interval s (a loop over resamples)",
                    "variance components s",
                    "variance components s (loops, one table x resamples + 1)",
                    "correctness s",
                ],
                time_rows,
            ),
        ]
    )
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    widths = args.widths
    for name, color in (("init", "C0"), ("data", "C1"), ("residual", "C2")):
        values = [getattr(stats[w][1], name) ** 0.5 for w in widths]
        lows = [stats[w][1].interval(name)[0] ** 0.5 for w in widths]
        highs = [stats[w][1].interval(name)[1] ** 0.5 for w in widths]
        left.errorbar(
            widths,
            values,
            yerr=[np.subtract(values, lows), np.subtract(highs, values)],
            fmt="o-",
            color=color,
            capsize=3,
            label=f"{name} (sqrt of its variance)",
        )
    left.plot(widths, [stats[w][0].std for w in widths], "k^--", label="measured std")
    left.plot(
        widths, [stats[w][1].binomial_std for w in widths], "kx:", label="binomial prediction"
    )
    left.set_xscale("log", base=2)
    left.set_xticks(widths, [str(w) for w in widths])
    left.set_xlabel("hidden width")
    left.set_ylabel("test accuracy, std over runs")
    left.legend(fontsize=8)
    for w in widths:
        acc = np.asarray(outs[w].final_metrics["test_accuracy"])
        right.hist(acc, bins=40, histtype="step", label=f"width {w}")
    right.set_xlabel("test accuracy")
    right.set_ylabel("runs")
    right.legend(fontsize=8)
    fig.suptitle(
        f"MNIST-1D, {args.inits} inits x {args.orders} data orders per width, "
        f"Adam 1e-2, batch 100, {args.steps} steps",
        fontsize=10,
    )
    command = (
        f"python scripts/seed_variance.py --widths {','.join(map(str, widths))} "
        f"--inits {args.inits} --orders {args.orders} --steps {args.steps}"
    )
    save(args.out, "seed_variance", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
