"""Closed-form NLL gradients of each output unit, and the saturation report.

The gradient of -log p(y) with respect to an output unit's pre-activations is what reaches the
network. For the units of section 6.2.2 it has a simple closed form; each function here gives it
per example (not averaged), so it can be checked against ``jax.grad`` and read as a number.

References:
  Goodfellow, Bengio & Courville (2016), sections 6.2.2.2-6.2.2.4.
  Bishop (1994), "Mixture density networks", eqs. 36-40.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gbl_jax.probability.densities import bernoulli_log_prob, categorical_log_prob
from gbl_jax.probability.mixtures import MixtureNormal


def sigmoid_nll_grad(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """d(-log p)/dz = sigmoid(z) - y, elementwise: small only when the answer is right."""
    return jax.nn.sigmoid(jnp.asarray(logits)) - jnp.asarray(y, jnp.float32)


def softmax_nll_grad(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """d(-log p)/dz = softmax(z) - onehot(y), [..., K]."""
    z = jnp.asarray(logits)
    return jax.nn.softmax(z, axis=-1) - jax.nn.one_hot(y, z.shape[-1], dtype=z.dtype)


def gaussian_mean_nll_grad(loc: ArrayLike, scale: ArrayLike, y: ArrayLike) -> jax.Array:
    """d(-log N(y; mu, sigma^2))/d mu = (mu - y) / sigma^2, elementwise."""
    return (jnp.asarray(loc) - y) / jnp.square(scale)


def gaussian_log_scale_nll_grad(loc: ArrayLike, scale: ArrayLike, y: ArrayLike) -> jax.Array:
    """d(-log N(y; mu, sigma^2))/d log sigma = 1 - ((y - mu) / sigma)^2, elementwise."""
    return 1.0 - jnp.square((jnp.asarray(y) - loc) / scale)


class MixtureGrads(NamedTuple):
    """Gradients of -log p(y) of a mixture density network, per example.

    Attributes:
      responsibilities: gamma_k = P(k | y), [..., K].
      logits: pi_k - gamma_k, [..., K].
      loc: gamma_k (mu_kd - y_d) / sigma_kd^2, [..., K, D].
      log_scale: gamma_k (1 - z_kd^2), z = (y - mu) / sigma, [..., K, D].
    """

    responsibilities: jax.Array
    logits: jax.Array
    loc: jax.Array
    log_scale: jax.Array


def mixture_nll_grads(dist: MixtureNormal, y: ArrayLike) -> MixtureGrads:
    """Closed-form gradients of -log p(y) for a ``MixtureNormal`` (Bishop 1994)."""
    gamma = dist.responsibilities(y)
    _, loc, scale = dist.broadcast_params()
    z = (jnp.asarray(y)[..., None, :] - loc) / scale
    g = gamma[..., None]
    return MixtureGrads(gamma, dist.weights() - gamma, g * (-z / scale), g * (1.0 - jnp.square(z)))


class SaturationReport(NamedTuple):
    """Per-example gradients reaching the logits under NLL and under squared error.

    Attributes:
      unit: "sigmoid" or "softmax".
      nll_grad_norm: |d(-log p)/dz|, [N].
      squared_error_grad_norm: |d ||f(z) - y||^2 / dz|, [N], f the same sigmoid/softmax.
      ratio: nll_grad_norm / squared_error_grad_norm (inf where squared error's is 0).
    """

    unit: str
    nll_grad_norm: jax.Array
    squared_error_grad_norm: jax.Array
    ratio: jax.Array

    def table(self) -> str:
        """A plain-text table, one row per example."""
        rows = [f"{'example':>7}  {'|grad NLL|':>12}  {'|grad SE|':>12}  {'ratio':>10}"]
        for i, (a, b, r) in enumerate(
            zip(
                self.nll_grad_norm.tolist(),
                self.squared_error_grad_norm.tolist(),
                self.ratio.tolist(),
            )
        ):
            rows.append(f"{i:>7}  {a:>12.4g}  {b:>12.4g}  {r:>10.4g}")
        return "\n".join(rows)


def saturation_report(logits: ArrayLike, y: ArrayLike, unit: str = "sigmoid") -> SaturationReport:
    """Compares the gradient NLL and squared error send into the same sigmoid or softmax unit.

    Both gradients come from ``jax.grad`` of the per-example losses, so the report is a
    measurement, not a formula. A confidently wrong unit (sigmoid z = -10 for y = 1) gets a
    gradient of ~1 from the NLL and ~1e-4 from squared error: the book's case for cross-entropy.

    Args:
      logits: [N] for "sigmoid", [N, K] for "softmax".
      y: [N] targets (0/1 for sigmoid, integer labels for softmax).
      unit: "sigmoid" or "softmax".
    """
    z = jnp.asarray(logits, jnp.float32)
    if unit == "sigmoid":
        if z.ndim != 1 or jnp.shape(y) != z.shape:
            raise ValueError(
                f"saturation_report: sigmoid wants logits [N] and y [N], got "
                f"{list(z.shape)} and {list(jnp.shape(y))}"
            )
        nll = lambda zi, yi: -bernoulli_log_prob(zi, yi)
        se = lambda zi, yi: jnp.square(jax.nn.sigmoid(zi) - yi)
    elif unit == "softmax":
        if z.ndim != 2 or jnp.shape(y) != z.shape[:1]:
            raise ValueError(
                f"saturation_report: softmax wants logits [N, K] and y [N], got "
                f"{list(z.shape)} and {list(jnp.shape(y))}"
            )
        nll = lambda zi, yi: -categorical_log_prob(zi, yi)
        se = lambda zi, yi: jnp.sum(
            jnp.square(jax.nn.softmax(zi) - jax.nn.one_hot(yi, zi.shape[-1]))
        )
    else:
        raise ValueError(f"saturation_report: unit must be 'sigmoid' or 'softmax', got {unit!r}")
    norm = lambda g: jnp.sqrt(jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1))
    g_nll = norm(jax.vmap(jax.grad(nll))(z, jnp.asarray(y)))
    g_se = norm(jax.vmap(jax.grad(se))(z, jnp.asarray(y)))
    ratio = jnp.where(g_se > 0, g_nll / jnp.where(g_se > 0, g_se, 1.0), jnp.inf)
    return SaturationReport(unit, g_nll, g_se, ratio)
