"""Output distributions p(y | x) as pytrees of parameter arrays.

Every family is a frozen dataclass registered with JAX, so it passes through ``jit``, ``vmap`` and
``grad`` like any other pytree. All densities are computed in log space so that the negative
log-likelihood never saturates where *Deep Learning* section 6.2.2 says it should not.

Shapes are strict: ``log_prob(y)`` requires ``y.shape == batch_shape + event_shape`` exactly and
raises ``ValueError`` naming both shapes otherwise, at trace time. Parameters may be given as
Python scalars (``Normal(f, 1.0)``); any non-scalar parameters must agree in shape.

References:
  Goodfellow, Bengio & Courville (2016), *Deep Learning*, sections 6.2.1-6.2.2.
  Bishop (1994), "Mixture density networks".
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def _pytree(*fields: str):
    """Registers a frozen dataclass as a pytree whose leaves are ``fields``."""

    def wrap(cls):
        # eq=False: field-wise == on arrays is ambiguous, and identity hashing keeps them usable.
        cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
        return jax.tree_util.register_dataclass(cls, data_fields=list(fields), meta_fields=[])

    return wrap


def _shape_str(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _common_shape(family: str, **params: ArrayLike) -> tuple[int, ...]:
    """The one non-scalar shape shared by ``params``; scalars broadcast, nothing else does."""
    shapes = {name: tuple(jnp.shape(p)) for name, p in params.items()}
    distinct = {s for s in shapes.values() if s != ()}
    if len(distinct) > 1:
        listed = ", ".join(f"{n} {_shape_str(s)}" for n, s in shapes.items())
        raise ValueError(f"{family}: parameter shapes must match (scalars excepted); got {listed}")
    return next(iter(distinct), ())


def _check_value_shape(family: str, expected: tuple[int, ...], y: ArrayLike) -> None:
    got = tuple(jnp.shape(y))
    if got != tuple(expected):
        raise ValueError(
            f"{family}: y has shape {_shape_str(got)} but the distribution expects "
            f"{_shape_str(expected)} (batch + event shape); no broadcasting is done"
        )


def _float_value(y: ArrayLike, like: jax.Array) -> jax.Array:
    return jnp.asarray(y, dtype=jnp.result_type(like, jnp.float32))


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


normal_logpdf = _loc_scale_logpdf(
    lambda z: -0.5 * jnp.square(z) - _HALF_LOG_2PI, lambda z: -z
)
normal_logpdf.__doc__ = "Elementwise log N(y; loc, scale**2), finite gradients down to tiny scales."

laplace_logpdf = _loc_scale_logpdf(lambda z: -jnp.abs(z) - _LOG_2, lambda z: -jnp.sign(z))
laplace_logpdf.__doc__ = "Elementwise log Laplace(y; loc, scale); the gradient at y == loc is 0."


def bernoulli_log_prob(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """log p(y) for a Bernoulli with P(y=1) = sigmoid(logits), in softplus form.

    ``-(y softplus(-z) + (1 - y) softplus(z))``: never ``log(sigmoid(z))``, so the gradient is
    exactly ``y - sigmoid(z)`` and saturates only when the answer is right (section 6.2.2.2).
    y in (0, 1) gives the cross-entropy with a soft label; y outside [0, 1] gives -inf.
    """
    z = jnp.asarray(logits)
    y = _float_value(y, z)
    lp = -(y * jax.nn.softplus(-z) + (1.0 - y) * jax.nn.softplus(z))
    return jnp.where((y >= 0.0) & (y <= 1.0), lp, -jnp.inf)


def categorical_log_prob(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """log softmax(logits)[y] via log-sum-exp; a label outside [0, K) gives -inf.

    Args:
      logits: [..., K]; -inf marks a class of zero probability.
      y: integer labels [...].
    """
    logp = jax.nn.log_softmax(jnp.asarray(logits), axis=-1)
    num_classes = logp.shape[-1]
    y = jnp.asarray(y)
    picked = jnp.take_along_axis(logp, jnp.clip(y, 0, num_classes - 1)[..., None], axis=-1)[..., 0]
    return jnp.where((y >= 0) & (y < num_classes), picked, -jnp.inf)


def _require_integer_labels(family: str, y: ArrayLike) -> None:
    dtype = jnp.result_type(y)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"{family}: labels y must have an integer dtype, got {dtype}")


def _concrete(name: str, x: ArrayLike) -> np.ndarray:
    try:
        return np.asarray(x)
    except jax.errors.TracerArrayConversionError as err:
        raise TypeError(f"validate() is eager: {name} is a traced value; call it outside jit") from err


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _validate_scale(family: str, scale: ArrayLike) -> None:
    s = _concrete("scale", scale)
    bad = ~(np.isfinite(s) & (s > 0))
    _require(not bad.any(), f"{family}: scale must be finite and > 0; {int(bad.sum())} entries are "
             f"not (smallest {s.min() if s.size else 'n/a'})")


def _validate_finite(family: str, name: str, x: ArrayLike) -> None:
    a = _concrete(name, x)
    _require(bool(np.isfinite(a).all()), f"{family}: {name} has {int((~np.isfinite(a)).sum())} "
             "non-finite entries")


def _validate_logits(family: str, logits: ArrayLike) -> None:
    z = _concrete("logits", logits)
    _require(not np.isnan(z).any(), f"{family}: logits contain NaN")
    _require(not np.isposinf(z).any(), f"{family}: logits contain +inf")
    _require(not np.isneginf(z).all(axis=-1).any(), f"{family}: some rows of logits are all -inf")


def _validate_labels(family: str, y: ArrayLike, num_classes: int) -> None:
    _require_integer_labels(family, y)
    labels = _concrete("y", y)
    bad = (labels < 0) | (labels >= num_classes)
    _require(not bad.any(), f"{family}: labels must lie in [0, {num_classes}); "
             f"{int(bad.sum())} do not (e.g. {labels[bad][:3].tolist()})")


class _LocScale:
    """Shared code of the elementwise location-scale families (Normal, Laplace)."""

    _logpdf: Callable
    _noise: Callable

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _common_shape(type(self).__name__, loc=self.loc, scale=self.scale)

    event_shape = ()

    def _params(self):
        shape = self.batch_shape
        dtype = jnp.result_type(self.loc, self.scale, jnp.float32)
        return (jnp.broadcast_to(jnp.asarray(self.loc, dtype), shape),
                jnp.broadcast_to(jnp.asarray(self.scale, dtype), shape))

    def log_prob(self, y: ArrayLike) -> jax.Array:
        """log p(y) per element; y has the batch shape."""
        _check_value_shape(type(self).__name__, self.batch_shape, y)
        loc, scale = self._params()
        return type(self)._logpdf(_float_value(y, loc), loc, scale)

    def mean(self) -> jax.Array:
        return self._params()[0]

    def mode(self) -> jax.Array:
        return self._params()[0]

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape] samples."""
        loc, scale = self._params()
        full = tuple(shape) + loc.shape
        noise = type(self)._noise(key, full, loc.dtype)
        return jnp.broadcast_to(loc, full) + jnp.broadcast_to(scale, full) * noise

    def validate(self, y: ArrayLike | None = None) -> None:
        family = type(self).__name__
        self._params()
        _validate_finite(family, "loc", self.loc)
        _validate_scale(family, self.scale)
        if y is not None:
            _check_value_shape(family, self.batch_shape, y)
            _validate_finite(family, "y", y)


