# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11. Statistics of seeds: intervals, comparisons, and where the spread comes from
#
# Section 6.2 says SGD on a non-convex loss is sensitive to its initial parameters. Notebook 10
# measured how spread out MNIST-1D's test accuracies are over seeds. This one asks the questions
# a paper about seeds has to answer, with the statistics seed studies publish (Bouthillier et al.
# 2021; Agarwal et al. 2021, rliable; Jordan 2024):
#
# - how sure are we of a mean or a std measured over a few dozen seeds (bootstrap intervals)?
# - what would a paper that reports its best of 5 seeds print (the expected best of n)?
# - is a wider net better, and is it *less spread out* (a paired comparison of two sweeps)?
# - how much of the spread is the init, how much the minibatch order, and how much would the
#   test set's own sampling give anyway (a crossed design, variance components, and Jordan's
#   binomial prediction)?
#
# The runs are short (300 steps of Adam 1e-2, minibatches of 100) and the design small (6 inits x
# 6 orders per width), so the notebook runs in a minute; `scripts/seed_variance.py` runs the
# same analysis at 32 x 32 = 1024 runs per width (the results page).

# %%
import json

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

gbl.use_cpu_cores()

data = gbl.problems.mnist1d()
STEPS, INITS, ORDERS = 300, 6, 6
design = gbl.crossed(init=INITS, data=ORDERS)   # every init with every minibatch order
adam = optax.adam(1e-2)
outs, params = {}, {}
for width in (16, 128):
    model = gbl.mlp([width], data.head, activation="relu")
    out = gbl.sweep(model, adam, data, key=jax.random.PRNGKey(0), seeds=design, steps=STEPS,
                    batch_size=100, eval_data=data.test, metrics={"accuracy": gbl.accuracy},
                    log_every=STEPS, keep_params=True)
    outs[width] = out
    print(f"width {width}: {out.final_loss.size} runs, crossed {out.crossed}, "
          f"{int(out.diverged.sum())} diverged")

# %% [markdown]
# ## Intervals of any statistic
#
# `gbl.spread(out, metric="test_accuracy")` summarizes a held-out metric instead of the final
# training loss. `s.interval(stat)` is a percentile bootstrap over the seeds (2,000 resamples,
# seeded, so it repeats); the IQM is rliable's interquartile mean. `expected_best(5)` is the
# expected best test accuracy of 5 seeds drawn from these 36, exact from the order statistics:
# what "best of 5 seeds" reports on average, against the mean that one seed gives.

# %%
for width, out in outs.items():
    s = gbl.spread(out, metric="test_accuracy")
    lo, hi = s.interval("mean")
    slo, shi = s.interval("std")
    print(f"width {width:>3}: mean {s.mean:.4f} [{lo:.4f}, {hi:.4f}], std {s.std:.4f} "
          f"[{slo:.4f}, {shi:.4f}], IQM {s.iqm:.4f}; best of 5 seeds {s.expected_best(5):.4f}, "
          f"worst of 5 {s.expected_worst(5):.4f}; seeds for a mean to +-0.002: "
          f"{s.seeds_for(0.002)}")

# %% [markdown]
# ## Is the wider net better, and less spread out?
#
# Both sweeps used the same key and the same design, so seed i of one starts from the same key
# as seed i of the other: `gbl.compare` pairs them (Wilcoxon's signed-rank test, pairs resampled
# together), gives P(wider better than narrower) with an interval, and the spread ratio with an
# interval and Brown-Forsythe's equal-spread test. A paired McNemar table would need a threshold;
# it answers a different question (how often each succeeds), so it is left out here.

# %%
c = gbl.compare(outs[128], outs[16], metric="test_accuracy", resamples=2000)
print(c.summary())

# %% [markdown]
# ## Where the spread comes from
#
# The crossed table (inits x orders, one run each) splits the test accuracy's variance into the
# init's component, the order's, and the interaction with everything else, by the two-way
# random-effects ANOVA (method of moments; a negative estimate is reported as 0 and named). With
# each seed's per-example correctness on the held-out set, `variance_components` adds Jordan
# (2024)'s binomial prediction: the std the seeds would show if each got each test example right
# independently with the share of seeds that do. A measured std near it says most of the spread
# is the test set's sampling, not a difference between the trained functions.

# %%
x_test, y_test = jnp.asarray(data.test.x), jnp.asarray(data.test.y)
components = {}
for width, out in outs.items():
    model = gbl.mlp([width], data.head, activation="relu")
    right = jax.jit(jax.vmap(lambda p: jnp.argmax(model.apply(p, x_test).logits, -1) == y_test))
    correct = np.asarray(right(out.params))
    vc = components[width] = gbl.variance_components(out, metric="test_accuracy",
                                                     correct=correct)
    print(f"width {width}:")
    print(vc.summary())

# %%
fig, (left, right_ax) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
names = ("init", "data", "residual")
for k, width in enumerate(outs):
    vc = components[width]
    values = np.sqrt([getattr(vc, n) for n in names])
    lows = np.sqrt([vc.interval(n)[0] for n in names])
    highs = np.sqrt([vc.interval(n)[1] for n in names])
    left.errorbar(np.arange(3) + 0.15 * k, values, yerr=[values - lows, highs - values],
                  fmt="o", capsize=3, label=f"width {width}")
    left.axhline(vc.binomial_std, color=f"C{k}", ls=":", lw=1)
left.set_xticks(range(3), ["init", "data order", "residual"])
left.set_ylabel("std of test accuracy (sqrt of the component)")
left.set_title("variance components (dotted: binomial prediction)", fontsize=10)
left.legend(fontsize=8)
for width, out in outs.items():
    table = np.asarray(out.final_metrics["test_accuracy"]).reshape(INITS, ORDERS)
    right_ax.plot(table.mean(axis=1), "o-", label=f"width {width}: mean over orders, per init")
right_ax.set_xlabel("init")
right_ax.set_ylabel("test accuracy")
right_ax.legend(fontsize=8)
fig.suptitle(f"MNIST-1D, {INITS} inits x {ORDERS} orders, Adam 1e-2, batch 100, {STEPS} steps",
             fontsize=10)
plt.show()

# %% [markdown]
# Read the numbers as a design check, not a verdict: six inits and six orders leave intervals
# wide enough that a component can be clipped to 0. The results page's 32 x 32 runs per width
# narrow them.

# %%
print("RESULTS " + json.dumps({
    "mean_diff": c.mean_diff, "paired": c.paired, "prob_better": c.prob_better,
    "spread_ratio": c.spread_ratio,
    "measured_std": {w: components[w].measured_std for w in components},
    "binomial_std": {w: components[w].binomial_std for w in components},
    "init": {w: components[w].init for w in components},
    "data": {w: components[w].data for w in components}}))
