"""When a run's fate is decided on MNIST-1D: instability, the edge of stability, one-ulp seeds.

1. Instability analysis (Frankle et al. 2020): the MLP 40-100-100-10 (ReLU), SGD with momentum
   0.9 (lr --lr), minibatches of 100; --parents parents train to each k of --at, two children
   each continue on their own data orders to --steps; the test-error barrier between them, and
   P(stable | k) (barrier < 2%) with Wilson intervals. Timed against a plain sweep's cost per
   run-step (the analysis trains parents x max(k) + parents x children x sum(steps - k) steps).
2. Edge of stability (Cohen et al. 2021): the MLP 40-64-64-10 (tanh) on the first 1000 training
   examples, one-hot targets under a unit Gaussian (squared error), full-batch gradient descent
   at two step sizes (--eos-lrs); sharpness (20 power-iteration products at each of 60 windows)
   against 2 / lr.
   The probes' cost: the same sweep with and without them, each timed on its second call.
3. Tiny perturbations (Summers & Dinneen 2021): --perturb-seeds seeds of the instability
   section's MLP and optimizer with vary=("perturb",) (one initial weight moved by one ulp)
   beside as many full reseeds; the std of test accuracy with bootstrap 95% intervals.
Usage: python scripts/instability.py [--parents 64] [--steps 3000] [--at 0,10,100,300,1000]
"""

import time

import jax
import numpy as np
import optax
from common import Timer, int_list, markdown_table, parser, pyplot, save

import gbl_jax as gbl


def timed(fn):
    begin = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - begin