@_pytree("loc", "scale")
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
        return jnp.square(self._params()[1])

    def entropy(self) -> jax.Array:
        return 0.5 + _HALF_LOG_2PI + jnp.log(self._params()[1])


@_pytree("loc", "scale")
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
        return 2.0 * jnp.square(self._params()[1])

    def entropy(self) -> jax.Array:
        return 1.0 + _LOG_2 + jnp.log(self._params()[1])


@_pytree("logits")
class Bernoulli:
    """Elementwise Bernoulli with P(y = 1) = sigmoid(logits): the sigmoid unit (6.2.2.2).

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
        _check_value_shape("Bernoulli", self.batch_shape, y)
        return bernoulli_log_prob(jnp.asarray(self.logits, jnp.result_type(self.logits, jnp.float32)),
                                  y)

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
        return jax.nn.sigmoid(z) * jax.nn.softplus(-z) + jax.nn.sigmoid(-z) * jax.nn.softplus(z)

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape] samples in {0, 1} (float)."""
        p = self.probs()
        p = jnp.broadcast_to(p, tuple(shape) + p.shape)
        return jax.random.bernoulli(key, p).astype(p.dtype)

    def validate(self, y: ArrayLike | None = None) -> None:
        z = _concrete("logits", self.logits)
        _require(not np.isnan(z).any(), "Bernoulli: logits contain NaN")
        if y is not None:
            _check_value_shape("Bernoulli", self.batch_shape, y)
            v = _concrete("y", y)
            bad = (v != 0) & (v != 1)
            _require(not bad.any(), f"Bernoulli: y must be 0 or 1; {int(bad.sum())} entries are not "
                     f"(e.g. {v[bad][:3].tolist()})")


