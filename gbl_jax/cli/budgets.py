"""The command line's memory and disk budgets: what a sweep's run folder holds on the host and on
disk, estimated before anything runs, and the data a config names, refused before it is made.

The memory one chunk takes to train, and the engine's results, are ``engine.memory``'s
(``check_sweep``); this module adds what only the command line holds: the merged results, the
classification's spectra, the chunk files and figures on disk.
"""

from __future__ import annotations

from gbl_jax.cli.runstore import FIGURES
from gbl_jax.engine import memory

FIGURE_BYTES = 4 * 2**20  # a figure's .png and .pdf, generously (measured: ~0.1-1 MiB)


def sweep_results_bytes(runs: int, logs: int, param_bytes: int, *, keep_params: bool) -> int:
    """Bytes of a command-line sweep's results, one copy: per run its loss curve (``logs``
    float32 points) and numbers, and with ``keep_params`` two params trees of ``param_bytes``."""
    return runs * (4 * logs + 16) + (2 * runs * param_bytes if keep_params else 0)


def sweep_host_bytes(
    runs: int, logs: int, param_bytes: int, *, keep_params: bool, classify: bool
) -> int:
    """Host memory a command-line sweep's results take, roughly: held twice while the chunks
    merge, the index of the runs, and with ``classify`` the Hessian spectra of every run. The
    memory a chunk takes to train is ``memory.check_sweep``'s."""
    need = 2 * sweep_results_bytes(runs, logs, param_bytes, keep_params=keep_params) + 8 * runs
    if classify:
        need += runs * (param_bytes + 8 * 4)
    return need


def disk_bytes(runs: int, logs: int, param_bytes: int, *, keep_params: bool) -> int:
    """Disk bytes of a sweep's outputs, roughly: its results (``sweep_results_bytes``) written
    twice (chunks, then the merged arrays), and the figures. Its host memory is
    ``sweep_host_bytes``."""
    return (
        2 * sweep_results_bytes(runs, logs, param_bytes, keep_params=keep_params)
        + len(FIGURES) * FIGURE_BYTES
    )


def sweep_bytes(
    runs: int,
    logs: int,
    param_bytes: int,
    prediction_bytes: int,
    *,
    keep_params: bool,
    classify: bool,
) -> tuple[int, int]:
    """(host memory, disk) of a command-line sweep: ``sweep_host_bytes`` and ``disk_bytes``, with
    ``prediction_bytes`` per run kept (three copies in memory while merging, two on disk)."""
    host = sweep_host_bytes(runs, logs, param_bytes, keep_params=keep_params, classify=classify)
    disk = disk_bytes(runs, logs, param_bytes, keep_params=keep_params)
    return host + 3 * runs * prediction_bytes, disk + 2 * runs * prediction_bytes


def check_data_fits(what: str, data_bytes: int | None, hint: str) -> None:
    """Raises ValueError (``memory.require``'s) when data of ``data_bytes`` (None: unknown, no
    check) would not fit four times (it is copied while training) in the host memory available.
    ``what`` starts the message (e.g. ``--n 1000: the data``), ``hint`` ends it."""
    if data_bytes is not None:
        memory.require(
            f"{what} ({memory.size_text(data_bytes)}, x4 while training)",
            4 * data_bytes,
            memory.available(),
            "host memory",
            hint,
        )
