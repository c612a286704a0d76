"""Output units (section 6.2.2): map features h [N, H] to the parameters of p(y | x).

Each head is an (init, apply) pair: ``init(key, in_dim, w_init="glorot_normal") -> params``
(one dense layer, {"w": [H, out], "b": [out]}) and ``apply(params, h) -> distribution``.
Scales are made positive with softplus by default (it grows linearly, so a large pre-activation
cannot overflow the way exp can); ``positive="exp"`` gives the log-scale parameterization.
A ``min_scale`` floor is added to learned scales: with ``min_scale=0`` the NLL on a training set
has no minimum, since the model can shrink a scale around a fitted point and send the density
to infinity (section 6.2.1.1); the default 1e-6 caps the log-density at ~13.8 nats per dimension.

References:
  Goodfellow, Bengio & Courville (2016), section 6.2.2.
  Bishop (1994), "Mixture density networks".
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gbl_jax.checks import require_int
from gbl_jax.nets.layers import dense_apply, dense_init
from gbl_jax.probability.distributions import Bernoulli, Categorical, Laplace, Normal
from gbl_jax.probability.mixtures import MixtureNormal

_POSITIVE = {"softplus": jax.nn.softplus, "exp": jnp.exp}


class Head(NamedTuple):
    """An output unit: ``init(key, in_dim, w_init) -> params``, ``apply(params, h) -> dist``."""

    init: Callable
    apply: Callable
    name: str
    out_dim: int


def _positive(positive: str, min_scale: float) -> Callable[[jax.Array], jax.Array]:
    if positive not in _POSITIVE:
        raise ValueError(f"positive must be one of {sorted(_POSITIVE)}, got {positive!r}")
    if not min_scale >= 0:
        raise ValueError(f"min_scale must be >= 0, got {min_scale}")
    fn = _POSITIVE[positive]
    return lambda raw: min_scale + fn(raw)


def _check_size(name: str, value: int, what: str, least: int = 1) -> None:
    require_int(f"{name}: {what}", value, least)


def _linear_head(name: str, out_dim: int, to_dist: Callable[[jax.Array], object]) -> Head:
    def init(key, in_dim, w_init="glorot_normal", dtype=jnp.float32):
        return dense_init(key, in_dim, out_dim, w_init, dtype)

    def apply(params, h):
        return to_dist(dense_apply(params, h, where=f"heads.{name}"))

    return Head(init, apply, name, out_dim)


def gaussian(dim: int) -> Head:
    """Linear unit: Normal(h W + b, 1) with y [N, dim]; its NLL is 1/2 squared error + C."""
    _check_size("gaussian", dim, "dim")
    return _linear_head(f"gaussian({dim})", dim, lambda out: Normal(out, jnp.ones_like(out)))


def heteroscedastic_gaussian(
    dim: int, *, min_scale: float = 1e-6, positive: str = "softplus"
) -> Head:
    """Normal with learned, input-dependent diagonal scale: min_scale + positive(raw)."""
    _check_size("heteroscedastic_gaussian", dim, "dim")
    pos = _positive(positive, min_scale)
    return _linear_head(
        f"heteroscedastic_gaussian({dim})",
        2 * dim,
        lambda out: Normal(out[:, :dim], pos(out[:, dim:])),
    )


def laplace(
    dim: int, *, learn_scale: bool = False, min_scale: float = 1e-6, positive: str = "softplus"
) -> Head:
    """Laplace unit for the conditional median; unit scale (NLL = absolute error + log 2) unless
    ``learn_scale``."""
    _check_size("laplace", dim, "dim")
    if not learn_scale:
        return _linear_head(f"laplace({dim})", dim, lambda out: Laplace(out, jnp.ones_like(out)))
    pos = _positive(positive, min_scale)
    return _linear_head(
        f"laplace({dim}, learn_scale=True)",
        2 * dim,
        lambda out: Laplace(out[:, :dim], pos(out[:, dim:])),
    )


def bernoulli() -> Head:
    """Sigmoid unit: Bernoulli(logits) with one logit per example; y [N] in {0, 1}."""
    return _linear_head("bernoulli()", 1, lambda out: Bernoulli(out[:, 0]))


def categorical(classes: int) -> Head:
    """Softmax unit: Categorical(logits [N, classes]); y [N] integer labels."""
    _check_size("categorical", classes, "classes", least=2)
    return _linear_head(f"categorical({classes})", classes, Categorical)


def mixture_density(
    components: int, dim: int, *, min_scale: float = 1e-6, positive: str = "softplus"
) -> Head:
    """Mixture density network unit: MixtureNormal with logits [N, K], loc and scale [N, K, dim].

    The weights are returned as logits, never probabilities, so the NLL stays in log space.
    """
    _check_size("mixture_density", components, "components")
    _check_size("mixture_density", dim, "dim")
    pos = _positive(positive, min_scale)
    k, kd = components, components * dim

    def to_dist(out):
        n = out.shape[0]
        return MixtureNormal(
            out[:, :k],
            out[:, k : k + kd].reshape(n, k, dim),
            pos(out[:, k + kd :]).reshape(n, k, dim),
        )

    return _linear_head(f"mixture_density({components}, {dim})", k + 2 * kd, to_dist)
