"""Shared pieces of the benchmark harness: paths, the row format, machine description, timing helpers."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def ensure_importable() -> None:
    """Make ``benchmarks`` and ``rnngeom`` importable when run as ``python benchmarks/run.py`` from a checkout
    without the package installed (with it installed, or with PYTHONPATH=src, this changes nothing)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        import rnngeom  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(SRC))
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)


# Every TSV has exactly these columns, in this order (tests/test_benchmarks.py checks them).
COLUMNS = [
    "benchmark",  # which benchmark (one TSV per benchmark)
    "case",  # what was measured (e.g. ours_K15, naive_2threads, batched_C16)
    "arch",  # architecture, or "" where none applies
    "n_hidden",  # hidden units (matrix size n for the matmul peak); "" where none applies
    "T",  # time steps per trial; "" where none applies
    "batch",  # trials per minibatch (starts per checkpoint for fixed points); "" where none applies
    "members",  # networks trained together (K) or checkpoints analysed together (C); "" where none applies
    "threads",  # torch threads per process x processes, e.g. "1", "2", "2x1"
    "value",  # the measurement
    "unit",  # its unit
    "better",  # "higher" or "lower": which direction is good for `value`
    "reference",  # what `value` is compared with ("" where nothing)
    "reference_value",  # the reference, measured in the same harness run, same unit as `value`
    "ratio",  # value / reference_value ("" where no reference)
    "repeats",  # independent measurements behind `value` (their median)
    "machine",  # CPU model, logical CPUs, torch version
    "date",  # UTC start time of the harness run
    "notes",  # free text: settings, counts, caveats
]


class SkipBenchmark(Exception):
    """A benchmark (or case) that cannot run here; its message says why and is printed."""


@dataclass
class Context:
    """Options and results shared by all benchmarks of one harness run."""

    quick: bool = False
    tiny: bool = False  # smoke-test sizes (tests only: the numbers mean nothing)
    repeats: int = 3
    budget_s: float = 1.0  # seconds per timed measurement (at least `min_iters` iterations)
    members: int = 15
    machine: str = ""
    date: str = ""
    cache: dict = field(default_factory=dict)  # results one benchmark hands to another (peak -> flops)
    skipped: list = field(default_factory=list)  # (benchmark, case, reason)

    def row(self, **kw) -> dict:
        row = {c: "" for c in COLUMNS}
        row.update(machine=self.machine, date=self.date)
        unknown = set(kw) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown row field(s) {sorted(unknown)}")
        row.update(kw)
        v, ref = row["value"], row["reference_value"]
        if row["ratio"] == "" and _is_num(v) and _is_num(ref) and ref != 0:
            row["ratio"] = v / ref
        return row

    def skip(self, benchmark: str, case: str, reason: str) -> None:
        self.skipped.append((benchmark, case, reason))
        print(f"  SKIPPED {benchmark}/{case}: {reason}", flush=True)


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def machine_description() -> str:
    """One line: CPU model, logical CPUs usable by this process, total logical CPUs, torch version."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{model}; {usable}/{os.cpu_count()} cpus; {platform.system()} {platform.machine()}; "
        f"torch {torch.__version__}"
    )


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def rate(fn: Callable[[], object], budget_s: float, min_iters: int = 2) -> float:
    """Calls of ``fn`` per second: call it at least ``min_iters`` times and for at least ``budget_s`` seconds
    (the caller warms up first)."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if n >= min_iters and elapsed >= budget_s:
            return n / elapsed


def wall(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs) -> float:
    return float(statistics.median(xs))