@_pytree("logits")
class Categorical:
    """Categorical over K classes with probabilities softmax(logits): the softmax unit (6.2.2.3).

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
        _check_value_shape("Categorical", self.batch_shape, y)
        _require_integer_labels("Categorical", y)
        return categorical_log_prob(self.logits, y)

    def probs(self) -> jax.Array:
        return jax.nn.softmax(jnp.asarray(self.logits), axis=-1)

    def log_probs(self) -> jax.Array:
        return jax.nn.log_softmax(jnp.asarray(self.logits), axis=-1)

    def mode(self) -> jax.Array:
        return jnp.argmax(jnp.asarray(self.logits), axis=-1)

    def entropy(self) -> jax.Array:
        logp = self.log_probs()
        # A class with -inf logit contributes 0 * -inf; its limit is 0.
        return -jnp.sum(jnp.exp(logp) * jnp.where(jnp.isfinite(logp), logp, 0.0), axis=-1)

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape] integer labels."""
        return jax.random.categorical(key, jnp.asarray(self.logits), axis=-1,
                                      shape=tuple(shape) + self.batch_shape)

    def validate(self, y: ArrayLike | None = None) -> None:
        _validate_logits("Categorical", self.logits)
        if y is not None:
            _check_value_shape("Categorical", self.batch_shape, y)
            _validate_labels("Categorical", y, self.num_classes)


@_pytree("logits", "loc", "scale")
class MixtureNormal:
    """Mixture of K diagonal Gaussians in D dimensions: the mixture density network's output.

    p(y) = sum_k softmax(logits)_k prod_d N(y_d; loc_kd, scale_kd**2)  (Bishop 1994; 6.2.2.4).

    Attributes:
      logits: [..., K] mixture weights as logits (-inf: a component of zero weight).
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
        loc_shape = _common_shape("MixtureNormal", loc=self.loc, scale=self.scale)
        if len(logits_shape) < 1 or loc_shape[:-1] != logits_shape:
            raise ValueError(
                f"MixtureNormal: loc/scale must have shape logits.shape + [D] = [..., K, D]; got "
                f"logits {_shape_str(logits_shape)}, loc {_shape_str(jnp.shape(self.loc))}, "
                f"scale {_shape_str(jnp.shape(self.scale))}"
            )
        return logits_shape[:-1], logits_shape[-1], loc_shape[-1:]

    def _params(self):
        dtype = jnp.result_type(self.logits, self.loc, self.scale, jnp.float32)
        shape = jnp.shape(self.loc) or jnp.shape(self.scale)
        return (jnp.asarray(self.logits, dtype),
                jnp.broadcast_to(jnp.asarray(self.loc, dtype), shape),
                jnp.broadcast_to(jnp.asarray(self.scale, dtype), shape))

    def component_log_prob(self, y: ArrayLike) -> jax.Array:
        """log pi_k + log N(y; loc_k, diag(scale_k**2)), [..., K]; y is [..., D]."""
        batch, _, event = self._shapes()
        _check_value_shape("MixtureNormal", batch + event, y)
        logits, loc, scale = self._params()
        y_K = jnp.broadcast_to(_float_value(y, loc)[..., None, :], loc.shape)
        return jax.nn.log_softmax(logits, axis=-1) + normal_logpdf(y_K, loc, scale).sum(-1)

    def log_prob(self, y: ArrayLike) -> jax.Array:
        """log p(y) by log-sum-exp over components, [...]; y is [..., D]."""
        return jax.nn.logsumexp(self.component_log_prob(y), axis=-1)

    def responsibilities(self, y: ArrayLike) -> jax.Array:
        """Posterior P(component k | y), [..., K]."""
        return jax.nn.softmax(self.component_log_prob(y), axis=-1)

    def weights(self) -> jax.Array:
        return jax.nn.softmax(self._params()[0], axis=-1)

    def mean(self) -> jax.Array:
        _, loc, _ = self._params()
        return jnp.sum(self.weights()[..., None] * loc, axis=-2)

    def variance(self) -> jax.Array:
        """Per-dimension variance of the mixture (law of total variance), [..., D]."""
        _, loc, scale = self._params()
        w = self.weights()[..., None]
        second_moment = jnp.sum(w * (jnp.square(scale) + jnp.square(loc)), axis=-2)
        return second_moment - jnp.square(self.mean())

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape, D] samples."""
        k_component, k_noise = jax.random.split(key)
        logits, loc, scale = self._params()
        shape = tuple(shape)
        component = jax.random.categorical(k_component, logits, axis=-1,
                                           shape=shape + logits.shape[:-1])
        index = jnp.broadcast_to(component[..., None, None], shape + loc.shape[:-2] + (1,) +
                                 loc.shape[-1:])
        pick = lambda a: jnp.take_along_axis(jnp.broadcast_to(a, shape + a.shape), index,
                                             axis=-2)[..., 0, :]
        noise = jax.random.normal(k_noise, shape + loc.shape[:-2] + loc.shape[-1:], loc.dtype)
        return pick(loc) + pick(scale) * noise

    def validate(self, y: ArrayLike | None = None) -> None:
        self._shapes()
        _validate_logits("MixtureNormal", self.logits)
        _validate_finite("MixtureNormal", "loc", self.loc)
        _validate_scale("MixtureNormal", self.scale)
        if y is not None:
            batch, _, event = self._shapes()
            _check_value_shape("MixtureNormal", batch + event, y)
            _validate_finite("MixtureNormal", "y", y)


