"""Helpers shared by the experiment scripts: output folder, markdown tables, argument parsing."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gbl_jax as gbl


def parser(doc: str, default_out: str) -> argparse.ArgumentParser:
    """The script's argument parser; first, every core a JAX device (each script's ``main``
    starts here, before any computation), so its sweeps shard across cores. Not at import: a
    module that imports a script's pieces after JAX has started would fail."""
    gbl.use_cpu_cores()
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    p.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    return p


def int_list(text: str) -> list[int]:
    """``"2,4,8"`` -> ``[2, 4, 8]`` (an argparse type)."""
    try:
        return [int(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}")


def markdown_table(headers: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save(out: str, name: str, table: str, fig, command: str, seconds: float) -> Path:
    """Writes ``name``.md (the table and the command) and ``name``.png; prints the table."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    text = f"{table}\n\nMade by `{command}` in {seconds:.0f} s.\n"
    (folder / f"{name}.md").write_text(text)
    fig.savefig(folder / f"{name}.png", dpi=120, bbox_inches="tight")
    print(text)
    print(f"wrote {folder / (name + '.md')} and {folder / (name + '.png')}")
    return folder


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
