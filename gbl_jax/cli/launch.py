"""The processes and devices a sweep runs on: XLA CPU devices, JAX's multi-process runtime, and
the local launcher behind ``gbl-jax sweep --processes N``.

The launcher starts N copies of the same command, each joining JAX's runtime through a
coordinator on a free local port (``--coordinator --num-processes --process-id``), and waits for
them. If one process dies, the others would wait for it forever at their next ``barrier``, so
the launcher stops them all (Ctrl-C, then a kill); every chunk already saved is whole, and
``--resume`` completes the sweep. ``cpu_devices``, ``join_runtime`` and ``launch_sweep`` are the
command line's side of it: the options that pick the devices, join a cluster, start the processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from gbl_jax.cli import build
from gbl_jax.cli.build import UsageError, check_int, check_number

MAX_CPU_DEVICES = 1024
GRACE_S = 3.0  # how long the launcher lets a worker stop on Ctrl-C before it kills it
# flags the launcher sets itself for its workers
_OWN_FLAGS = ("--processes", "--cpu-devices")


def set_cpu_devices(n: int | None) -> None:
    """One XLA CPU device per core (``n``); takes effect only before JAX starts its backend."""
    from gbl_jax.engine.devices import use_cpu_cores

    if n is not None:
        try:
            use_cpu_cores(n)
        except ValueError:
            pass  # JAX already started (the command called in a process that used it)


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
        raise ValueError(f"--cpu-devices {n}: JAX already started with {len(devices)} CPU devices")
    return devices[:n]


def join(timeout_s: float, **kwargs) -> tuple[int, int]:
    """Joins JAX's multi-process runtime; (this process's index, process count).

    JAX's own wait for a missing coordinator ends in a C++ abort, so the coordinator is checked
    first: process 0 must be able to listen on its port, the others must reach it within
    ``timeout_s``.

    Args:
      timeout_s: how long to wait for the coordinator (and JAX for every process).
      **kwargs: for ``jax.distributed.initialize`` (coordinator_address, num_processes,
        process_id), or none where JAX finds the cluster itself (SLURM, Open MPI).

    Raises:
      ValueError: the coordinator's port is in use (process 0) or nothing answers there.
    """
    import jax

    if "coordinator_address" in kwargs:
        host, _, port = kwargs["coordinator_address"].rpartition(":")
        if kwargs["process_id"] == 0:
            _check_port_free(int(port))
        else:
            _wait_for(host.strip("[]"), int(port), timeout_s)
        kwargs["initialization_timeout"] = max(1, int(timeout_s))
    # JAX's preemption service takes SIGTERM for itself (to sync a checkpoint step), so a
    # worker would not stop on it; a sweep resumes from its chunks, so SIGTERM stops it.
    jax.config.update("jax_enable_preemption_service", False)
    jax.distributed.initialize(**kwargs)
    return jax.process_index(), jax.process_count()


def _check_port_free(port: int) -> None:
    family = socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET
    try:  # JAX's coordinator listens on every address of the port
        with socket.create_server(
            ("", port), family=family, dualstack_ipv6=family == socket.AF_INET6
        ):
            pass
    except OSError as err:
        raise ValueError(
            f"process 0 cannot listen on the coordinator's port {port} "
            f"({err.strerror}); pick a free port"
        ) from None


def _wait_for(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"no coordinator answered at {host}:{port} within "
                    f"{timeout_s:g} s ({err.strerror or err}); start process 0 "
                    "(--process-id 0) with the same --coordinator"
                ) from None
        time.sleep(0.2)


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
            skip = token in _OWN_FLAGS and not skip  # "--flag value": skip the value too
            continue
        out.append(token)
    return out + (["--cpu-devices", str(cpu_devices)] if cpu_devices is not None else [])


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen_worker(command: list[str]) -> subprocess.Popen:
    """Starts a worker that Ctrl-C stops, even when the launcher itself ignores SIGINT (started
    with nohup, in the background, under a CI runner): a child inherits an ignored SIGINT, and
    Python then installs no KeyboardInterrupt handler."""
    return subprocess.Popen(command, preexec_fn=_default_sigint)


def start(argv: list[str], processes: int, port: int) -> list[subprocess.Popen]:
    """Starts ``processes`` workers running ``gbl_jax.cli.main`` with ``argv`` on coordinator
    127.0.0.1:``port``."""
    return [
        popen_worker(
            [
                sys.executable,
                "-m",
                "gbl_jax.cli.main",
                *argv,
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                str(processes),
                "--process-id",
                str(i),
            ]
        )
        for i in range(processes)
    ]


def wait(workers: list[subprocess.Popen]) -> tuple[int, int] | None:
    """Waits for every worker; kills the rest when one fails.

    Returns:
      (index, exit status) of the first worker that failed, or None when all succeeded.
    """
    failed = None
    try:
        while failed is None and None in [w.poll() for w in workers]:
            failed = next(((i, w.returncode) for i, w in enumerate(workers) if w.returncode), None)
            time.sleep(0.1)
    finally:  # one process gone: the others would wait for it at the next barrier. Ctrl-C
        # first (a worker between two chunks stops cleanly); a worker stuck in a barrier is
        # killed, leaving at most a temporary file, which --resume and --force delete.
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGINT)
        deadline = time.monotonic() + GRACE_S
        for w in workers:
            try:
                w.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    return failed or next(((i, w.returncode) for i, w in enumerate(workers) if w.returncode), None)


# --- the command line's side: --cpu-devices, --coordinator ..., --processes N ----------------
def cpu_devices(args, config: dict) -> int | None:
    """CPU devices per process for ``gbl-jax sweep``: ``--cpu-devices``, by default one per core
    (unless XLA_FLAGS sets a count); a resumed sweep's own count, which ``--cpu-devices`` must not
    contradict (chunks computed on another device count can differ in the last bits)."""
    if not args.resume:
        n = check_int("cpu_devices", args.cpu_devices, 1, MAX_CPU_DEVICES, none=True)
        if n is None and "xla_force_host_platform_device_count" not in os.environ.get(
            "XLA_FLAGS", ""
        ):
            n = os.cpu_count() or 1
        return n
    if args.cpu_devices is not None and args.cpu_devices != config["devices"]:
        raise UsageError(
            f"--cpu-devices {args.cpu_devices} conflicts with the interrupted "
            f"sweep's {config['devices']} devices (chunks computed on another "
            "device count can differ in the last bits); drop it to resume"
        )
    return config["devices"]


def join_runtime(args) -> tuple[int, int]:
    """Joins JAX's multi-process runtime when the options ask (``--coordinator``,
    ``--num-processes``, ``--process-id``, or ``--distributed``); (this process's index,
    process count), (0, 1) for a single process."""
    cluster = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in cluster):
        if any(v is None for v in cluster):
            raise UsageError("--coordinator, --num-processes and --process-id go together")
        count = check_int("num_processes", args.num_processes, 1)
        index = check_int("process_id", args.process_id, 0, count - 1)
        host, _, port = args.coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(
                f"--coordinator must be HOST:PORT (e.g. 10.0.0.1:1234), got {args.coordinator!r}"
            )
        kwargs = {
            "coordinator_address": args.coordinator,
            "num_processes": count,
            "process_id": index,
        }
    elif args.distributed:
        kwargs = {}  # SLURM, Open MPI, ...: JAX finds the cluster itself
    else:
        return 0, 1
    if args.out is None:
        raise UsageError("a multi-process sweep needs --out (a folder every process can reach)")
    timeout = check_number("join_timeout", args.join_timeout, 0.0, strict=True)
    try:
        return join(timeout, **kwargs)
    except Exception as err:  # noqa: BLE001 - whatever JAX raises, one line
        raise UsageError(
            f"joining JAX's multi-process runtime failed: {str(err).splitlines()[0]}"
        ) from None


def launch_sweep(args) -> int:
    """``gbl-jax sweep --processes N``: checks the sweep, then runs N local processes that join
    JAX's multi-process runtime and share its chunks; process 0 writes the results. Returns the
    exit status."""
    from gbl_jax.cli import runner  # runner imports this module (its barrier)

    if args.out is None:
        raise UsageError("--processes needs --out (the folder the processes share)")
    folder, config = build.resolve_sweep(args)
    devices = cpu_devices(args, config)
    if folder.is_ours():  # another run holds the folder: refuse before any process starts
        folder.lock()
        folder.close()
    if args.cpu_devices is None and not args.resume:  # the cores shared among the processes
        devices = max(1, (os.cpu_count() or 1) // args.processes)
    set_cpu_devices(devices)
    runner.plan_run(dict(config), local_devices(devices), folder)  # refuse once, here
    port = free_port()
    argv = worker_argv(args.argv, None if args.resume else devices)
    workers = start(argv, args.processes, port)
    print(
        f"gbl-jax: started {len(workers)} processes (pids "
        f"{', '.join(str(w.pid) for w in workers)}), coordinator 127.0.0.1:{port}",
        file=sys.stderr,
        flush=True,
    )
    try:
        failed = wait(workers)
    except KeyboardInterrupt:
        print(
            f"gbl-jax: interrupted; the finished chunks are saved in {folder.path}; finish "
            f"with: gbl-jax sweep --out {folder.path} --resume --processes {args.processes}",
            file=sys.stderr,
        )
        return 130
    if failed:
        i, code = failed
        hint = (
            ""
            if code == 2
            else f"; the finished chunks are kept in {folder.path}; finish "
            f"with: gbl-jax sweep --out {folder.path} --resume"
        )
        print(
            f"gbl-jax: error: process {i} exited with status {code}"
            + (" (its message is above)" if code == 2 else "")
            + hint,
            file=sys.stderr,
        )
        return 2 if code == 2 else 1
    return 0
