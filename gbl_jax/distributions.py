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
from typing import Any, Callable, ClassVar, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)

_Class = TypeVar("_Class", bound=type)


def _pytree(cls: _Class) -> _Class:
    """Registers a dataclass as a pytree whose leaves are all of its fields.

    Stacked on a visible ``@dataclasses.dataclass(frozen=True, eq=False)`` so type checkers see
    the fields (eq=False: field-wise == on arrays is ambiguous, and identity hashing keeps the
    objects usable as dict keys). The fields are listed explicitly because jax before 0.4.36
    cannot infer them.
    """
    names = [field.name for field in dataclasses.fields(cls)]
    return jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=[])


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


# -(0.5 z) z, not -0.5 z**2: z**2 overflows float32 for |z| > 1.8e19, before the half brings the
# value back into range (up to |z| = 2.6e19); halving first is exact.
normal_logpdf = _loc_scale_logpdf(lambda z: -(0.5 * z) * z - _HALF_LOG_2PI, lambda z: -z)
normal_logpdf.__doc__ = "Elementwise log N(y; loc, scale**2), finite gradients down to tiny scales."

laplace_logpdf = _loc_scale_logpdf(lambda z: -jnp.abs(z) - _LOG_2, lambda z: -jnp.sign(z))
laplace_logpdf.__doc__ = "Elementwise log Laplace(y; loc, scale); the gradient at y == loc is 0."


def bernoulli_log_prob(logits: ArrayLike, y: ArrayLike) -> jax.Array:
    """log p(y) for a Bernoulli with P(y=1) = sigmoid(logits), in softplus form.

    ``-(y softplus(-z) + (1 - y) softplus(z))``: never ``log(sigmoid(z))``, so the gradient is
    exactly ``y - sigmoid(z)`` and saturates only when the answer is right (section 6.2.2.2).
    y in (0, 1) gives the cross-entropy with a soft label; y outside [0, 1] gives -inf.
    Infinite logits are exact: log P(1) is 0 at z = +inf and -inf at z = -inf.
    """
    z = jnp.asarray(logits)
    y = _float_value(y, z)
    lp = -(_weighted(y, jax.nn.softplus(-z)) + _weighted(1.0 - y, jax.nn.softplus(z)))
    return jnp.where((y >= 0.0) & (y <= 1.0), lp, -jnp.inf)


def _weighted(weight: jax.Array, x: jax.Array) -> jax.Array:
    """weight * x, and exactly 0 where weight is 0 even if x is inf (a hard label at z = +-inf)."""
    return jnp.where(weight == 0.0, 0.0, weight * x)


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

    loc: ArrayLike   # the fields themselves are declared by each dataclass
    scale: ArrayLike
    _logpdf: ClassVar[Callable[..., jax.Array]]
    _noise: ClassVar[Callable[..., jax.Array]]

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


@_pytree
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
        return jnp.square(self._params()[1])

    def entropy(self) -> jax.Array:
        return 0.5 + _HALF_LOG_2PI + jnp.log(self._params()[1])


@_pytree
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
        return 2.0 * jnp.square(self._params()[1])

    def entropy(self) -> jax.Array:
        return 1.0 + _LOG_2 + jnp.log(self._params()[1])


@_pytree
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
        return (_weighted(jax.nn.sigmoid(z), jax.nn.softplus(-z))
                + _weighted(jax.nn.sigmoid(-z), jax.nn.softplus(z)))

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


@_pytree
@dataclasses.dataclass(frozen=True, eq=False)
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


def _nearest_components(log_w: jax.Array, y_KD: jax.Array, loc_KD: jax.Array,
                        scale_KD: jax.Array) -> jax.Array:
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
    return jnp.where(underflow, jax.nn.softmax(jnp.where(underflow, nearest_K, 0.0), axis=-1),
                     jax.nn.softmax(jnp.where(underflow, 0.0, lp_K), axis=-1))


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
def mixture_normal_logpdf(y: jax.Array, logits: jax.Array, loc: jax.Array,
                          scale: jax.Array) -> jax.Array:
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
    log_w = jax.nn.log_softmax(logits, axis=-1)
    frozen = jax.lax.stop_gradient
    nearest = frozen(_nearest_components(log_w, y_KD, loc, scale))
    lp_frozen = frozen(log_w + jnp.sum(normal_logpdf(*map(frozen, (y_KD, loc, scale))), axis=-1))
    live = _responsibilities(lp_frozen, nearest) > 0
    # A dead component is re-evaluated at y = loc (finite gradient) and its value kept frozen.
    y_live = jnp.where(live[..., None], y_KD, loc)
    lp = jnp.where(live, log_w + jnp.sum(normal_logpdf(y_live, loc, scale), axis=-1), lp_frozen)
    return _logsumexp(lp, nearest)


