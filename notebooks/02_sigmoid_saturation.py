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
import json

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

z = jnp.linspace(-12, 12, 241)
report = gbl.diagnostics.saturation_report(z, jnp.ones_like(z))   # target y = 1 everywhere
plt.semilogy(z, report.nll_grad_norm, label="NLL")
plt.semilogy(z, report.squared_error_grad_norm, label="squared error")
plt.axvline(-10, color="k", linestyle=":", linewidth=1)
plt.xlabel("logit z (target y = 1)")
plt.ylabel("|d loss / dz|")
plt.legend()
plt.show()
at = gbl.diagnostics.saturation_report(jnp.asarray([-10.0]), jnp.asarray([1.0]))
nll_grad, se_grad = float(at.nll_grad_norm[0]), float(at.squared_error_grad_norm[0])
print(f"at z = -10: NLL gradient {nll_grad:.4g}, squared-error gradient {se_grad:.3g}")

# %% [markdown]
# Training from a confidently wrong init ($z = -10$ for every example, $y = 1$), plain gradient
# descent, tracking $P(y = 1)$ after every step:

# %%
x, y = jnp.ones((16, 1)), jnp.ones(16)
wrong = lambda key, shape, dtype=jnp.float32: jnp.full(shape, -10.0, dtype)
model = gbl.mlp((), gbl.heads.bernoulli(), init=wrong)
sgd = optax.sgd(0.5)
p_right = {"p_right": lambda dist, y: jnp.mean(dist.probs())}
curves = {}
for name, loss in (("NLL", gbl.nll), ("squared error", gbl.squared_error)):
    res = gbl.train(model, sgd, (x, y), key=jax.random.PRNGKey(0), steps=200, loss=loss,
                    metrics=p_right)
    curves[name] = np.asarray(res.metrics["p_right"])
    print(f"{name:>14}: P(y = 1) after 200 steps = {float(res.final_metrics['p_right']):.4g}")
def steps_to_pass_half(curve):
    """The first step after which P(y = 1) > 0.5, or None if it never gets there."""
    past = np.flatnonzero(curve > 0.5)
    return int(past[0]) + 1 if past.size else None


steps_to_half = {name: steps_to_pass_half(curve) for name, curve in curves.items()}
print(f"NLL passes P(y = 1) = 0.5 after {steps_to_half['NLL']} steps; squared error: "
      f"{steps_to_half['squared error']}")
for name, curve in curves.items():
    plt.semilogy(np.arange(1, 201), curve, label=name)
plt.xlabel("step")
plt.ylabel("P(y = 1)")
plt.legend()
plt.show()

# %%
results = {"nll_grad_at_minus10": nll_grad, "se_grad_at_minus10": se_grad,
           "p_right_nll": float(curves["NLL"][-1]),
           "p_right_se": float(curves["squared error"][-1]),
           "nll_steps_to_half": steps_to_half["NLL"],
           "se_steps_to_half": steps_to_half["squared error"]}
print("RESULTS", json.dumps(results))
