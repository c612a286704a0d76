"""Log densities in closed form, and the shape and domain checks every family shares.

The elementwise log densities (Normal, Laplace, Bernoulli, Categorical) that the families of
``distributions`` wrap, computed in log space so the negative log-likelihood never saturates
where *Deep Learning* section 6.2.2 says it should not; the strict shape rule (``y.shape ==
batch_shape + event_shape`` exactly, checked at trace time); the eager domain checks behind
``validate``; and ``_pytree``, which registers a frozen dataclass with JAX.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, TypeVar

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
    pos = z >= 0.0
    # softplus(+-z) = max(+-z, 0) + log1p(exp(-|z|)), jax.nn.softplus's values bit for bit, with
    # one exp and one log1p shared by both terms (and by the gradient, exp(-|z|) / (1 + ...)).
    # -|z| is a where, not abs: its derivative is then -sign(z) on each side and -1 at 0, so
    # the second derivative (curvature's Hessians) is sigmoid's everywhere, also at z = 0.
    tail = jnp.log1p(jnp.exp(jnp.where(pos, -z, z)))
    lp = -(_weighted(y, jnp.where(pos, 0.0, -z) + tail)
           + _weighted(1.0 - y, jnp.where(pos, z, 0.0) + tail))
    return jnp.where((y >= 0.0) & (y <= 1.0), lp, -jnp.inf)


def _weighted(weight: jax.Array, x: jax.Array) -> jax.Array:
    """weight * x, and exactly 0 where weight is 0 even if x is inf (a hard label at z = +-inf)."""
    return jnp.where(weight == 0.0, 0.0, weight * x)


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
    _require(not np.isneginf(z).all(axis=-1).any(), f"{family}: some rows of logits are all -inf")


def _validate_labels(family: str, y: ArrayLike, num_classes: int) -> None:
    _require_integer_labels(family, y)
    labels = _concrete("y", y)
    bad = (labels < 0) | (labels >= num_classes)
    _require(not bad.any(), f"{family}: labels must lie in [0, {num_classes}); "
             f"{int(bad.sum())} do not (e.g. {labels[bad][:3].tolist()})")
