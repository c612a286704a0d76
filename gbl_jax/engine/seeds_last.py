"""``vmap`` with the runs on the last axis: the layout for many tiny runs on a CPU.

``jax.vmap`` puts the run axis first and batches a matmul of two batched operands as a batched
``dot_general``. For the nets this library studies (2-2-1 on XOR, 2-8-1 on two spirals) every
array of a run is a handful of numbers, so XLA:CPU then loops over tiny matrices whose minor
axis holds 1-8 values and cannot vectorize. ``vmap_last`` evaluates the function's jaxpr with
the run axis *last* on every value: an elementwise op is the same op on a longer minor axis (one
vectorized loop over the runs), a reduction keeps it, and a ``dot_general`` contracting at most
``UNROLL`` values becomes a broadcast multiply summed over the contracted axes (one fused loop,
the runs innermost); a longer contraction is one plain matmul when one operand is batched (the
runs join its free axes), else the same product and sum. Loops (``scan``,
``while`` with an unbatched predicate), ``cond`` on an unbatched index and nested ``jit`` and
custom-derivative calls (their primal) are followed; every other primitive is batched by
``jax.vmap``'s own rule with the run axis moved to where it wants it and back (correct, just not
faster; ``FALLBACKS`` counts them). ``chunking`` decides which sweeps go this way and compiles
them without XLA:CPU's library fusions (``chunking.tiny_step_options``).

The arithmetic is the same as ``jax.vmap``'s up to the order of a few sums (float tolerance);
``tests/engine/test_seeds_last.py`` compares both on the engine's runs.
"""

from __future__ import annotations

import collections
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core

# Primitives applied elementwise to operands of one shape (scalars broadcast), one output.
_ELEMENTWISE = frozenset(
    """
    abs acos acosh add add_any and asin asinh atan atan2 atanh cbrt ceil clamp
    convert_element_type copy copy_p cos cosh digamma div eq erf erf_inv erfc exp exp2 expm1
    floor ge gt imag integer_pow
    is_finite le lgamma log log1p logistic lt max min mul ne neg nextafter not or pow real
    reduce_precision rem round rsqrt select_n shift_left shift_right_arithmetic
    shift_right_logical sign sin sinh sqrt square stop_gradient sub tan tanh xor
    """.split()
)
_REDUCTIONS = frozenset(
    "reduce_sum reduce_max reduce_min reduce_prod reduce_and reduce_or "
    "reduce_xor argmax argmin".split()
)
_CUMULATIVE = frozenset("cumsum cumprod cummax cummin cumlogsumexp".split())
UNROLL = 16  # contractions over at most this many values: a multiply and a sum, not a matmul
PRODUCT_FREE = 4  # nor longer ones whose unbatched operand has at most this many free values

_CALLS = frozenset(
    "jit pjit closed_call core_call custom_jvp_call custom_vjp_call custom_vjp_call_jaxpr".split()
)


