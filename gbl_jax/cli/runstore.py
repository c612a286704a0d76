"""A sweep's run folder: the one place that knows its files, and how they are made safely.

Layout of ``out/``:

  .gbl-jax-run          marker (gbl-jax made this folder) and lock file (``fcntl.flock``)
  .gbl-jax-files        manifest: the files gbl-jax wrote here, by name (each listed before
                        it is written)
  config.json           the resolved config, written before the first chunk; --resume reads it
  chunks/runs_<a>-<b>.npz   the results of runs [a, b) (cell-major), one file per finished chunk,
                            stamped with the configuration that computed it (``made_by``)
  sweep.npz, results.json   the merged result in ``results``' format (``gbl.load`` reads it;
                            params too with --keep-params), results.json written last
  final_losses.csv, cells.csv   one row per run, one row per grid cell; <figure>.png/.pdf
  landscape.json, interpolation.csv, barriers.csv, basins.csv (``gbl-jax landscape``)

Every file is written whole or not at all, with the user's umask (``atomic_files``).
``--force`` deletes only the files the manifest lists and the chunks (and the temporary copies
``atomic_files`` makes of them), and only in a folder that carries the marker and no other run
holds locked; a folder gbl-jax did not make is never touched, nor a file of a name gbl-jax
writes that it did not write (a user's params.npz). The chunks are not listed (every process of
a sweep writes its own, and their folder and names are gbl-jax's). A folder made before the
manifest existed gets one the next time gbl-jax writes there, listing the names above that it
holds. ``sweep_report`` makes a finished sweep's numbers and figures; this module only writes
them.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

from gbl_jax.analysis import plots
from gbl_jax.atomic_files import (
    atomic_write,
    is_temporary,
    open_regular,
    write_csv,
    write_json,
    write_npz,
)
from gbl_jax.engine import memory
from gbl_jax.engine import results as results_format
from gbl_jax.engine.sweeps import SweepChunk

MARKER, CONFIG, RESULTS = ".gbl-jax-run", "config.json", results_format.RESULTS
MANIFEST = ".gbl-jax-files"
CSV, CELLS, ARRAYS, CHUNKS = "final_losses.csv", "cells.csv", results_format.ARRAYS, "chunks"
FIGURES = (
    "final_losses",
    "curves",
    "grid_success",
    "grid_heatmap",
    "critical_points",
    "landscape",
    "test_accuracy",
)
LANDSCAPE = ("landscape.json", "interpolation.csv", "barriers.csv", "basins.csv")
CONFIG_FORMAT = 3  # of config.json; a folder of another format is refused on --resume
MADE_BY = "made_by"  # the array of a chunk file that says which configuration computed it
_CHUNK = re.compile(r"runs_(\d+)-(\d+)\.npz")


class RunError(ValueError):
    """A run folder that cannot be used as asked (one line for the command line)."""


def _temporary_chunk(name: str) -> bool:
    target = name[1:].partition(".npz.")[0] + ".npz"
    return name.startswith(".") and bool(_CHUNK.fullmatch(target)) and is_temporary(name, target)


def _difference(before: str | None, now: str) -> str:
    """What differs between two ``made_by`` stamps, in words."""
    if before is None:
        return "it carries no stamp of the configuration that made it"
    try:
        old, new = json.loads(before), json.loads(now)
        old, new = {**old.pop("config", {}), **old}, {**new.pop("config", {}), **new}
    except (ValueError, AttributeError):
        return "its stamp is not readable"
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return ", ".join(f"{k}={old.get(k)!r} then, {new.get(k)!r} now" for k in keys[:3])


def _path_name(path) -> str:
    parts = []
    for key in path:
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return "/".join(parts)


def flatten(tree) -> dict[str, np.ndarray]:
    """{"a/0/w": leaf} for every leaf, named by its key path."""
    return {
        _path_name(p): np.asarray(leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def unflatten(template, arrays: Mapping[str, np.ndarray], where: str):
    """The tree of ``template``'s structure whose leaves are ``arrays`` by key path."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    names = [_path_name(p) for p, _ in paths]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise RunError(f"{where} lacks {missing[:3]}; it was not written by this configuration")
    return jax.tree_util.tree_unflatten(treedef, [arrays[n] for n in names])


