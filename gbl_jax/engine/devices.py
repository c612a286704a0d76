"""Every CPU core as a JAX device, so a sweep shards its runs across cores.

XLA:CPU gives one device by default, and one device runs one stream of work: a sweep on it
uses about one core. ``use_cpu_cores()`` asks for one device per core; it must run before the
first JAX computation (JAX starts its backends then), for example right after the imports:

  import gbl_jax as gbl
  gbl.use_cpu_cores()          # or use_cpu_cores(4)

The ``gbl-jax`` command does this itself (``--cpu-devices``).
"""

from __future__ import annotations

import os

import jax

from gbl_jax.checks import require_int


def use_cpu_cores(n: int | None = None) -> int:
    """Exposes ``n`` CPU devices (default: every core); returns ``n``.

    Raises:
      ValueError: ``n`` is not a positive integer, or JAX's backends already started (then
        restart the process, or set ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
        before Python starts).
    """
    n = require_int("use_cpu_cores: n", os.cpu_count() or 1 if n is None else n, 1)
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        raise ValueError(
            "use_cpu_cores() must run before the first JAX computation (JAX has "
            "already started its backends); call it right after the imports"
        ) from None
    return n
