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
# # 6. Mixture density networks (section 6.2.2.4)
#
# Bishop's inverse problem: $t \sim U(0,1)$, $x = t + 0.3\sin 2\pi t + U(-0.1, 0.1)$, predict
# $t$ from $x$. The inverse is multi-valued, so a single Gaussian (even with learned variance)
# must straddle the branches, while a mixture puts a component on each.

# %%
import json

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

train = gbl.problems.bishop_inverse(jax.random.PRNGKey(1), 1000)
test = gbl.problems.bishop_inverse(jax.random.PRNGKey(2), 1000)
adam = optax.adam(0.01)
models = {
    "one Gaussian": gbl.mlp([20], gbl.heads.heteroscedastic_gaussian(1, min_scale=1e-3)),
    "MDN, 3 components": gbl.mlp([20], gbl.heads.mixture_density(3, 1, min_scale=1e-3)),
}
fits, test_nll = {}, {}
for name, model in models.items():
    res = gbl.train(model, adam, train, key=jax.random.PRNGKey(0), steps=4000)
    fits[name] = (model, res.params)
    test_nll[name] = float(gbl.nll(model.apply(res.params, test.x), test.y))
    print(f"{name:>18}: test NLL {test_nll[name]:.3f}")

# %% [markdown]
# The conditional densities $p(t \mid x)$, each column scaled to its maximum, over the training
# points: the single Gaussian puts one broad bump across the branches where the inverse has
# three values; the mixture follows each branch.

# %%
xs, ts = np.linspace(-0.1, 1.1, 150), np.linspace(-0.05, 1.05, 150)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, (name, (model, params)) in zip(axes, fits.items()):
    dist = model.apply(params, jnp.asarray(xs)[:, None])
    column = lambda t: dist.log_prob(jnp.full((xs.size, 1), t)).reshape(-1)
    log_p = jax.vmap(column)(jnp.asarray(ts))
    density = np.exp(np.asarray(log_p))
    ax.imshow(density / density.max(0, keepdims=True), origin="lower", aspect="auto", cmap="Blues",
              extent=(xs[0], xs[-1], ts[0], ts[-1]))
    ax.scatter(np.asarray(train.x[:300, 0]), np.asarray(train.y[:300, 0]), s=2, c="tab:orange")
    ax.set_title(f"{name} (test NLL {test_nll[name]:.2f})")
    ax.set_xlabel("x")
axes[0].set_ylabel("t")
plt.show()

# %%
results = {"test_nll_gaussian": test_nll["one Gaussian"],
           "test_nll_mdn": test_nll["MDN, 3 components"]}
print("RESULTS", json.dumps(results))
