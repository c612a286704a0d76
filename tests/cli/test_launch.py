"""The launcher's pieces that need no second process in JAX's runtime: worker command lines,
the coordinator's port, and waiting that kills the rest when one worker fails
(the launcher end to end: test_cli.py)."""

import signal
import socket
import sys
import time

import jax

from gbl_jax.cli import launch


def test_workers_get_the_command_without_the_launchers_own_flags():
    argv = ["sweep", "--processes", "2", "--out", "x", "--cpu-devices=4", "--seeds", "8"]
    assert launch.worker_argv(argv, 1) == [
        "sweep",
        "--out",
        "x",
        "--seeds",
        "8",
        "--cpu-devices",
        "1",
    ]
    assert launch.worker_argv(["sweep", "--processes=2", "--resume"], None) == ["sweep", "--resume"]


def test_the_free_port_can_be_bound():
    port = launch.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def _python(code):
    return launch.popen_worker([sys.executable, "-c", code])


def test_wait_reports_the_first_failure_and_kills_the_rest(tmp_path):
    begin = time.monotonic()
    # the failing worker waits until the others are past their start-up (a Ctrl-C that lands
    # while Python is still starting can be lost, as on a busy machine)
    ready = "import pathlib, signal, time; {} pathlib.Path(r'{}').touch(); time.sleep(60)"
    a, b = tmp_path / "a", tmp_path / "b"
    fail = (
        f"import os, time\nwhile not (os.path.exists(r'{a}') and os.path.exists(r'{b}')): "
        "time.sleep(0.05)\nraise SystemExit(3)"
    )
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup, or a CI runner
    try:
        workers = [
            _python(ready.format("", a)),
            _python(ready.format("signal.signal(signal.SIGINT, signal.SIG_IGN);", b)),
            _python(fail),
        ]
    finally:
        signal.signal(signal.SIGINT, ignored)
    assert launch.wait(workers) == (2, 3)
    # Ctrl-C first (a worker between chunks stops cleanly), a kill for one that ignores it
    assert workers[0].returncode == -signal.SIGINT and workers[1].returncode == -signal.SIGKILL
    assert time.monotonic() - begin < 30


def test_wait_returns_none_when_every_worker_succeeds():
    assert launch.wait([_python("pass"), _python("pass")]) is None


def test_one_process_needs_no_runtime():
    assert launch.barrier("unused", 1, ok=False) is False
    launch.set_cpu_devices(None)  # leaves JAX as it is
    assert launch.local_devices(None) == jax.local_devices()
    assert launch.local_devices(1) == jax.local_devices()[:1]


def test_joining_leaves_sigterm_to_the_worker(monkeypatch):
    """JAX's preemption service would take SIGTERM; join turns it off before initializing."""
    seen = {}

    def initialize(**kwargs):
        seen["preemption"] = jax.config.jax_enable_preemption_service
        seen.update(kwargs)

    monkeypatch.setattr(jax.distributed, "initialize", initialize)
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    monkeypatch.setattr(jax, "process_count", lambda: 1)
    before = jax.config.jax_enable_preemption_service
    try:
        assert launch.join(
            5.0,
            coordinator_address=f"127.0.0.1:{launch.free_port()}",
            num_processes=1,
            process_id=0,
        ) == (0, 1)
    finally:
        jax.config.update("jax_enable_preemption_service", before)
    assert seen["preemption"] is False and seen["initialization_timeout"] == 5
