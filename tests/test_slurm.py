"""The SLURM profile (profiles/slurm) on a real, throw-away one-node SLURM cluster, and its grouped plan.

* test_tiny_config_on_slurm_equals_local_run: brings up SLURM on localhost with scripts/slurm/up.sh (root,
  apt-get; skipped with a message where that is impossible; torn down afterwards), runs the tiny config
  through ``--workflow-profile profiles/slurm`` and, at the same time, locally; the tables must be identical
  apart from wall_seconds (training is deterministic on CPU) and results/runs must hold the same files.
* test_paper_config_plan_is_grouped: ``snakemake -n --configfile config/paper.yaml --workflow-profile
  profiles/slurm`` trains one seed block per job and bundles the analysis blocks into groups of
  ``group-components`` (no cluster needed).
* test_account_and_partition_come_from_a_global_profile: a user's global profile supplies them (dry run).

Environment: RNNGEOM_SLURM_TESTS=0 skips the cluster test; RNNGEOM_SLURM_WITH_DBD=1 brings the cluster up with
slurmdbd + MariaDB, so that the plugin's default status command (sacct) is used instead of squeue.
"""

from __future__ import annotations

import json
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
TINY = ["--configfile", "tests/configs/tiny.yaml"]
PROFILE = ROOT / "profiles/slurm/profile.yaml"
UP, DOWN = ROOT / "scripts/slurm/up.sh", ROOT / "scripts/slurm/down.sh"
WITH_DBD = os.environ.get("RNNGEOM_SLURM_WITH_DBD", "0") == "1"
# up.sh exit codes that mean "this machine cannot host the test cluster" (skip) rather than "the recipe broke"
UP_CANNOT_RUN = {
    2: "not root or no apt-get",
    3: "the SLURM packages could not be installed",
    4: "a foreign slurm.conf",
}
# the local cluster's fast settings: first status check after 2 s instead of 40 s; squeue needs no slurmdbd
# (up.sh sets MinJobAge=300, so finished jobs stay visible to squeue long enough)
# --retries 0: a broken job fails the test at once instead of after two re-submissions (retries were checked
# by hand)
FAST = ["--slurm-init-seconds-before-status-checks", "2", "--retries", "0"]
FAST += [] if WITH_DBD else ["--slurm-status-command", "squeue"]
GROUP_SIZE_IN_TEST = 4  # tiny config: 13 analysis blocks -> 4 SLURM group jobs on the 2-core node


