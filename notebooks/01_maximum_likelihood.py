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
import jax
import jax.numpy as jnp
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
print("Laplace(f, 1):", float(gbl.nll(gbl.Laplace(f, 1.0), y)),
      "= mae + D log 2:", float(gbl.mae(f, y) + 3 * np.log(2)))
z = jax.random.normal(key_f, (500,)) * 3
labels = (jax.random.uniform(key_y, (500,)) < jax.nn.sigmoid(z)).astype(jnp.float32)
bce = -np.mean(labels * np.log(jax.nn.sigmoid(z)) + (1 - labels) * np.log(1 - jax.nn.sigmoid(z)))
print("Bernoulli(z):", float(gbl.nll(gbl.Bernoulli(z), labels)), "= cross-entropy:", float(bce))

# %% [markdown]
# `jax.grad` of the NLL is the training signal. For the unit Gaussian it is $(f - y)/N$, the
# gradient of $\tfrac12$ squared error: the constant $C$ does not depend on the model.

# %%
g = jax.grad(lambda pred: gbl.nll(gbl.Normal(pred, 1.0), y))(f)
print("max |grad - (f - y)/N| =", float(jnp.max(jnp.abs(g - (f - y) / f.shape[0]))))
