"""Helpers for the end-to-end tests: run Snakemake on a copy of the workflow, parse dry-run plans."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TINY = ["--configfile", "tests/configs/tiny.yaml"]


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Jobs a dry run would execute, by rule (parsed from Snakemake's 'Job stats' table)."""
    out = snakemake(workdir, "-n", *args).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M) if m[0] != "total"}


def planned_job_details(workdir: Path, *args: str) -> list[dict]:
    """Every job of a dry run with --printshellcmds: {"rule", "resources": {name: value}, "shell"}."""
    out = snakemake(workdir, "-n", "--printshellcmds", *args).stdout
    jobs = []
    for block in re.split(r"^(?:local)?rule ", out, flags=re.M)[1:]:
        rule = block.split(":", 1)[0]
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        shell = re.search(r"^Shell command: (.*)$", block, flags=re.M)
        pairs = resources[1].split(", ") if resources else []
        jobs.append(
            {
                "rule": rule,
                "resources": dict(kv.split("=", 1) for kv in pairs),
                "shell": shell[1] if shell else "",
            }
        )
    return jobs


@contextlib.contextmanager
def edited(path: Path):
    """Append a comment to a source file for the duration of the block (a real content change)."""
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        yield
    finally:
        path.write_text(original)


def copy_workflow(dest: Path) -> Path:
    """The workflow (code, configs, profiles) in ``dest``, so tests can edit files and write results there."""
    for name in ("Snakefile", "config.yaml", "config", "workflow", "profiles", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (dest / "tests/configs").mkdir(parents=True)
    shutil.copy2(ROOT / "tests/configs/tiny.yaml", dest / "tests/configs/tiny.yaml")
    return dest