def copy_workflow(dest: Path, src_root: Path = ROOT) -> Path:
    """The files a run needs (as in tests/test_pipeline.py), so the checkout stays untouched."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml", "config", "workflow", "profiles", "envs"):
        src = src_root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    shutil.copytree(
        src_root / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
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
    """A one-node SLURM cluster on localhost for this module; torn down afterwards if this fixture started
    it."""
    if os.environ.get("RNNGEOM_SLURM_TESTS", "1") == "0":
        pytest.skip("RNNGEOM_SLURM_TESTS=0: SLURM cluster test disabled")
    if os.geteuid() != 0:
        pytest.skip(
            "the SLURM test cluster needs root (scripts/slurm/up.sh installs packages and starts daemons)"
        )
    if shutil.which("apt-get") is None:
        pytest.skip(
            "the SLURM test cluster needs apt-get (Debian/Ubuntu): scripts/slurm/up.sh installs from it"
        )
    pytest.importorskip(
        "snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed"
    )
    already_up = cluster_is_ours_and_up() and not WITH_DBD
    env = {**os.environ, "WITH_DBD": "1" if WITH_DBD else "0"}
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(UP)], capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode in UP_CANNOT_RUN:
        pytest.skip(
            f"cannot bring up SLURM here ({UP_CANNOT_RUN[proc.returncode]}): {proc.stderr.strip()[-500:]}"
        )
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
        keys = ["run_id"] + (["iteration"] if "iteration" in df.columns else [])
        out[name] = df.sort_values(keys).reset_index(drop=True)
    return out


def run_files(workdir: Path) -> set[str]:
    root = workdir / "results/runs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def profile_groups() -> tuple[dict[str, str], dict[str, int]]:
    """(rule -> group, group -> group-components) of the SLURM profile."""
    profile = yaml.safe_load(PROFILE.read_text())
    return profile["groups"], {g: int(n) for g, n in profile["group-components"].items()}


def dry_run_plan(out: str) -> tuple[dict[str, int], dict[str, list[list[str]]], list[str]]:
    """Parse a dry run: job counts by rule, the member rules of each group job (by group), jobs submitted
    alone."""
    stats = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], flags=re.M)}
    stats.pop("total", None)
    groups: dict[str, list[list[str]]] = {}
    for name, body in re.findall(
        r"^\[[^\]]+\] Group job (\w+) \(jobs in lexicogr\. order\):\n((?:\n| .*\n?)*)", out, flags=re.M
    ):
        groups.setdefault(name, []).append(re.findall(r"^ {4}rule (\w+):$", body, flags=re.M))
    alone = re.findall(r"^(?:local)?rule (\w+):$", out, flags=re.M)  # unindented: not in any group
    return stats, groups, alone


def test_tiny_config_on_slurm_equals_local_run(slurm_cluster, tmp_path):
    base = copy_workflow(tmp_path / "base")  # one snapshot of the checkout, so both runs see the same code
    local_wd = shutil.copytree(base, tmp_path / "local")
    slurm_wd = shutil.copytree(base, tmp_path / "slurm")
    rule_group, _ = profile_groups()
    sizes = {g: GROUP_SIZE_IN_TEST for g in set(rule_group.values())}
    components = [f"{g}={n}" for g, n in sizes.items()]

    # The local reference runs at the same time: the SLURM run spends most of its time waiting for the
    # scheduler.
    t_local = time.monotonic()
    local = subprocess.Popen(
        [*SNAKEMAKE, "--cores", "2", *TINY],
        cwd=local_wd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    t_slurm = time.monotonic()
    slurm = run(
        [*SNAKEMAKE, "--workflow-profile", "profiles/slurm", *TINY, *FAST, "--group-components", *components],
        slurm_wd,
    )
    t_slurm = time.monotonic() - t_slurm
    local_out, local_err = local.communicate(timeout=600)
    t_local = time.monotonic() - t_local
    print(
        f"\ntiny config: SLURM run {t_slurm:.0f} s; local run (--cores 2, at the same time) {t_local:.0f} s"
    )
    assert slurm.returncode == 0, failure("snakemake on SLURM", slurm, slurm.stdout, slurm.stderr)
    assert local.returncode == 0, failure("local snakemake", local, local_out, local_err)

    # it really went through SLURM, with the analysis blocks bundled into group jobs
    log = slurm.stdout + slurm.stderr
    logs = re.findall(
        r"has been submitted with SLURM jobid \d+ \(log: \S+/slurm_logs/(group|rule)_(\w+?)[/_]", log
    )
    assert logs, log[-3000:]
    jobs_per_rule = dry_run_plan(run([*SNAKEMAKE, "-n", "--forceall", *TINY], base).stdout)[0]
    for rule, group in rule_group.items():
        n_jobs = jobs_per_rule.get(rule, 0)
        submitted = sum(kind == "group" and name == group for kind, name in logs)
        assert submitted == math.ceil(n_jobs / sizes[group]), (rule, n_jobs, submitted, log[-3000:])
        assert ("rule", rule) not in logs  # never submitted alone

    # the jobs saw the same config as the main process (tiny.yaml is standalone: config.yaml is left out in
    # the submitted jobs too, where a --replace-workflow-config would not reach: Snakemake 9.27 does not
    # forward it)
    for meta in sorted((local_wd / "results/data").glob("*/*.json")):
        ours_meta = json.loads((slurm_wd / meta.relative_to(local_wd)).read_text())
        assert ours_meta == json.loads(meta.read_text()), f"{meta.relative_to(local_wd)}: job config differs"

    # same results: tables equal apart from wall time, same files per run
    ours, ref = tables(slurm_wd), tables(local_wd)
    for name in ref:
        pd.testing.assert_frame_equal(ours[name], ref[name], check_exact=True, obj=f"{name}.tsv")
    assert run_files(slurm_wd) == run_files(local_wd)
    assert {p.name for p in (slurm_wd / "results/figures").iterdir()} == {
        p.name for p in (local_wd / "results/figures").iterdir()
    }
    # complete: the same workflow has nothing left to do
    dry = run([*SNAKEMAKE, "-n", "--workflow-profile", "profiles/slurm", *TINY], slurm_wd)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]


def test_paper_config_plan_is_grouped(tmp_path):
    """The full grid dry-runs through the SLURM profile: one training job per seed block, the analysis blocks
    bundled into group jobs."""
    pytest.importorskip(
        "snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed"
    )
    rule_group, size = profile_groups()
    assert rule_group == {"analyze": "analysts"} and all(n > 1 for n in size.values())
    wd = copy_workflow(tmp_path)
    proc = run(
        [*SNAKEMAKE, "-n", "--workflow-profile", "profiles/slurm", "--configfile", "config/paper.yaml"], wd
    )
    assert proc.returncode == 0, failure(
        "snakemake -n (paper, SLURM profile)", proc, proc.stdout, proc.stderr
    )
    stats, groups, alone = dry_run_plan(proc.stdout)
    from rnngeom.config import load_config, read_config, run_blocks

    blocks = run_blocks(load_config(read_config(ROOT / "config/paper.yaml")))
    assert stats["train"] == stats["analyze"] == len(blocks) and sum(map(len, blocks.values())) >= 400
    summary = []
    for rule, group in rule_group.items():
        if rule not in stats:
            continue
        members = groups[group]
        assert all(m == [rule] * len(m) for m in members)  # a group holds one rule's jobs only
        assert sum(map(len, members)) == stats[rule] and max(map(len, members)) == size[group]
        assert len(members) == math.ceil(stats[rule] / size[group])
        assert rule not in alone
        summary.append(f"{stats[rule]} {rule} jobs in {len(members)} SLURM jobs of up to {size[group]}")
    assert {"make_dataset", "train", "aggregate"} <= set(alone)
    print(f"\npaper config: {'; '.join(summary)}; {len(alone) - 1} other jobs submitted alone")


def test_account_and_partition_come_from_a_global_profile(tmp_path):
    """The workflow profile sets no default-resources, so a user's global profile supplies account and
    partition."""
    pytest.importorskip(
        "snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed"
    )
    profile = yaml.safe_load(PROFILE.read_text())
    assert "default-resources" not in profile
    glob = tmp_path / "mycluster"
    glob.mkdir()
    (glob / "config.yaml").write_text(
        "default-resources:\n  slurm_account: acct42\n  slurm_partition: part7\n"
    )
    wd = copy_workflow(tmp_path / "wf")
    proc = run([*SNAKEMAKE, "-n", "--profile", str(glob), "--workflow-profile", "profiles/slurm", *TINY], wd)
    assert proc.returncode == 0, failure(
        "snakemake -n (global + SLURM profile)", proc, proc.stdout, proc.stderr
    )
    jobs = re.findall(
        r"^\s*rule (\w+):\n(?:\s+\w+: [^\n]*\n)*?\s+resources: ([^\n]*)$", proc.stdout, flags=re.M
    )
    jobs = [
        (rule, res) for rule, res in jobs if rule != "all"
    ]  # the input-only target runs on the login node
    assert {rule for rule, _ in jobs} == set(profile["set-resources"])  # every submitted rule is sized here
    for rule, res in jobs:
        assert "slurm_account=acct42" in res and "slurm_partition=part7" in res, (rule, res)
        assert re.search(r"\bruntime=\d+", res) and re.search(r"\bmem_mb=\d+", res), (rule, res)
