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
# # 5. Learned variance and the cross-entropy with no minimum (sections 6.2.1.1, 6.2.2.4)
#
# A heteroscedastic Gaussian learns an input-dependent scale. On data whose noise grows with
# $|x|$, the learned scale follows it. But on a training set the NLL has no minimum: a flexible
# model can put a mean on a training point and shrink its scale, sending the density to
# infinity and the NLL to $-\infty$. `min_scale` bounds it.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

kx, ke = jax.random.split(jax.random.PRNGKey(0))
x = jax.random.uniform(kx, (1000, 1), minval=-2, maxval=2)
y = jnp.sin(2 * x) + (0.05 + 0.3 * jnp.abs(x)) * jax.random.normal(ke, (1000, 1))
model = gbl.mlp([32], gbl.heads.heteroscedastic_gaussian(1))
res = gbl.train(model, optax.adam(0.01), (x, y), key=jax.random.PRNGKey(1), steps=3000)
grid = jnp.linspace(-2, 2, 9)[:, None]
learned = model.apply(res.params, grid).scale[:, 0]
for g, s in zip(grid[:, 0].tolist(), learned.tolist()):
    print(f"x = {g:+.1f}: learned scale {s:.3f}, true {0.05 + 0.3 * abs(g):.3f}")

# %% [markdown]
# Now the missing minimum. Three training points lie exactly on a line, and the model is linear
# with a learned scale: its mean can fit them exactly, so nothing stops the scale from
# shrinking. Without a floor the training NLL falls without bound as training goes on; with
# `min_scale=0.01` it stops at $\tfrac12\log 2\pi + \log 0.01 \approx -3.69$.

# %%
x3 = jnp.asarray([[-1.0], [0.0], [1.0]])
y3 = 2 * x3 + 1
adam = optax.adam(0.05)
steps = [250, 500, 1000, 2000, 4000]
for min_scale in (0.0, 0.01):
    net = gbl.mlp((), gbl.heads.heteroscedastic_gaussian(1, min_scale=min_scale))
    finals = [float(gbl.train(net, adam, (x3, y3), key=jax.random.PRNGKey(3), steps=s).final_loss)
              for s in steps]
    plt.plot(steps, finals, "o-", label=f"min_scale = {min_scale}")
    print(f"min_scale {min_scale}: training NLL after {steps} steps = {np.round(finals, 2)}")
plt.xscale("log")
plt.xlabel("steps")
plt.ylabel("training NLL")
plt.legend()
plt.show()
