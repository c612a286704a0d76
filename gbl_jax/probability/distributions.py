"""Output distributions p(y | x) as pytrees of parameter arrays.

Every family is a frozen dataclass registered with JAX, so it passes through ``jit``, ``vmap`` and
``grad`` like any other pytree. All densities are computed in log space so that the negative
log-likelihood never saturates where *Deep Learning* section 6.2.2 says it should not.

Shapes are strict: ``log_prob(y)`` requires ``y.shape == batch_shape + event_shape`` exactly and
raises ``ValueError`` naming both shapes otherwise, at trace time. Parameters may be given as
Python scalars (``Normal(f, 1.0)``); any non-scalar parameters must agree in shape.

The elementwise families live here (Normal, Laplace, Bernoulli, Categorical); the mixture
(``mixtures``) and the multivariate normal (``mvn``) in their own modules, re-exported here with
the log densities of ``densities``.

References:
  Goodfellow, Bengio & Courville (2016), *Deep Learning*, sections 6.2.1-6.2.2.
  Bishop (1994), "Mixture density networks".
"""

from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gbl_jax.probability.densities import (
    HALF_LOG_2PI,
    LOG_2,
    bernoulli_log_prob,
    categorical_log_prob,
    laplace_logpdf,
    log_softmax,
    normal_logpdf,
    weighted,
)
from gbl_jax.probability.family_rules import (
    check_value_shape,
    common_shape,
    concrete,
    float_value,
    pytree,
    require,
    require_integer_labels,
    validate_finite,
    validate_labels,
    validate_logits,
    validate_scale,
)
from gbl_jax.probability.mixtures import MixtureNormal, mixture_normal_logpdf
from gbl_jax.probability.mvn import MultivariateNormalTriL, mvn_tril_logpdf

__all__ = [
    "Bernoulli",
    "Categorical",
    "Distribution",
    "Laplace",
    "MixtureNormal",
    "MultivariateNormalTriL",
    "Normal",
    "bernoulli_log_prob",
    "categorical_log_prob",
    "laplace_logpdf",
    "log_prob",
    "mixture_normal_logpdf",
    "mvn_tril_logpdf",
    "normal_logpdf",
    "validate",
]


class _LocScale:
    """Shared code of the elementwise location-scale families (Normal, Laplace)."""

    loc: ArrayLike  # the fields themselves are declared by each dataclass
    scale: ArrayLike
    _logpdf: ClassVar[Callable[..., jax.Array]]
    _noise: ClassVar[Callable[..., jax.Array]]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return common_shape(type(self).__name__, loc=self.loc, scale=self.scale)

    event_shape = ()

    def broadcast_params(self) -> tuple[jax.Array, jax.Array]:
        """(loc, scale) as arrays of one float dtype (at least float32), each [*batch_shape]."""
        shape = self.batch_shape
        dtype = jnp.result_type(self.loc, self.scale, jnp.float32)
        return (
            jnp.broadcast_to(jnp.asarray(self.loc, dtype), shape),
            jnp.broadcast_to(jnp.asarray(self.scale, dtype), shape),
        )

    def log_prob(self, y: ArrayLike) -> jax.Array:
        """log p(y) per element; y has the batch shape."""
        check_value_shape(type(self).__name__, self.batch_shape, y)
        loc, scale = self.broadcast_params()
        return type(self)._logpdf(float_value(y, loc), loc, scale)

    def mean(self) -> jax.Array:
        return self.broadcast_params()[0]

    def mode(self) -> jax.Array:
        return self.broadcast_params()[0]

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape] samples."""
        loc, scale = self.broadcast_params()
        full = tuple(shape) + loc.shape
        noise = type(self)._noise(key, full, loc.dtype)
        return jnp.broadcast_to(loc, full) + jnp.broadcast_to(scale, full) * noise

    def validate(self, y: ArrayLike | None = None) -> None:
        family = type(self).__name__
        self.broadcast_params()
        validate_finite(family, "loc", self.loc)
        validate_scale(family, self.scale)
        if y is not None:
            check_value_shape(family, self.batch_shape, y)
            validate_finite(family, "y", y)


@pytree
@dataclasses.dataclass(frozen=True, eq=False)
class Normal(_LocScale):
    """Elementwise Gaussian N(loc, scale**2): the linear output unit's distribution (6.2.2.1).

    Attributes:
      loc: mean, any shape.
      scale: standard deviation > 0, same shape as loc or a scalar.
    """

    loc: ArrayLike
    scale: ArrayLike

    _logpdf = normal_logpdf
    _noise = jax.random.normal

    def variance(self) -> jax.Array:
        return jnp.square(self.broadcast_params()[1])

    def entropy(self) -> jax.Array:
        return 0.5 + HALF_LOG_2PI + jnp.log(self.broadcast_params()[1])


@pytree
@dataclasses.dataclass(frozen=True, eq=False)
class Laplace(_LocScale):
    """Elementwise Laplace(loc, scale): its maximum-likelihood loc is the conditional median.

    With a fixed scale, the NLL is mean absolute error / scale + const (section 6.2.1.2).

    Attributes:
      loc: median, any shape.
      scale: > 0, same shape as loc or a scalar.
    """

    loc: ArrayLike
    scale: ArrayLike

    _logpdf = laplace_logpdf
    _noise = jax.random.laplace

    def variance(self) -> jax.Array:
        return 2.0 * jnp.square(self.broadcast_params()[1])

    def entropy(self) -> jax.Array:
        return 1.0 + LOG_2 + jnp.log(self.broadcast_params()[1])


@pytree
@dataclasses.dataclass(frozen=True, eq=False)
class Bernoulli:
    """Elementwise Bernoulli with P(y = 1) = sigmoid(logits): the sigmoid unit (6.2.2.2).

    Infinite logits are allowed (``validate`` accepts them): they are the saturated limits, and
    log_prob, entropy and the gradient y - sigmoid(z) stay exact there. NaN logits are rejected.

    Attributes:
      logits: any shape; y has the same shape, values in {0, 1}.
    """

    logits: ArrayLike

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(jnp.shape(self.logits))

    event_shape = ()

    def log_prob(self, y: ArrayLike) -> jax.Array:
        """log P(y) in softplus form; see ``bernoulli_log_prob``."""
        check_value_shape("Bernoulli", self.batch_shape, y)
        return bernoulli_log_prob(
            jnp.asarray(self.logits, jnp.result_type(self.logits, jnp.float32)), y
        )

    def probs(self) -> jax.Array:
        return jax.nn.sigmoid(jnp.asarray(self.logits))

    mean = probs

    def mode(self) -> jax.Array:
        return (jnp.asarray(self.logits) > 0).astype(self.probs().dtype)

    def variance(self) -> jax.Array:
        z = jnp.asarray(self.logits)
        return jax.nn.sigmoid(z) * jax.nn.sigmoid(-z)

    def entropy(self) -> jax.Array:
        z = jnp.asarray(self.logits)
        return weighted(jax.nn.sigmoid(z), jax.nn.softplus(-z)) + weighted(
            jax.nn.sigmoid(-z), jax.nn.softplus(z)
        )

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape] samples in {0, 1} (float)."""
        p = self.probs()
        p = jnp.broadcast_to(p, tuple(shape) + p.shape)
        return jax.random.bernoulli(key, p).astype(p.dtype)

    def validate(self, y: ArrayLike | None = None) -> None:
        z = concrete("logits", self.logits)
        require(not np.isnan(z).any(), "Bernoulli: logits contain NaN")
        if y is not None:
            check_value_shape("Bernoulli", self.batch_shape, y)
            v = concrete("y", y)
            bad = (v != 0) & (v != 1)
            require(
                not bad.any(),
                f"Bernoulli: y must be 0 or 1; {int(bad.sum())} entries are not "
                f"(e.g. {v[bad][:3].tolist()})",
            )


