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
# # 8. Where the runs stop: critical points (section 6.2)
#
# A fixed step budget mixes two things: runs that stopped at a bad point and runs that were still
# moving. `gbl.sweep(..., grad_tol=...)` runs each seed until its full-data gradient norm falls
# below `grad_tol` (`converged_step`, -1 if never); `gbl.critical_points` then takes the Hessian
# at each end point and calls it a minimum (no negative eigenvalue), a saddle (some negative
# eigenvalue) or not converged. Eigenvalues within `eig_tol * max(1, |largest|)` of zero count as
# flat.

# %%
import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl
from gbl_jax import plots

# %% [markdown]
# ## Converged is not the same as minimized
#
# A 1-1-1 linear net, f(x) = w2 (w1 x + b1) + b2 with a unit-variance Gaussian output, fitted to
# y = x on points symmetric about 0, started at zero. Every gradient vanishes there, so gradient
# descent never moves and the run "converges" at the first check. The Hessian in (w1, w2) is
# [[0, -m], [-m, 0]] with m = mean(x y): eigenvalues -m and +m, a saddle.

# %%
x = jnp.linspace(-1.0, 1.0, 21)[:, None]
y = x
linear = gbl.mlp([1], gbl.heads.gaussian(1), activation="identity", init="zeros")
out = gbl.sweep(linear, optax.sgd(0.1), (x, y), key=jax.random.PRNGKey(0), seeds=4, steps=500,
                grad_tol=1e-6, keep_params=True)
cp = gbl.critical_points(linear, (x, y), out.params)
print("converged_step:", out.converged_step, " final NLL:", out.final_loss[0])
print("kind:", cp.kind[0], " index:", cp.index[0], " spectrum:", cp.eigenvalues[0])
print(f"smallest eigenvalue {cp.min_eig[0]:.6f}  vs  -mean(x y) = {-float(jnp.mean(x * y)):.6f}")

# %% [markdown]
# ## XOR: where the stuck runs stop
#
# 2-2-1 tanh nets trained by Adam until the gradient norm is below 2e-4 (at most 5000 steps).
# Solved runs descend towards NLL 0 and stop once their gradient is that small; the stuck ones
# stop on a plateau. By default a sweep run to convergence repacks the still-active seeds into
# smaller batches as others finish, compiling each batch size once; for a sweep this small,
# `compact=False` (one compiled call, finished seeds frozen in place) is quicker and gives the
# same results.

# %%
xor = gbl.problems.xor()
net = gbl.mlp([2], xor.head)
tol = 2e-4
out = gbl.sweep(net, optax.adam(0.05), xor, key=jax.random.PRNGKey(0), seeds=256, steps=5000,
                grad_tol=tol, keep_params=True, compact=False)
steps = out.converged_step
stuck = out.final_loss >= 0.1
print(f"converged {np.sum(steps >= 0)} of {steps.size}; median steps: solved "
      f"{np.median(steps[~stuck]):.0f}, stuck {np.median(steps[stuck]):.0f}")
plt.hist([steps[~stuck], steps[stuck]], bins=30, stacked=True,
         label=["solved (NLL < 0.1)", "stuck"])
plt.xlabel(f"converged_step (gradient norm < {tol:g})")
plt.ylabel("seeds")
plt.legend()
plt.show()

# %% [markdown]
# What did they converge to? (The 2x margin on `grad_tol` covers float32 rounding of the
# recomputed gradient.) Eigenvalues within 1e-4 of zero are flat directions.

# %%
cp = gbl.critical_points(net, xor, out.params, grad_tol=2 * tol, diverged=out.diverged)
for kind in ("minimum", "saddle", "not_converged"):
    sel = stuck & (cp.kind == kind)
    if sel.any():
        values, counts = np.unique(np.round(out.final_loss[sel].astype(float), 3),
                                   return_counts=True)
        found = dict(zip(values.tolist(), counts.tolist()))
        print(f"stuck at a {kind}: {sel.sum()} seeds, NLL {found}, "
              f"smallest eigenvalue {cp.min_eig[sel].min():.1e}, "
              f"flat directions (median) {np.median(cp.n_flat[sel]):.0f} of 9")
