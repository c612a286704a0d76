"""What seeds disagree on: calibration, pairwise disagreement, and ensembles of seeds.

Each function reads predictive distributions stacked over seeds: the ``out.predictions`` of
``sweep(..., keep_predictions=True, eval_data=...)``, a ``Bernoulli``, ``Categorical`` or
``Normal`` whose arrays have a leading seeds axis ``[seeds, N, ...]`` (or the same built by hand,
``jax.vmap(lambda p: model.apply(p, x_test))(out.params)``), on one held-out set.

  cal = gbl.calibration(dist, y, bins=15)        # one distribution: ECE and the diagram's bins
  d = gbl.disagreement(preds, y)                 # [seeds, seeds], its mean, / the test error
  ens = gbl.ensemble(preds, y, sizes=(1, 2, 4))  # the mixture of M seeds: nll, brier, acc, ece

References:
  Guo et al. (2017), "On calibration of modern neural networks": the ECE.
  Lakshminarayanan, Pritzel & Blundell (2017), "Simple and scalable predictive uncertainty
  estimation using deep ensembles": the uniform mixture of members.
  Jiang et al. (2022), "Assessing generalization of SGD via disagreement".
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from gbl_jax.checks import require_int
from gbl_jax.engine.results import require_pandas
from gbl_jax.probability.distributions import Bernoulli, Categorical, Normal

_BLOCK_VALUES = 2**24  # one-hot rows held at once by the disagreement matrix (64 MiB float32)


def _stacked(preds, where: str):
    """The stacked distribution of ``preds``: a SweepResult's kept predictions (one cell), or
    ``preds`` itself."""
    if not hasattr(preds, "final_loss"):
        return preds
    if preds.grid:
        names = ", ".join(f"{k}=..." for k in preds.grid)
        raise ValueError(
            f"{where}: this result has a grid {list(preds.grid_shape)}; take one "
            f"cell with out.cell({names})"
        )
    if preds.predictions is None:
        raise ValueError(
            f"{where}: this result kept no predictions; sweep with "
            "keep_predictions=True and eval_data"
        )
    return preds.predictions


def _class_probs(dist) -> np.ndarray:
    """[..., K] class probabilities of a Bernoulli (K = 2: P(0), P(1)) or a Categorical."""
    if isinstance(dist, Bernoulli):
        p = 1.0 / (1.0 + np.exp(-np.asarray(dist.logits, np.float64)))
        return np.stack([1.0 - p, p], axis=-1)
    if isinstance(dist, Categorical):
        z = np.asarray(dist.logits, np.float64)
        z = z - np.max(z, axis=-1, keepdims=True)
        e = np.exp(z)
        return e / np.sum(e, axis=-1, keepdims=True)
    raise ValueError(
        f"a classifier's distribution (Bernoulli or Categorical) is needed, got "
        f"{type(dist).__name__}"
    )


def _labels(y, probs: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != probs.shape[-2:-1]:
        raise ValueError(
            f"y has shape {list(y.shape)} but the predictions are for "
            f"{list(probs.shape[-2:-1])} examples"
        )
    return y.astype(np.int64)


class Calibration(NamedTuple):
    """Expected calibration error and the reliability diagram's bins.

    Attributes:
      ece: sum over bins of (bin size / n) |accuracy(bin) - mean confidence(bin)|.
      edges: [bins + 1] equal-width bin edges on [0, 1]; a confidence c falls in bin m when
        edges[m] < c <= edges[m + 1] (the first bin includes 0).
      count, accuracy, confidence: [bins] examples per bin, their accuracy and mean confidence
        (NaN for an empty bin).
    """

    ece: float
    edges: np.ndarray
    count: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray

    def to_frame(self):
        """A pandas DataFrame, one row per bin: low, high, count, accuracy, confidence."""
        pd = require_pandas()
        return pd.DataFrame(
            {
                "low": self.edges[:-1],
                "high": self.edges[1:],
                "count": self.count,
                "accuracy": self.accuracy,
                "confidence": self.confidence,
            }
        )


def _calibration(probs_NK: np.ndarray, y_N: np.ndarray, bins: int) -> Calibration:
    confidence = probs_NK.max(axis=-1)
    correct = probs_NK.argmax(axis=-1) == y_N
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
        mean_conf = np.bincount(index, weights=confidence, minlength=bins) / count
    gap = np.where(count > 0, np.abs(accuracy - mean_conf), 0.0)
    return Calibration(
        float(np.sum(count / y_N.size * gap)),
        np.linspace(0.0, 1.0, bins + 1),
        count,
        accuracy,
        mean_conf,
    )


def calibration(dist, y, *, bins: int = 15) -> Calibration:
    """Expected calibration error of a classifier's predictions (Guo et al. 2017).

    The confidence of an example is its top class probability and it is right when that class is
    the label (a Bernoulli is two classes); the examples fall into ``bins`` equal-width bins of
    confidence, and the ECE weighs each bin's |accuracy - mean confidence| by its share of the
    examples (not squared).

    Args:
      dist: a Bernoulli with logits [N] or a Categorical with logits [N, K].
      y: [N] labels.
      bins: at least 1 (default 15).

    Returns:
      A ``Calibration``.
    """
    bins = require_int("calibration: bins", bins, 1)
    probs = _class_probs(dist)
    if probs.ndim != 2:
        raise ValueError(
            f"calibration: one distribution over examples is needed (logits [N] or "
            f"[N, K]), got class probabilities of shape {list(probs.shape)}"
        )
    return _calibration(probs, _labels(y, probs), bins)


class Disagreement(NamedTuple):
    """How often seeds' predictions differ, pair by pair.

    Attributes:
      matrix: [seeds, seeds]: the share of examples whose argmax labels differ (classifiers), or
        the mean squared difference of the predictive means (other heads); 0 on the diagonal.
      mean: the mean over pairs of distinct seeds; interval: its percentile bootstrap 95%
        interval over seeds (seeds resampled with replacement, pairs of different seeds).
      test_error: the seeds' mean test error (classifiers with ``y``), else None.
      ratio: mean / test_error (Jiang et al. 2022 find it near 1), else None.
      kind: "argmax" or "squared".
    """

    matrix: np.ndarray
    mean: float
    interval: tuple
    test_error: float | None
    ratio: float | None
    kind: str


def disagreement(preds, y=None, *, resamples: int = 2_000, seed: int = 0) -> Disagreement:
    """Pairwise disagreement between seeds on one held-out set, without a loop over pairs.

    Classifiers: 1 - H H^T / N with H the seeds' one-hot argmax labels [seeds, N K], in row
    blocks of bounded size; other heads: |m_i|^2 + |m_j|^2 - 2 m_i . m_j over the predictive
    means, per example and output.

    Args:
      preds: a ``SweepResult`` of ``sweep(..., keep_predictions=True)`` (one cell), or a
        distribution stacked over seeds ([seeds, N, ...] arrays).
      y: optional [N] labels: adds the mean test error and the ratio.
      resamples, seed: the bootstrap of the mean.

    Returns:
      A ``Disagreement``.
    """
    preds = _stacked(preds, "disagreement")
    if isinstance(preds, (Bernoulli, Categorical)):
        probs = _class_probs(preds)
        if probs.ndim != 3:
            raise ValueError(
                f"disagreement: predictions stacked over seeds are [seeds, N, ...], "
                f"got class probabilities of shape {list(probs.shape)}"
            )
        seeds, n, k = probs.shape
        labels = probs.argmax(axis=-1)
        onehot = np.eye(k, dtype=np.float32)[labels].reshape(seeds, n * k)
        block = max(1, _BLOCK_VALUES // max(n * k, 1))
        agree = np.concatenate(
            [onehot[lo : lo + block] @ onehot.T for lo in range(0, seeds, block)]
        )
        matrix = 1.0 - agree.astype(np.float64) / n
        kind = "argmax"
        error = None
        if y is not None:
            error = float(np.mean(labels != _labels(y, probs)[None, :]))
    else:
        mean = np.asarray(
            preds.mean() if callable(getattr(preds, "mean", None)) else preds.loc, np.float64
        )
        seeds = mean.shape[0]
        flat = mean.reshape(seeds, -1)
        sq = np.sum(flat**2, axis=1)
        matrix = np.maximum((sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T) / flat.shape[1], 0)
        kind, error = "squared", None
    np.fill_diagonal(matrix, 0.0)
    if seeds < 2:
        raise ValueError(f"disagreement: needs at least 2 seeds, got {seeds}")
    pairs = seeds * (seeds - 1)
    mean_pairs = float(matrix.sum() / pairs)
    # the bootstrap as counts: a resample that draws seed i w_i times has, over its ordered
    # pairs of draws of two different seeds, the mean w^T M w / (S^2 - sum_i w_i^2)
    rng = np.random.default_rng(require_int("disagreement: seed", seed, 0))
    resamples = require_int("disagreement: resamples", resamples, 100)
    counts = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=resamples).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.sum((counts @ matrix) * counts, axis=1) / (seeds**2 - np.sum(counts**2, 1))
    boot = boot[np.isfinite(boot)]  # a resample of one seed drawn S times has no pair
    low, high = np.quantile(boot, [0.025, 0.975])
    ratio = mean_pairs / error if error else None
    return Disagreement(matrix, mean_pairs, (float(low), float(high)), error, ratio, kind)


class EnsembleCurve(NamedTuple):
    """Ensembles of seeds against their size.

    Attributes:
      sizes: [S] ensemble sizes.
      values: {metric: [S, draws]}: "nll" (of the mixture), and for classifiers "brier" (sum
        over classes, mean over examples), "accuracy" and "ece"; for Gaussians "mse" of the
        mixture's mean.
      draws: ensembles drawn per size (members without replacement).
    """

    sizes: tuple
    values: dict
    draws: int

    def mean(self, metric: str) -> np.ndarray:
        return np.nanmean(self.values[metric], axis=1)

    def interval(self, metric: str, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """The (1 - level) / 2 and (1 + level) / 2 quantiles over the draws, per size."""
        low, high = np.nanquantile(self.values[metric], [(1 - level) / 2, (1 + level) / 2], axis=1)
        return low, high

    def to_frame(self):
        """A pandas DataFrame, one row per size: each metric's mean and its interval."""
        pd = require_pandas()
        columns = {"size": np.asarray(self.sizes)}
        for name in self.values:
            low, high = self.interval(name)
            columns.update({name: self.mean(name), f"{name}_low": low, f"{name}_high": high})
        return pd.DataFrame(columns)