@_pytree
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
        """log p(y) by log-sum-exp over components, [...]; see ``mixture_normal_logpdf``."""
        batch, _, event = self._shapes()
        _check_value_shape("MixtureNormal", batch + event, y)
        logits, loc, scale = self._params()
        return mixture_normal_logpdf(_float_value(y, loc), logits, loc, scale)

    def responsibilities(self, y: ArrayLike) -> jax.Array:
        """Posterior P(component k | y), [..., K]; on the nearest components if all underflow."""
        lp = self.component_log_prob(y)   # checks y's shape first
        logits, loc, scale = self._params()
        y_KD = jnp.broadcast_to(_float_value(y, loc)[..., None, :], loc.shape)
        nearest = _nearest_components(jax.nn.log_softmax(logits, axis=-1), y_KD, loc, scale)
        return _responsibilities(lp, nearest)

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


def _int_type(dtype: Any) -> Any:
    return {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[jnp.dtype(dtype).itemsize]


def _bits(x: jax.Array) -> jax.Array:
    return jax.lax.bitcast_convert_type(x, _int_type(x.dtype))


# XLA on CPU and GPU reads subnormal floats (below 1.2e-38 in float32) as 0 in arithmetic and
# comparisons. The helpers below read them from their bits instead, which keeps them exact.

def _exponent(x: jax.Array) -> jax.Array:
    """e with |x| = m * 2**e and m in [0.5, 1), exact for subnormal x (-149 at 0 in float32)."""
    info = jnp.finfo(x.dtype)
    bits = _bits(x) & jnp.iinfo(_int_type(x.dtype)).max
    biased, frac = bits >> info.nmant, bits & ((1 << info.nmant) - 1)
    # A subnormal number is frac * 2**(1 - bias - nmant): frac's bit length stands in for the
    # implicit leading bit's position.
    bit_length = 8 * x.dtype.itemsize - jax.lax.clz(frac)
    bias = info.maxexp - 1
    return jnp.where(biased == 0, bit_length - info.nmant, biased) - bias + 1


def _pow2(k: jax.Array, dtype: Any) -> jax.Array:
    """2.0**k for integer k in the normal range, built from bits (exact)."""
    info = jnp.finfo(dtype)
    biased = (k + info.maxexp - 1).astype(_int_type(dtype)) << info.nmant
    return jax.lax.bitcast_convert_type(biased, dtype)


def _scale_pow2(x: jax.Array, k: jax.Array) -> jax.Array:
    """x * 2**k by two exact multiplications, so that 2**k itself need not be representable."""
    info = jnp.finfo(x.dtype)
    k = jnp.clip(k, 2 * info.minexp, 2 * (info.maxexp - 1))   # each half stays a normal number
    half = k // 2
    return x * _pow2(half, x.dtype) * _pow2(k - half, x.dtype)


@jax.custom_jvp
def _ldexp(x: jax.Array, k: jax.Array) -> jax.Array:
    """x * 2**k, exact also for subnormal x; linear in x for autodiff."""
    info = jnp.finfo(x.dtype)
    bits = _bits(x)
    frac = bits & ((1 << info.nmant) - 1)
    subnormal = (bits & jnp.iinfo(_int_type(x.dtype)).max) >> info.nmant == 0
    # frac converts to float exactly, and is normal: the product no longer involves a subnormal.
    significand = jnp.where(bits < 0, -frac, frac).astype(x.dtype)
    return jnp.where(subnormal, _scale_pow2(significand, k + 2 - info.maxexp - info.nmant),
                     _scale_pow2(x, k))


@_ldexp.defjvp
def _ldexp_jvp(primals, tangents):
    x, k = primals
    dx, _ = tangents
    return _ldexp(x, k), _scale_pow2(dx, k)


def _log_abs(x: jax.Array) -> jax.Array:
    """log |x|, exact also for subnormal x, with derivative 1 / x."""
    e = _exponent(x)
    return jnp.log(jnp.abs(_ldexp(x, -e))) + _LOG_2 * e.astype(x.dtype)


def _flushed(y: jax.Array, loc: jax.Array) -> jax.Array:
    """Where y - loc is a nonzero subnormal number, which XLA computes as 0.

    Decided without forming y - loc: XLA's constant folding does not flush subnormals, so a test
    on y - loc == 0 could differ between two uses of it in one jitted function.
    """
    info = jnp.finfo(y.dtype)
    # Only numbers below 2**(minexp + nmant + 1) lie closer than 2**minexp without being equal.
    # Scaled up by 2**(nmant + 1), their difference is normal (or 0) and compares safely.
    small = jnp.maximum(_exponent(y), _exponent(loc)) <= info.minexp + info.nmant + 1
    k = jnp.asarray(info.nmant + 1)
    gap = _ldexp(jnp.where(small, y, 0.0), k) - _ldexp(jnp.where(small, loc, 0.0), k)
    return small & (gap != 0) & (jnp.abs(gap) < _pow2(jnp.asarray(info.minexp) + k, y.dtype))


def _row_shifts(tril: jax.Array, y: jax.Array, loc: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per row of L, a power of two that makes L_ii and y_i - loc_i normal; and the flushed rows.

    XLA reads subnormal numbers as 0, so a subnormal L_ii would make the triangular solve 0/0 and
    a subnormal y_i - loc_i would vanish. Multiplying row i of L and of y - loc by 2**shift_i
    leaves L^-1 (y - loc) unchanged, exactly. Other rows get shift 0: scaling them could
    overflow their off-diagonal entries.

    Returns:
      shift [..., D] (int) and flushed [..., D]: where y_i - loc_i is subnormal.
    """
    info = jnp.finfo(tril.dtype)
    flushed = _flushed(y, loc)
    # finfo.minexp is the exponent of the smallest normal number 2**minexp; e's m is < 1.
    # 2**(nmant + 1) makes any nonzero subnormal normal.
    diag_shift = info.minexp + 1 - _exponent(jnp.diagonal(tril, axis1=-2, axis2=-1))
    return jnp.maximum(diag_shift, jnp.where(flushed, info.nmant + 1, 0)), flushed


def _mvn_logpdf(y: jax.Array, loc: jax.Array, tril: jax.Array, shift: jax.Array,
                flushed: jax.Array) -> jax.Array:
    """log N(y; loc, L L^T) with the rows scaled by ``_row_shifts``."""
    scaled = _ldexp(tril, shift[..., :, None])
    diff = jnp.where(flushed, _ldexp(y, shift) - _ldexp(loc, shift), _ldexp(y - loc, shift))
    white = jax.scipy.linalg.solve_triangular(scaled, diff[..., None], lower=True)[..., 0]
    # The scaled diagonal is normal, so its plain log is exact.
    log_det = (jnp.sum(jnp.log(jnp.abs(jnp.diagonal(scaled, axis1=-2, axis2=-1))), axis=-1)
               - _LOG_2 * jnp.sum(shift, axis=-1).astype(tril.dtype))
    # Halved before squaring, as in normal_logpdf, so that it overflows only where the value does.
    return -jnp.sum((0.5 * white) * white, axis=-1) - log_det - loc.shape[-1] * _HALF_LOG_2PI


# Jitted as a whole: called eagerly, its dozens of small ops would each compile and dispatch.
@jax.jit
def mvn_tril_logpdf(y: jax.Array, loc: jax.Array, tril: jax.Array) -> jax.Array:
    """log N(y; loc, L L^T), [...]; exact wherever the whitened residual L^-1 (y - loc) is finite.

    Exact also for a subnormal diagonal or residual (see ``_row_shifts``), up to float32
    rounding, which an ill-conditioned L amplifies. Where the value overflows (or L is singular)
    it is -inf with a zero gradient, never NaN: the first coordinate of the residual to overflow
    is correct up to rounding, so the true log density is below float32's range there.
    (``Normal`` keeps the representable parts of its gradient in that case; here the backward
    pass would meet inf * 0.)

    Args:
      y, loc: [..., D].
      tril: [..., D, D] lower triangular, the Cholesky factor of the covariance.
    """
    shift, flushed = _row_shifts(tril, y, loc)
    frozen = jax.lax.stop_gradient
    finite = jnp.isfinite(_mvn_logpdf(frozen(y), frozen(loc), frozen(tril), shift, flushed))
    # Rows that overflow are redone as (L = I, y = loc): their backward pass would meet inf * 0.
    ok = finite[..., None]
    eye = jnp.eye(tril.shape[-1], dtype=tril.dtype)
    lp = _mvn_logpdf(jnp.where(ok, y, loc), loc, jnp.where(ok[..., None], tril, eye),
                     jnp.where(ok, shift, 0), flushed & ok)
    return jnp.where(finite, lp, -jnp.inf)


@_pytree
@dataclasses.dataclass(frozen=True, eq=False)
class MultivariateNormalTriL:
    """Full-covariance Gaussian N(loc, L L^T) with L lower triangular (Cholesky factor).

    Only the lower triangle of ``scale_tril`` is read; ``validate`` rejects a non-zero upper
    triangle and a zero diagonal (a singular covariance).

    log_prob is exact wherever the whitened residual L^-1 (y - loc) is representable, also for a
    tiny or subnormal diagonal (e.g. 1e-38); where it overflows the value is -inf, never NaN (see
    ``mvn_tril_logpdf``). What remains: XLA flushes subnormal numbers (below 1.2e-38 in float32)
    to zero, so ``covariance``, ``variance`` and ``sample`` see such diagonal entries as 0; and
    where the gradient w.r.t. loc, L^-T L^-1 (y - loc), overflows (a subnormal or extremely
    ill-conditioned L), the gradient w.r.t. ``scale_tril`` can be NaN. ``validate`` therefore
    rejects a subnormal diagonal, and, given y, any y whose log density is beyond the dtype's
    range (log_prob is -inf there).

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
        """log N(y; loc, L L^T) via a triangular solve, [...]; see ``mvn_tril_logpdf``."""
        loc, tril = self._params()
        _check_value_shape("MultivariateNormalTriL", loc.shape, y)
        return mvn_tril_logpdf(_float_value(y, loc), loc, tril)

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
        log_det = jnp.sum(_log_abs(jnp.diagonal(tril, axis1=-2, axis2=-1)), axis=-1)
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
        diag = np.abs(np.diagonal(tril, axis1=-2, axis2=-1))
        _require(bool((diag != 0).all()), "MultivariateNormalTriL: scale_tril is singular "
                 "(a zero on its diagonal)")
        loc = self._params()[0]
        info = np.finfo(loc.dtype)
        tiny = diag < info.tiny
        if tiny.any():
            raise ValueError(
                f"MultivariateNormalTriL: {int(tiny.sum())} diagonal entries of scale_tril are "
                f"subnormal (smallest {diag.min():.3g}, below {info.tiny:.3g}, the smallest normal "
                f"{info.dtype}); XLA flushes them to zero, so covariance, sample and gradients see "
                "a singular factor")
        if y is not None:
            _check_value_shape("MultivariateNormalTriL", tuple(jnp.shape(self.loc)), y)
            _validate_finite("MultivariateNormalTriL", "y", y)
            out = ~np.isfinite(np.asarray(self.log_prob(y)))
            if out.any():
                raise ValueError(
                    f"MultivariateNormalTriL: log p(y) is beyond the {info.dtype} range "
                    f"(+-{info.max:.3g}) at {int(out.sum())} of {out.size} points; log_prob "
                    "returns -inf there")


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
    density is beyond the dtype's range. Infinite Bernoulli logits pass: they are exact. Call it
    outside ``jit``: it reads concrete values.
    """
    if not hasattr(dist, "validate"):
        raise TypeError(f"validate: {type(dist).__name__} is not a gbl_jax distribution")
    dist.validate(y)
