"""A multivariate normal with a lower-triangular scale: ``MultivariateNormalTriL``.

Re-exported by ``distributions`` and as ``gbl.MultivariateNormalTriL``. Its log density
``mvn_tril_logpdf`` is a triangular solve, exact wherever the whitened residual
L^-1 (y - loc) is finite: rows of L and of y - loc are scaled by powers of two (which changes
nothing exactly) where XLA would flush a subnormal diagonal or residual to 0, and where the value
overflows it is -inf with a zero gradient, never NaN.

References:
  Goodfellow, Bengio & Courville (2016), *Deep Learning*, sections 3.9.3 and 6.2.1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gbl_jax.probability.densities import HALF_LOG_2PI, LOG_2
from gbl_jax.probability.family_rules import (
    check_value_shape,
    concrete,
    float_value,
    pytree,
    require,
    shape_str,
    validate_finite,
)


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
    k = jnp.clip(k, 2 * info.minexp, 2 * (info.maxexp - 1))  # each half stays a normal number
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
    return jnp.where(
        subnormal, _scale_pow2(significand, k + 2 - info.maxexp - info.nmant), _scale_pow2(x, k)
    )


@_ldexp.defjvp
def _ldexp_jvp(primals, tangents):
    x, k = primals
    dx, _ = tangents
    return _ldexp(x, k), _scale_pow2(dx, k)


def _log_abs(x: jax.Array) -> jax.Array:
    """log |x|, exact also for subnormal x, with derivative 1 / x."""
    e = _exponent(x)
    return jnp.log(jnp.abs(_ldexp(x, -e))) + LOG_2 * e.astype(x.dtype)


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


def _mvn_logpdf(
    y: jax.Array, loc: jax.Array, tril: jax.Array, shift: jax.Array, flushed: jax.Array
) -> jax.Array:
    """log N(y; loc, L L^T) with the rows scaled by ``_row_shifts``."""
    scaled = _ldexp(tril, shift[..., :, None])
    diff = jnp.where(flushed, _ldexp(y, shift) - _ldexp(loc, shift), _ldexp(y - loc, shift))
    white = jax.scipy.linalg.solve_triangular(scaled, diff[..., None], lower=True)[..., 0]
    # The scaled diagonal is normal, so its plain log is exact.
    log_det = jnp.sum(
        jnp.log(jnp.abs(jnp.diagonal(scaled, axis1=-2, axis2=-1))), axis=-1
    ) - LOG_2 * jnp.sum(shift, axis=-1).astype(tril.dtype)
    # Halved before squaring, as in normal_logpdf, so that it overflows only where the value does.
    return -jnp.sum((0.5 * white) * white, axis=-1) - log_det - loc.shape[-1] * HALF_LOG_2PI


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
    lp = _mvn_logpdf(
        jnp.where(ok, y, loc),
        loc,
        jnp.where(ok[..., None], tril, eye),
        jnp.where(ok, shift, 0),
        flushed & ok,
    )
    return jnp.where(finite, lp, -jnp.inf)


@pytree
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

    def broadcast_params(self) -> tuple[jax.Array, jax.Array]:
        """(loc [..., D], scale_tril [..., D, D] lower triangle, broadcast over the batch) in one
        float dtype (>= float32); raises ValueError naming both shapes if they disagree."""
        loc_shape, tril_shape = tuple(jnp.shape(self.loc)), tuple(jnp.shape(self.scale_tril))
        if len(loc_shape) < 1 or tril_shape not in (loc_shape + loc_shape[-1:], loc_shape[-1:] * 2):
            raise ValueError(
                "MultivariateNormalTriL: scale_tril must have shape [..., D, D] matching loc [..., D] "
                f"(or [D, D]); got loc {shape_str(loc_shape)}, "
                f"scale_tril {shape_str(tril_shape)}"
            )
        dtype = jnp.result_type(self.loc, self.scale_tril, jnp.float32)
        tril = jnp.tril(jnp.asarray(self.scale_tril, dtype))
        return jnp.asarray(self.loc, dtype), jnp.broadcast_to(tril, loc_shape + loc_shape[-1:])

    def log_prob(self, y: ArrayLike) -> jax.Array:
        """log N(y; loc, L L^T) via a triangular solve, [...]; see ``mvn_tril_logpdf``."""
        loc, tril = self.broadcast_params()
        check_value_shape("MultivariateNormalTriL", loc.shape, y)
        return mvn_tril_logpdf(float_value(y, loc), loc, tril)

    def mean(self) -> jax.Array:
        return self.broadcast_params()[0]

    mode = mean

    def covariance(self) -> jax.Array:
        _, tril = self.broadcast_params()
        return tril @ jnp.swapaxes(tril, -1, -2)

    def variance(self) -> jax.Array:
        return jnp.sum(jnp.square(self.broadcast_params()[1]), axis=-1)

    def entropy(self) -> jax.Array:
        loc, tril = self.broadcast_params()
        log_det = jnp.sum(_log_abs(jnp.diagonal(tril, axis1=-2, axis2=-1)), axis=-1)
        return loc.shape[-1] * (0.5 + HALF_LOG_2PI) + log_det

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws [*shape, *batch_shape, D] samples."""
        loc, tril = self.broadcast_params()
        full = tuple(shape) + loc.shape
        eps = jax.random.normal(key, full, loc.dtype)
        return jnp.broadcast_to(loc, full) + jnp.einsum("...ij,...j->...i", tril, eps)

    def validate(self, y: ArrayLike | None = None) -> None:
        self.broadcast_params()
        validate_finite("MultivariateNormalTriL", "loc", self.loc)
        tril = concrete("scale_tril", self.scale_tril)
        require(
            bool(np.isfinite(tril).all()),
            "MultivariateNormalTriL: scale_tril has non-finite entries",
        )
        upper = np.triu(tril, k=1)
        require(
            not upper.any(),
            "MultivariateNormalTriL: scale_tril is not lower triangular "
            f"(largest upper entry {np.abs(upper).max():.3g})",
        )
        diag = np.abs(np.diagonal(tril, axis1=-2, axis2=-1))
        require(
            bool((diag != 0).all()),
            "MultivariateNormalTriL: scale_tril is singular (a zero on its diagonal)",
        )
        loc = self.broadcast_params()[0]
        info = np.finfo(loc.dtype)
        tiny = diag < info.tiny
        if tiny.any():
            raise ValueError(
                f"MultivariateNormalTriL: {int(tiny.sum())} diagonal entries of scale_tril are "
                f"subnormal (smallest {diag.min():.3g}, below {info.tiny:.3g}, the smallest normal "
                f"{info.dtype}); XLA flushes them to zero, so covariance, sample and gradients see "
                "a singular factor"
            )
        if y is not None:
            check_value_shape("MultivariateNormalTriL", tuple(jnp.shape(self.loc)), y)
            validate_finite("MultivariateNormalTriL", "y", y)
            out = ~np.isfinite(np.asarray(self.log_prob(y)))
            if out.any():
                raise ValueError(
                    f"MultivariateNormalTriL: log p(y) is beyond the {info.dtype} range "
                    f"(+-{info.max:.3g}) at {int(out.sum())} of {out.size} points; log_prob "
                    "returns -inf there"
                )