def _mixture_gaussian_nll(loc_MND: np.ndarray, scale_MND: np.ndarray, y_ND: np.ndarray) -> float:
    """-mean_n log (1/M sum_m N(y_n; loc_mn, scale_mn^2)) over the members' diagonal Gaussians."""
    z = (y_ND[None] - loc_MND) / scale_MND
    log_n = np.sum(-0.5 * z * z - np.log(scale_MND) - 0.5 * math.log(2 * math.pi), axis=-1)
    top = log_n.max(axis=0)
    log_mix = top + np.log(np.mean(np.exp(log_n - top), axis=0))
    return float(-np.mean(log_mix))


def ensemble(
    preds,
    y,
    *,
    sizes: Sequence[int] = (1, 2, 4, 8, 16),
    draws: int = 20,
    bins: int = 15,
    seed: int = 0,
) -> EnsembleCurve:
    """Ensembles of M seeds, the uniform mixture of their predictive distributions, per size.

    Classifiers: the mixture's class probabilities are the members' mean (its NLL, Brier score,
    accuracy and ECE). Normal heads: the mixture of the members' Gaussians, whose NLL is exact
    (never a moment-matched Gaussian's), and the squared error of its mean.

    Args:
      preds: a ``SweepResult`` of ``sweep(..., keep_predictions=True)`` (one cell), or a
        distribution stacked over seeds ([seeds, N, ...]).
      y: [N] labels, or targets shaped as one seed's distribution (the eval data's).
      sizes: ensemble sizes, each at most the number of seeds.
      draws: ensembles drawn per size (each from distinct seeds; size 1 and size = seeds
        draw every member / the whole set).
      bins: the ECE's bins.
      seed: the draws' numpy seed.

    Returns:
      An ``EnsembleCurve``.
    """
    preds = _stacked(preds, "ensemble")
    draws = require_int("ensemble: draws", draws, 1)
    rng = np.random.default_rng(require_int("ensemble: seed", seed, 0))
    classifier = isinstance(preds, (Bernoulli, Categorical))
    if classifier:
        probs = _class_probs(preds)
        labels = _labels(y, probs)
        seeds = probs.shape[0]
    elif isinstance(preds, Normal):
        loc = np.asarray(preds.loc, np.float64)
        seeds = loc.shape[0]
        scale = np.asarray(preds.scale, np.float64)
        if 0 < scale.ndim < loc.ndim:  # a scale fixed per run (a unit Gaussian): [seeds]
            scale = scale.reshape(scale.shape + (1,) * (loc.ndim - scale.ndim))
        scale = np.broadcast_to(scale, loc.shape)
        target = np.asarray(y, np.float64)
        if target.shape != loc.shape[1:]:
            raise ValueError(
                f"ensemble: y has shape {list(target.shape)}, one seed's predictions "
                f"{list(loc.shape[1:])}"
            )
        loc, scale = loc.reshape(seeds, loc.shape[1], -1), scale.reshape(seeds, loc.shape[1], -1)
        target = target.reshape(target.shape[0], -1)
    else:
        raise ValueError(
            f"ensemble: Bernoulli, Categorical or Normal predictions are needed, got "
            f"{type(preds).__name__}"
        )
    sizes = tuple(require_int("ensemble: sizes", m, 1) for m in sizes)
    if not sizes or max(sizes) > seeds:
        raise ValueError(f"ensemble: sizes must be between 1 and the {seeds} seeds, got {sizes}")
    names = ("nll", "brier", "accuracy", "ece") if classifier else ("nll", "mse")
    values = {name: np.full((len(sizes), draws), np.nan) for name in names}
    for i, size in enumerate(sizes):
        for d in range(draws):
            members = rng.choice(seeds, size, replace=False)
            if classifier:
                p = probs[members].mean(axis=0)
                n = labels.size
                values["nll"][i, d] = -np.mean(
                    np.log(np.maximum(p[np.arange(n), labels], np.finfo(np.float64).tiny))
                )
                onehot = np.eye(p.shape[-1])[labels]
                values["brier"][i, d] = np.mean(np.sum((p - onehot) ** 2, axis=-1))
                values["accuracy"][i, d] = np.mean(p.argmax(axis=-1) == labels)
                values["ece"][i, d] = _calibration(p, labels, bins).ece
            else:
                values["nll"][i, d] = _mixture_gaussian_nll(loc[members], scale[members], target)
                values["mse"][i, d] = np.mean((loc[members].mean(axis=0) - target) ** 2)
    return EnsembleCurve(sizes, values, draws)
