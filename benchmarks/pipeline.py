"""Benchmarks of the Snakemake pipeline, each in a fresh temporary copy of the workflow (code, configs, src/),
so they never touch this checkout's results/ or .snakemake/ and always plan/run from scratch.

`dag_build`   wall time of ``snakemake -n --configfile config/paper.yaml --quiet`` (a dry run of the full
              paper grid: parse, validate, build the DAG of ~1000 jobs), `repeats` times; value = the median
              (each run includes Python and Snakemake start-up).
`e2e_tiny`    wall time of
              ``snakemake --cores 2 --configfile tests/configs/tiny.yaml``
              (every stage, a few seconds of compute). Only with --e2e-tiny or --e2e.
`e2e_default` wall time of ``snakemake --cores 2`` on the default config.yaml (the quick reproduction, ~10 min
              on an idle 2-core machine). Only with --e2e.
Snakemake is run as ``<this python> -m snakemake``, so the harness must run in the project's environment.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, Context, median

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "config.yaml", "config", "workflow", "profiles", "envs"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (dest / "tests/configs").mkdir(parents=True)
    shutil.copy2(ROOT / "tests/configs/tiny.yaml", dest / "tests/configs/tiny.yaml")
    return dest


def _run(workdir: Path, args: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"snakemake {' '.join(args)} failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return seconds, proc


def _job_count(text: str) -> int | None:
    m = re.search(r"^total\s+(\d+)\s*$", text, flags=re.M)
    return int(m.group(1)) if m else None


def bench_dag_build(ctx: Context) -> list[dict]:
    config = "tests/configs/tiny.yaml" if ctx.tiny else "config/paper.yaml"
    args = ["-n", "--configfile", config, "--quiet"]
    repeats = ctx.repeats
    with tempfile.TemporaryDirectory(prefix="rnngeom-bench-dag-") as tmp:
        wd = copy_workflow(Path(tmp))
        print(f"  dag_build: snakemake {' '.join(args)} x {repeats}", flush=True)
        times = [_run(wd, args, timeout=600)[0] for _ in range(repeats)]
    return [
        ctx.row(
            benchmark="dag_build",
            case=f"dry_run_{Path(config).stem}",
            threads="1",
            value=median(times),
            unit="s",
            better="lower",
            repeats=repeats,
            notes=f"snakemake {' '.join(args)} in a fresh copy of the workflow (nothing built, so every "
            f"job is planned); runs: {', '.join(f'{t:.2f}' for t in times)} s",
        )
    ]


def _e2e(ctx: Context, name: str, args: list[str], timeout: float) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="rnngeom-bench-e2e-") as tmp:
        wd = copy_workflow(Path(tmp))
        print(f"  {name}: snakemake {' '.join(args)} (this takes a while)", flush=True)
        seconds, proc = _run(wd, args, timeout=timeout)
        jobs = _job_count(proc.stdout + proc.stderr)
        n_runs = (
            len(list((wd / "results/runs").rglob("metrics.tsv"))) if (wd / "results/runs").exists() else 0
        )
    return [
        ctx.row(
            benchmark=name,
            case=name,
            threads="2",
            value=seconds,
            unit="s",
            better="lower",
            repeats=1,
            notes=f"snakemake {' '.join(args)} in a fresh copy, from nothing to figures; "
            f"{jobs} jobs, {n_runs} runs",
        )
    ]


def bench_e2e_tiny(ctx: Context) -> list[dict]:
    return _e2e(
        ctx,
        "e2e_tiny",
        ["--cores", "2", "--configfile", "tests/configs/tiny.yaml"],
        timeout=1800,
    )


def bench_e2e_default(ctx: Context) -> list[dict]:
    return _e2e(ctx, "e2e_default", ["--cores", "2"], timeout=4 * 3600)
