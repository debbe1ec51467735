"""The benchmark harness runs with one command and writes well-formed TSVs (no timing assertions)."""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import COLUMNS  # noqa: E402


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return env


def _harness(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    """The harness as a user runs it (python -m benchmarks ARGS, or python SCRIPT ARGS), from the root."""
    cmd = [sys.executable, script] if script else [sys.executable, "-m", "benchmarks"]
    return subprocess.run([*cmd, *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)


def _check_tsv(path: Path, benchmark: str, min_rows: int) -> pd.DataFrame:
    assert path.exists(), f"{path} was not written"
    df = pd.read_csv(path, sep="\t", keep_default_na=False)
    assert list(df.columns) == COLUMNS
    assert len(df) >= min_rows
    assert (df["benchmark"] == benchmark).all()
    for v in df["value"]:
        assert math.isfinite(float(v)) and float(v) > 0, f"{benchmark}: value {v!r}"
    for ref, ratio in zip(df["reference_value"], df["ratio"]):
        if ref != "":
            assert math.isfinite(float(ref)) and float(ref) > 0
            assert math.isfinite(float(ratio)) and float(ratio) > 0
    assert set(df["better"]) <= {"higher", "lower"}
    assert (df["machine"] != "").all() and (df["date"] != "").all()
    return df


def test_harness_quick_cheap_cases(tmp_path):
    out = tmp_path / "bench"
    proc = _harness("--quick", "--tiny", "--only", "matmul_peak", "fixed_points", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "matmul_f32_1thread" in proc.stdout  # the printed table
    assert sorted(p.name for p in out.iterdir()) == ["fixed_points.tsv", "matmul_peak.tsv"]

    peak = _check_tsv(out / "matmul_peak.tsv", "matmul_peak", 1)
    assert "matmul_f32_1thread" in set(peak["case"])
    fp = _check_tsv(out / "fixed_points.tsv", "fixed_points", 3)
    assert {"reference_per_start", "batched_C1_same_starts", "batched_C1"} <= set(fp["case"])
    assert (fp.loc[fp["case"] == "batched_C1_same_starts", "reference"] == "reference_per_start").all()


def test_training_fractions_use_the_peak_measured_interleaved_with_them(tmp_path):
    """1-thread training rates are divided by a probe product's rate measured in the same interleaved loop
    (same load), one probe per size and architecture; 2-core rates by the all-threads peak."""
    out = tmp_path / "bench"
    proc = _harness(
        "--quick", "--tiny", "--only", "matmul_peak", "training", "training_flops", "--out-dir", str(out)
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    training = _check_tsv(out / "training.tsv", "training", 8)
    flops = _check_tsv(out / "training_flops.tsv", "training_flops", len(training))
    assert list(flops["case"]) == list(training["case"])
    one = flops[flops["threads"].astype(str) == "1"]
    assert {"torch_nnRNN_1thread", "naive_1thread", "ours_K1_1thread"} <= set(one["case"])
    assert (one["reference"] == "matmul_f32_1thread_interleaved").all()
    for _, r in one.iterrows():  # the ratio: the median of the per-round fractions the notes list
        rounds = re.search(r"per-round fractions \(([^)]*)\)", r["notes"]).group(1).split(", ")
        assert len(rounds) == int(r["repeats"])
        assert float(r["ratio"]) == pytest.approx(statistics.median(float(q) for q in rounds), rel=1e-3)
        assert (
            "probe product measured in the same rounds" in r["notes"] and "best 1-thread peak" in r["notes"]
        )
    # one probe per architecture group: every row of a group shares its peak
    assert (one.groupby("arch")["reference_value"].nunique() == 1).all()
    two = flops[flops["threads"].astype(str) != "1"]
    assert len(two) and (two["reference"] == "matmul_f32_2threads").all()
    assert "peak" in proc.stdout and "GFLOP/s]" in proc.stdout


def test_harness_as_script_lists_benchmarks():
    proc = _harness("--list", script="benchmarks/run.py")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert names == [
        "matmul_peak",
        "training",
        "training_flops",
        "fixed_points",
        "dag_build",
        "e2e_tiny",
        "e2e_default",
    ]


def test_unknown_benchmark_is_an_error(tmp_path):
    proc = _harness("--only", "nope", "--out-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "unknown benchmark" in proc.stderr


def _quick_cfg():
    from benchmarks.common import Context
    from benchmarks.training import sizes

    return sizes(Context(quick=True, tiny=True))["tiny"]


def test_training_benchmark_uses_the_pipelines_settings_and_data():
    from benchmarks.training import member_settings, task_data
    from rnngeom.config import Run, run_settings
    from rnngeom.data import generate_split

    cfg = _quick_cfg()
    settings = member_settings(cfg, "leaky", seed=2, lambda_tcr=0.3)
    assert {k: v for k, v in settings.items() if k not in ("device", "threads")} == run_settings(
        cfg, Run("flipflop", "leaky", "bptt", 0.3, float(cfg["models"]["leaky"].get("gain", 1.0)), 2)
    )
    train, test = task_data(cfg)
    for split, data in (("train", train), ("test", test)):
        n, seed = cfg["data"][f"n_{split}"], cfg["data"]["seed"]
        ref = generate_split("flipflop", split, n, seed, cfg["tasks"]["flipflop"])
        assert (data.inputs == ref.inputs).all() and (data.targets == ref.targets).all()


def test_torch_anchor_computes_the_same_loss_as_the_model_files():
    """nn.RNN is the leaky RNN at alpha = 1 and nn.LSTM our LSTM: with copied weights the anchors' first loss
    equals the naive loop's through rnngeom.models."""
    import torch

    from benchmarks.training import NaiveTrainer, TorchTrainer, anchor_layer, member_settings, task_data

    cfg = _quick_cfg()
    train, _ = task_data(cfg)
    for arch in ("leaky", "lstm"):
        settings = member_settings(cfg, arch, seed=1, lambda_tcr=0.3)
        settings["model"] = {**settings["model"], **({"alpha": 1.0} if arch == "leaky" else {})}
        naive, anchor = NaiveTrainer(settings, train), TorchTrainer(settings, train, anchor_layer(arch))
        model, rnn = naive.model, anchor.rnn
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(model.W_in if arch == "leaky" else model.W_ih)
            rnn.weight_hh_l0.copy_(model.W if arch == "leaky" else model.W_hh)
            rnn.bias_ih_l0.copy_(model.b)
            rnn.bias_hh_l0.zero_()
            anchor.readout.load_state_dict(model.readout.state_dict())
        assert abs(naive.step() - anchor.step()) < 1e-5, arch


def test_gpu_check_runs_in_cpu_only_mode(tmp_path):
    """benchmarks/gpu_check.sh parses, and its measurements run in the dry (--cpu-only) mode."""
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks/gpu_check.sh")]).returncode == 0
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.gpu_check",
        "--cpu-only",
        "--skip-e2e",
        "--out-dir",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    train = _check_tsv(tmp_path / "gpu_training.tsv", "gpu_training", 8)
    assert set(train["case"]) == {"cpu_K1", "cpu_K3"}
    assert set(train["arch"]) == {"plrnn", "leaky", "rank1", "lstm"}
    _check_tsv(tmp_path / "gpu_analysis.tsv", "gpu_analysis", 2)
    est = _check_tsv(tmp_path / "gpu_estimate.tsv", "gpu_estimate", 3)
    by_case = dict(zip(est["case"], est["value"].astype(float)))
    assert by_case["cpu_total"] == pytest.approx(by_case["cpu_training"] + by_case["cpu_analysis"], rel=1e-4)
