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
# # 14. Pictures of the surface around and between seeds
#
# Section 6.2 trains by gradient descent on a non-convex cost, and notebook 09 looked at the
# straight paths between seeds. This one draws the pictures people publish: slices of the loss
# around each trained seed (Li et al. 2018, "Visualizing the loss landscape of neural nets") and
# low-loss curves between seeds (Garipov et al. 2018, "Loss surfaces, mode connectivity, and
# fast ensembling of DNNs"), for every seed at once.
#
# `gbl.surface` evaluates L(theta + a d_1 + b d_2) on a grid around each seed's final params.
# A random direction d ~ N(0, I) is *filter-normalized*: each filter (one output unit: the last
# axis of a weight matrix) is rescaled to the norm of the same filter of theta, so that a net
# whose ReLU layer is scaled by c and the next by 1/c (the same function) gets the same picture;
# biases get no direction. The other choice is the top principal directions of each seed's own
# trajectory, which needs the params along the way: `keep_trajectory=True` keeps them at the end
# of every logging window.

# %%
import json

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import gbl_jax as gbl

data = gbl.problems.two_spirals(jax.random.PRNGKey(0), 128)
model = gbl.mlp([6], data.head)     # 6 tanh units: some seeds solve it, some get stuck
out = gbl.sweep(model, optax.adam(0.03), data, key=jax.random.PRNGKey(1), seeds=16, steps=1500,
                log_every=50, keep_params=True, keep_trajectory=True,
                metrics={"accuracy": gbl.accuracy})
order = np.argsort(out.final_loss)
good, stuck = int(order[0]), int(order[-1])
print(f"final training NLL {np.min(out.final_loss):.3f} (seed {good}) to "
      f"{np.max(out.final_loss):.3f} (seed {stuck}); accuracy "
      f"{out.final_metrics['accuracy'][good]:.2f} and {out.final_metrics['accuracy'][stuck]:.2f}")

# %% [markdown]
# Every seed's 2-D surface along its own filter-normalized directions, in one call. The figure
# draws the best and the worst seed; the value at each center is that seed's trained loss.

# %%
surf = gbl.surface(model, data, out, dims=2, points=31, span=1.0)
fig = gbl.plots.surface_figure(surf, seeds=[good, stuck], title="two spirals, 2-6-1 tanh: "
                               "filter-normalized directions")
plt.show()
center = surf.values["loss"][:, 0, 15, 15]
print(f"value at the center equals the trained loss: largest difference "
      f"{np.max(np.abs(center - out.final_loss)):.2e}")
rise = {s: float(np.median(surf.values["loss"][s, 0]) - center[s]) for s in (good, stuck)}
print(f"median rise over the grid: {rise[good]:.3f} around seed {good}, "
      f"{rise[stuck]:.3f} around seed {stuck}")

# %% [markdown]
# The stuck seed sits in a wider, shallower basin: over the same filter-normalized grid its loss
# rises a median 1.8 nats against 9.4 around the well-trained seed (the printed numbers).
#
# The principal directions of each seed's trajectory: most of the path lies along the first
# one, and the path (red) runs downhill into the params at the center.

# %%
pca = gbl.surface(model, data, out, dims=2, points=31, directions="pca")
fig = gbl.plots.surface_figure(pca, seeds=[good, stuck], title="the same seeds along their "
                               "trajectory's principal directions")
plt.show()
print(f"first direction explains {np.median(pca.explained[:, 0]):.0%} of the trajectory's "
      f"variance (median over seeds), the second {np.median(pca.explained[:, 1]):.0%}")

# %% [markdown]
# How much does a picture depend on its random direction? 1-D slices along 8 directions per
# seed: the band over seeds (each seed's first direction) against the band over directions
# within a seed (the median seed's), at the ends of the slice.

