"""The SLURM profile (profiles/slurm) on a real, throw-away one-node SLURM cluster, and its grouped plan.

* test_tiny_config_on_slurm_equals_local_run: brings up SLURM on localhost with scripts/slurm/up.sh (root,
  apt-get; skipped with a message where that is impossible), runs the tiny config through
  ``--workflow-profile profiles/slurm`` and, at the same time, locally; the tables must be identical apart from
  wall_seconds (training is deterministic on CPU) and results/runs must hold the same files.
* test_paper_config_plan_is_grouped: ``snakemake -n --configfile config/paper.yaml --workflow-profile
  profiles/slurm`` bundles the training runs into groups of ``group-components`` (no cluster needed).

Environment: RNNGEOM_SLURM_TESTS=0 skips the cluster test; RNNGEOM_SLURM_WITH_DBD=1 brings the cluster up with
slurmdbd + MariaDB, so that the plugin's default status command (sacct) is used instead of squeue.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TINY = ["--configfile", "tests/configs/tiny.yaml", "--replace-workflow-config"]
PROFILE = ROOT / "profiles/slurm/profile.yaml"
UP, DOWN = ROOT / "scripts/slurm/up.sh", ROOT / "scripts/slurm/down.sh"
WITH_DBD = os.environ.get("RNNGEOM_SLURM_WITH_DBD", "0") == "1"
# up.sh exit codes that mean "this machine cannot host the test cluster" (skip) rather than "the recipe broke"
UP_CANNOT_RUN = {2: "not root or no apt-get", 3: "the SLURM packages could not be installed", 4: "a foreign slurm.conf"}
# the local cluster's fast settings: first status check after 2 s instead of 40 s; squeue needs no slurmdbd
# (up.sh sets MinJobAge=300, so finished jobs stay visible to squeue long enough)
FAST = ["--slurm-init-seconds-before-status-checks", "2"] + ([] if WITH_DBD else ["--slurm-status-command", "squeue"])
GROUP_SIZE_IN_TEST = 4  # tiny config: 8 training runs -> 2 SLURM jobs that run side by side on the 2-core node


def copy_workflow(dest: Path, src_root: Path = ROOT) -> Path:
    """The files a run needs (as in tests/test_pipeline.py), so the checkout stays untouched."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml", "config", "workflow", "profiles", "envs"):
        src = src_root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    shutil.copytree(src_root / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (dest / "tests/configs").mkdir(parents=True, exist_ok=True)
    shutil.copy2(src_root / "tests/configs/tiny.yaml", dest / "tests/configs/tiny.yaml")
    return dest


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def failure(what: str, proc: subprocess.CompletedProcess | subprocess.Popen, out: str, err: str) -> str:
    return f"{what} failed (exit {proc.returncode}):\n{out[-3000:]}\n{err[-6000:]}"


def cluster_is_ours_and_up() -> bool:
    conf = Path("/etc/slurm/slurm.conf")
    if not conf.exists() or "written by rnngeom scripts/slurm/up.sh" not in conf.read_text():
        return False
    try:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return state.strip() in {"idle", "mixed", "allocated"}


@pytest.fixture(scope="module")
def slurm_cluster():
    """A one-node SLURM cluster on localhost for this module; torn down afterwards if this fixture started it."""
    if os.environ.get("RNNGEOM_SLURM_TESTS", "1") == "0":
        pytest.skip("RNNGEOM_SLURM_TESTS=0: SLURM cluster test disabled")
    if os.geteuid() != 0:
        pytest.skip("the SLURM test cluster needs root (scripts/slurm/up.sh installs packages and starts daemons)")
    if shutil.which("apt-get") is None:
        pytest.skip("the SLURM test cluster needs apt-get (Debian/Ubuntu): scripts/slurm/up.sh installs from it")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    already_up = cluster_is_ours_and_up() and not WITH_DBD
    env = {**os.environ, "WITH_DBD": "1" if WITH_DBD else "0"}
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(UP)], capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode in UP_CANNOT_RUN:
        pytest.skip(f"cannot bring up SLURM here ({UP_CANNOT_RUN[proc.returncode]}): {proc.stderr.strip()[-500:]}")
    assert proc.returncode == 0, failure("scripts/slurm/up.sh", proc, proc.stdout, proc.stderr)
    print(f"\nSLURM up in {time.monotonic() - t0:.1f} s{' (already running)' if already_up else ''}")
    yield
    if not already_up:
        down = subprocess.run(["bash", str(DOWN)], capture_output=True, text=True, timeout=300)
        assert down.returncode == 0, failure("scripts/slurm/down.sh", down, down.stdout, down.stderr)