@_pytree("loc", "scale_tril")
class MultivariateNormalTriL:
    """Full-covariance Gaussian N(loc, L L^T) with L lower triangular (Cholesky factor).

    Only the lower triangle of ``scale_tril`` is read; ``validate`` rejects a non-zero upper
    triangle and a zero diagonal (a singular covariance).

    Attributes:
      loc: [..., D].
      scale_tril: [..., D, D], or [D, D] shared by every batch element.
    """

    loc: ArrayLike
    scale_tril: ArrayLike

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(jnp.shape(self.loc))[:-1]

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(jnp.shape(self.loc))[-1:]

    def _params(self):
        loc_shape, tril_shape = tuple(jnp.shape(self.loc)), tuple(jnp.shape(self.scale_tril))
        if len(loc_shape) < 1 or tril_shape not in (loc_shape + loc_shape[-1:], loc_shape[-1:] * 2):
            raise ValueError(
                "MultivariateNormalTriL: scale_tril must have shape [..., D, D] matching loc [..., D] "
                f"(or [D, D]); got loc {_shape_str(loc_shape)}, "
                f"scale_tril {_shape_str(tril_shape)}"
            )
        dtype = jnp.result_type(self.loc, self.scale_tril, jnp.float32)
        tril = jnp.tril(jnp.asarray(self.scale_tril, dtype))
        return jnp.asarray(self.loc, dtype), jnp.broadcast_to(tril, loc_shape + loc_shape[-1:])

    def log_prob(self, y: ArrayLike) -> jax.Array:
        """log N(y; loc, L L^T) via a triangular solve, [...]; y is [..., D]."""
        loc, tril = self._params()
        _check_value_shape("MultivariateNormalTriL", loc.shape, y)
        diff = _float_value(y, loc) - loc
        white = jax.scipy.linalg.solve_triangular(tril, diff[..., None], lower=True)[..., 0]
        log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(tril, axis1=-2, axis2=-1))), axis=-1)
        return -0.5 * jnp.sum(jnp.square(white), axis=-1) - log_det - loc.shape[-1] * _HALF_LOG_2PI

    def mean(self) -> jax.Array:
        return self._params()[0]

    mode = mean

    def covariance(self) -> jax.Array:
        _, tril = self._params()
        return tril @ jnp.swapaxes(tril, -1, -2)

    def variance(self) -> jax.Array:
        return jnp.sum(jnp.square(self._params()[1]), axis=-1)

    def entropy(self) -> jax.Array:
        loc, tril = self._params()
        log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(tril, axis1=-2, axis2=-1))), axis=-1)
        return loc.shape[-1] * (0.5 + _HALF_LOG_2PI) + log_det

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape, D] samples."""
        loc, tril = self._params()
        full = tuple(shape) + loc.shape
        eps = jax.random.normal(key, full, loc.dtype)
        return jnp.broadcast_to(loc, full) + jnp.einsum("...ij,...j->...i", tril, eps)

    def validate(self, y: ArrayLike | None = None) -> None:
        self._params()
        _validate_finite("MultivariateNormalTriL", "loc", self.loc)
        tril = _concrete("scale_tril", self.scale_tril)
        _require(bool(np.isfinite(tril).all()), "MultivariateNormalTriL: scale_tril has non-finite "
                 "entries")
        upper = np.triu(tril, k=1)
        _require(not upper.any(), "MultivariateNormalTriL: scale_tril is not lower triangular "
                 f"(largest upper entry {np.abs(upper).max():.3g})")
        diag = np.diagonal(tril, axis1=-2, axis2=-1)
        _require(bool((diag != 0).all()), "MultivariateNormalTriL: scale_tril is singular "
                 "(a zero on its diagonal)")
        if y is not None:
            _check_value_shape("MultivariateNormalTriL", tuple(jnp.shape(self.loc)), y)
            _validate_finite("MultivariateNormalTriL", "y", y)


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

    Raises ValueError for bad labels, non-positive or non-finite scales, NaN logits, and a
    non-triangular or singular ``scale_tril``. Call it outside ``jit``: it reads concrete values.
    """
    if not hasattr(dist, "validate"):
        raise TypeError(f"validate: {type(dist).__name__} is not a gbl_jax distribution")
    dist.validate(y)
