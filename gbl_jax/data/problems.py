"""Small problems for studying gradient-based learning: deterministic given their key.

Each returns a ``Data`` record that unpacks as ``x, y = data`` and names the output unit that
suits it (``data.head``). The real data sets (``mnist1d``, ``digits``) and the file loader
(``load``) live in ``gbl_jax.data.datasets`` and are re-exported here. ``REGISTRY`` lists the problems
by name with a one-line description.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gbl_jax.checks import require_int
from gbl_jax.data.data_record import Data, HeadT
from gbl_jax.data.datasets import digits, load, mnist1d
from gbl_jax.nets import heads
from gbl_jax.nets.heads import Head

__all__ = [
    "Data",
    "Problem",
    "REGISTRY",
    "bishop_inverse",
    "circles",
    "cubic",
    "digits",
    "load",
    "make",
    "mnist1d",
    "sine",
    "teacher_student",
    "two_spirals",
    "xor",
]


def _require_n(name: str, n: int, least: int = 2) -> None:
    require_int(f"{name}: n", n, least)


def xor() -> Data[Head]:
    """The four points of XOR: x [4, 2] in {0, 1}^2, y [4] = x1 xor x2 (section 6.1)."""
    x = jnp.asarray([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return Data(x, jnp.asarray([0.0, 1.0, 1.0, 0.0]), heads.bernoulli(), "xor")


def two_spirals(key: jax.Array, n: int, *, turns: float = 1.5, noise: float = 0.05) -> Data[Head]:
    """Two interleaved spirals (Lang & Witbrock 1988): x [n, 2], y [n] in {0, 1}.

    Points of class 0 lie on r = t / (2 pi turns), angle t; class 1 is class 0 rotated by pi.
    """
    _require_n("two_spirals", n)
    k_t, k_noise = jax.random.split(key)
    t = jnp.sqrt(jax.random.uniform(k_t, (n,))) * 2 * math.pi * turns
    y = (jnp.arange(n) % 2).astype(jnp.float32)
    angle = t + math.pi * y
    r = t / (2 * math.pi * turns)
    x = jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)], axis=1)
    return Data(x + noise * jax.random.normal(k_noise, (n, 2)), y, heads.bernoulli(), "two_spirals")


def circles(key: jax.Array, n: int, *, inner: float = 0.5, noise: float = 0.05) -> Data[Head]:
    """Two concentric circles, radius 1 (y = 0) and ``inner`` (y = 1): x [n, 2], y [n]."""
    _require_n("circles", n)
    k_angle, k_noise = jax.random.split(key)
    y = (jnp.arange(n) % 2).astype(jnp.float32)
    angle = jax.random.uniform(k_angle, (n,), maxval=2 * math.pi)
    r = jnp.where(y > 0, inner, 1.0)
    x = jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)], axis=1)
    return Data(x + noise * jax.random.normal(k_noise, (n, 2)), y, heads.bernoulli(), "circles")


def sine(key: jax.Array, n: int, *, noise: float = 0.1) -> Data[Head]:
    """y = sin(x) + N(0, noise^2), x ~ U(-pi, pi): x [n, 1], y [n, 1]."""
    _require_n("sine", n)
    k_x, k_noise = jax.random.split(key)
    x = jax.random.uniform(k_x, (n, 1), minval=-math.pi, maxval=math.pi)
    y = jnp.sin(x) + noise * jax.random.normal(k_noise, (n, 1))
    return Data(x, y, heads.gaussian(1), "sine")


def bishop_inverse(key: jax.Array, n: int) -> Data[Head]:
    """Bishop's inverse problem: t ~ U(0, 1), x = t + 0.3 sin(2 pi t) + U(-0.1, 0.1), target t.

    The map x -> t is multi-valued for x in roughly (0.35, 0.65), so a single Gaussian can only
    fit the conditional mean, while a mixture density network fits every branch (Bishop 1994).
    Returns x [n, 1], y [n, 1].
    """
    _require_n("bishop_inverse", n)
    k_t, k_noise = jax.random.split(key)
    t = jax.random.uniform(k_t, (n, 1))
    x = (
        t
        + 0.3 * jnp.sin(2 * math.pi * t)
        + jax.random.uniform(k_noise, (n, 1), minval=-0.1, maxval=0.1)
    )
    return Data(x, t, heads.mixture_density(3, 1), "bishop_inverse")


def cubic(
    key: jax.Array, n: int = 20, *, n_test: int = 200, noise: float = 3.0, test_range: float = 6.0
) -> Data[Head]:
    """The toy of Lakshminarayanan et al. (2017): y = x^3 + eps, eps ~ N(0, noise^2).

    ``n`` training points with x ~ U(-4, 4); the test split has ``n_test`` points evenly spaced
    on [-test_range, test_range], wider than the data, so a model's predictive spread can be
    seen to grow where it has seen nothing. The head is a learned-variance Gaussian. Returns
    x [n, 1], y [n, 1], test x [n_test, 1], y [n_test, 1] (noisy as the training targets).

    References:
      Lakshminarayanan, Pritzel & Blundell (2017), "Simple and scalable predictive uncertainty
      estimation using deep ensembles", figure 1.
    """
    _require_n("cubic", n)
    _require_n("cubic (n_test)", n_test)
    if not (math.isfinite(noise) and noise > 0 and math.isfinite(test_range) and test_range > 0):
        raise ValueError(
            f"cubic: noise and test_range must be positive and finite, got "
            f"{noise!r} and {test_range!r}"
        )
    k_x, k_noise, k_test = jax.random.split(key, 3)
    x = jax.random.uniform(k_x, (n, 1), minval=-4.0, maxval=4.0)
    y = x**3 + noise * jax.random.normal(k_noise, (n, 1))
    x_test = jnp.linspace(-test_range, test_range, n_test)[:, None]
    y_test = x_test**3 + noise * jax.random.normal(k_test, (n_test, 1))
    head = heads.heteroscedastic_gaussian(1)
    return Data(x, y, head, "cubic", test=Data(x_test, y_test, head, "cubic (test)"))


def teacher_student(key: jax.Array, n: int, in_dim: int, teacher_width: int) -> Data[Head]:
    """A planted two-layer ReLU teacher labels Gaussian inputs: y = sum_j relu(w_j . x).

    Teacher rows w_j are independent unit vectors; output weights are fixed to one, as in
    Safran & Shamir (2018). Returns x [n, in_dim] ~ N(0, I), y [n, 1].
    """
    _require_n("teacher_student", n)
    _require_n("teacher_student (in_dim)", in_dim, 1)
    _require_n("teacher_student (teacher_width)", teacher_width, 1)
    k_w, k_x = jax.random.split(key)
    w = jax.random.normal(k_w, (teacher_width, in_dim))
    w = w / jnp.linalg.norm(w, axis=1, keepdims=True)
    x = jax.random.normal(k_x, (n, in_dim))
    y = jnp.sum(jax.nn.relu(x @ w.T), axis=1, keepdims=True)
    return Data(x, y, heads.gaussian(1), "teacher_student")


def _first(data: Data[HeadT], n: int) -> Data[HeadT]:
    """A fixed data set's first n training examples; its test split stays whole."""
    _require_n(data.name, n)
    if n > len(data.y):
        raise ValueError(
            f"{data.name}: n must be at most its {len(data.y)} training examples, got {n}"
        )
    if n == len(data.y):
        return data
    return Data(data.x[:n], data.y[:n], data.head, data.name, test=data.test)


