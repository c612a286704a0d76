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
import json

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

import gbl_jax as gbl

logits = jnp.asarray([[1e4, -1e4, 0.0]])
naive = jnp.log(jnp.exp(logits) / jnp.sum(jnp.exp(logits)))
stable = [float(gbl.Categorical(logits).log_prob(jnp.asarray([k]))[0]) for k in range(3)]
print("naive log softmax:", naive)
print("gbl log_prob of each class:", stable)

# %%
z = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
labels = jnp.asarray([0, 1, 2, 3, 0])
shifted = gbl.nll(gbl.Categorical(z + 123.0), labels) - gbl.nll(gbl.Categorical(z), labels)
pinned = gbl.nll(gbl.Categorical(z - z[:, :1]), labels) - gbl.nll(gbl.Categorical(z), labels)
print("NLL change when adding 123 to every logit:", float(shifted))
print("NLL change when fixing the first logit to 0:", float(pinned))

# %% [markdown]
# Saturation. Three classes, the right one's logit $z$ swept while the other two stay at 0: the
# NLL gradient (with respect to the logits) stays above 1 as $z \to -\infty$ (it tends to
# $\sqrt{3/2}$) and goes to 0 only when the answer is right; squared error on the probabilities
# vanishes at both ends.

# %%
zs = jnp.linspace(-12, 12, 241)
sweep = gbl.diagnostics.saturation_report(jnp.stack([zs, 0 * zs, 0 * zs], axis=1),
                                          jnp.zeros(zs.shape, jnp.int32), unit="softmax")
plt.semilogy(zs, sweep.nll_grad_norm, label="NLL")
plt.semilogy(zs, sweep.squared_error_grad_norm, label="squared error")
plt.xlabel("logit of the right class (the other two at 0)")
plt.ylabel("|d loss / d logits|")
plt.legend()
plt.show()

# %% [markdown]
# The same in a table: a confidently wrong example (right class 1 at $-10$, the others at 10 and
# 0) and an undecided one (all logits 0).

# %%
report = gbl.diagnostics.saturation_report(jnp.asarray([[10.0, -10.0, 0.0], [0.0, 0.0, 0.0]]),
                                           jnp.asarray([1, 1]), unit="softmax")
print(report.table())

# %%
results = {"naive_is_nan": bool(jnp.isnan(naive[0, 0])), "log_prob_top": stable[0],
           "log_prob_bottom": stable[1], "shift_change": float(shifted),
           "pin_change": float(pinned), "wrong_nll_grad": float(report.nll_grad_norm[0]),
           "wrong_se_grad": float(report.squared_error_grad_norm[0])}
print("RESULTS", json.dumps(results))
