"""Cost functions: the one generic negative log-likelihood, and the conditional statistics.

``nll`` is the book's J(theta) = -E log p_model(y | x) (section 6.2.1.1): choosing the
distribution chooses the cost. ``mse`` and ``mae`` learn conditional statistics instead (6.2.1.2):
their minimisers over a constant prediction are the mean and the median of y.

All three reduce the same way: sum over every axis but the first, mean over the first (examples).
So ``nll(Normal(f, 1), y) == 0.5 * mse(f, y) + (D / 2) log(2 pi)`` for y of shape [N, D].
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gbl_jax.probability.distributions import Bernoulli, Categorical
from gbl_jax.probability.family_rules import check_value_shape, require_integer_labels, shape_str

Loss = Callable[[Any, jax.Array], jax.Array]  # loss(model output, y) -> scalar, e.g. nll


def _check_examples(name: str, what: str, shape: tuple[int, ...]) -> None:
    """Raises ValueError unless ``shape`` is [N, ...] with N >= 1: a mean over 0 examples is 0/0."""
    if len(shape) < 1:
        raise ValueError(f"{name}: needs a leading example axis [N, ...], got a scalar")
    if shape[0] == 0:
        raise ValueError(
            f"{name}: {what} has shape {shape_str(shape)}, with no examples (N = 0); "
            "the mean over examples is undefined"
        )


def _reduce(per_element: jax.Array, name: str, what: str) -> jax.Array:
    """Mean over axis 0 of the sum over all other axes."""
    _check_examples(name, what, tuple(per_element.shape))
    return jnp.mean(jnp.sum(per_element, axis=tuple(range(1, per_element.ndim))))


def nll(dist, y: ArrayLike) -> jax.Array:
    """Negative log-likelihood -(1/N) sum_i log p(y_i | x_i), a scalar.

    Args:
      dist: a distribution with batch shape [N, ...]: any gbl_jax family, or any object with
        ``.log_prob(y)`` (distrax, TFP and numpyro distributions work as they are).
      y: targets [N, ...] of the distribution's batch + event shape, N >= 1.

    Returns:
      Minus the mean over axis 0 of log p(y) summed over all other axes.

    Raises:
      ValueError: y does not have the shape the distribution expects, or has no examples
        (N = 0), at trace time.

    References:
      Goodfellow, Bengio & Courville (2016), eq. 6.12.
    """
    y_shape = tuple(jnp.shape(y))
    _check_examples("nll", "y", y_shape)
    lp = jnp.asarray(dist.log_prob(y))
    # Foreign distributions broadcast silently; log_prob must be indexed like y's leading axes.
    if y_shape[: lp.ndim] != tuple(lp.shape):
        raise ValueError(
            f"nll: log_prob(y) has shape {shape_str(lp.shape)}, which does not match y "
            f"{shape_str(y_shape)}; the distribution's batch shape and y disagree"
        )
    return -_reduce(lp, "nll", "log_prob(y)")


def _check_same_shape(name: str, pred: ArrayLike, y: ArrayLike) -> None:
    if jnp.shape(pred) != jnp.shape(y):
        raise ValueError(
            f"{name}: pred has shape {shape_str(jnp.shape(pred))} but y has "
            f"{shape_str(jnp.shape(y))}; no broadcasting is done"
        )


def mse(pred: ArrayLike, y: ArrayLike) -> jax.Array:
    """Squared error (1/N) sum_i ||pred_i - y_i||^2; minimised by the conditional mean.

    Args:
      pred, y: [N, ...] with N >= 1, the same shape.
    """
    _check_same_shape("mse", pred, y)
    return _reduce(jnp.square(jnp.asarray(pred) - jnp.asarray(y)), "mse", "pred")


def mae(pred: ArrayLike, y: ArrayLike) -> jax.Array:
    """Absolute error (1/N) sum_i ||pred_i - y_i||_1; minimised by the conditional median.

    Args:
      pred, y: [N, ...] with N >= 1, the same shape.
    """
    _check_same_shape("mae", pred, y)
    return _reduce(jnp.abs(jnp.asarray(pred) - jnp.asarray(y)), "mae", "pred")


def squared_error(dist, y: ArrayLike) -> jax.Array:
    """Squared error of the distribution's mean, as a ``(dist, y)`` loss for ``train``.

    Behind a sigmoid this is ``mse(sigmoid(logits), y)``; behind a softmax it is
    ``mse(softmax(logits), onehot(y))``. Both saturate when the unit is confidently wrong, which
    is the book's argument for the NLL (section 6.2.2.2-6.2.2.3).
    """
    if isinstance(dist, Categorical):
        check_value_shape("squared_error", dist.batch_shape, y)
        require_integer_labels("squared_error", y)
        return mse(dist.probs(), jax.nn.one_hot(y, dist.num_classes, dtype=dist.probs().dtype))
    if isinstance(dist, Bernoulli):
        return mse(dist.probs(), jnp.asarray(y, dist.probs().dtype))
    return mse(dist.mean(), y)


def absolute_error(dist, y: ArrayLike) -> jax.Array:
    """Absolute error of the distribution's mean, as a ``(dist, y)`` loss for ``train``."""
    return mae(dist.mean(), y)


def accuracy(dist, y: ArrayLike) -> jax.Array:
    """Share of examples whose most probable class is the label, as a ``(dist, y)`` metric.

    Bernoulli: the prediction is ``logits > 0``; Categorical: ``argmax(logits)``. A tie goes to
    class 0 (Bernoulli logit exactly 0) or the lowest index (Categorical).

    Raises:
      ValueError: a distribution with no classes, or labels of the wrong shape.
    """
    if isinstance(dist, Categorical):
        check_value_shape("accuracy", dist.batch_shape, y)
        return jnp.mean(jnp.argmax(dist.logits, axis=-1) == jnp.asarray(y))
    if isinstance(dist, Bernoulli):
        _check_same_shape("accuracy", dist.logits, y)
        return jnp.mean((dist.logits > 0) == (jnp.asarray(y) > 0.5))
    raise ValueError(
        f"accuracy: needs a Bernoulli or Categorical distribution (a classifier), "
        f"got {type(dist).__name__}"
    )