def vmap_last(fn: Callable, in_axes: Sequence[int | None]) -> Callable:
    """``jax.vmap(fn, in_axes)`` evaluated with the run axis last inside (see the module).

    Args:
      fn: a function of positional pytree arguments, traceable.
      in_axes: per argument, 0 (a leading run axis on every leaf) or None (shared).

    Returns:
      A function of the same arguments whose outputs carry the run axis first, as ``vmap``'s.
    """
    in_axes = tuple(in_axes)
    if any(ax not in (0, None) for ax in in_axes):
        raise ValueError(f"vmap_last takes in_axes of 0 or None, got {in_axes}")

    def batched(*args):
        if len(args) != len(in_axes):
            raise ValueError(f"expected {len(in_axes)} arguments, got {len(args)}")
        sizes = {
            leaf.shape[0]
            for arg, ax in zip(args, in_axes)
            if ax == 0
            for leaf in jax.tree.leaves(arg)
        }
        if len(sizes) != 1:
            raise ValueError(f"the batched arguments need one leading size, got {sorted(sizes)}")
        size = sizes.pop()
        one = [
            jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), arg)
            if ax == 0
            else arg
            for arg, ax in zip(args, in_axes)
        ]
        shared = [arg if ax is None else None for arg, ax in zip(args, in_axes)]

        def per_run(*xs):
            return fn(*[s if ax is None else x for x, s, ax in zip(xs, shared, in_axes)])

        closed, out_shape = jax.make_jaxpr(per_run, return_shape=True)(
            *[o if ax == 0 else jax.tree.map(_spec, o) for o, ax in zip(one, in_axes)]
        )
        flat = []
        for arg, ax in zip(args, in_axes):
            for leaf in jax.tree.leaves(arg):
                flat.append((_to_last(leaf), True) if ax == 0 else (leaf, False))
        outs = _eval(closed.jaxpr, closed.consts, flat, size)
        leaves = [jnp.moveaxis(v, -1, 0) if b else _broadcast_first(v, size) for v, b in outs]
        return jax.tree.unflatten(jax.tree.structure(out_shape), leaves)

    return batched


def _spec(a):
    return jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a))


def _to_last(a):
    return jnp.moveaxis(a, 0, -1) if jnp.ndim(a) > 1 else a


def _broadcast_first(v, size):
    return jnp.broadcast_to(v, (size,) + jnp.shape(v))


def _inner(params):
    """The closed jaxpr a call primitive runs (its custom derivative rules are not needed:
    differentiation happened before this evaluation)."""
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if isinstance(params.get(key), core.ClosedJaxpr):
            return params[key]
    return None