def chunk_template(
    params_like=None, metric_names=(), predictions_like=None, probe_names=()
) -> dict:
    """The structure of a chunk's results (``params_like`` when params are kept,
    ``predictions_like`` when predictions are, one array per probe of ``probe_names``)."""
    out = {
        "final_loss": 0,
        "diverged": 0,
        "losses": 0,
        "converged_step": 0,
        "metrics": dict.fromkeys(metric_names, 0),
        "final_metrics": dict.fromkeys(metric_names, 0),
    }
    if params_like is not None:
        out.update(params=params_like, init_params=params_like)
    if predictions_like is not None:
        out["predictions"] = predictions_like
    if probe_names:
        out["probes"] = dict.fromkeys(probe_names, 0)
    return out


def nearest_existing(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _regular(path: Path):
    """``path`` opened for reading; RunError if it is not a regular file (a FIFO would block)."""
    try:
        return open_regular(path)
    except ValueError as err:
        raise RunError(f"{err}; move it away") from None


def _chunk_arrays(file) -> dict[str, np.ndarray]:
    """Every array of a chunk file, each member read whole (so its CRC is checked)."""
    with file:
        archive = np.load(file, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with archive as f:
            return {k: f[k] for k in f.files}


def _verified_stamp(path: Path) -> str | None:
    """A chunk's ``made_by`` stamp, after every member was read: a member whose bytes are
    damaged (a CRC error inside final_loss) makes the chunk damaged, not whole.

    Raises:
      RunError: not a regular file. ValueError, EOFError, zipfile.BadZipFile: damaged.
    """
    arrays = _chunk_arrays(_regular(path))
    return str(arrays[MADE_BY]) if MADE_BY in arrays else None


def metric_columns(metric: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """cells.csv's columns of the reported metric (``sweep_report.metric_report``): NAME_STAT,
    NAME_STAT_low and NAME_STAT_high for each statistic it gives an interval of, one entry per
    cell."""
    columns: dict[str, np.ndarray] = {}
    if not metric:
        return columns
    flat = lambda v: np.asarray(v, np.float64).reshape(-1)  # noqa: E731
    for stat in (k.removesuffix("_interval") for k in metric if k.endswith("_interval")):
        name = f"{metric['name']}_{stat}"
        columns[name] = flat(metric[stat])
        columns[f"{name}_low"] = flat(metric[f"{stat}_interval"]["low"])
        columns[f"{name}_high"] = flat(metric[f"{stat}_interval"]["high"])
    return columns


class RunFolder:
    """A sweep's folder (see the module docstring); ``create`` or ``lock`` locks it until
    ``close``."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = None

    # --- what is there -------------------------------------------------------------------
    def is_ours(self) -> bool:
        return (self.path / MARKER).is_file()

    def listed(self) -> list[str] | None:
        """The names the manifest lists, None in a folder made before there was one.

        Raises:
          RunError: a manifest that is not readable (gbl-jax cannot tell its files from yours).
        """
        path = self.path / MANIFEST
        try:
            with open_regular(path) as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise RunError(
                f"{path} is not readable ({err}): gbl-jax cannot tell which files here "
                "it wrote; move the results you want away and start a new folder"
            ) from None
        names = doc.get("files") if isinstance(doc, dict) else None
        if not (
            isinstance(names, list)
            and all(
                isinstance(n, str)
                and n == Path(n).name
                and n not in ("", ".", "..", MARKER, MANIFEST)
                for n in names
            )
        ):
            raise RunError(
                f"{path} is not a list of file names this folder holds; gbl-jax "
                "cannot tell which files here it wrote; move the results you want "
                "away and start a new folder"
            )
        return names

    def record(self, names, *, fresh: bool = False) -> None:
        """Adds ``names`` to the manifest (``fresh``: the manifest lists only them); called
        before they are written, so a crash after leaves them listed."""
        listed = [] if fresh else self.listed()
        if listed is None:  # a folder from before the manifest: what it holds of ours
            listed = [
                p.name
                for p in self.written()
                if p.parent == self.path and not p.name.endswith(".tmp")
            ]
        write_json(self.path / MANIFEST, {"files": sorted(set(listed) | set(names))})

    def written(self) -> list[Path]:
        """Every file here that gbl-jax wrote (chunks included), as it exists now: the files the
        manifest lists; in a folder without one, those of the names this version writes."""
        if not self.path.is_dir():
            return []
        names = self.listed()
        if names is None:
            names = [CONFIG, RESULTS, CSV, CELLS, ARRAYS, *LANDSCAPE]
            names += [f"{stem}.{ext}" for stem in FIGURES for ext in ("png", "pdf")]
        found = [self.path / n for n in names if (self.path / n).is_file()]
        found += [
            p
            for p in self.path.glob(".*.tmp")  # left by a crash inside atomic_write
            if any(is_temporary(p.name, n) for n in [*names, MANIFEST])
        ]
        chunks = self.path / CHUNKS
        if chunks.is_dir():
            found += [
                p for p in chunks.iterdir() if _CHUNK.fullmatch(p.name) or _temporary_chunk(p.name)
            ]
        return found

    def temporaries(self) -> list[Path]:
        """The temporary files a crash (or a killed process) left in the middle of a write."""
        return [p for p in self.written() if p.name.endswith(".tmp")]

    def has_results(self) -> bool:
        return bool(self.written())

    def check_new(self, *, force: bool) -> None:
        """Raises RunError unless a new sweep may be written here (see the module docstring)."""
        out = self.path
        if out.exists() and not out.is_dir():
            raise RunError(f"--out {out} is a file, not a folder")
        if out.is_dir() and not self.is_ours() and any(out.iterdir()):
            raise RunError(
                f"--out {out} holds files gbl-jax did not write (it has no {MARKER}); "
                "choose a new or empty folder"
                + (" (--force only replaces gbl-jax's own runs)" if force else "")
            )
        if out.is_dir() and self.has_results() and not force:
            raise RunError(
                f"--out {out} already holds results; pass --resume to finish it or "
                "--force to replace it"
            )
        probe = nearest_existing(out)
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise RunError(f"--out {out} is not writable ({probe} is not a writable folder)")

    def check_space(
        self,
        need_memory: int,
        disk: int,
        what: str,
        *,
        command: str = "sweep",
        hint: str = "use fewer --seeds or a larger --log-every",
    ) -> None:
        """Raises RunError if the sweep (or another ``command``'s work) will not fit in memory
        or on the disk."""
        try:
            memory.require(
                f"this {command}", need_memory, memory.available(), f"memory ({what})", hint
            )
        except ValueError as err:
            raise RunError(str(err)) from None
        probe = nearest_existing(self.path)
        free_disk = shutil.disk_usage(probe).free if probe.is_dir() else disk
        if disk > free_disk:
            raise RunError(
                f"--out {self.path}: this {command} needs about {memory.size_text(disk)} of "
                f"disk ({what}) but {probe} has {memory.size_text(free_disk)} free"
            )

    def read_config(self) -> dict:
        """The stored ``{"config": ..., ...}`` of a gbl-jax run; RunError says what is wrong."""
        if not self.is_ours():
            what = "does not exist" if not self.path.exists() else f"has no {MARKER}"
            raise RunError(f"{self.path} {what}: not a gbl-jax run folder")
        try:
            with open_regular(self.path / CONFIG) as f:  # a FIFO would block forever
                doc = json.loads(f.read())
        except (OSError, ValueError) as err:
            raise RunError(f"{self.path / CONFIG} is missing or not JSON ({err})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
            raise RunError(f"{self.path / CONFIG} has no \"config\" object")
        if doc.get("format") != CONFIG_FORMAT:
            raise RunError(
                f"{self.path / CONFIG} is of format {doc.get('format')!r}, this "
                f"gbl-jax reads format {CONFIG_FORMAT}"
            )
        return doc

    # --- writing ---------------------------------------------------------------------------
    def lock(self) -> None:
        """Holds the folder's lock, exclusively, until ``close`` (or the process ends).

        One run at a time per folder, whatever its process count: process 0 of a multi-process
        sweep holds the lock for all of its processes.
        """
        fd = os.open(self.path / MARKER, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunError(
                f"{self.path} is in use by another gbl-jax process (it holds the lock "
                f"on {MARKER}); wait for it to finish"
            ) from None
        except OSError as err:
            os.close(fd)
            raise RunError(f"{self.path}: cannot lock {MARKER} ({err.strerror})") from None
        self._lock = fd

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def create(self, doc: dict, *, force: bool) -> None:
        """Makes (or, with ``force``, clears) the folder, locks it and writes config.json."""
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.is_ours():
            atomic_write(
                self.path / MARKER,
                b"made by gbl-jax; gbl-jax --force deletes only the files gbl-jax writes here\n",
            )
        self.lock()
        if self.has_results() and not force:  # another process got here first
            raise RunError(f"--out {self.path} already holds results")
        for path in self.written():
            path.unlink(missing_ok=True)
        chunks = self.path / CHUNKS
        if chunks.is_dir() and not any(chunks.iterdir()):
            chunks.rmdir()
        self.record([CONFIG], fresh=True)
        write_json(self.path / CONFIG, {**doc, "format": CONFIG_FORMAT})

    def chunk_path(self, start: int, stop: int) -> Path:
        """The file of the chunk of runs [start, stop)."""
        return self.path / CHUNKS / f"runs_{start:012d}-{stop:012d}.npz"

    def save_chunk(self, chunk: SweepChunk, made_by: str) -> None:
        """Writes one finished chunk atomically, named by its runs and stamped with ``made_by``
        (the configuration that computed it, ``runner.made_by``)."""
        (self.path / CHUNKS).mkdir(exist_ok=True)
        write_npz(
            self.chunk_path(chunk.start, chunk.stop),
            {"runs": chunk.runs, MADE_BY: np.asarray(made_by), **flatten(chunk.out)},
        )

    def done(self) -> set[tuple[int, int]]:
        """(first run, last run + 1) of every finished chunk."""
        folder = self.path / CHUNKS
        matches = (_CHUNK.fullmatch(p.name) for p in folder.iterdir()) if folder.is_dir() else ()
        return {(int(m[1]), int(m[2])) for m in matches if m}

    def check_chunks(self, spans, made_by: str) -> tuple[set, dict]:
        """The chunks on disk, checked before any is computed.

        Args:
          spans: the (first run, last run + 1) of every chunk of the sweep.
          made_by: what a chunk of this sweep is stamped with.

        Returns:
          (spans of the whole chunks, {span: path} of the unreadable ones (truncated, damaged)).

        Raises:
          RunError: a chunk file of another chunking, or one another configuration made.
        """
        folder, spans = self.path / CHUNKS, set(spans)
        whole, damaged = set(), {}
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            match = _CHUNK.fullmatch(path.name)
            if not match:
                continue
            span = (int(match[1]), int(match[2]))
            if span not in spans or path != self.chunk_path(*span):
                raise RunError(
                    f"{path} is not a chunk of this sweep (its chunks are runs "
                    f"{min(spans)[0]}-{min(spans)[1]}, ...); move it away, or start "
                    "over with --force"
                )
            try:
                stamp = _verified_stamp(path)
            except RunError:
                raise
            except (ValueError, EOFError, zipfile.BadZipFile):
                damaged[span] = path
                continue
            except OSError as err:  # unreadable, not damaged: never deleted
                raise RunError(
                    f"{path} cannot be read ({err.strerror or err}); fix its "
                    "permissions or the disk and resume"
                ) from None
            if stamp != made_by:
                raise RunError(
                    f"{path} was computed by another configuration "
                    f"({_difference(stamp, made_by)}); restore it, or start over "
                    "with --force"
                )
            whole.add(span)
        return whole, damaged

    def load_chunks(self, template, runs: int, made_by: str) -> list[SweepChunk]:
        """Every chunk in run order; RunError unless they cover runs 0..runs-1 exactly once,
        each stamped with ``made_by``."""
        chunks = []
        for start, stop in sorted(self.done()):
            path = self.chunk_path(start, stop)
            try:
                arrays = _chunk_arrays(_regular(path))
            except RunError:
                raise
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
                raise RunError(
                    f"{path} cannot be read ({err}); finish with --resume, which recomputes it"
                ) from None
            if MADE_BY not in arrays or str(arrays[MADE_BY]) != made_by:
                raise RunError(
                    f"{path} was computed by another configuration; start over with --force"
                )
            chunks.append(SweepChunk(arrays["runs"], unflatten(template, arrays, str(path))))
        covered = np.concatenate([c.runs for c in chunks]) if chunks else np.zeros(0, int)
        if not np.array_equal(covered, np.arange(runs)):
            raise RunError(
                f"{self.path / CHUNKS}: chunks cover {len(np.unique(covered))} of "
                f"{runs} runs" + (" (some twice)" if len(np.unique(covered)) < len(covered) else "")
            )
        return chunks

    def file(self, name: str) -> Path:
        return self.path / name

    def figure(self, stem: str) -> Path:
        """The stem (no suffix) a figure of ``FIGURES`` is saved under (as .png and .pdf)."""
        if stem not in FIGURES:
            raise ValueError(f"unknown figure {stem!r}; runstore.FIGURES lists them")
        return self.path / stem

    def finish(
        self, result, config: dict, results: dict, figures: Mapping[str, Any], cp=None
    ) -> dict:
        """Writes the outputs of a finished sweep, results.json last (it marks the sweep done).

        Args:
          result: the merged ``SweepResult`` (grid axes first).
          config: the resolved config.
          results: what results.json holds besides the arrays' description
            (``sweep_report.results_of``).
          figures: {stem of ``FIGURES``: Figure} (``sweep_report.figures_of``).
          cp: ``CriticalPoints`` of every run (flattened cell-major), or None.

        Returns:
          results.json as written (``json_safe``).
        """
        from gbl_jax.analysis.spreads import spread

        self.record(
            [CSV, CELLS, ARRAYS, RESULTS]
            + [f"{stem}.{ext}" for stem in figures for ext in ("png", "pdf")]
        )
        columns = results_format.per_run_columns(result)
        if config["grad_tol"] is None:
            del columns["converged_step"]
        if cp is not None:
            columns.update(
                kind=cp.kind,
                grad_norm=cp.grad_norm,
                min_eig=cp.min_eig,
                max_eig=cp.max_eig,
                index=cp.index,
            )
        write_csv(self.path / CSV, columns)
        cells = spread(result).to_frame(config["threshold"])
        columns = {k: cells[k].to_numpy() for k in cells.columns}
        columns.update(metric_columns(results.get("metric")))
        write_csv(self.path / CELLS, columns)
        for stem, fig in figures.items():
            plots.save(fig, self.figure(stem))
        if not config["keep_params"]:
            result = result._replace(params=None, init_params=None)
        return results_format.write(self.path, result, results)

    def load_params(self, params_like) -> dict:
        """{"params", "init_params": trees [*G, seeds, ...], "final_loss", "diverged"}."""
        out = results_format.load(self.path, params_like=params_like)
        if out.params is None:
            raise RunError(
                f"{self.path} has no params: the sweep ran without --keep-params "
                "(rerun it with --keep-params)"
            )
        return {
            "params": out.params,
            "init_params": out.init_params,
            "final_loss": out.final_loss,
            "diverged": out.diverged,
        }

    def finish_landscape(self, report: dict, curves, barriers, labels, figure):
        """Writes landscape.json, the CSVs and landscape.png/.pdf.

        Args:
          report: what landscape.json holds.
          curves: [seeds, num] loss along init -> final.
          barriers: {"seeds": [K], "unaligned": [K, K], "aligned": [K, K] or None (not
            aligned: barriers.csv has no barrier_aligned column)}.
          labels: [seeds] basin of each seed (-1 diverged).
          figure: the landscape figure (``landscape_report.landscape_figure``).
        """
        self.record([*LANDSCAPE, "landscape.png", "landscape.pdf"])
        seeds, num = curves.shape
        alphas = np.linspace(0.0, 1.0, num)
        write_csv(
            self.path / "interpolation.csv",
            {
                "seed": np.repeat(np.arange(seeds), num),
                "alpha": np.tile(alphas, seeds),
                "loss": curves.reshape(-1),
            },
        )
        ids = np.asarray(barriers["seeds"])
        a, b = np.triu_indices(len(ids), 1)
        columns = {"seed_a": ids[a], "seed_b": ids[b], "barrier": barriers["unaligned"][a, b]}
        if barriers["aligned"] is not None:
            columns["barrier_aligned"] = barriers["aligned"][a, b]
        write_csv(self.path / "barriers.csv", columns)
        write_csv(self.path / "basins.csv", {"seed": np.arange(seeds), "basin": labels})
        write_json(self.path / "landscape.json", report)
        plots.save(figure, self.figure("landscape"))
