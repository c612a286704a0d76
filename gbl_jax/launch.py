"""The processes and devices a sweep runs on: XLA CPU devices, JAX's multi-process runtime, and
the local launcher behind ``gbl-jax sweep --processes N``.

The launcher starts N copies of the same command, each joining JAX's runtime through a
coordinator on a free local port (``--coordinator --num-processes --process-id``), and waits for
them. If one process dies, the others would wait for it forever at their next ``barrier``, so
the launcher kills them all; every chunk already saved is whole, and ``--resume`` completes the
sweep.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

MAX_CPU_DEVICES = 1024
# flags the launcher sets itself for its workers
_OWN_FLAGS = ("--processes", "--cpu-devices")


def set_cpu_devices(n: int | None) -> None:
    """One XLA CPU device per core (``n``); takes effect only before JAX starts its backend."""
    from gbl_jax.devices import use_cpu_cores

    if n is not None:
        try:
            use_cpu_cores(n)
        except ValueError:
            pass   # JAX already started (the command called in a process that used it)


def local_devices(n: int | None) -> list:
    """The devices this process runs on: ``n`` CPU devices, or every local accelerator.

    Raises:
      ValueError: JAX started earlier in this process with fewer than ``n`` CPU devices.
    """
    import jax

    devices = jax.local_devices()
    if devices[0].platform != "cpu" or n is None:
        return devices
    if len(devices) < n:
        raise ValueError(f"--cpu-devices {n}: JAX already started with {len(devices)} CPU "
                         "devices")
    return devices[:n]


def join(**kwargs) -> tuple[int, int]:
    """Joins JAX's multi-process runtime; (this process's index, process count).

    Args:
      **kwargs: for ``jax.distributed.initialize`` (coordinator_address, num_processes,
        process_id), or none where JAX finds the cluster itself (SLURM, Open MPI).
    """
    import jax

    jax.distributed.initialize(**kwargs)
    return jax.process_index(), jax.process_count()


def barrier(name: str, count: int, ok: bool = True) -> bool:
    """Waits for every process; returns process 0's ``ok``."""
    if count == 1:
        return ok
    import numpy as np
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
    return bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the coordinator)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_argv(argv: list[str], cpu_devices: int | None) -> list[str]:
    """The launcher's command line for a worker: without --processes, with ``--cpu-devices``
    set to each worker's share of the cores (kept as stored when ``cpu_devices`` is None)."""
    out, skip = [], False
    for token in argv:
        if skip or token.startswith(_OWN_FLAGS):
            skip = token in _OWN_FLAGS and not skip   # "--flag value": skip the value too
            continue
        out.append(token)
    return out + (["--cpu-devices", str(cpu_devices)] if cpu_devices is not None else [])


def start(argv: list[str], processes: int, port: int) -> list[subprocess.Popen]:
    """Starts ``processes`` workers running ``gbl_jax.cli`` with ``argv`` on coordinator
    127.0.0.1:``port``."""
    return [subprocess.Popen([sys.executable, "-m", "gbl_jax.cli", *argv, "--coordinator",
                              f"127.0.0.1:{port}", "--num-processes", str(processes),
                              "--process-id", str(i)]) for i in range(processes)]


def wait(workers: list[subprocess.Popen]) -> tuple[int, int] | None:
    """Waits for every worker; kills the rest when one fails.

    Returns:
      (index, exit status) of the first worker that failed, or None when all succeeded.
    """
    failed = None
    try:
        while failed is None and None in [w.poll() for w in workers]:
            failed = next(((i, w.returncode) for i, w in enumerate(workers) if w.returncode),
                          None)
            time.sleep(0.1)
    finally:   # one process gone: the others would wait for it at the next barrier. JAX's
        # runtime catches SIGTERM (preemption notices); every chunk file is whole or absent.
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGKILL)
        for w in workers:
            w.wait()
    return failed or next(((i, w.returncode) for i, w in enumerate(workers) if w.returncode),
                          None)
