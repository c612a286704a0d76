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
# # 4. Learning conditional statistics (section 6.2.1.2)
#
# Minimizing squared error estimates the conditional mean; minimizing absolute error, the
# conditional median. On skewed noise they differ. Here $y = 2x + \varepsilon$ with
# $\varepsilon \sim \mathrm{Exp}(1)$: mean 1, median $\log 2 \approx 0.693$. A linear model trained
# with squared error (unit Gaussian) should learn intercept 1; with absolute error (unit
# Laplace), intercept $\log 2$.

# %%
import json

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

kx, ke = jax.random.split(jax.random.PRNGKey(0))
x = jax.random.uniform(kx, (4000, 1), minval=-1, maxval=1)
y = 2 * x + jax.random.exponential(ke, (4000, 1))

adam = optax.adam(0.05)
fits = {}
for name, head in (("squared error (Gaussian)", gbl.heads.gaussian(1)),
                   ("absolute error (Laplace)", gbl.heads.laplace(1))):
    model = gbl.mlp((), head)
    res = gbl.train(model, adam, (x, y), key=jax.random.PRNGKey(1), steps=2000)
    fits[name] = w, b = float(res.params["head"]["w"][0, 0]), float(res.params["head"]["b"][0])
    print(f"{name:>26}: slope {w:.3f}, intercept {b:.3f}")
print(f"noise mean {1.0:.3f}, noise median {np.log(2):.3f}")

# %% [markdown]
# Both fits have the slope right; they differ by a shift. Subtracting the true line $2x$ leaves
# the noise: its histogram is skewed, with a long right tail that pulls the mean (the squared
# error fit) above the median (the absolute error fit).

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
left.scatter(np.asarray(x[:500, 0]), np.asarray(y[:500, 0]), s=3, c="0.6")
grid = np.linspace(-1, 1, 2)
for (name, (w, b)), color in zip(fits.items(), ("C0", "C1")):
    left.plot(grid, w * grid + b, color, label=name)
    right.axvline(b, color=color, label=f"{name}: intercept {b:.3f}")
left.set_xlabel("x")
left.set_ylabel("y")
left.legend()
right.hist(np.asarray(y - 2 * x)[:, 0], bins=np.linspace(0, 6, 61), color="0.7")
right.set_xlabel("noise y - 2x")
right.set_ylabel("examples")
right.legend(fontsize="small")
plt.show()

# %%
(mse_slope, mse_intercept), (mae_slope, mae_intercept) = fits.values()
results = {"mse_slope": mse_slope, "mse_intercept": mse_intercept, "mae_slope": mae_slope,
           "mae_intercept": mae_intercept}
print("RESULTS", json.dumps(results))
