"""Default success thresholds: the final loss below which a seed counts as having learned the task.

A success rate needs a threshold in the units of the loss being minimised. Classifiers trained by
NLL succeed below 0.1 nats, whatever the data. Regression succeeds when the fit leaves at most 10%
of the targets' spread unexplained (R^2 = 0.9), measured under the head's own likelihood, so a
unit-variance Gaussian, a unit-scale Laplace and a learned-scale head each get the threshold of
the same quality of fit. ``lowest_loss`` is the floor no model with the head can go below: a
threshold at or under it means no seed could ever succeed.

  threshold, reason = default_threshold(gbl.heads.gaussian(1), data.y)

References:
  Goodfellow, Bengio & Courville (2016), sections 6.2.1.1 and 6.2.2.
"""

from __future__ import annotations

import math

import numpy as np

SUCCESS_NATS = 0.1  # classifiers: mean NLL below it is a geometric-mean p(label) > 0.905
UNEXPLAINED = 0.1  # regression: the share of the targets' spread a success leaves
FAMILIES = (
    "bernoulli",
    "categorical",
    "gaussian",
    "laplace",
    "heteroscedastic_gaussian",
    "mixture_density",
)
LOSSES = ("nll", "mse")


def _name(head) -> str:
    name = head if isinstance(head, str) else getattr(head, "name", None)
    if not isinstance(name, str) or name.split("(")[0] not in FAMILIES:
        raise ValueError(
            f"thresholds: head must be a gbl_jax.nets.heads head or the name of one "
            f"({', '.join(FAMILIES)}), got {head!r}"
        )
    return name


def _rule(head, y, loss: str) -> tuple[float, float, str]:
    """(lowest reachable loss, default threshold, the rule behind it)."""
    name = _name(head)
    if loss not in LOSSES:
        raise ValueError(f"thresholds: loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    family = name.split("(")[0]
    y = np.asarray(y, np.float64)
    if family == "categorical":
        # squared error of a classifier is measured on its probabilities: one-hot targets, whose
        # column k has variance p_k (1 - p_k); from the labels' counts, never a [N, K] one-hot
        # (a label of 100000 would make it gigabytes)
        _, counts = np.unique(y.astype(np.int64), return_counts=True)
        share = counts / len(y)
        var = share * (1 - share)
    else:
        targets = y[:, None] if family == "bernoulli" else y.reshape(len(y), -1)
        var, d = targets.var(axis=0), targets.shape[1]
    if loss == "mse":
        floor, value = 0.0, UNEXPLAINED * var.sum()
        rule = "mse: 10% of the targets' variance (R^2 = 0.9)"
    elif family in ("bernoulli", "categorical"):
        floor, value = 0.0, SUCCESS_NATS
        rule = (
            f"{family} NLL: 0.1 nats (the true label gets probability e^-0.1 = 0.905, "
            "geometric mean)"
        )
    elif family == "gaussian":
        floor = 0.5 * d * math.log(2 * math.pi)
        value = floor + 0.5 * UNEXPLAINED * var.sum()
        rule = (
            "unit-variance Gaussian NLL of a fit leaving 10% of the targets' variance "
            "unexplained (R^2 = 0.9)"
        )
    elif family == "laplace" and "learn_scale" not in name:
        floor = d * math.log(2)
        value = floor + UNEXPLAINED * np.abs(targets - np.median(targets, axis=0)).mean(0).sum()
        rule = (
            "unit-scale Laplace NLL of a fit leaving 10% of the targets' mean absolute "
            "deviation unexplained"
        )
    else:  # learned scales: the NLL has no floor; a Gaussian with R^2 = 0.9 and its best scale
        floor = -math.inf
        value = float(
            np.sum(0.5 * np.log(2 * math.pi * math.e * UNEXPLAINED * np.maximum(var, 1e-12)))
        )
        rule = (
            "NLL of a Gaussian with fitted variance leaving 10% of the targets' variance "
            "unexplained (R^2 = 0.9)"
        )
    if family not in ("bernoulli", "categorical") and not np.any(var > 0):
        # constant targets: no spread to explain, so no share of it to leave
        if math.isfinite(floor):
            value = floor + SUCCESS_NATS
            rule = (
                f"constant targets (no spread to explain): {loss} 0.1 above the lowest loss "
                f"the head can reach ({floor:.6g})"
            )
        else:
            rule = (
                "constant targets (no spread to explain): NLL of a Gaussian of variance 1e-13 "
                "around them"
            )
    return floor, float(value), rule


def default_threshold(head, y, loss: str = "nll") -> tuple[float, str]:
    """The default success threshold on the final loss, and the rule behind it in words.

    Args:
      head: a ``gbl_jax.nets.heads`` head, or its name ("gaussian(1)", "laplace(1, learn_scale=True)"
        or just the family, "bernoulli").
      y: the training targets: labels [N] for bernoulli / categorical, [N] or [N, D] otherwise.
      loss: "nll" (the head's negative log-likelihood) or "mse" (squared error of its mean).

    Returns:
      (threshold, reason): a seed succeeds when its final loss is below ``threshold``.
    """
    _, value, rule = _rule(head, y, loss)
    return value, rule


def lowest_loss(head, y, loss: str = "nll") -> float:
    """The lowest mean loss any model with ``head`` can reach on ``y`` (-inf when unbounded).

    Args:
      head, y, loss: as for ``default_threshold``.

    Returns:
      0 for squared error and classifier NLL, the normalising constant for unit-scale heads,
      -inf for learned scales (the density can grow without bound around a fitted point).
    """
    return _rule(head, y, loss)[0]
