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
# # 9. The loss landscape between seeds (section 6.2)
#
# `gbl.sweep(..., keep_params=True)` keeps every seed's initial and final params. The landscape
# functions look at the loss between them: `gbl.interpolate` along the straight segment,
# `gbl.barrier` for how far that segment rises above the chord, `gbl.align` to undo the
# permutation and sign symmetries of hidden units, and `gbl.basins` to group seeds by the
# function they compute.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

monotone_paths = gbl.landscape_report.monotone_paths

spirals = gbl.problems.two_spirals(jax.random.PRNGKey(1), 256)
net = gbl.mlp([16], spirals.head)
out = gbl.sweep(net, optax.adam(0.01), spirals, key=jax.random.PRNGKey(0), seeds=16, steps=1000,
                keep_params=True)
print(gbl.spread(out).summary())

# %% [markdown]
# ## Init to solution (Goodfellow, Vinyals & Saxe 2015)
#
# The loss along (1 - a) init + a final. For many nets it falls monotonically: no obstacle on
# the straight path. Here a seed counts as monotone when the loss never rises between
# neighbouring points (a rise below 1e-6 relative is float noise): the rule of
# `landscape_report` and of `gbl-jax landscape`.

# %%
curves = gbl.interpolate(net, spirals, out.init_params, out.params, num=25)   # [seeds, 25]
rise = np.max(np.diff(curves, axis=-1), axis=-1)
monotone = monotone_paths(curves)
print(f"monotone init -> final: {monotone.sum()} of {len(rise)} seeds; "
      f"largest rise per seed: median {np.median(rise):.3g}, max {rise.max():.3g}")
alphas = np.linspace(0, 1, 25)
plt.plot(alphas, curves.T, lw=1)
plt.yscale("log")
plt.xlabel("a: (1 - a) init + a final")
plt.ylabel("training NLL")
plt.title("two_spirals, 2-16-1 tanh, 16 seeds")
plt.show()

# %% [markdown]
# ## The convex control
#
# Logistic regression has a convex loss, so the loss on any segment lies on or below the chord
# and the barrier is 0 (the endpoints themselves give curve - chord = 0): inside the segment
# curve - chord is <= 0 up to rounding. On circles (not linearly separable) the minimum is
# unique and every seed reaches it.

# %%
circles = gbl.problems.circles(jax.random.PRNGKey(1), 256)
logreg = gbl.mlp((), circles.head, init=gbl.inits.normal(3.0))
lr_out = gbl.sweep(logreg, optax.adam(0.05), circles, key=jax.random.PRNGKey(0), seeds=16,
                   steps=500, keep_params=True)
first = jax.tree.map(lambda a: a[0], lr_out.init_params)
others = jax.tree.map(lambda a: a[1:], lr_out.init_params)
for name, ends in (("init 0 to inits 1-15", others), ("init 0 to solutions", lr_out.params)):
    curve = gbl.interpolate(logreg, circles, first, ends, num=25)            # [seeds, 25]
    gap = curve - ((1 - alphas) * curve[:, :1] + alphas * curve[:, -1:])   # curve - chord
    print(f"logistic regression, {name}: barrier max "
          f"{gbl.barrier(logreg, circles, first, ends).max():.1e}, largest interior curve - chord "
          f"{gap[:, 1:-1].max():.1e}")
print(f"final NLL max - min over 16 seeds: {np.ptp(lr_out.final_loss):.1e}")

# %% [markdown]
# ## Permutation symmetry (Ainsworth et al. 2023)
#
# Permuting the hidden units of a trained net (and flipping signs, since tanh is odd) gives the
# same function but a different point in weight space. The straight path between the two leaves
# the solution; after `gbl.align` the copy is the original again and the barrier vanishes.

# %%
trained = jax.tree.map(lambda a: a[int(np.argmin(out.final_loss))], out.params)
rng = np.random.default_rng(0)
perm, sign = rng.permutation(16), rng.choice([-1.0, 1.0], 16)
w, b = trained["hidden"][0]["w"], trained["hidden"][0]["b"]
permuted = {"hidden": [{"w": w[:, perm] * sign, "b": b[perm] * sign}],
            "head": {"w": trained["head"]["w"][perm] * sign[:, None], "b": trained["head"]["b"]}}
same = np.max(np.abs(net.apply(trained, spirals.x).probs() - net.apply(permuted, spirals.x).probs()))
realigned = gbl.align(trained, permuted)
print(f"largest change in predicted probability after permuting: {same:.1e}")
print(f"barrier trained -> permuted: {float(gbl.barrier(net, spirals, trained, permuted)):.3f}")
print(f"barrier trained -> aligned copy: {float(gbl.barrier(net, spirals, trained, realigned)):.1e}")
plt.plot(alphas, gbl.interpolate(net, spirals, trained, permuted), label="permuted copy")
plt.plot(alphas, gbl.interpolate(net, spirals, trained, realigned), label="after align")
plt.xlabel("a")
plt.ylabel("training NLL")
plt.legend()
plt.show()

# %% [markdown]
# Between two independently trained seeds alignment lowers the barrier too, but not to zero: they
# are different solutions, not copies.

# %%
pair = gbl.barrier(net, spirals, jax.tree.map(lambda a: a[0], out.params),
                   jax.tree.map(lambda a: a[1:], out.params))
pair_aligned = gbl.barrier(net, spirals, jax.tree.map(lambda a: a[0], out.params),
                           gbl.align(jax.tree.map(lambda a: a[0], out.params),
                                     jax.tree.map(lambda a: a[1:], out.params)))
print(f"seed 0 to seeds 1-15: median barrier {np.median(pair):.3f} as trained, "
      f"{np.median(pair_aligned):.3f} after align")

# %% [markdown]
# ## XOR basins
#
# `gbl.basins` groups seeds whose predictions agree within `tol` on every input. On XOR with two
# hidden units, the solved seeds all compute XOR (one basin), the stuck ones compute something
# else. The solved basin's share and its Wilson interval are the success rate and its interval.

# %%
xor = gbl.problems.xor()
xor_out = gbl.sweep(gbl.mlp([2], xor.head), optax.adam(0.05), xor, key=jax.random.PRNGKey(0),
                    seeds=512, steps=1500, keep_params=True)
census = gbl.basins(gbl.mlp([2], xor.head), xor, xor_out.params, tol=0.1,
                    diverged=xor_out.diverged)
print(census.summary())
s = gbl.spread(xor_out)
low, high = s.success_interval(0.1)
solved = np.flatnonzero(census.loss < 0.1)
print(f"solved basins: {solved.tolist()}; basin 0: share {census.share[0]:.3f} "
      f"[{census.share_ci[0, 0]:.3f}, {census.share_ci[0, 1]:.3f}]")
print(f"success rate (final NLL < 0.1): {s.success_rate(0.1):.3f} [{low:.3f}, {high:.3f}]")
for i in range(min(4, len(census.count))):
    leader = jax.tree.map(lambda a: a[census.leader[i]], xor_out.params)
    probs = gbl.mlp([2], xor.head).apply(leader, xor.x).probs()
    print(f"basin {i}: P(y=1) on (00, 01, 10, 11) = {np.round(np.asarray(probs), 2)}")
