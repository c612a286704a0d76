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
# # 2. Sigmoid units and saturation (section 6.2.2.2)
#
# With $P(y=1) = \sigma(z)$, the NLL is $\zeta((1-2y)z)$ (softplus): its gradient
# $\sigma(z) - y$ is small only when the answer is right. Squared error behind the same sigmoid
# has gradient $2(\sigma(z)-y)\sigma(z)(1-\sigma(z))$, which also vanishes when the unit is
# confidently *wrong*.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import optax

import gbl_jax as gbl

z = jnp.linspace(-12, 12, 241)
report = gbl.diagnostics.saturation_report(z, jnp.ones_like(z))   # target y = 1 everywhere
plt.semilogy(z, report.nll_grad_norm, label="NLL")
plt.semilogy(z, report.squared_error_grad_norm, label="squared error")
plt.xlabel("logit z (target y = 1)")
plt.ylabel("|d loss / dz|")
plt.legend()
plt.show()
print("at z = -10: NLL gradient", float(report.nll_grad_norm[20]),
      " squared-error gradient", float(report.squared_error_grad_norm[20]))

# %% [markdown]
# Training from a confidently wrong init ($z = -10$ for every example, $y = 1$):

# %%
x, y = jnp.ones((16, 1)), jnp.ones(16)
wrong = lambda key, shape, dtype=jnp.float32: jnp.full(shape, -10.0, dtype)
model = gbl.mlp((), gbl.heads.bernoulli(), init=wrong)
sgd = optax.sgd(0.5)
for name, loss in (("NLL", gbl.nll), ("squared error", gbl.squared_error)):
    res = gbl.train(model, sgd, (x, y), key=jax.random.PRNGKey(0), steps=200, loss=loss)
    p = float(model.apply(res.params, x).probs()[0])
    print(f"{name:>14}: P(y = 1) after 200 steps = {p:.4g}")
