"""How spread out the final losses of a sweep are: the numbers a paper's "x% of runs failed" needs.

References:
  Goodfellow, Bengio & Courville (2016), section 6.2: SGD on non-convex losses is sensitive to
  the initial parameters; a convex model (logistic regression) is not.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_STATS = ("mean", "std", "min", "q10", "q25", "median", "q75", "q90", "max", "iqr")


class Spread(NamedTuple):
    """Summary of final losses over the seeds that did not diverge.

    Attributes:
      n: number of seeds in the sweep.
      n_diverged: seeds whose loss or params went non-finite; excluded from every statistic.
      mean, std (population, ddof=0), min, q10, q25, median, q75, q90, max, iqr (q75 - q25):
        NaN when every seed diverged.
      converged_losses: the final losses of the seeds that did not diverge.
    """

    n: int
    n_diverged: int
    mean: float
    std: float
    min: float
    q10: float
    q25: float
    median: float
    q75: float
    q90: float
    max: float
    iqr: float
    converged_losses: np.ndarray

    @property
    def n_ok(self) -> int:
        return self.n - self.n_diverged

    def success_rate(self, threshold: float) -> float:
        """Share of non-diverged seeds whose final loss is below ``threshold`` (NaN if none)."""
        if self.n_ok == 0:
            return float("nan")
        return float(np.mean(self.converged_losses < threshold))

    def as_dict(self) -> dict:
        """The scalar fields, for JSON."""
        return {"n": self.n, "n_diverged": self.n_diverged,
                **{k: getattr(self, k) for k in _STATS}}

    def summary(self) -> str:
        """A short plain-text table."""
        if self.n_ok == 0:
            return f"all {self.n} seeds diverged: no statistics"
        head = f"{self.n} seeds, {self.n_diverged} diverged"
        rows = "\n".join(f"  {k:>6}  {getattr(self, k):.6g}" for k in _STATS)
        return f"{head}\n{rows}"


def spread(out, diverged=None) -> Spread:
    """Summarizes final losses.

    Args:
      out: a ``SweepResult`` (its ``diverged`` flags are used), or an array of final losses
        [seeds], where a non-finite value counts as diverged.
      diverged: optional bool flags [seeds] to use with an array.

    Returns:
      A ``Spread``.
    """
    if hasattr(out, "final_loss"):
        losses, flags = np.asarray(out.final_loss), np.asarray(out.diverged)
    else:
        losses = np.asarray(out, dtype=np.float64)
        flags = np.zeros(losses.shape, bool) if diverged is None else np.asarray(diverged)
    if losses.ndim != 1 or flags.shape != losses.shape:
        raise ValueError(f"spread: expected final losses [seeds] and flags of the same shape, got "
                         f"{list(losses.shape)} and {list(flags.shape)}")
    flags = flags.astype(bool) | ~np.isfinite(losses)
    ok = losses[~flags].astype(np.float64)
    if ok.size:
        q10, q25, median, q75, q90 = np.quantile(ok, [0.1, 0.25, 0.5, 0.75, 0.9])
        stats = (ok.mean(), ok.std(), ok.min(), q10, q25, median, q75, q90, ok.max(), q75 - q25)
    else:
        stats = (float("nan"),) * len(_STATS)
    return Spread(int(losses.size), int(flags.sum()), *map(float, stats), ok)
