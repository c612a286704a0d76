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
# # 3. Softmax units (section 6.2.2.3)
#
# $\log\mathrm{softmax}(z)_i = z_i - \log\sum_j e^{z_j}$, computed with the log-sum-exp trick so
# extreme logits stay finite. Softmax is invariant to adding a constant to every logit, so one
# logit can be fixed (the model is over-parameterized by one). Like the sigmoid, the NLL only
# saturates when the answer is right.

# %%
import jax
import jax.numpy as jnp
import numpy as np

import gbl_jax as gbl

logits = jnp.asarray([[1e4, -1e4, 0.0]])
naive = jnp.log(jnp.exp(logits) / jnp.sum(jnp.exp(logits)))
print("naive log softmax:", naive)
print("gbl log_prob of each class:",
      [float(gbl.Categorical(logits).log_prob(jnp.asarray([k]))[0]) for k in range(3)])

# %%
z = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
labels = jnp.asarray([0, 1, 2, 3, 0])
shifted = gbl.nll(gbl.Categorical(z + 123.0), labels) - gbl.nll(gbl.Categorical(z), labels)
pinned = gbl.nll(gbl.Categorical(z - z[:, :1]), labels) - gbl.nll(gbl.Categorical(z), labels)
print("NLL change when adding 123 to every logit:", float(shifted))
print("NLL change when fixing the first logit to 0:", float(pinned))

# %% [markdown]
# Saturation: a confidently wrong softmax (right class at -10 below the others).

# %%
report = gbl.diagnostics.saturation_report(jnp.asarray([[10.0, -10.0, 0.0], [0.0, 0.0, 0.0]]),
                                           jnp.asarray([1, 1]), unit="softmax")
print(report.table())
