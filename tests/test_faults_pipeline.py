"""Fault injection on the whole pipeline: SIGKILL the snakemake process tree mid-run, re-run, same results."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from pipeline_helpers import SNAKEMAKE, TINY, copy_workflow, snakemake

pytestmark = pytest.mark.slow


def tables_without_timing(workdir):
    """Every result table and the claim table; only wall-clock times may differ between runs."""
    runs = pd.read_csv(workdir / "results/tables/runs.tsv", sep="\t").drop(columns=["wall_seconds"])
    others = [
        pd.read_csv(workdir / f"results/tables/{t}.tsv", sep="\t")
        for t in ("metrics", "checkpoints", "fixed_points", "events", "kappa_flow")
    ]
    return [runs, *others, pd.read_csv(workdir / "results/claims.tsv", sep="\t")]


def test_killed_pipeline_resumes_to_identical_tables(tiny_run, tmp_path):
    """Kill and resume, and the determinism audit: a second, fresh run of the same config in another folder
    (killed half-way and resumed) ends with the same tables, bit for bit, as the session's first run."""
    wd = copy_workflow(tmp_path)
    proc = subprocess.Popen(
        [*SNAKEMAKE, "--cores", "2", *TINY],
        cwd=wd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    # Kill once some runs are finished and others are still training (their resume.pt exists).
    while time.time() < deadline and proc.poll() is None:
        done = list((wd / "results/runs").glob("**/metrics.tsv")) if (wd / "results/runs").exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the pipeline finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and every job it started
    proc.wait()
    assert not (wd / "results/tables/runs.tsv").exists()
    # What a user does after a hard kill: remove Snakemake's stale lock, then run again. The default profile
    # sets rerun-incomplete, so interrupted jobs re-run; interrupted trainings resume from their resume.pt.
    snakemake(wd, "--unlock", *TINY)
    snakemake(wd, "--cores", "2", *TINY)
    for ours, reference in zip(tables_without_timing(wd), tables_without_timing(tiny_run)):
        pd.testing.assert_frame_equal(ours, reference, check_exact=True)
    assert not list((wd / "results").glob("**/.*.tmp"))  # no half-written output left anywhere
