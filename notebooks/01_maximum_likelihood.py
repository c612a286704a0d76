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
# # 1. Maximum likelihood as the cost (section 6.2.1.1)
#
# The book's cost is $J(\theta) = -\mathbb{E}\log p_\text{model}(y\mid x)$. Choosing the
# distribution chooses the cost: a unit-variance Gaussian gives $\tfrac12$ squared error plus a
# constant, a unit-scale Laplace gives absolute error, a Bernoulli gives the sigmoid
# cross-entropy. In gbl_jax that cost is always `gbl.nll(dist, y)`.

# %%
import json

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import gbl_jax as gbl

key_f, key_y = jax.random.split(jax.random.PRNGKey(0))
f = jax.random.normal(key_f, (500, 3))          # a model's predictions, [N, D]
y = f + jax.random.normal(key_y, (500, 3))      # targets

nll = gbl.nll(gbl.Normal(f, 1.0), y)
half_mse_plus_c = 0.5 * gbl.mse(f, y) + 3 / 2 * np.log(2 * np.pi)
print(f"nll(Normal(f, 1), y)       = {float(nll):.6f}")
print(f"1/2 mse + (D/2) log(2 pi)  = {float(half_mse_plus_c):.6f}")

# %% [markdown]
# Other distributions give their own costs, with no hand design:

# %%
nll_laplace = gbl.nll(gbl.Laplace(f, 1.0), y)
mae_plus_c = gbl.mae(f, y) + 3 * np.log(2)
print(f"nll(Laplace(f, 1), y) = {float(nll_laplace):.6f}   mae + D log 2 = {float(mae_plus_c):.6f}")
z = jax.random.normal(key_f, (500,)) * 3
labels = (jax.random.uniform(key_y, (500,)) < jax.nn.sigmoid(z)).astype(jnp.float32)
nll_bernoulli = gbl.nll(gbl.Bernoulli(z), labels)
bce = -np.mean(labels * np.log(jax.nn.sigmoid(z)) + (1 - labels) * np.log(1 - jax.nn.sigmoid(z)))
print(f"nll(Bernoulli(z), y)  = {float(nll_bernoulli):.6f}   cross-entropy = {float(bce):.6f}")

# %% [markdown]
# Per example, as a function of the residual $r = f - y$: the Gaussian's cost is the parabola
# $\tfrac12 r^2 + \tfrac12\log 2\pi$ and the Laplace's the V $|r| + \log 2$. The parabola
# punishes large residuals quadratically, so a long tail of the noise pulls a squared-error fit
# much more than an absolute-error one (notebook 4).

# %%
r = jnp.linspace(-3, 3, 121)
zero = jnp.zeros_like(r)
plt.plot(r, -gbl.Normal(r, 1.0).log_prob(zero), "C0", label="-log Normal(y | f, 1)")
marks = r[::10]
plt.plot(marks, 0.5 * marks**2 + 0.5 * np.log(2 * np.pi), "C0o", label="r^2 / 2 + log(2 pi) / 2")
plt.plot(r, -gbl.Laplace(r, 1.0).log_prob(zero), "C1", label="-log Laplace(y | f, 1)")
plt.plot(marks, jnp.abs(marks) + np.log(2), "C1s", label="|r| + log 2")
plt.xlabel("residual r = f - y")
plt.ylabel("per-example cost")
plt.legend()
plt.show()

# %% [markdown]
# `jax.grad` of the NLL is the training signal. For the unit Gaussian it is $(f - y)/N$, the
# gradient of $\tfrac12$ squared error: the constant $C$ does not depend on the model.

# %%
g = jax.grad(lambda pred: gbl.nll(gbl.Normal(pred, 1.0), y))(f)
grad_err = float(jnp.max(jnp.abs(g - (f - y) / f.shape[0])))
print("max |grad - (f - y)/N| =", grad_err)

# %%
results = {
    "nll_normal": float(nll), "half_mse_plus_c": float(half_mse_plus_c),
    "nll_laplace": float(nll_laplace), "mae_plus_c": float(mae_plus_c),
    "nll_bernoulli": float(nll_bernoulli), "cross_entropy": float(bce),
    "grad_max_abs_err": grad_err,
}
print("RESULTS", json.dumps(results))
