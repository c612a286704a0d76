"""Compile once per configuration: objects equal in value share a compiled program, JAX's
persistent cache serves other rebuilt objects and new processes; count_compiles sees what
compiled."""

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gbl_jax as gbl
from gbl_jax.engine.compilation import canonical

SCRIPT = """
import json, sys
import jax, optax
import gbl_jax as gbl
gbl.enable_compilation_cache(sys.argv[1])
data = gbl.problems.xor()

class Net:   # compared by identity: a rebuilt one is a new configuration
    def __init__(self):
        self.model = gbl.mlp([2], data.head)
        self.init, self.apply = self.model.init, self.model.apply

def sweep_with_new_objects():
    with gbl.count_compiles() as count:
        gbl.sweep(Net(), optax.adam(0.05), data, key=jax.random.PRNGKey(0), seeds=8, steps=50)
    return {"hits": count.cache_hits, "training": count.training}

print(json.dumps([sweep_with_new_objects(), sweep_with_new_objects()]))
"""


def _run(cache):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cache)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_rebuilt_objects_and_new_processes_hit_the_persistent_cache(tmp_path):
    cache = tmp_path / "xla"
    first, rebuilt = _run(cache)
    assert first["training"] == 1 and first["hits"] == 0  # compiled and stored
    assert rebuilt["training"] == 1 and rebuilt["hits"] >= 1  # retraced, not recompiled
    assert any(cache.iterdir())
    again, _ = _run(cache)  # a new process (a rerun)
    assert again["hits"] >= 1


def _sweep(model, opt, data, steps=40):
    with gbl.count_compiles() as count:
        out = gbl.sweep(model, opt, data, key=jax.random.PRNGKey(1), seeds=16, steps=steps)
    return count.training, out


def test_objects_equal_in_value_reuse_the_compiled_sweep():
    data = gbl.problems.xor()
    first, a = _sweep(gbl.mlp([3], data.head), optax.adam(0.05), data)
    again, b = _sweep(gbl.mlp([3], data.head), optax.adam(0.05), data)  # rebuilt, equal
    assert first == 1 and again == 0
    np.testing.assert_array_equal(a.final_loss, b.final_loss)
    other, c = _sweep(gbl.mlp([3], data.head), optax.adam(0.051), data)  # another lr compiles
    assert other == 1 and not np.array_equal(a.final_loss, c.final_loss)
    wider, _ = _sweep(gbl.mlp([4], data.head), optax.adam(0.05), data)  # another width too
    assert wider == 1


def test_fingerprint_sees_closures_defaults_and_redefined_globals():
    def make(scale):
        return lambda v: scale * v

    assert canonical(make(2.0)) is canonical(make(2.0))
    assert canonical(make(2.0)) is not canonical(make(3.0))
    assert canonical(make(jnp.ones(3))) is canonical(make(jnp.ones(3)))
    assert canonical(make(jnp.ones(3))) is not canonical(make(jnp.zeros(3)))

    def with_default(scale=2.0):
        return lambda v, s=scale: s * v

    assert canonical(with_default()) is canonical(with_default())
    assert canonical(with_default(2.0)) is not canonical(with_default(3.0))
    namespace: dict = {"jnp": jnp}
    exec("def helper(v):\n    return v + 1\ndef f(v):\n    return helper(v)", namespace)
    first = canonical(namespace["f"])
    exec("def helper(v):\n    return v + 2\ndef f(v):\n    return helper(v)", namespace)
    assert canonical(namespace["f"]) is not first  # a notebook cell redefined the helper
    assert namespace["f"](0) == 2

    class Box:  # no value equality: identity
        pass

    box = Box()
    assert canonical(box) is box
    assert canonical(make(Box())) is not canonical(make(Box()))


def test_what_could_change_after_the_call_is_never_shared():
    """A rebuilt closure must not get an old one whose state has since changed, nor one that
    only looks alike (the review's collisions, each a case that once compared equal)."""

    def make(v):
        return lambda d: v

    # the user's own object, mutated between the builds: identity is not enough
    class Cfg:
        weight = 1.0

    cfg = Cfg()
    first = canonical(make(cfg))
    cfg.weight = 100.0
    assert canonical(make(cfg)) is not first
    # mutable containers and writable arrays
    for value in ([1.0], {"a": 1.0}, np.ones(2)):
        assert canonical(make(value)) is not canonical(make(value))
    # values that print alike but compute differently
    assert canonical(make(0.0)) is not canonical(make(-0.0))
    assert canonical(make(np.ones(2))) is not canonical(make(jnp.ones(2)))
    assert canonical(make(jnp.asarray(2.0))) is not canonical(make(jnp.array(2.0, jnp.float32)))
    frozen, again = np.ones(2), np.ones(2)
    frozen.flags.writeable = again.flags.writeable = False  # read-only arrays: by value
    assert canonical(make(frozen)) is canonical(make(again))

    class Half(functools.partial):
        def __call__(self, *args):
            return super().__call__(*args) / 2

    f = lambda a, b: a * b  # noqa: E731
    assert canonical(make(functools.partial(f, 2))) is not canonical(make(Half(f, 2)))
    # a user-code helper read through a global: its global is part of the value
    namespace: dict = {"G": 1.0}
    exec("def helper(z):\n    return z * G\ndef make():\n    return lambda z: helper(z)", namespace)
    one = canonical(namespace["make"]())
    namespace["G"] = 2.0
    assert canonical(namespace["make"]()) is not one


def test_a_compile_count_prints_its_counts():
    with gbl.count_compiles() as count:
        jax.jit(lambda v: v * 3.0 + 1.0)(jnp.arange(7.0))
    text = repr(count)
    assert text.startswith(f"CompileCount(compiled={count.compiled}, training=0, cache_hits=")
    assert count.compiled + count.cache_hits >= 1
    count.names.append("gbl_sweep_chunk")
    assert repr(count).endswith("training programs=['gbl_sweep_chunk'])")
