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
# # 7. Initialization sensitivity (section 6.2)
#
# Gradient descent on a non-convex loss has no convergence guarantee and depends on where it
# starts. `gbl.sweep` trains one model from many inits at once; `gbl.spread` says how far apart
# the final losses land. A convex model (logistic regression) lands in one place.
# `gbl.use_cpu_cores()` gives JAX one device per CPU core, and sweeps shard their seeds across
# them.

# %%
import json

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

gbl.use_cpu_cores()

xor = gbl.problems.xor()
adam = optax.adam(0.05)
out = gbl.sweep(gbl.mlp([2], xor.head), adam, xor, key=jax.random.PRNGKey(0), seeds=512, steps=1500)
s = gbl.spread(out)
xor_failed = 1 - s.success_rate(0.1)
low, high = s.success_interval(0.1)
print(s.summary())
print(f"failed (final NLL > 0.1): {100 * xor_failed:.1f}% of seeds "
      f"(95% interval {100 * (1 - high):.1f}-{100 * (1 - low):.1f}%)")
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
gbl.plots.final_loss_histogram(out.final_loss, out.diverged, threshold=0.1, ax=left,
                               title="XOR, 2 hidden tanh units, Adam(0.05), 512 inits")
gbl.plots.loss_curves_by_outcome(out.losses, out.log_every, success=out.final_loss < 0.1,
                                 diverged=out.diverged, ax=right)
plt.show()

# %% [markdown]
# Two populations: about half the seeds solve XOR (NLL near 1e-3); the rest stop on a plateau,
# most at $\tfrac12\log 2 \approx 0.347$ (two of the four points left at $p = \tfrac12$), a few
# near 0.48.
#
# The convex control against a small MLP on the same data (circles), both from the wide init
# N(0, 3^2). Logistic regression cannot separate circles, but its NLL is convex and has one
# minimum, so every init lands on the same loss; the MLP's final losses spread over decades.

# %%
circles = gbl.problems.circles(jax.random.PRNGKey(1), 256)
wide_init = gbl.inits.normal(3.0)
control = {}
for name, hidden in (("logistic regression", ()), ("MLP 2-3-1", [3])):
    o = gbl.sweep(gbl.mlp(hidden, circles.head, init=wide_init), adam, circles,
                  key=jax.random.PRNGKey(0), seeds=128, steps=1500)
    control[name] = o.final_loss
    print(f"{name:>20}: std of final NLL over 128 inits = {gbl.spread(o).std:.2e}")
jitter = np.random.default_rng(0).uniform(-0.15, 0.15, 128)   # display only
for i, (name, losses) in enumerate(control.items()):
    plt.scatter(i + jitter, losses, s=6, alpha=0.6)
plt.xticks(range(len(control)), list(control))
plt.yscale("log")
plt.ylabel("final NLL (one point per init)")
plt.show()

# %% [markdown]
# Spread against width on two spirals (128 points, one tanh layer, Adam(0.01), 2000 steps, 128
# inits per width). Two hidden units cannot represent the spirals: every init stops on a bad,
# fairly uniform loss near 0.4. Eight units fit part of the data, and where an init ends up
# matters most there. At 32 units almost every init reaches the same near-zero loss: the final
# losses concentrate as the net grows (the trend Choromanska et al. 2015 report).

# %%
spirals = gbl.problems.two_spirals(jax.random.PRNGKey(1), 128)
widths = (2, 8, 32)
by_width = {}
for width in widths:
    o = gbl.sweep(gbl.mlp([width], spirals.head), optax.adam(0.01), spirals,
                  key=jax.random.PRNGKey(0), seeds=128, steps=2000)
    by_width[width] = sp = gbl.spread(o)
    print(f"width {width:>3}: median {sp.median:.4f}, std {sp.std:.4f}, IQR {sp.iqr:.4f}, "
          f"q90 - q10 {sp.q90 - sp.q10:.4f}, range {sp.min:.4f}-{sp.max:.4f}")
jitter = np.random.default_rng(0).uniform(-0.2, 0.2, 128)   # display only
for i, width in enumerate(widths):
    plt.scatter(i + jitter, by_width[width].final_loss, s=6, alpha=0.6)
plt.xticks(range(len(widths)), [f"{w} hidden units" for w in widths])
plt.ylabel("final NLL (one point per init)")
plt.show()

# %% [markdown]
# Init schemes compared on XOR with 3 hidden units (256 inits each, 95% Wilson intervals).
# All-zero weights are the extreme case of a symmetric init: every hidden unit outputs
# $\tanh 0 = 0$ and every output weight is 0, so every weight's gradient is exactly 0. Only the
# output bias moves, and the net predicts $\tfrac12$ everywhere (NLL $\log 2$) from every seed.

# %%
schemes = ("glorot_normal", "he_normal", "orthogonal", gbl.inits.normal(3.0), "zeros")
failed = {}
for init in schemes:
    o = gbl.sweep(gbl.mlp([3], xor.head, init=init), adam, xor, key=jax.random.PRNGKey(0),
                  seeds=256, steps=1500)
    label = init if isinstance(init, str) else init.__name__
    sp = gbl.spread(o)
    low, high = sp.success_interval(0.1)
    failed[label] = (1 - sp.success_rate(0.1), 1 - high, 1 - low)
    print(f"{label:>14}: failed {100 * failed[label][0]:5.1f}% "
          f"(95% interval {100 * failed[label][1]:.1f}-{100 * failed[label][2]:.1f}%)")
rate, lo, hi = (np.asarray(v) for v in zip(*failed.values()))
plt.bar(list(failed), 100 * rate, yerr=100 * np.stack([rate - lo, hi - rate]), capsize=4)
plt.ylabel("failed inits (final NLL > 0.1), %")
plt.show()

# %%
results = {
    "xor_failed": float(xor_failed),
    "std_convex": float(gbl.spread(control["logistic regression"]).std),
    "std_mlp": float(gbl.spread(control["MLP 2-3-1"]).std),
    "widths": list(widths),
    "width_median": [float(by_width[w].median) for w in widths],
    "width_std": [float(by_width[w].std) for w in widths],
    "width_iqr": [float(by_width[w].iqr) for w in widths],
    "init_failed": {name: float(v[0]) for name, v in failed.items()},
}
print("RESULTS", json.dumps(results))
