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
import jax
import jax.numpy as jnp
import numpy as np
import optax

import gbl_jax as gbl

kx, ke = jax.random.split(jax.random.PRNGKey(0))
x = jax.random.uniform(kx, (4000, 1), minval=-1, maxval=1)
y = 2 * x + jax.random.exponential(ke, (4000, 1))

adam = optax.adam(0.05)
for name, head in (("squared error (Gaussian)", gbl.heads.gaussian(1)),
                   ("absolute error (Laplace)", gbl.heads.laplace(1))):
    model = gbl.mlp((), head)
    res = gbl.train(model, adam, (x, y), key=jax.random.PRNGKey(1), steps=2000)
    w, b = float(res.params["head"]["w"][0, 0]), float(res.params["head"]["b"][0])
    print(f"{name:>26}: slope {w:.3f}, intercept {b:.3f}")
print(f"noise mean {1.0:.3f}, noise median {np.log(2):.3f}")
