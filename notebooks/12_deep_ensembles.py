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
# # 12. Seeds as an ensemble: the deep-ensembles toy (section 6.2.1.1)
#
# Section 6.2.1.1 lets a network learn the variance of its Gaussian output: the cost is still
# the negative log-likelihood, now of a heteroscedastic Gaussian. Lakshminarayanan, Pritzel &
# Blundell (2017) trained several such networks from different random initializations and used
# them together: the uniform mixture of their predictive distributions. On their toy,
# y = x^3 + eps with eps ~ N(0, 3^2) and 20 training points in [-4, 4], each member is confident
# where it has seen no data; where the members disagree there, the mixture's spread grows.
#
# A sweep's seeds are such an ensemble. `keep_predictions=True` keeps each seed's predictive
# distribution on the held-out points, here a grid on [-6, 6], wider than the data.

# %%
import json

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

data = gbl.problems.cubic(jax.random.PRNGKey(0))    # 20 points in [-4, 4]; test on [-6, 6]
# one hidden layer of 100 ReLU units, a learned-variance Gaussian output; the scale floor of 0.1
# keeps the NLL bounded on 20 points (section 6.2.1.1: without it the density can run to infinity)
model = gbl.mlp([100], gbl.heads.heteroscedastic_gaussian(1, min_scale=0.1), activation="relu")
out = gbl.sweep(model, optax.adam(0.01), data, key=jax.random.PRNGKey(1), seeds=8, steps=3000,
                eval_data=data.test, keep_predictions=True)
print(f"{out.seeds} seeds, final training NLL {np.min(out.final_loss):.3f} to "
      f"{np.max(out.final_loss):.3f}, {int(out.diverged.sum())} diverged")

# %% [markdown]
# The mixture of M Gaussians with equal weights has mean m = mean_i mu_i and variance
# mean_i (sigma_i^2 + mu_i^2) - m^2: each member's own noise plus how much the members
# disagree. `gbl.ensemble` scores the mixture itself (its exact NLL, never a moment-matched
# Gaussian's).

# %%
loc = np.asarray(out.predictions.loc)[..., 0]        # [seeds, test points]
scale = np.asarray(out.predictions.scale)[..., 0]
mean = loc.mean(axis=0)
std = np.sqrt(np.mean(scale ** 2 + loc ** 2, axis=0) - mean ** 2)
x = np.asarray(data.test.x)[:, 0]
inside = np.abs(x) <= 4

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for i in range(out.seeds):
    left.plot(x, loc[i], lw=0.8, alpha=0.6)
left.plot(x, x ** 3, "k--", lw=1, label="x^3")
left.scatter(np.asarray(data.x)[:, 0], np.asarray(data.y)[:, 0], s=12, c="k", zorder=3,
             label="training points")
left.set_title("each seed's mean", fontsize=10)
left.legend(fontsize=8)
right.fill_between(x, mean - 3 * std, mean + 3 * std, alpha=0.3, label="ensemble +-3 std")
right.plot(x, mean, label="ensemble mean")
right.plot(x, x ** 3, "k--", lw=1, label="x^3")
right.scatter(np.asarray(data.x)[:, 0], np.asarray(data.y)[:, 0], s=12, c="k", zorder=3)
right.set_ylim(-250, 250)
left.set_ylim(-250, 250)
right.set_title(f"the mixture of {out.seeds} seeds", fontsize=10)
right.legend(fontsize=8)
plt.show()
print(f"mixture std: {std[inside].mean():.2f} on average inside [-4, 4], "
      f"{std[~inside].mean():.2f} outside")

# %% [markdown]
# Right of the data the members disagree and the mixture widens; left of it all eight ReLU nets
# extrapolate nearly the same line, so the mixture is as confident, and as wrong, as each of
# them. An ensemble of seeds knows only what its members disagree on: it widens where the inits
# lead to different functions, not wherever the data are missing.
#
# Scored on the held-out grid: a single seed (size 1, drawn 8 times) against the mixture of
# all 8. Outside the data each member is confidently wrong and pays for it in NLL; the mixture
# is not, so its NLL is far lower. The pairwise disagreement is the mean squared difference of
# two seeds' predicted means, the function-space view of how differently the inits ended.

# %%
curve = gbl.ensemble(out, data.test.y, sizes=(1, 2, 4, 8), draws=8)
print(curve.to_frame()[["size", "nll", "nll_low", "nll_high", "mse"]].to_string(index=False))
d = gbl.disagreement(out)
print(f"pairwise disagreement (mean squared difference of the means): {d.mean:.1f} "
      f"[{d.interval[0]:.1f}, {d.interval[1]:.1f}]")

# %%
print("RESULTS " + json.dumps({
    "std_inside": float(std[inside].mean()), "std_outside": float(std[~inside].mean()),
    "nll_member": float(curve.mean("nll")[0]), "nll_ensemble": float(curve.mean("nll")[-1]),
    "diverged": int(out.diverged.sum())}))
