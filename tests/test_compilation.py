"""Compile once per configuration: JAX's persistent cache serves rebuilt objects and new
processes; count_compiles sees what compiled."""

import json
import os
import subprocess
import sys

SCRIPT = """
import json, sys
import jax, optax
import gbl_jax as gbl
gbl.enable_compilation_cache(sys.argv[1])
data = gbl.problems.xor()

def sweep_with_new_objects():
    with gbl.count_compiles() as count:
        gbl.sweep(gbl.mlp([2], data.head), optax.adam(0.05), data, key=jax.random.PRNGKey(0),
                  seeds=8, steps=50)
    return {"hits": count.cache_hits, "training": count.training}

print(json.dumps([sweep_with_new_objects(), sweep_with_new_objects()]))
"""


def _run(cache):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(cache)], capture_output=True,
                          text=True, env=env, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_rebuilt_objects_and_new_processes_hit_the_persistent_cache(tmp_path):
    cache = tmp_path / "xla"
    first, rebuilt = _run(cache)
    assert first["training"] == 1 and first["hits"] == 0          # compiled and stored
    assert rebuilt["training"] == 1 and rebuilt["hits"] >= 1      # retraced, not recompiled
    assert any(cache.iterdir())
    again, _ = _run(cache)                                         # a new process (a rerun)
    assert again["hits"] >= 1
