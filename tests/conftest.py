"""Test configuration: CPU, float32, and no silent rank promotion.

How to run the suite and how tests here are written (compare with closed forms, scipy or an
independent implementation; tiny configurations; compiled functions reused): CONTRIBUTING.md.

One persistent XLA compilation cache serves the whole run: the test processes (pytest-xdist's
workers, see pyproject.toml) and every subprocess a test starts (the command line, the scripts,
the notebooks' kernels) inherit it through the environment, so a program compiled in one is
read from disk by the others. It lives in .pytest_cache/xla (JAX keys every entry by the
program, the jax version and the flags, so a stale entry is never used); set
JAX_COMPILATION_CACHE_DIR to put it elsewhere.
"""

import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(pathlib.Path(__file__).parents[1] / ".pytest_cache" / "xla")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# Compile time is most of the suite's time. LLVM at XLA's backend optimization level 1 instead of
# the default: the same XLA programs (fusions, layouts, loops), less machine-code optimization;
# a cold suite measured 346 s against 423 s (2 cores), and results agree with the default's to
# float rounding (1e-7 relative on the command line's two-process sweep). Benchmarks, scripts
# and users run at the default. An explicit level in XLA_FLAGS wins; subprocesses inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=1"]
    ).strip()

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", False)


# Modules whose tests start subprocesses (notebook kernels, scripts, the command line) go first,
# whole and in this order, so the workers start on the long tests and finish on the short ones.
LONG_FIRST = ("test_notebooks.py", "test_scripts.py", "test_readme.py", "test_main.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: each module keeps its own order