print(f"ln(2)/2 = {math.log(2) / 2:.4f}: two points fitted, the other two at p = 1/2")
print(f"(3 ln 3 - 2 ln 2)/4 = {(3 * math.log(3) - 2 * math.log(2)) / 4:.4f}: one fitted, "
      "three at p = 2/3")
plots.critical_points_figure(cp.loss, cp.index, cp.kind, title="XOR 2-2-1, Adam(0.05)")
plt.show()

# %% [markdown]
# No negative curvature, most directions flat, the loss a hair above ln(2)/2: a plateau. Is it
# a finite minimum? Any `(init, apply)` pair is a model, so a model whose init *is* a stuck
# point continues from it. Plain gradient descent for 300000 more steps: the loss creeps down
# towards ln(2)/2, roughly like 1/t, and the weights keep growing. The minimum is at infinity
# (the two fitted points' logits grow without bound); it is degenerate (flat directions), not a
# saddle.

# %%
i = int(np.flatnonzero(stuck & (np.abs(out.final_loss - math.log(2) / 2) < 1e-3))[0])
start = jax.tree.map(lambda a: a[i], out.params)
onward = gbl.train(gbl.Model(lambda key, x: start, net.apply), optax.sgd(0.5), xor,
                   key=jax.random.PRNGKey(0), steps=300000, log_every=1000)
gap = np.asarray(onward.losses) - math.log(2) / 2
norm = lambda p: float(np.linalg.norm(jax.flatten_util.ravel_pytree(p)[0]))  # noqa: E731
print(f"NLL - ln(2)/2: {gap[0]:.2e} after 1000 steps, {gap[-1]:.2e} after 300000; "
      f"|theta| {norm(start):.2f} -> {norm(onward.params):.2f}")
plt.loglog(1000 * np.arange(1, gap.size + 1), gap)
plt.xlabel("further GD(0.5) steps")
plt.ylabel("NLL - ln(2)/2")
plt.title("continuing from a stuck XOR run")
plt.show()

# %% [markdown]
# ## Spurious minima of a ReLU student (Safran & Shamir 2018)
#
# A student of n ReLU units learns a teacher of k units (weights e_1..e_k) under the population
# loss for x ~ N(0, I), which has a closed form (the arc-cosine kernel, Cho & Saul 2009).
# `gbl.population.relu_student(n, k)` gives the student as a model (its params are the
# student's weights and `apply` hands them to the loss), dummy data and the population loss.
# The kernel's slope pi - arccos(c) has an infinite derivative at c = 1, where its product with
# dc^2 tends to 0; both have hand-written JVPs there, so the gradient and Hessian stay finite at
# aligned units. `scripts/safran_shamir.py` runs the full table (k up to 12, 500 seeds).
#
# k = 8 teacher units, a student of n = 8 and of n = 10, 64 Xavier inits each, gradient descent
# until the gradient norm is below 1e-4. A run fails when it converged above loss 1e-3 (a global
# minimum has loss 0) at a point the Hessian calls a minimum.

# %%
for n in (8, 10):
    student, dummy, population_loss = gbl.population.relu_student(n, 8)
    out = gbl.sweep(student, optax.sgd(0.1), dummy, key=jax.random.PRNGKey(0), seeds=64,
                    steps=6000, grad_tol=1e-4, keep_params=True, loss=population_loss,
                    compact=False)
    converged = out.converged_step >= 0
    high = converged & (out.final_loss > 1e-3)
    print(f"n = {n}: converged {converged.sum()} of 64, above loss 1e-3: {high.sum()}")
    if high.any():
        cp = gbl.critical_points(student, dummy, out.params[high], loss=population_loss,
                                 grad_tol=2e-4)
        low, up = gbl.wilson_interval(cp.counts()["minimum"], converged.sum())
        print(f"  kinds {cp.counts()}; spurious minima {cp.counts()['minimum']} of "
              f"{converged.sum()} [{100 * low:.0f}%, {100 * up:.0f}%]; "
              f"losses {np.unique(np.round(cp.loss, 4))}, "
              f"smallest Hessian eigenvalue {cp.min_eig.min():.4f}")
