"""Log densities in closed form.

The elementwise log densities (Normal, Laplace, Bernoulli, Categorical) that the families of
``distributions`` wrap, computed in log space so the negative log-likelihood never saturates
where *Deep Learning* section 6.2.2 says it should not, and ``log_softmax`` exact at infinite
logits. Internal (not in ``gbl.__all__``; ``distributions`` re-exports the log densities); the
shape and domain rules the families share are in ``family_rules``.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gbl_jax.probability.family_rules import float_value

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
LOG_2 = math.log(2.0)


def _loc_scale_logpdf(
    std_logpdf: Callable[[jax.Array], jax.Array], std_score: Callable[[jax.Array], jax.Array]
):
    """log p(y) = log f((y - loc) / scale) - log scale, with a hand-written JVP.

    Autodiff of ``(y - loc) / scale`` forms ``scale**-2``, which overflows float32 for scales
    below ~1e-19 and turns the gradient into ``inf * 0 = NaN`` (distrax, TFP and numpyro all do
    this). The JVP below only ever divides by ``scale`` once, so the gradient is finite wherever
    its true value is representable.

    Args:
      std_logpdf: log density of the standardized variable z.
      std_score: d/dz of ``std_logpdf``.
    """

    @jax.custom_jvp
    def logpdf(y, loc, scale):
        return std_logpdf((y - loc) / scale) - jnp.log(scale)

    @logpdf.defjvp
    def logpdf_jvp(primals, tangents):
        y, loc, scale = primals
        dy, dloc, dscale = tangents
        z = (y - loc) / scale
        score = std_score(z)
        out = std_logpdf(z) - jnp.log(scale)
        # d/dy = score/scale, d/dloc = -score/scale, d/dscale = -(score * z + 1)/scale
        return out, (score * (dy - dloc) - (score * z + 1.0) * dscale) / scale

    def guarded(y, loc, scale):
        # scale == 0 is the limit the unbounded cross-entropy runs to (6.2.1.1): a point mass,
        # log p = +inf at y == loc and -inf elsewhere, never 0/0 = NaN. A negative scale is NaN.
        positive = scale > 0
        lp = logpdf(y, loc, jnp.where(positive, scale, 1.0))
        point_mass = jnp.where(y == loc, jnp.inf, -jnp.inf)
        return jnp.where(positive, lp, jnp.where(scale == 0, point_mass, jnp.nan))

    return guarded


# -(0.5 z) z, not -0.5 z**2: z**2 overflows float32 for |z| > 1.8e19, before the half brings the
# value back into range (up to |z| = 2.6e19); halving first is exact.
normal_logpdf = _loc_scale_logpdf(lambda z: -(0.5 * z) * z - HALF_LOG_2PI, lambda z: -z)
normal_logpdf.__doc__ = "Elementwise log N(y; loc, scale**2), finite gradients down to tiny scales."

laplace_logpdf = _loc_scale_logpdf(lambda z: -jnp.abs(z) - LOG_2, lambda z: -jnp.sign(z))
laplace_logpdf.__doc__ = "Elementwise log Laplace(y; loc, scale); the gradient at y == loc is 0."


def weighted(weight: jax.Array, x: jax.Array) -> jax.Array:
    """weight * x, and exactly 0 where weight is 0 even if x is inf (a hard label at z = +-inf)."""
    return jnp.where(weight == 0.0, 0.0, weight * x)


def bernoulli_log_prob(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """log p(y) for a Bernoulli with P(y=1) = sigmoid(logits), in softplus form.

    ``-(y softplus(-z) + (1 - y) softplus(z))``: never ``log(sigmoid(z))``, so the gradient is
    exactly ``y - sigmoid(z)`` and saturates only when the answer is right (section 6.2.2.2).
    y in (0, 1) gives the cross-entropy with a soft label; y outside [0, 1] gives -inf.
    Infinite logits are exact: log P(1) is 0 at z = +inf and -inf at z = -inf.
    """
    z = jnp.asarray(logits)
    y = float_value(y, z)
    pos = z >= 0.0
    # softplus(+-z) = max(+-z, 0) + log1p(exp(-|z|)), jax.nn.softplus's values bit for bit, with
    # one exp and one log1p shared by both terms (and by the gradient, exp(-|z|) / (1 + ...)).
    # -|z| is a where, not abs: its derivative is then -sign(z) on each side and -1 at 0, so
    # the second derivative (curvature's Hessians) is sigmoid's everywhere, also at z = 0.
    tail = jnp.log1p(jnp.exp(jnp.where(pos, -z, z)))
    lp = -(
        weighted(y, jnp.where(pos, 0.0, -z) + tail)
        + weighted(1.0 - y, jnp.where(pos, z, 0.0) + tail)
    )
    return jnp.where((y >= 0.0) & (y <= 1.0), lp, -jnp.inf)


def _limit_logits(z: jax.Array) -> jax.Array:
    """``z``, with each row that holds +inf replaced by 0 at its +inf entries and -inf elsewhere:
    softmax's limit there is uniform over the +inf classes (inf - inf would give NaN)."""
    top = jnp.isposinf(z)
    return jnp.where(jnp.any(top, axis=-1, keepdims=True), jnp.where(top, 0.0, -jnp.inf), z)


@jax.custom_jvp
def log_softmax(logits: jax.Array) -> jax.Array:
    """``jax.nn.log_softmax`` over the last axis, exact at infinite logits.

    A +inf logit takes all the probability (several share it equally): log p is 0 there and -inf
    elsewhere, and the gradient of log p_k is its limit one_hot(k) - p, as Bernoulli's is at
    z = +-inf; -inf marks a class of zero probability.
    """
    return jax.nn.log_softmax(_limit_logits(logits), axis=-1)


@log_softmax.defjvp
def _log_softmax_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    out = log_softmax(z)
    return out, dz - jnp.sum(jnp.exp(out) * dz, axis=-1, keepdims=True)


def categorical_log_prob(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """log softmax(logits)[y] via log-sum-exp; a label outside [0, K) gives -inf.

    Args:
      logits: [..., K]; -inf marks a class of zero probability, +inf takes all of it (see
        ``log_softmax``).
      y: integer labels [...].
    """
    logp = log_softmax(jnp.asarray(logits))
    num_classes = logp.shape[-1]
    y = jnp.asarray(y)
    picked = jnp.take_along_axis(logp, jnp.clip(y, 0, num_classes - 1)[..., None], axis=-1)[..., 0]
    return jnp.where((y >= 0) & (y < num_classes), picked, -jnp.inf)