def tables(workdir: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("runs", "metrics"):
        df = pd.read_csv(workdir / f"results/tables/{name}.tsv", sep="\t")
        df = df.drop(columns=["wall_seconds"], errors="ignore")
        out[name] = df.sort_values(list(df.columns[:2]) if name == "runs" else ["run_id", "iteration"])
        out[name] = out[name].reset_index(drop=True)
    return out


def run_files(workdir: Path) -> set[str]:
    root = workdir / "results/runs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_tiny_config_on_slurm_equals_local_run(slurm_cluster, tmp_path):
    base = copy_workflow(tmp_path / "base")  # one snapshot of the checkout, so both runs see the same code
    local_wd = shutil.copytree(base, tmp_path / "local")
    slurm_wd = shutil.copytree(base, tmp_path / "slurm")

    # The local reference runs at the same time: the SLURM run spends most of its time waiting for the scheduler.
    t_local = time.monotonic()
    local = subprocess.Popen([*SNAKEMAKE, "--cores", "1", *TINY], cwd=local_wd, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    t_slurm = time.monotonic()
    slurm = run([*SNAKEMAKE, "--workflow-profile", "profiles/slurm", *TINY, *FAST,
                 "--group-components", f"trainers={GROUP_SIZE_IN_TEST}"], slurm_wd)  # fmt: skip
    t_slurm = time.monotonic() - t_slurm
    local_out, local_err = local.communicate(timeout=600)
    t_local = time.monotonic() - t_local
    print(f"tiny config: SLURM {t_slurm:.0f} s, local (--cores 1, concurrently) {t_local:.0f} s")
    assert slurm.returncode == 0, failure("snakemake on SLURM", slurm, slurm.stdout, slurm.stderr)
    assert local.returncode == 0, failure("local snakemake", local, local_out, local_err)

    # it really went through SLURM, with the training runs bundled into groups
    log = slurm.stdout + slurm.stderr
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    groups = re.findall(r"Job \S+ has been submitted with SLURM jobid \d+ \(log: \S+/group_trainers_train/", log)
    n_runs = len(pd.read_csv(local_wd / "results/tables/runs.tsv", sep="\t"))
    assert len(groups) == math.ceil(n_runs / GROUP_SIZE_IN_TEST), log[-3000:]
    assert len(submitted) == 4 + len(groups) + 1 + 2, log[-3000:]  # datasets, training groups, aggregate, figures

    # same results: tables equal apart from wall time, same files per run
    ours, ref = tables(slurm_wd), tables(local_wd)
    for name in ref:
        pd.testing.assert_frame_equal(ours[name], ref[name], check_exact=True, obj=f"{name}.tsv")
    assert run_files(slurm_wd) == run_files(local_wd)
    for fig in ("loss_curves", "tcr_speedup"):
        assert (slurm_wd / f"results/figures/{fig}.pdf").stat().st_size > 5000
    # complete: the same workflow has nothing left to do
    dry = run([*SNAKEMAKE, "-n", "--workflow-profile", "profiles/slurm", *TINY], slurm_wd)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]


def test_paper_config_plan_is_grouped(tmp_path):
    """The full grid dry-runs through the SLURM profile with the training runs bundled into SLURM jobs."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    profile = yaml.safe_load(PROFILE.read_text())
    size = int(profile["group-components"]["trainers"])
    assert profile["groups"] == {"train": "trainers"} and size > 1
    wd = copy_workflow(tmp_path)
    proc = run([*SNAKEMAKE, "-n", "--workflow-profile", "profiles/slurm", "--configfile", "config/paper.yaml"], wd)
    assert proc.returncode == 0, failure("snakemake -n (paper, SLURM profile)", proc, proc.stdout, proc.stderr)
    out = proc.stdout
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], flags=re.M))
    n_train = int(stats["train"])
    # each "Group job trainers" block lists its member jobs, indented; everything else is submitted alone
    blocks = re.split(r"^\[[^\]]+\] Group job trainers \(jobs in lexicogr\. order\):$", out, flags=re.M)[1:]
    members = [len(re.findall(r"^ {4}rule (\w+):$", _group_body(b), flags=re.M)) for b in blocks]
    assert n_train >= 400
    assert len(blocks) == math.ceil(n_train / size), (len(blocks), n_train, size)
    assert sum(members) == n_train and max(members) == size
    assert all(re.findall(r"^ {4}rule (\w+):$", _group_body(b), flags=re.M) == ["train"] * m
               for b, m in zip(blocks, members))  # fmt: skip
    ungrouped = re.findall(r"^rule (\w+):$", out, flags=re.M)  # top-level jobs: one SLURM job each
    assert sorted(set(ungrouped)) == ["aggregate", "all", "figure", "make_dataset"]
    print(f"paper config: {n_train} training runs in {len(blocks)} SLURM jobs of up to {size}; "
          f"{len(ungrouped) - 1} other jobs submitted alone")


def _group_body(block: str) -> str:
    """The indented member listing of one group block (it ends at the first unindented line)."""
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith(" "):
            break
        lines.append(line)
    return "\n".join(lines)