# %%
line = gbl.surface(model, data, out, dims=1, points=31, span=1.0, draws=8)
fig = gbl.plots.surface_figure(line, title="1-D slices: 16 seeds x 8 directions")
plt.show()
_, s_low, s_high = line.band("loss", over="seeds")
_, d_low, d_high = line.band("loss", over="draws")
print(f"at a = 1: 95% of seeds in [{s_low[-1]:.2f}, {s_high[-1]:.2f}], 95% of directions "
      f"(median seed) in [{d_low[-1]:.2f}, {d_high[-1]:.2f}]")

# %% [markdown]
# Between seeds: a quadratic Bezier curve phi(t) = (1-t)^2 w_1 + 2t(1-t) theta + t^2 w_2 whose
# middle point theta is trained with t drawn afresh each step, for 8 pairs at once, beside the
# straight line (where `gbl.barrier` measures its barrier); then the same after aligning each
# pair's hidden units (`gbl.align`, which does not change the function).

# %%
ok = order[:16]
a = jax.tree.map(lambda p: p[ok[0::2]], out.params)
b = jax.tree.map(lambda p: p[ok[1::2]], out.params)
raw = gbl.curve(model, data, a, b, steps=1000)
aligned = gbl.curve(model, data, a, b, steps=1000, align="tanh")
fig = gbl.plots.curve_figure(raw, aligned, title="8 pairs of seeds: trained curves and lines")
plt.show()
print(f"median barrier: line {np.median(raw.line_barrier):.3f}, curve "
      f"{np.median(raw.barrier):.3f}; aligned first: line {np.median(aligned.line_barrier):.3f}, "
      f"curve {np.median(aligned.barrier):.3f}")
print("gbl.barrier on the same pairs:", np.round(gbl.barrier(model, data, a, b), 3))

# %% [markdown]
# MNIST-1D's MLP (40-100-100-10, ReLU), 8 seeds: the training and held-out loss around each seed.
# The held-out surface sits above the training one and its basin is wider and shallower.

# %%
mnist = gbl.problems.mnist1d()
mlp = gbl.mlp([100, 100], mnist.head, activation="relu")
runs = gbl.sweep(mlp, optax.adam(1e-2), mnist, key=jax.random.PRNGKey(2), seeds=8, steps=1000,
                 batch_size=100, log_every=1000, keep_params=True)
m1 = gbl.surface(mlp, mnist, runs, dims=1, points=21, span=1.0, draws=2)
fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
for name, color in (("loss", "tab:blue"), ("test_loss", "tab:red")):
    mid, low, high = m1.band(name, over="both")
    ax.plot(m1.coords, mid, color=color, label=name)
    ax.fill_between(m1.coords, low, high, color=color, alpha=0.2)
ax.set_xlabel("step along a filter-normalized direction")
ax.set_ylabel("NLL")
ax.legend()
plt.show()
m_center = {n: float(np.median(m1.values[n][:, :, 10])) for n in ("loss", "test_loss")}
print(f"at the center: training NLL {m_center['loss']:.3f}, held-out {m_center['test_loss']:.3f}; "
      f"accuracy {np.median(m1.values['accuracy'][:, :, 10]):.3f} and "
      f"{np.median(m1.values['test_accuracy'][:, :, 10]):.3f}")

# %%
print("RESULTS " + json.dumps({
    "center_error": float(np.max(np.abs(center - out.final_loss))),
    "rise_good": rise[good], "rise_stuck": rise[stuck],
    "loss_good": float(out.final_loss[good]), "loss_stuck": float(out.final_loss[stuck]),
    "pca_first": float(np.median(pca.explained[:, 0])),
    "line_barrier": [float(v) for v in raw.line_barrier],
    "curve_barrier": [float(v) for v in raw.barrier],
    "aligned_line_barrier": float(np.median(aligned.line_barrier)),
    "gbl_barrier": [float(v) for v in gbl.barrier(model, data, a, b)],
    "mnist_train": m_center["loss"], "mnist_test": m_center["test_loss"]}))
