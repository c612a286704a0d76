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
# # 7. Initialization sensitivity (section 6.2)
#
# Gradient descent on a non-convex loss has no convergence guarantee and depends on where it
# starts. `gbl.sweep` trains one model from many inits at once; `gbl.spread` says how far apart
# the final losses land. A convex model (logistic regression) lands in one place.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

xor = gbl.problems.xor()
adam = optax.adam(0.05)
out = gbl.sweep(gbl.mlp([2], xor.head), adam, xor, key=jax.random.PRNGKey(0), seeds=512, steps=1500)
s = gbl.spread(out)
print(s.summary())
print(f"failed (final NLL > 0.1): {100 * (1 - s.success_rate(0.1)):.1f}% of seeds")
plt.hist(out.final_loss, bins=np.geomspace(out.final_loss.min(), out.final_loss.max(), 40))
plt.xscale("log")
plt.xlabel("final NLL")
plt.title("XOR, 2 hidden tanh units, 512 inits")
plt.show()

# %% [markdown]
# The convex control against a small MLP on the same data (circles):

# %%
circles = gbl.problems.circles(jax.random.PRNGKey(1), 256)
wide_init = gbl.inits.normal(3.0)
for name, hidden in (("logistic regression", ()), ("MLP 2-3-1", [3])):
    o = gbl.sweep(gbl.mlp(hidden, circles.head, init=wide_init), adam, circles,
                  key=jax.random.PRNGKey(0), seeds=128, steps=1500)
    print(f"{name:>20}: std of final NLL over 128 inits = {gbl.spread(o).std:.2e}")

# %% [markdown]
# Spread against width on two spirals, and init schemes compared on XOR with 3 hidden units:

# %%
spirals = gbl.problems.two_spirals(jax.random.PRNGKey(1), 128)
for width in (4, 16, 64):
    o = gbl.sweep(gbl.mlp([width], spirals.head), optax.adam(0.01), spirals,
                  key=jax.random.PRNGKey(0), seeds=32, steps=600)
    sp = gbl.spread(o)
    print(f"width {width:>3}: median {sp.median:.3f}, IQR {sp.iqr:.3f}")
for init in ("glorot_normal", "he_normal", "orthogonal", gbl.inits.normal(3.0), "zeros"):
    o = gbl.sweep(gbl.mlp([3], xor.head, init=init), adam, xor, key=jax.random.PRNGKey(0), seeds=256,
                  steps=1500)
    label = init if isinstance(init, str) else init.__name__
    print(f"{label:>14}: failed {100 * (1 - gbl.spread(o).success_rate(0.1)):5.1f}%")
