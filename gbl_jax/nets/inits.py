"""Weight-initialization schemes: ``(key, shape, dtype) -> array`` for a dense weight [in, out]
or a convolution kernel [*window, in, out], whose fans count the window (fan_in = window * in).

Non-convex training depends on where it starts (section 6.2); these are the schemes an
init-sensitivity study compares. Biases are always initialized to zero by the layers.

References:
  Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward networks".
  He et al. (2015), "Delving deep into rectifiers".
  LeCun et al. (1998), "Efficient BackProp".
  Saxe et al. (2014), "Exact solutions to the nonlinear dynamics of learning in deep linear
  neural networks" (orthogonal init).
"""

from __future__ import annotations

import math
from typing import Callable, Union

import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    # a kernel [*window, in, out] connects each output unit to window * in inputs, and each input
    # to window * out outputs (as flax, PyTorch and Keras count them)
    if len(shape) < 2:
        raise ValueError(
            f"init schemes expect a dense weight shape [in, out] or a convolution "
            f"kernel [*window, in, out], got {list(shape)}"
        )
    window = math.prod(shape[:-2])
    return window * shape[-2], window * shape[-1]


def normal(std: float) -> Initializer:
    """Factory: weights ~ N(0, std**2), for init-scale studies."""
    if not std >= 0:
        raise ValueError(f"normal(std): std must be >= 0, got {std}")

    def init(key, shape, dtype=jnp.float32):
        return std * jax.random.normal(key, shape, dtype)

    init.__name__ = f"normal({std:g})"
    return init


def uniform(scale: float) -> Initializer:
    """Factory: weights ~ U(-scale, scale), for init-scale studies."""
    if not scale >= 0:
        raise ValueError(f"uniform(scale): scale must be >= 0, got {scale}")

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    init.__name__ = f"uniform({scale:g})"
    return init


def glorot_normal(key, shape, dtype=jnp.float32):
    """N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _fans(shape)
    return normal(math.sqrt(2.0 / (fan_in + fan_out)))(key, shape, dtype)


def glorot_uniform(key, shape, dtype=jnp.float32):
    """U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010, eq. 16)."""
    fan_in, fan_out = _fans(shape)
    return uniform(math.sqrt(6.0 / (fan_in + fan_out)))(key, shape, dtype)


def he_normal(key, shape, dtype=jnp.float32):
    """N(0, 2 / fan_in), for ReLU layers (He et al. 2015)."""
    fan_in, _ = _fans(shape)
    return normal(math.sqrt(2.0 / fan_in))(key, shape, dtype)


def he_uniform(key, shape, dtype=jnp.float32):
    """U(-a, a), a = sqrt(6 / fan_in) (He et al. 2015)."""
    fan_in, _ = _fans(shape)
    return uniform(math.sqrt(6.0 / fan_in))(key, shape, dtype)


def lecun_normal(key, shape, dtype=jnp.float32):
    """N(0, 1 / fan_in) (LeCun et al. 1998)."""
    fan_in, _ = _fans(shape)
    return normal(math.sqrt(1.0 / fan_in))(key, shape, dtype)


def orthogonal(key, shape, dtype=jnp.float32):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian (Saxe et al. 2014)."""
    _fans(shape)
    return jax.nn.initializers.orthogonal()(key, shape, dtype)


def zeros(key, shape, dtype=jnp.float32):
    """All zeros: every hidden unit computes the same function, and symmetry never breaks."""
    del key
    return jnp.zeros(shape, dtype)


INITS: dict[str, Initializer] = {
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "orthogonal": orthogonal,
    "zeros": zeros,
}


def get_init(init: Union[str, Initializer]) -> Initializer:
    """An initializer by name (see ``INITS``), or a callable ``(key, shape, dtype)`` as it is."""
    if callable(init):
        return init
    if init not in INITS:
        raise ValueError(
            f"unknown init {init!r}; choose one of {sorted(INITS)}, "
            "normal(std), uniform(scale), or a callable (key, shape) -> array"
        )
    return INITS[init]
