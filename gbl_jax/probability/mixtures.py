"""A mixture of K normals per batch element: the output of a mixture density network.

``MixtureNormal`` (re-exported by ``distributions`` and as ``gbl.MixtureNormal``) and its log
density ``mixture_normal_logpdf``: log-sum-exp over the components with no NaN gradients. A
component of zero responsibility passes back exactly 0; where every component's density
underflows, the value is -inf and the gradient is the nearest component's.

References:
  Bishop (1994), "Mixture density networks"; Goodfellow, Bengio & Courville (2016), *Deep
  Learning*, section 6.2.2.4.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gbl_jax.probability.densities import log_softmax, normal_logpdf
from gbl_jax.probability.family_rules import (
    check_value_shape,
    common_shape,
    float_value,
    pytree,
    shape_str,
    validate_finite,
    validate_logits,
    validate_scale,
)


def _nearest_components(
    log_w: jax.Array, y_KD: jax.Array, loc_KD: jax.Array, scale_KD: jax.Array
) -> jax.Array:
    """Scores that rank the components when every one's density underflows, [..., K].

    A component's log density is -0.5 ||z_k||^2 plus terms bounded by a few hundred, so once all
    of them overflow to -inf the true posterior puts all its mass on the components nearest to y
    (smallest ||z_k||, found in log space so that it cannot overflow); exact ties share it in
    proportion to w_k / prod_d scale_kd. Everything else scores -inf.
    """
    log_norm = log_w - jnp.sum(jnp.log(scale_KD), axis=-1)
    log_z = jnp.log(jnp.abs(y_KD - loc_KD)) - jnp.log(scale_KD)
    log_dist = jax.nn.logsumexp(2.0 * log_z, axis=-1)
    log_dist = jnp.where(log_norm > -jnp.inf, log_dist, jnp.inf)
    nearest = (log_dist == jnp.min(log_dist, axis=-1, keepdims=True)) & (log_norm > -jnp.inf)
    return jnp.where(nearest, log_norm, -jnp.inf)


def _responsibilities(lp_K: jax.Array, nearest_K: jax.Array) -> jax.Array:
    """softmax(lp_K); a row that is all -inf (every density underflowed) uses softmax(nearest_K)."""
    underflow = jnp.all(lp_K == -jnp.inf, axis=-1, keepdims=True)
    # Double where: softmax of an all -inf row is NaN, and NaN leaks through a plain where's grad.
    return jnp.where(
        underflow,
        jax.nn.softmax(jnp.where(underflow, nearest_K, 0.0), axis=-1),
        jax.nn.softmax(jnp.where(underflow, 0.0, lp_K), axis=-1),
    )


@jax.custom_jvp
def _logsumexp(lp_K: jax.Array, nearest_K: jax.Array) -> jax.Array:
    """log sum_k exp(lp_k), whose gradient is the responsibilities even where the sum underflows."""
    return jax.nn.logsumexp(lp_K, axis=-1)


@_logsumexp.defjvp
def _logsumexp_jvp(primals, tangents):
    lp, nearest = primals
    dlp, _ = tangents
    # jax.nn.logsumexp's gradient is 0/0 on a row of -inf; the limit is the responsibilities.
    resp = _responsibilities(lp, jax.lax.stop_gradient(nearest))
    return _logsumexp(lp, nearest), jnp.sum(resp * dlp, axis=-1)


# Jitted as a whole: called eagerly, its dozens of small ops would each compile and dispatch.
@jax.jit
def mixture_normal_logpdf(
    y: jax.Array, logits: jax.Array, loc: jax.Array, scale: jax.Array
) -> jax.Array:
    """log sum_k softmax(logits)_k prod_d N(y_d; loc_kd, scale_kd**2), with no NaN gradients.

    Each component uses ``normal_logpdf`` (finite gradients down to tiny scales). A component of
    zero responsibility passes back exactly 0, although its own gradient may overflow (a far
    target at a tiny scale: 0 * inf would be NaN). Where every density underflows, the value is
    -inf and the gradient is the nearest component's, as the true posterior's limit; with K = 1
    this is exactly ``Normal``'s.

    Args:
      y: [..., D].
      logits: [..., K].
      loc, scale: [..., K, D].

    Returns:
      log p(y), [...].

    References:
      Bishop (1994), "Mixture density networks" (the responsibility-weighted gradient).
    """
    y_KD = jnp.broadcast_to(y[..., None, :], loc.shape)
    log_w = log_softmax(logits)
    frozen = jax.lax.stop_gradient
    nearest = frozen(_nearest_components(log_w, y_KD, loc, scale))
    lp_frozen = frozen(log_w + jnp.sum(normal_logpdf(*map(frozen, (y_KD, loc, scale))), axis=-1))
    live = _responsibilities(lp_frozen, nearest) > 0
    # A dead component is re-evaluated at y = loc (finite gradient) and its value kept frozen.
    y_live = jnp.where(live[..., None], y_KD, loc)
    lp = jnp.where(live, log_w + jnp.sum(normal_logpdf(y_live, loc, scale), axis=-1), lp_frozen)
    return _logsumexp(lp, nearest)


@pytree
@dataclasses.dataclass(frozen=True, eq=False)
class MixtureNormal:
    """Mixture of K diagonal Gaussians in D dimensions: the mixture density network's output.

    p(y) = sum_k softmax(logits)_k prod_d N(y_d; loc_kd, scale_kd**2)  (Bishop 1994; 6.2.2.4).

    log_prob uses ``normal_logpdf`` per component and never gives a NaN gradient (see
    ``mixture_normal_logpdf``); with K = 1 it equals ``Normal``'s in value and gradient. What
    remains: where the true log density is below float32's range (a target 1e20 away at scale 1,
    or 0.5 away at scale 1e-30) the value is -inf, and the gradient is the nearest component's
    ``Normal`` gradient, which is itself +-inf wherever its true value overflows (d/dscale =
    (z**2 - 1) / scale = 1e40 for the first example); it is never NaN.

    Attributes:
      logits: [..., K] mixture weights as logits (-inf: a component of zero weight; +inf: one
        that takes all of it, shared equally by several).
      loc: [..., K, D] component means.
      scale: [..., K, D] component standard deviations > 0 (or a scalar).
    """

    logits: ArrayLike
    loc: ArrayLike
    scale: ArrayLike

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self._shapes()[0]

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self._shapes()[2]

    def _shapes(self):
        logits_shape = tuple(jnp.shape(self.logits))
        loc_shape = common_shape("MixtureNormal", loc=self.loc, scale=self.scale)
        if len(logits_shape) < 1 or loc_shape[:-1] != logits_shape:
            raise ValueError(
                f"MixtureNormal: loc/scale must have shape logits.shape + [D] = [..., K, D]; got "
                f"logits {shape_str(logits_shape)}, loc {shape_str(jnp.shape(self.loc))}, "
                f"scale {shape_str(jnp.shape(self.scale))}"
            )
        return logits_shape[:-1], logits_shape[-1], loc_shape[-1:]

    def broadcast_params(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(logits [..., K], loc [..., K, D], scale [..., K, D]) in one float dtype (>= float32)."""
        dtype = jnp.result_type(self.logits, self.loc, self.scale, jnp.float32)
        shape = jnp.shape(self.loc) or jnp.shape(self.scale)
        return (
            jnp.asarray(self.logits, dtype),
            jnp.broadcast_to(jnp.asarray(self.loc, dtype), shape),
            jnp.broadcast_to(jnp.asarray(self.scale, dtype), shape),
        )

    def component_log_prob(self, y: ArrayLike) -> jax.Array:
        """log pi_k + log N(y; loc_k, diag(scale_k**2)), [..., K]; y is [..., D]."""
        batch, _, event = self._shapes()
        check_value_shape("MixtureNormal", batch + event, y)
        logits, loc, scale = self.broadcast_params()
        y_K = jnp.broadcast_to(float_value(y, loc)[..., None, :], loc.shape)
        return log_softmax(logits) + normal_logpdf(y_K, loc, scale).sum(-1)

    def log_prob(self, y: ArrayLike) -> jax.Array:
        """log p(y) by log-sum-exp over components, [...]; see ``mixture_normal_logpdf``."""
        batch, _, event = self._shapes()
        check_value_shape("MixtureNormal", batch + event, y)
        logits, loc, scale = self.broadcast_params()
        return mixture_normal_logpdf(float_value(y, loc), logits, loc, scale)

    def responsibilities(self, y: ArrayLike) -> jax.Array:
        """Posterior P(component k | y), [..., K]; on the nearest components if all underflow."""
        lp = self.component_log_prob(y)  # checks y's shape first
        logits, loc, scale = self.broadcast_params()
        y_KD = jnp.broadcast_to(float_value(y, loc)[..., None, :], loc.shape)
        nearest = _nearest_components(log_softmax(logits), y_KD, loc, scale)
        return _responsibilities(lp, nearest)

    def weights(self) -> jax.Array:
        return jnp.exp(log_softmax(self.broadcast_params()[0]))

    def mean(self) -> jax.Array:
        _, loc, _ = self.broadcast_params()
        return jnp.sum(self.weights()[..., None] * loc, axis=-2)

    def variance(self) -> jax.Array:
        """Per-dimension variance of the mixture (law of total variance), [..., D]."""
        _, loc, scale = self.broadcast_params()
        w = self.weights()[..., None]
        second_moment = jnp.sum(w * (jnp.square(scale) + jnp.square(loc)), axis=-2)
        return second_moment - jnp.square(self.mean())

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape, D] samples."""
        k_component, k_noise = jax.random.split(key)
        logits, loc, scale = self.broadcast_params()
        shape = tuple(shape)
        component = jax.random.categorical(
            k_component, log_softmax(logits), axis=-1, shape=shape + logits.shape[:-1]
        )
        index = jnp.broadcast_to(
            component[..., None, None], shape + loc.shape[:-2] + (1,) + loc.shape[-1:]
        )
        pick = lambda a: jnp.take_along_axis(jnp.broadcast_to(a, shape + a.shape), index, axis=-2)[
            ..., 0, :
        ]
        noise = jax.random.normal(k_noise, shape + loc.shape[:-2] + loc.shape[-1:], loc.dtype)
        return pick(loc) + pick(scale) * noise

    def validate(self, y: ArrayLike | None = None) -> None:
        self._shapes()
        validate_logits("MixtureNormal", self.logits)
        validate_finite("MixtureNormal", "loc", self.loc)
        validate_scale("MixtureNormal", self.scale)
        if y is not None:
            batch, _, event = self._shapes()
            check_value_shape("MixtureNormal", batch + event, y)
            validate_finite("MixtureNormal", "y", y)