def _bind(eqn, vals) -> list:
    got = eqn.primitive.get_bind_params(eqn.params)
    subfuns, params = ([], got) if isinstance(got, dict) else got  # jax >= 0.7: params only
    out = eqn.primitive.bind(*subfuns, *vals, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


def _read(env, var):
    if isinstance(var, core.Literal):
        return var.val, False
    return env[var]


def _eval(jaxpr, consts, args, size) -> list:
    """Evaluates ``jaxpr`` on (value, batched) pairs; batched values carry the runs last."""
    env: dict = {}
    for var, c in zip(jaxpr.constvars, consts):
        env[var] = (c, False)
    for var, a in zip(jaxpr.invars, args):
        env[var] = a
    for eqn in jaxpr.eqns:
        ins = [_read(env, v) for v in eqn.invars]
        if not any(b for _, b in ins):
            pairs = [(o, False) for o in _bind(eqn, [v for v, _ in ins])]
        else:
            pairs = _rule(eqn, ins, size)
        for var, pair in zip(eqn.outvars, pairs):
            env[var] = pair
    return [_read(env, v) for v in jaxpr.outvars]


def _rule(eqn, ins, size) -> list:
    name = eqn.primitive.name
    params = eqn.params
    if name in _ELEMENTWISE:
        # lax broadcasts scalars and size-1 axes; every operand is made the output's full shape
        shape = tuple(eqn.outvars[0].aval.shape)
        full = shape + (size,)
        vals = []
        for v, b in ins:
            rank = jnp.ndim(v) - b
            if rank not in (0, len(shape)):
                return _fallback(eqn, ins, size)
            if jnp.shape(v) != full:
                v = lax.broadcast_in_dim(v, full, tuple(range(rank)) + ((len(shape),) if b else ()))
            vals.append(v)
        return [(eqn.primitive.bind(*vals, **params), True)]
    if name == "broadcast_in_dim":
        (v, _), *dyn = ins
        if dyn:
            return _fallback(eqn, ins, size)
        shape = tuple(params["shape"]) + (size,)
        dims = tuple(params["broadcast_dimensions"]) + (len(params["shape"]),)
        return [(lax.broadcast_in_dim(v, shape, dims), True)]
    if name == "reshape" and params.get("dimensions") is None and len(ins) == 1:
        return [(lax.reshape(ins[0][0], tuple(params["new_sizes"]) + (size,)), True)]
    if name == "slice" and len(ins) == 1:
        strides = params["strides"]
        return [
            (
                lax.slice(
                    ins[0][0],
                    tuple(params["start_indices"]) + (0,),
                    tuple(params["limit_indices"]) + (size,),
                    None if strides is None else tuple(strides) + (1,),
                ),
                True,
            )
        ]
    if name == "squeeze":
        return [(lax.squeeze(ins[0][0], tuple(params["dimensions"])), True)]
    if name == "transpose":
        perm = tuple(params["permutation"])
        return [(lax.transpose(ins[0][0], perm + (len(perm),)), True)]
    if name == "reduce_sum" and len(ins) == 1:
        return [(_sum(ins[0][0], tuple(params["axes"])), True)]
    if name in _REDUCTIONS or name in _CUMULATIVE:
        if len(ins) == 1:
            outs = eqn.primitive.bind(ins[0][0], **params)
            return [(o, True) for o in (outs if eqn.primitive.multiple_results else [outs])]
    if name == "dot_general" and not any(params["dimension_numbers"][1]):
        return [(_dot(ins, params, size), True)]
    if name in _CALLS:
        inner = _inner(params)
        if inner is not None:
            return _eval(inner.jaxpr, inner.consts, ins, size)
    if name == "scan":
        return _scan(eqn, ins, size)
    if name == "while":
        return _while(eqn, ins, size)
    if name == "cond" and not ins[0][1]:
        return _cond(eqn, ins, size)
    return _fallback(eqn, ins, size)


# Primitives batched by ``jax.vmap``'s own rule since import, by name (what a test or a curious
# user reads to see that a step loop stayed on the fast rules).
FALLBACKS: collections.Counter = collections.Counter()


def _fallback(eqn, ins, size) -> list:
    """``jax.vmap``'s own rule for the primitive, the run axis moved last on the way out."""
    FALLBACKS[eqn.primitive.name] += 1

    def call(*vals):
        return _bind(eqn, vals)

    axes = [-1 if b else None for _, b in ins]
    outs = jax.vmap(call, in_axes=axes, out_axes=-1, axis_size=size)(*[v for v, _ in ins])
    return [(o, True) for o in outs]


def _sum(value, axes: tuple):
    """Sum over ``axes`` (not the runs'), as one reduction, which XLA:CPU computes once (a
    chain of adds was recomputed by every loop that reads it; BENCHMARKS.md, "Notes moved from
    docstrings")."""
    return jnp.sum(value, axis=axes) if axes else value


def _dot(ins, params, size):
    """``dot_general`` with the runs last. A contraction over at most ``UNROLL`` values, or
    with both operands batched, or whose unbatched operand has at most ``PRODUCT_FREE`` free
    values (a first layer's gradient, the data's few features against the points): the
    broadcast product, contracted axes leading, summed over them (the runs innermost). Any
    other: one plain matmul, the runs joining the batched operand's free axes. ``PRODUCT_FREE``
    bounds the product at a few times that operand's size. Why the product for a first layer's
    gradient: BENCHMARKS.md, "Notes moved from docstrings"."""
    (lhs, lb), (rhs, rb) = ins
    (lc, rc), _ = params["dimension_numbers"]  # no batch dimensions (``_rule`` checks)
    pet = params.get("preferred_element_type")
    lrank, rrank = lhs.ndim - lb, rhs.ndim - rb
    contracted = math.prod(lhs.shape[d] for d in lc)
    unbatched, ucontracted = (lhs, lc) if not lb else (rhs, rc)
    few = unbatched.size // max(1, math.prod(unbatched.shape[d] for d in ucontracted))
    if contracted > UNROLL and not (lb and rb) and few > PRODUCT_FREE:
        kwargs = {"preferred_element_type": pet} if pet is not None else {}
        out = lax.dot_general(lhs, rhs, ((lc, rc), ((), ())), **kwargs)
        # dot_general puts lhs's free axes first: the runs end lhs's when lhs is batched
        return out if rb else jnp.moveaxis(out, lrank - len(lc), -1)
    lhs_free = [d for d in range(lrank) if d not in lc]
    rhs_free = [d for d in range(rrank) if d not in rc]
    nl, nr, nc = len(lhs_free), len(rhs_free), len(lc)
    # axes of the product: contracted, lhs free, rhs free, runs
    shape = (
        [lhs.shape[d] for d in lc]
        + [lhs.shape[d] for d in lhs_free]
        + [rhs.shape[d] for d in rhs_free]
        + [size]
    )
    ldims = [0] * lrank
    for i, d in enumerate(lc):
        ldims[d] = i
    for i, d in enumerate(lhs_free):
        ldims[d] = nc + i
    rdims = [0] * rrank
    for i, d in enumerate(rc):
        rdims[d] = i
    for i, d in enumerate(rhs_free):
        rdims[d] = nc + nl + i
    runs = (nc + nl + nr,)
    dtype = pet if pet is not None else jnp.result_type(lhs, rhs)
    a = _place(lhs.astype(dtype), tuple(shape), tuple(ldims) + (runs if lb else ()))
    b = _place(rhs.astype(dtype), tuple(shape), tuple(rdims) + (runs if rb else ()))
    return _sum(a * b, tuple(range(nc)))


def _place(value, shape: tuple, dims: tuple):
    """``value``'s axis i at axis ``dims[i]`` of ``shape``, broadcast along the others: a
    transpose, then a broadcast with increasing dimensions (``lax.broadcast_in_dim`` returns an
    operand already of the target shape as it is, whatever the dimensions say)."""
    perm = tuple(sorted(range(len(dims)), key=dims.__getitem__))
    if perm != tuple(range(len(dims))):
        value = lax.transpose(value, perm)
    return lax.broadcast_in_dim(value, shape, tuple(sorted(dims)))


# ---- which values of a jaxpr end up batched (for loop carries and branch outputs)


def _batched_outs(jaxpr, in_batched: Sequence[bool]) -> list[bool]:
    env = dict(zip(jaxpr.invars, in_batched))

    def read(v):
        return False if isinstance(v, core.Literal) else env.get(v, False)

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if not any(ins):
            outs = [False] * len(eqn.outvars)
        elif name == "scan":
            p = eqn.params
            nc, nk = p["num_consts"], p["num_carry"]
            carry = _carry_fixpoint(p["jaxpr"].jaxpr, ins[:nc], ins[nc : nc + nk], ins[nc + nk :])
            outs = carry + _batched_outs(p["jaxpr"].jaxpr, ins[:nc] + carry + ins[nc + nk :])[nk:]
        elif name == "while":
            outs = _while_batched(eqn.params, ins)
        elif name == "cond" and not ins[0]:
            outs = _cond_batched(eqn.params, ins)
        elif name in _CALLS and _inner(eqn.params) is not None:
            outs = _batched_outs(_inner(eqn.params).jaxpr, ins)
        else:
            outs = [True] * len(eqn.outvars)
        for var, b in zip(eqn.outvars, outs):
            env[var] = b
    return [read(v) for v in jaxpr.outvars]


def _carry_fixpoint(body, consts, carry, xs) -> list[bool]:
    carry = list(carry)
    while True:
        out = _batched_outs(body, list(consts) + carry + list(xs))[: len(carry)]
        new = [a or b for a, b in zip(carry, out)]
        if new == carry:
            return carry
        carry = new


def _while_batched(p, ins) -> list[bool]:
    cn, bn = p["cond_nconsts"], p["body_nconsts"]
    cconsts, bconsts, init = ins[:cn], ins[cn : cn + bn], ins[cn + bn :]
    carry = _carry_fixpoint(p["body_jaxpr"].jaxpr, bconsts, init, [])
    if _batched_outs(p["cond_jaxpr"].jaxpr, list(cconsts) + carry)[0]:
        return [True] * len(init)  # a batched predicate: vmap's rule batches every carry
    return carry


def _cond_batched(p, ins) -> list[bool]:
    outs = [_batched_outs(br.jaxpr, ins[1:]) for br in p["branches"]]
    return [any(col) for col in zip(*outs)]


def _as(pair, batched: bool, size):
    value, b = pair
    if batched and not b:  # an unbatched value as a batched one: the runs last
        shape = jnp.shape(value)
        return lax.broadcast_in_dim(value, shape + (size,), tuple(range(len(shape)))), True
    return value, b


def _scan(eqn, ins, size) -> list:
    p = eqn.params
    nc, nk = p["num_consts"], p["num_carry"]
    body = p["jaxpr"]
    consts, init, xs = ins[:nc], ins[nc : nc + nk], ins[nc + nk :]
    flags = _carry_fixpoint(
        body.jaxpr, [b for _, b in consts], [b for _, b in init], [b for _, b in xs]
    )
    init = [_as(pair, f, size) for pair, f in zip(init, flags)]
    x_flags = [b for _, b in xs]
    # a batched xs has shape [length, ..., runs]: its slices are batched values
    out_flags: list[bool] = []

    def step(carry, x):
        outs = _eval(
            body.jaxpr,
            body.consts,
            list(consts) + list(zip(carry, flags)) + list(zip(x, x_flags)),
            size,
        )
        new = [_as(pair, f, size)[0] for pair, f in zip(outs[:nk], flags)]
        out_flags[:] = [b for _, b in outs[nk:]]
        return new, [v for v, _ in outs[nk:]]

    carry, ys = lax.scan(
        step,
        [v for v, _ in init],
        [v for v, _ in xs],
        length=p["length"],
        reverse=p["reverse"],
        unroll=p["unroll"],
    )
    return list(zip(carry, flags)) + list(zip(ys, out_flags))


def _while(eqn, ins, size) -> list:
    p = eqn.params
    cn, bn = p["cond_nconsts"], p["body_nconsts"]
    cconsts, bconsts, init = ins[:cn], ins[cn : cn + bn], ins[cn + bn :]
    flags = _carry_fixpoint(
        p["body_jaxpr"].jaxpr, [b for _, b in bconsts], [b for _, b in init], []
    )
    cond, body = p["cond_jaxpr"], p["body_jaxpr"]
    if _batched_outs(cond.jaxpr, [b for _, b in cconsts] + flags)[0]:
        return _fallback(eqn, ins, size)
    init = [_as(pair, f, size)[0] for pair, f in zip(init, flags)]

    def cond_fun(carry):
        return _eval(cond.jaxpr, cond.consts, list(cconsts) + list(zip(carry, flags)), size)[0][0]

    def body_fun(carry):
        outs = _eval(body.jaxpr, body.consts, list(bconsts) + list(zip(carry, flags)), size)
        return [_as(pair, f, size)[0] for pair, f in zip(outs, flags)]

    return list(zip(lax.while_loop(cond_fun, body_fun, init), flags))


def _cond(eqn, ins, size) -> list:
    p = eqn.params
    (index, _), ops = ins[0], ins[1:]
    flags = _cond_batched(p, [False] + [b for _, b in ops])

    def branch(closed):
        def run(*vals):
            outs = _eval(closed.jaxpr, closed.consts, list(zip(vals, [b for _, b in ops])), size)
            return [_as(pair, f, size)[0] for pair, f in zip(outs, flags)]

        return run

    outs = lax.switch(index, [branch(br) for br in p["branches"]], *[v for v, _ in ops])
    return list(zip(outs, flags))