class Problem(NamedTuple):
    """A registry entry: ``make(key, n) -> Data``, a description and a default size.

    The real data sets ignore the key; their n takes the first n training examples (the default,
    their training size, takes all) and keeps the test split whole.
    """

    make: Callable[[jax.Array, int], Data[Head]]
    description: str
    default_n: int


REGISTRY: dict[str, Problem] = {
    "xor": Problem(lambda key, n: xor(), "the four XOR points; needs a hidden layer", 4),
    "two_spirals": Problem(two_spirals, "two interleaved spirals; hard, highly non-convex", 256),
    "circles": Problem(circles, "two concentric circles; needs a hidden layer", 256),
    "sine": Problem(sine, "noisy sine regression with a Gaussian output", 256),
    "bishop_inverse": Problem(bishop_inverse, "multi-valued inverse problem; wants an MDN", 512),
    "cubic": Problem(
        cubic,
        "y = x^3 + N(0, 3^2) on [-4, 4], tested on [-6, 6] (deep "
        "ensembles' toy); wants a learned-variance head",
        20,
    ),
    "teacher_student": Problem(
        lambda key, n: teacher_student(key, n, 4, 4),
        "a planted 4-4-1 ReLU teacher on Gaussian inputs",
        256,
    ),
    "mnist1d": Problem(
        lambda key, n: _first(mnist1d(), n),
        "MNIST-1D: 40-sample 1-D digits, 10 classes, 1000 held out; gbl_jax[data]",
        4000,
    ),
    "digits": Problem(
        lambda key, n: _first(digits(), n),
        "scikit-learn's 8x8 digits, standardized, 449 held out; gbl_jax[data]",
        1797 - 449,
    ),
}


def make(name: str, key: jax.Array, n: int | None = None) -> Data[Head]:
    """The registered problem ``name`` with ``n`` points (its default size if None)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown problem {name!r}; choose one of {sorted(REGISTRY)}")
    problem = REGISTRY[name]
    return problem.make(key, problem.default_n if n is None else n)