@pytree
@dataclasses.dataclass(frozen=True, eq=False)
class Categorical:
    """Categorical over K classes with probabilities softmax(logits): the softmax unit (6.2.2.3).

    Infinite logits are exact, as Bernoulli's: -inf is a class of zero probability, +inf takes
    all of it (shared equally by several); see ``densities.log_softmax``. NaN is rejected.

    Attributes:
      logits: [..., K]; y is an integer array [...].
    """

    logits: ArrayLike

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(jnp.shape(self.logits))[:-1]

    event_shape = ()

    @property
    def num_classes(self) -> int:
        return jnp.shape(self.logits)[-1]

    def log_prob(self, y: ArrayLike) -> jax.Array:
        """log softmax(logits)[y]; -inf for a label outside [0, K)."""
        if jnp.ndim(self.logits) < 1:
            raise ValueError("Categorical: logits need a class axis [..., K], got a scalar")
        check_value_shape("Categorical", self.batch_shape, y)
        require_integer_labels("Categorical", y)
        return categorical_log_prob(self.logits, y)

    def probs(self) -> jax.Array:
        return jnp.exp(self.log_probs())

    def log_probs(self) -> jax.Array:
        return log_softmax(jnp.asarray(self.logits))

    def mode(self) -> jax.Array:
        return jnp.argmax(jnp.asarray(self.logits), axis=-1)

    def entropy(self) -> jax.Array:
        logp = self.log_probs()
        # A class with -inf logit contributes 0 * -inf; its limit is 0.
        return -jnp.sum(jnp.exp(logp) * jnp.where(jnp.isfinite(logp), logp, 0.0), axis=-1)

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape] integer labels."""
        # log_softmax: several +inf logits share the draws, as they share the probability
        return jax.random.categorical(
            key,
            log_softmax(jnp.asarray(self.logits)),
            axis=-1,
            shape=tuple(shape) + self.batch_shape,
        )

    def validate(self, y: ArrayLike | None = None) -> None:
        validate_logits("Categorical", self.logits)
        if y is not None:
            check_value_shape("Categorical", self.batch_shape, y)
            validate_labels("Categorical", y, self.num_classes)


Distribution = Normal | Laplace | Bernoulli | Categorical | MixtureNormal | MultivariateNormalTriL


def log_prob(dist, y: ArrayLike) -> jax.Array:
    """log p(y): one value per element (elementwise families) or per event.

    Args:
      dist: a gbl_jax distribution, or any object with ``.log_prob(y)``.
      y: a value of the distribution's batch + event shape.
    """
    return dist.log_prob(y)


def validate(dist, y: ArrayLike | None = None) -> None:
    """Eagerly checks parameters (and y, if given) lie in the family's domain.

    Raises ValueError for bad labels, non-positive or non-finite scales, NaN logits, a
    non-triangular, singular or subnormal ``scale_tril``, and a y whose multivariate normal log
    density is beyond the dtype's range. Infinite logits pass (Bernoulli, Categorical, mixture
    weights; not a row of all -inf): they are exact. Call it outside ``jit``: it reads concrete
    values.
    """
    if not hasattr(dist, "validate"):
        raise TypeError(f"validate: {type(dist).__name__} is not a gbl_jax distribution")
    dist.validate(y)
