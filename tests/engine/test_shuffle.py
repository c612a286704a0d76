"""The epoch's order: jax.random.permutation bit for bit, by single-operand sorts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gbl_jax.engine import shuffle


@pytest.mark.parametrize("n", [2, 3, 37, 100, 1625, 1626, 4000, 4096, 4097, 70_000])
def test_the_permutation_is_jaxs_bit_for_bit(n):
    """One round below 1,626 elements, two above; sizes at and past a power of two change the
    number of position bits and of digit passes."""
    keys = jax.random.split(jax.random.PRNGKey(n), 3)
    ours = jax.jit(jax.vmap(lambda k: shuffle.permutation(k, n)))(keys)
    theirs = jax.vmap(lambda k: jax.random.permutation(k, n))(keys)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == jnp.int32


def test_typed_keys_and_folded_keys_give_jaxs_permutation():
    key = jax.random.fold_in(jax.random.key(5), 3)
    np.testing.assert_array_equal(shuffle.permutation(key, 500), jax.random.permutation(key, 500))


@pytest.mark.parametrize("n, distinct", [(4000, 50), (300, 2), (5, 1), (70_000, 1000)])
def test_ties_keep_index_order_as_a_stable_sort_does(n, distinct):
    """Random keys rarely tie, so force ties: the order must be lax.sort_key_val's (stable)."""
    raw = jax.random.bits(jax.random.PRNGKey(1), (n,), jnp.uint32)
    for keys in (raw % distinct, raw | jnp.uint32(0xFFFF0000), raw):
        ours = jax.jit(shuffle.stable_argsort_u32)(keys)
        _, theirs = lax.sort_key_val(keys, jnp.arange(n, dtype=jnp.int32), is_stable=True)
        np.testing.assert_array_equal(ours, theirs)


def test_the_agreement_check_passes_here_and_too_many_keys_are_refused():
    assert shuffle.matches_jax()
    with pytest.raises(ValueError, match="2\\^24"):
        shuffle.stable_argsort_u32(jax.ShapeDtypeStruct(((1 << 24) + 1,), jnp.uint32))
