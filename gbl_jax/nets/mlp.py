"""Feedforward networks as pure (init, apply) pairs: hidden layers, then an output unit.

``mlp((), head)`` has no hidden layer: a generalized linear model (linear, logistic or softmax
regression), the convex control of every init-sensitivity study.

References:
  Goodfellow, Bengio & Courville (2016), chapter 6 and section 6.2.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from gbl_jax.checks import require_int
from gbl_jax.nets.heads import Head
from gbl_jax.nets.inits import Initializer, get_init
from gbl_jax.nets.layers import dense_apply, dense_init
from gbl_jax.nets.models import Model

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "gelu": jax.nn.gelu,
    "identity": lambda h: h,
}


def get_activation(activation: Union[str, Callable]) -> Callable[[jax.Array], jax.Array]:
    """An activation by name (see ``ACTIVATIONS``), or a callable as it is."""
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)} "
            "or pass a callable"
        )
    return ACTIVATIONS[activation]


def mlp(
    hidden: Sequence[int],
    head: Head,
    *,
    activation: Union[str, Callable] = "tanh",
    init: Union[str, Initializer] = "glorot_normal",
) -> Model:
    """A multilayer perceptron whose output unit is ``head``.

    Args:
      hidden: widths of the hidden layers; ``()`` gives a generalized linear model.
      head: an output unit from ``gbl_jax.nets.heads``.
      activation: hidden nonlinearity, by name or a callable.
      init: weight scheme for every weight matrix, the head's included (biases are zero); a name
        from ``gbl_jax.nets.inits.INITS``, ``inits.normal(std)``, ``inits.uniform(scale)`` or a
        callable ``(key, shape, dtype) -> array``.

    Returns:
      A ``Model``. Params are ``{"hidden": [{"w": [in, out], "b": [out]}, ...], "head": {...}}``.
    """
    hidden = tuple(hidden)
    for width in hidden:
        require_int(f"mlp: hidden widths {list(hidden)}: each", width, 1)
    hidden = tuple(int(width) for width in hidden)
    if not isinstance(head, Head):
        raise ValueError(f"mlp: head must come from gbl_jax.nets.heads, got {type(head).__name__}")
    act = get_activation(activation)
    w_init = get_init(init)

    def init_fn(key: jax.Array, x) -> dict:
        in_dim, dtype = _in_dim_and_dtype(x)
        keys = jax.random.split(key, len(hidden) + 1)
        layers, width_in = [], in_dim
        for k, width in zip(keys[:-1], hidden):
            layers.append(dense_init(k, width_in, width, w_init, dtype))
            width_in = width
        return {"hidden": layers, "head": head.init(keys[-1], width_in, w_init, dtype)}

    def apply(params: dict, x: jax.Array):
        h = jnp.asarray(x)
        for i, layer in enumerate(params["hidden"]):
            h = act(dense_apply(layer, h, where=f"mlp layer {i}"))
        return head.apply(params["head"], h)

    act_name = activation if isinstance(activation, str) else getattr(activation, "__name__", "fn")
    name = f"mlp({list(hidden)}, {head.name}, {act_name})"
    return Model(init_fn, apply, name)


def _in_dim_and_dtype(x) -> tuple[int, jnp.dtype]:
    """mlp.init takes example inputs x [N, in_dim] (the protocol) or the integer in_dim.

    Params follow a floating x's dtype (float64 data under ``jax_enable_x64`` trains float64
    params); an integer in_dim or integer inputs give float32.
    """
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        require_int("mlp.init: in_dim", x, 1)
        return int(x), jnp.dtype(jnp.float32)
    shape = jnp.shape(x)
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(
            f"mlp.init: expected example inputs x [N, in_dim] or an integer in_dim, "
            f"got shape {list(shape)}"
        )
    dtype = jnp.result_type(x)
    return shape[1], (dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.float32))
