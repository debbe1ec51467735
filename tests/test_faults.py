"""Fault injection: killed training jobs resume to identical results; damaged checkpoints are detected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT

from rnngeom.checkpoints import CorruptCheckpointError, load_checkpoints, read_checkpoint_payload
from rnngeom.data import DatasetError, load_dataset
from rnngeom.train import train_run


def train_cmd(settings, data, out):
    return [
        sys.executable,
        "-m",
        "rnngeom.train",
        "--settings",
        json.dumps(settings),
        "--train-data",
        str(data["train"]),
        "--test-data",
        str(data["test"]),
        "--out-dir",
        str(out),
    ]


def same_result(a, b) -> bool:
    ca, cb = load_checkpoints(a / "checkpoints.pt"), load_checkpoints(b / "checkpoints.pt")
    if ca.iterations != cb.iterations:
        return False
    last = ca.iterations[-1]
    weights_equal = all(torch.equal(ca.snapshots[last][k], cb.snapshots[last][k]) for k in ca.snapshots[last])
    return weights_equal and (a / "metrics.tsv").read_bytes() == (b / "metrics.tsv").read_bytes()


def kill_after(cmd, env, delay, written=None, timeout=120.0) -> bool:
    """Start ``cmd`` and SIGKILL it ``delay`` seconds later; True if it was still running (really killed).
    With ``written`` (a file path), the delay counts from the moment the process has written that file
    itself (newer than its start): keyed to progress, not to a clock, so however fast training gets, every
    kill lands after new work."""
    start = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while written is not None and proc.poll() is None and time.time() - start < timeout:
        if written.exists() and written.stat().st_mtime >= start:
            break
        time.sleep(0.005)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


@pytest.fixture
def longer_settings(small_settings):
    small_settings["training"].update(
        n_iterations=600,
        eval_every=10,
        checkpoints={"dense_until": 100, "dense_every": 10, "sparse_every": 50},
    )
    return small_settings


def test_sigkill_at_several_points_then_resume_gives_identical_result(
    tmp_path, flipflop_data, longer_settings
):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    ref = tmp_path / "ref"
    subprocess.run(train_cmd(longer_settings, flipflop_data, ref), check=True, env=env, capture_output=True)
    out = tmp_path / "killed"
    kills = 0
    for extra in (0.0, 0.05, 0.02, 0.1):  # each kill after a new checkpoint, at varied points past it
        kills += kill_after(train_cmd(longer_settings, flipflop_data, out), env, extra, out / "resume.pt")
        if (out / "metrics.tsv").exists():
            break
    assert kills >= 2
    subprocess.run(train_cmd(longer_settings, flipflop_data, out), check=True, env=env, capture_output=True)
    assert same_result(ref, out)
    assert not list(out.glob(".*.tmp"))  # no half-written file left behind after completion


def test_corrupt_newest_resume_falls_back_to_previous(tmp_path, flipflop_data, small_settings):
    ref, out = tmp_path / "ref", tmp_path / "run"
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], ref)
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], out, stop_after=12)
    newest = out / "resume.pt"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte
    newest.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="resume.pt"):
        read_checkpoint_payload(newest)
    tr = train_run(small_settings, flipflop_data["train"], flipflop_data["test"], out)
    assert tr.resumed_from == 5  # the previous good checkpoint (10 was the damaged one)
    assert same_result(ref, out)


def test_truncated_checkpoint_file_is_named_in_the_error(tmp_path, flipflop_data, small_settings):
    out = tmp_path / "run"
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], out)
    ck = out / "checkpoints.pt"
    ck.write_bytes(ck.read_bytes()[:1000])
    with pytest.raises(CorruptCheckpointError, match=str(ck)):
        load_checkpoints(ck)


def test_edited_dataset_fails_its_checksum(flipflop_data):
    path = flipflop_data["train"]
    load_dataset(path)
    with open(path, "ab") as f:
        f.write(b"junk")
    with pytest.raises(DatasetError, match="sha256"):
        load_dataset(path)


def test_training_cli_rejects_bad_input(tmp_path, flipflop_data, small_settings):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = train_cmd(small_settings, flipflop_data, tmp_path / "run")
    bad_json = cmd.copy()
    bad_json[bad_json.index("--settings") + 1] = "{not json"
    proc = subprocess.run(bad_json, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "--settings: not valid JSON" in proc.stderr
    missing = cmd.copy()
    missing[missing.index("--train-data") + 1] = str(tmp_path / "nope.npz")
    proc = subprocess.run(missing, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "nope.npz does not exist" in proc.stderr
    # a dataset of another task (delayed addition has 3 input channels, flip-flop 3 too; evidence has 2)
    from conftest import make_datasets

    other = make_datasets(tmp_path, task="evidence_accumulation")
    wrong = cmd.copy()
    wrong[wrong.index("--train-data") + 1] = str(other["train"])
    proc = subprocess.run(wrong, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "input channels" in proc.stderr


ANALYSIS_OUTPUTS = (
    "fixed_points.tsv",
    "checkpoint_summary.tsv",
    "gr_scores.tsv",
    "events.tsv",
    "trajectories_pca.npz",
    "analysis.json",
)


def analysis_cmd(run_dir, data, out):
    return [
        sys.executable,
        "-m",
        "rnngeom.analysis.run_analysis",
        "--checkpoints",
        str(run_dir / "checkpoints.pt"),
        "--data",
        str(data["test"]),
        "--out-dir",
        str(out),
        "--settings",
        json.dumps({"n_trials": 16, "n_starts": 32}),
        "--threads",
        "1",
    ]


def test_sigkilled_analysis_leaves_no_partial_output_and_reruns_identically(
    tmp_path, flipflop_data, longer_settings
):
    """An analysis job killed at any point leaves each output whole or absent; re-running it (what Snakemake's
    rerun-incomplete does) gives byte-identical tables to an uninterrupted analysis."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = tmp_path / "run"
    train_run(longer_settings, flipflop_data["train"], flipflop_data["test"], run)
    ref = tmp_path / "ref"
    subprocess.run(analysis_cmd(run, flipflop_data, ref), check=True, env=env, capture_output=True)
    out = tmp_path / "killed"
    kills = 0
    for delay in (1.2, 2.4, 3.6):  # before, during and after the fixed-point search and the writes
        kills += kill_after(analysis_cmd(run, flipflop_data, out), env, delay)
        for name in ANALYSIS_OUTPUTS:  # whatever exists is complete: it equals the reference
            if (out / name).exists() and name != "analysis.json":  # analysis.json holds timings
                assert (out / name).read_bytes() == (ref / name).read_bytes(), name
        for name in ANALYSIS_OUTPUTS:  # start the next attempt from nothing, so its outputs are checked too
            (out / name).unlink(missing_ok=True)
    assert kills >= 1
    subprocess.run(analysis_cmd(run, flipflop_data, out), check=True, env=env, capture_output=True)
    for name in ANALYSIS_OUTPUTS[:5]:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not list(out.glob(".*.tmp*")), "a temporary file was left behind"
