"""Figures of a sweep: the histogram of final losses and loss curves as quantile bands."""

from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def final_loss_histogram(final_loss: np.ndarray, diverged: np.ndarray, path, *, title: str = ""):
    """Histogram of the non-diverged final losses (log-spaced bins when they span decades)."""
    plt = _pyplot()
    ok = np.asarray(final_loss)[~np.asarray(diverged)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if ok.size:
        positive = ok[ok > 0]
        if positive.size == ok.size and positive.max() / positive.min() > 100:
            bins = np.geomspace(positive.min(), positive.max(), 50)
            ax.set_xscale("log")
        else:
            bins = 50
        ax.hist(ok, bins=bins, color="tab:blue")
    ax.set_xlabel("final loss")
    ax.set_ylabel("seeds")
    n_bad = int(np.sum(diverged))
    ax.set_title(f"{title}  ({ok.size} seeds" + (f", {n_bad} diverged)" if n_bad else ")"))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def loss_curve_bands(losses: np.ndarray, log_every: int, path, *, title: str = ""):
    """Median training loss with 25-75% and 10-90% bands over seeds, against the step."""
    plt = _pyplot()
    losses = np.asarray(losses, dtype=np.float64)
    steps = (np.arange(losses.shape[1]) + 1) * log_every
    fig, ax = plt.subplots(figsize=(6, 3.5))
    with np.errstate(all="ignore"):
        q = np.nanquantile(losses, [0.1, 0.25, 0.5, 0.75, 0.9], axis=0) if losses.size else None
    if q is not None:
        ax.fill_between(steps, q[0], q[4], alpha=0.2, color="tab:blue", label="10-90%")
        ax.fill_between(steps, q[1], q[3], alpha=0.4, color="tab:blue", label="25-75%")
        ax.plot(steps, q[2], color="tab:blue", label="median")
        if np.nanmin(q[0]) > 0:
            ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
