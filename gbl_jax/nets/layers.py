"""The dense layer: params {"w": [in, out], "b": [out]}, a plain pytree."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gbl_jax.nets.inits import get_init


def dense_init(
    key: jax.Array, in_dim: int, out_dim: int, w_init="glorot_normal", dtype=jnp.float32
) -> dict:
    """Weights from ``w_init`` (a name or callable), biases zero, both of ``dtype``."""
    if in_dim < 1 or out_dim < 1:
        raise ValueError(f"dense layer needs positive sizes, got in {in_dim}, out {out_dim}")
    w = jnp.asarray(get_init(w_init)(key, (in_dim, out_dim), dtype), dtype)
    if w.shape != (in_dim, out_dim):
        raise ValueError(f"init returned shape {list(w.shape)}, expected [{in_dim}, {out_dim}]")
    return {"w": w, "b": jnp.zeros((out_dim,), dtype)}


def dense_apply(params: dict, h: jax.Array, where: str = "dense") -> jax.Array:
    """h @ w + b for h [N, in]; raises ValueError if h is not [N, in]."""
    in_dim = params["w"].shape[0]
    if jnp.ndim(h) != 2 or jnp.shape(h)[1] != in_dim:
        raise ValueError(f"{where}: expected inputs [N, {in_dim}], got {list(jnp.shape(h))}")
    return h @ params["w"] + params["b"][None, :]