def main():
    p = parser(__doc__, "runs/scripts")
    p.add_argument("--parents", type=int, default=64)
    p.add_argument("--children", type=int, default=2)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--at", type=int_list, default="0,10,100,300,1000")
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--eos-steps", type=int, default=3000)
    p.add_argument("--eos-lrs", default="0.15,0.2")
    p.add_argument("--eos-seeds", type=int, default=4)
    p.add_argument("--perturb-seeds", type=int, default=64)
    args = p.parse_args()
    eos_lrs = [float(v) for v in args.eos_lrs.split(",")]
    data = gbl.problems.mnist1d()
    key = jax.random.PRNGKey(args.seed)
    model = gbl.mlp([100, 100], data.head, activation="relu")
    opt = optax.sgd(args.lr, momentum=0.9)
    with Timer() as timer:
        # 1. instability
        res, inst_s = timed(
            lambda: gbl.instability(
                model,
                opt,
                data,
                key=key,
                parents=args.parents,
                steps=args.steps,
                at=args.at,
                children=args.children,
                batch_size=100,
            )
        )
        base, base_s = timed(
            lambda: gbl.sweep(
                model, opt, data, key=key, seeds=args.parents, steps=args.steps, batch_size=100
            )
        )
        run_steps = args.parents * max(args.at) + args.parents * args.children * sum(
            args.steps - k for k in args.at
        )
        equivalent_s = base_s / (args.parents * args.steps) * run_steps
        rate = res.stable_rate(0.02)
        worst = np.max(res.barriers["error"], axis=-1)
        inst_rows = [
            [
                int(k),
                f"{np.median(worst[i]):.4f}",
                f"[{np.quantile(worst[i], 0.25):.4f}, {np.quantile(worst[i], 0.75):.4f}]",
                f"{rate.stable[i]}/{rate.n[i]}",
                f"{rate.rate[i]:.2f}",
                f"[{rate.low[i]:.2f}, {rate.high[i]:.2f}]",
                f"{np.median(np.max(res.barriers['loss'][i], axis=-1)):.4f}",
            ]
            for i, k in enumerate(res.at)
        ]
        # 2. edge of stability
        sub = (data.x[:1000], jax.nn.one_hot(data.y[:1000], 10))
        small = gbl.mlp([64, 64], gbl.heads.gaussian(10), activation="tanh")
        probes = {"sharpness": gbl.probes.sharpness(iters=20)}
        eos, eos_rows = {}, []
        for lr in eos_lrs:

            def go(with_probes, lr=lr):
                return gbl.sweep(
                    small,
                    optax.sgd(lr),
                    sub,
                    key=key,
                    seeds=args.eos_seeds,
                    steps=args.eos_steps,
                    log_every=max(1, args.eos_steps // 60),
                    probes=probes if with_probes else None,
                )

            eos[lr], _ = timed(lambda: go(True))
            _, probed_s = timed(lambda: go(True))  # compiled: the run alone
            go(False)
            _, plain_s = timed(lambda: go(False))
            s = eos[lr].probes["sharpness"]
            late = s[:, s.shape[1] // 2 :]
            eos_rows.append(
                [
                    lr,
                    2 / lr,
                    f"{np.max(s):.2f}",
                    f"{np.mean(late):.2f}",
                    f"[{np.min(late):.2f}, {np.max(late):.2f}]",
                    f"{np.mean(late) / (2 / lr):.2f}",
                    f"{np.mean(eos[lr].losses[:, -1]):.4f}",
                    f"{plain_s:.1f}",
                    f"{probed_s:.1f}",
                    f"{(probed_s - plain_s) / plain_s:.0%}",
                ]
            )
        # 3. one-ulp perturbations beside reseeds
        spreads, accs = {}, {}
        for name, vary in (
            ("perturb (one ulp)", ("perturb",)),
            ("reseed (init, data)", ("init", "data")),
        ):
            out = gbl.sweep(
                model,
                opt,
                data,
                key=key,
                seeds=args.perturb_seeds,
                steps=args.steps,
                batch_size=100,
                vary=vary,
                eval_data=data.test,
                metrics={"accuracy": gbl.accuracy},
                log_every=args.steps,
            )
            spreads[name] = gbl.spread(out, metric="test_accuracy")
            accs[name] = np.asarray(out.final_metrics["test_accuracy"])
    perturb_rows = [
        [
            name,
            s.n,
            f"{float(s.mean):.4f}",
            f"{float(s.std):.4f}",
            "[{:.4f}, {:.4f}]".format(*s.interval("std")),
            f"{float(s.min):.4f}",
            f"{float(s.max):.4f}",
        ]
        for name, s in spreads.items()
    ]
    crossing = rate.crossing(0.5)
    table = "\n\n".join(
        [
            markdown_table(
                [
                    "k",
                    "median error barrier",
                    "IQR",
                    "stable",
                    "P(stable)",
                    "Wilson 95%",
                    "median loss barrier",
                ],
                inst_rows,
            ),
            markdown_table(
                [
                    "parents x children",
                    "steps",
                    "P(stable) >= 1/2 from k",
                    "analysis s",
                    "sweep of the parents s",
                    "run-steps",
                    "sweep-equivalent s",
                    "analysis / equivalent",
                ],
                [
                    [
                        f"{args.parents} x {args.children}",
                        args.steps,
                        crossing,
                        f"{inst_s:.1f}",
                        f"{base_s:.1f}",
                        run_steps,
                        f"{equivalent_s:.1f}",
                        f"{inst_s / equivalent_s:.2f}",
                    ]
                ],
            ),
            markdown_table(
                [
                    "lr",
                    "2 / lr",
                    "max sharpness",
                    "mean, 2nd half",
                    "range, 2nd half",
                    "mean / (2 / lr)",
                    "final loss",
                    "run s",
                    "with probe s",
                    "probe cost",
                ],
                eos_rows,
            ),
            markdown_table(
                ["seeds differ by", "seeds", "mean test acc", "std", "std 95% CI", "min", "max"],
                perturb_rows,
            ),
        ]
    )
    plt = pyplot()
    fig = plt.figure(figsize=(14, 4.2), layout="constrained")
    left, mid, right = fig.subplots(1, 3)
    steps = 1 + np.arange(len(rate.rate))
    for i in range(worst.shape[1]):
        left.plot(
            steps + np.random.default_rng(i).uniform(-0.15, 0.15),
            worst[:, i],
            ".",
            color="tab:blue",
            alpha=0.3,
        )
    left.plot(steps, np.median(worst, axis=1), "-", color="tab:blue", label="median barrier")
    left.axhline(0.02, color="gray", linestyle="--", linewidth=1, label="2%")
    twin = left.twinx()
    twin.errorbar(
        steps,
        rate.rate,
        yerr=[rate.rate - rate.low, rate.high - rate.rate],
        fmt="o-",
        color="tab:red",
        capsize=3,
    )
    twin.set_ylabel("P(stable | k)", color="tab:red")
    twin.set_ylim(-0.02, 1.02)
    left.set_xticks(steps, [str(int(k)) for k in res.at])
    left.set_xlabel("spawn step k")
    left.set_ylabel("test-error barrier between children")
    left.legend(fontsize=8)
    for i, lr in enumerate(eos_lrs):
        s = eos[lr].probes["sharpness"]
        x = (1 + np.arange(s.shape[1])) * max(1, args.eos_steps // 60)
        mid.plot(x, s.T, color=f"C{i}", alpha=0.5, linewidth=1)
        mid.axhline(2 / lr, color=f"C{i}", linestyle="--", label=f"2 / lr, lr = {lr:g}")
    mid.set_xlabel("step (full-batch GD)")
    mid.set_ylabel("sharpness (top Hessian eigenvalue)")
    mid.legend(fontsize=8)
    for name, acc in accs.items():
        right.hist(acc[np.isfinite(acc)], bins=20, alpha=0.5, label=name)
    right.set_xlabel("test accuracy")
    right.set_ylabel("seeds")
    right.legend(fontsize=8)
    fig.suptitle(
        f"MNIST-1D: instability ({args.parents} parents, SGD momentum, {args.steps} "
        "steps), edge of stability, one-ulp perturbations",
        fontsize=10,
    )
    command = (
        f"python scripts/instability.py --parents {args.parents} --children "
        f"{args.children} --steps {args.steps} --at {','.join(map(str, args.at))} "
        f"--lr {args.lr:g} --eos-steps {args.eos_steps} --eos-lrs {args.eos_lrs} "
        f"--eos-seeds {args.eos_seeds} --perturb-seeds {args.perturb_seeds}"
    )
    save(args.out, "instability", table, fig, command, timer.seconds)


if __name__ == "__main__":
    main()
