"""The epoch's order of the examples: ``jax.random.permutation(key, n)``, bit for bit, faster on CPU.

``jax.random.permutation(key, n)`` sorts ``arange(n)`` by fresh random 32-bit keys in
``ceil(3 ln n / ln(2^32 - 1))`` rounds (two for 1,626 <= n < 2^21), each a stable
``lax.sort_key_val`` of two operands. On XLA:CPU a sort of two operands calls a compiled
comparator per comparison, while a sort of one unsigned integer array takes a library path
several times faster (BENCHMARKS.md, "Real data: MNIST-1D"). ``permutation`` draws the same keys
and sorts by them stably with single-operand sorts only: least-significant-digit passes over
the key, each pass one sort of ``digit << m | position`` (m = bits of n - 1), whose low bits
give the stable order of that digit. Sorting by (key, position) this way is exactly the stable
sort by key, so the permutation is the same, ties included.

``matches_jax`` checks the agreement once per process on this JAX version; should JAX change
its algorithm the engine falls back to ``jax.random.permutation``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

MAX_POSITION_BITS = 24  # at most 4 passes a round; above 2^24 examples: jax's own sort


def _rounds(n: int) -> int:
    """jax.random.permutation's number of sorting rounds for n elements."""
    return int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))


def stable_argsort_u32(keys: jax.Array) -> jax.Array:
    """[n] uint32 -> [n] int32: the order of a stable sort of ``keys`` (ties in index order),
    by single-operand sorts: ``ceil(32 / (32 - m))`` passes, m = max(1, ceil(log2 n))."""
    n = keys.shape[0]
    m = max(1, math.ceil(math.log2(n))) if n > 1 else 1
    if m > MAX_POSITION_BITS:
        raise ValueError(f"stable_argsort_u32 handles up to 2^{MAX_POSITION_BITS} keys, got {n}")
    width, low = 32 - m, jnp.uint32((1 << m) - 1)
    position = jnp.arange(n, dtype=jnp.uint32)
    order = position
    for shift in range(0, 32, width):  # least significant digit first
        digit = (keys >> shift) & jnp.uint32((1 << min(width, 32 - shift)) - 1)
        packed = jnp.sort((digit[order] << m) | position)
        order = order[packed & low]
    return order.astype(jnp.int32)


def _single_sort_permutation(key: jax.Array, n: int) -> jax.Array:
    """jax.random.permutation(key, n)'s algorithm with ``stable_argsort_u32`` for its sorts."""
    x = jnp.arange(n, dtype=jnp.int32)
    for _ in range(_rounds(n)):
        key, subkey = jax.random.split(key)
        x = x[stable_argsort_u32(jax.random.bits(subkey, (n,), jnp.uint32))]
    return x


@functools.lru_cache(maxsize=None)
def matches_jax() -> bool:
    """Whether ``_single_sort_permutation`` equals ``jax.random.permutation`` here (checked on
    one and two rounds, raw and typed keys; once per process)."""
    with jax.ensure_compile_time_eval():  # concrete even when first asked inside a trace
        for key in (jax.random.PRNGKey(7), jax.random.key(11)):
            for n in (37, 4000):
                ours = jax.jit(_single_sort_permutation, static_argnums=1)(key, n)
                if not np.array_equal(np.asarray(ours), np.asarray(jax.random.permutation(key, n))):
                    return False
    return True


def permutation(key: jax.Array, n: int) -> jax.Array:
    """[n] int32: ``jax.random.permutation(key, n)`` bit for bit; on CPU by single-operand sorts
    (timings: BENCHMARKS.md, "Real data: MNIST-1D")."""
    if jax.default_backend() != "cpu" or n < 2 or n > 1 << MAX_POSITION_BITS or not matches_jax():
        return jax.random.permutation(key, n).astype(jnp.int32)
    return _single_sort_permutation(key, n)
