"""The per-run analysis stage end to end on tiny checkpoint files: CLI, output tables, PLRNN exact path,
determinism, settings validation, the ramping index and the rank-one latent flow."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnngeom.analysis.fixed_points import find_fixed_points
from rnngeom.analysis.gr_events import EVENT_COLUMNS
from rnngeom.analysis.run_analysis import (
    FIXED_POINT_COLUMNS,
    KAPPA_FLOW_COLUMNS,
    SUMMARY_COLUMNS,
    analyse_run,
    default_settings,
    kappa_flow,
    ramping_index,
    ramping_null,
    resolve_settings,
)
from rnngeom.checkpoints import load_checkpoints, save_checkpoints
from rnngeom.models import build_model

ROOT = Path(__file__).resolve().parents[1]
ITERATIONS = [0, 10, 20, 30, 40, 50, 60]
FAST = {
    "n_trials": 16,
    "n_starts": 64,
    "checkpoints_per_batch": 4,
    "num_threads": 1,
    "fixed_points": {"lm_steps": 12},
    "input": "zeros",
    "gr_null": {"n_checkpoints": 1, "n_reanalyses": 2},
}


def leaky_checkpoints(path: Path):
    """A leaky RNN whose W grows from small random to 2·I on three units: a pitchfork on each of them turns
    one stable point into 8 stable points (3-bit flip-flop style) part-way through the sequence."""
    torch.manual_seed(0)
    model = build_model({"arch": "leaky", "n_in": 3, "n_out": 3, "n_hidden": 6, "gain": 0.3, "alpha": 0.5})
    with torch.no_grad():  # flip-flop wiring: input channel k sets unit k (so trajectories visit all corners)
        model.W_in.copy_(torch.cat([4.0 * torch.eye(3), torch.zeros(3, 3)]))
    W0 = model.W.detach().clone()
    W1 = torch.diag(torch.tensor([2.0, 2.0, 2.0, 0.0, 0.0, 0.0]))
    snapshots = {}
    for it in ITERATIONS:
        t = it / ITERATIONS[-1]
        with torch.no_grad():
            model.W.copy_((1 - t) * W0 + t * W1)
        snapshots[it] = {k: v.clone() for k, v in model.state_dict().items()}
    save_checkpoints(path, {"spec": model.spec(), "run": {}, "snapshots": snapshots})


def write_data_and_metrics(folder: Path, n_in=3):
    rng = np.random.default_rng(0)
    shape = (16, 50, n_in)  # flip-flop-like pulses: ±1 with probability 0.1 per step and channel
    inputs = (rng.random(shape) < 0.1) * rng.choice([-1.0, 1.0], shape)
    with open(folder / "test.npz", "wb") as f:
        np.savez(
            f,
            inputs=inputs.astype(np.float32),
            targets=np.zeros(shape, np.float32),
            mask=np.ones(shape, np.float32),
        )
    its = np.arange(0, 61)
    loss = 10 ** (-0.5 - 1.5 / (1 + np.exp(-(its - 40) / 1.0)))
    pd.DataFrame(
        {"iteration": its, "task_loss": loss, "test_loss": loss, "test_accuracy": np.clip(1 - loss, 0, 1)}
    ).to_csv(folder / "metrics.tsv", sep="\t", index=False)


@pytest.fixture
def run_files(tmp_path):
    leaky_checkpoints(tmp_path / "checkpoints.pt")
    write_data_and_metrics(tmp_path)
    return tmp_path


def test_cli_end_to_end(run_files):
    out = run_files / "analysis"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "rnngeom.analysis.run_analysis",
        "--checkpoints",
        str(run_files / "checkpoints.pt"),
        "--data",
        str(run_files / "test.npz"),
        "--out-dir",
        str(out),
        "--settings",
        json.dumps(FAST),
    ]  # inline JSON, as the Snakemake rule passes it
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "t_GR=" in proc.stdout

    points = pd.read_csv(out / "fixed_points.tsv", sep="\t")
    summary = pd.read_csv(out / "checkpoint_summary.tsv", sep="\t")
    events = pd.read_csv(out / "events.tsv", sep="\t")
    result = json.loads((out / "analysis.json").read_text())
    assert list(points.columns) == FIXED_POINT_COLUMNS
    assert list(summary.columns) == SUMMARY_COLUMNS and summary["iteration"].tolist() == ITERATIONS
    assert list(events.columns) == EVENT_COLUMNS
    assert set(points["kind"]) <= {"stable", "saddle", "unstable", "slow"}
    assert summary["ramping_index"].between(0, 1).all()
    assert (
        pd.read_csv(out / "kappa_flow.tsv", sep="\t").columns.tolist() == KAPPA_FLOW_COLUMNS
    )  # leaky: header only

    # the planted restructuring: one stable point at the start, eight (3 bistable units) at the end
    assert summary["n_stable"].iloc[0] == 1 and summary["n_stable"].iloc[-1] == 8
    assert result["t_GR"] is not None and 0 < result["t_GR"] <= 60
    # the weight motion into each checkpoint: none into the first, the planted change into the others
    assert np.isnan(summary["param_change"].iloc[0]) and (summary["param_change"].iloc[1:] > 0).all()
    for key in (
        "timing",
        "settings",
        "gr_threshold",
        "gr_noise_floor",
        "t_GR_max",
        "n_gr_events",
    ):
        assert key in result
    assert "time_to_learn" not in result and "t_drop" not in result  # the curve's: rnngeom.aggregate
    assert result["timing"]["fixed_points_mean_s_per_checkpoint"] > 0
    with np.load(out / "trajectories_pca.npz") as z:
        assert z["pcs"].shape == (len(ITERATIONS), 8, 50, 3)  # n_plot_trials = 8


def test_deterministic_tables_for_fixed_seed(run_files):
    ck = load_checkpoints(run_files / "checkpoints.pt")
    with np.load(run_files / "test.npz") as z:
        inputs = z["inputs"]
    settings = {**FAST, "n_starts": 24}
    a = analyse_run(ck, inputs, run_files / "a", settings)
    b = analyse_run(ck, inputs, run_files / "b", settings)
    for name in (
        "fixed_points.tsv",
        "checkpoint_summary.tsv",
        "gr_scores.tsv",
        "events.tsv",
        "kappa_flow.tsv",
    ):
        assert (run_files / "a" / name).read_bytes() == (run_files / "b" / name).read_bytes(), name
    assert a["t_GR"] == b["t_GR"]


def test_plrnn_uses_exact_solver(tmp_path):
    model = build_model({"arch": "plrnn", "n_in": 3, "n_out": 3, "n_hidden": 4})
    W = np.kron(np.eye(2), [[0.0, -1.0], [-1.0, 0.0]])  # two mutually inhibiting pairs: 4 stable, 5 saddles
    with torch.no_grad():
        model.a.fill_(0.2)
        model.W.copy_(torch.as_tensor(W))
        model.h.fill_(1.0)
    save_checkpoints(
        tmp_path / "checkpoints.pt",
        {"spec": model.spec(), "run": {}, "snapshots": {0: model.state_dict(), 5: model.state_dict()}},
    )
    write_data_and_metrics(tmp_path)
    ck = load_checkpoints(tmp_path / "checkpoints.pt")
    with np.load(tmp_path / "test.npz") as z:
        result = analyse_run(ck, z["inputs"], tmp_path / "out", FAST)
    assert result["method"] == "plrnn_exact"
    assert result["final_counts"] == {
        "n_fixed": 9,
        "n_stable": 4,
        "n_saddle": 5,
        "n_unstable": 0,
        "n_slow": 0,
    }
    assert result["t_GR"] is None  # two identical checkpoints: no event, and the table is still written
    assert pd.read_csv(tmp_path / "out" / "events.tsv", sep="\t").columns.tolist() == EVENT_COLUMNS


def test_settings_validation():
    assert resolve_settings(None) == default_settings()
    s = resolve_settings({"fixed_points": {"lr": 0.1}, "n_starts": 7})
    assert (
        s["fixed_points"]["lr"] == 0.1
        and s["fixed_points"]["tol_q"] == default_settings()["fixed_points"]["tol_q"]
    )
    with pytest.raises(ValueError, match="unknown analysis setting"):
        resolve_settings({"n_start": 7})
    with pytest.raises(ValueError, match="unknown analysis setting"):
        resolve_settings({"fixed_points": {"learning_rate": 0.1}})
    json.dumps(default_settings())  # JSON-serialisable, so config.yaml can hold it


def test_diverged_checkpoint_gives_no_points_but_the_run_completes(tmp_path):
    torch.manual_seed(0)
    model = build_model({"arch": "leaky", "n_in": 3, "n_out": 3, "n_hidden": 5, "gain": 0.5})
    good = {k: v.clone() for k, v in model.state_dict().items()}
    bad = {k: torch.full_like(v, float("nan")) if k == "W" else v.clone() for k, v in good.items()}
    save_checkpoints(
        tmp_path / "checkpoints.pt",
        {"spec": model.spec(), "run": {}, "snapshots": {0: good, 10: bad, 20: good}},
    )
    write_data_and_metrics(tmp_path)
    with np.load(tmp_path / "test.npz") as z:
        analyse_run(
            load_checkpoints(tmp_path / "checkpoints.pt"),
            z["inputs"],
            tmp_path / "out",
            {**FAST, "n_starts": 16},
        )
    summary = pd.read_csv(tmp_path / "out" / "checkpoint_summary.tsv", sep="\t")
    assert summary["n_fixed"].tolist() == [1, 0, 1]


def test_ramping_index_measures_monotonic_trial_averaged_ramps():
    t = np.arange(1, 41, dtype=float)
    trials = np.random.default_rng(0).normal(0, 1e-3, (5, 40, 1))  # trial-to-trial noise averages out
    ramps = (
        np.stack([t / 40, -0.5 * t / 40, np.tanh(t / 20)], axis=-1)[None] + trials
    )  # rising, falling, saturating
    assert ramping_index(ramps) == pytest.approx(1.0, abs=1e-3)
    flat = np.concatenate(
        [ramps, np.full((5, 40, 1), 0.3)], axis=-1
    )  # a constant unit counts as no ramp, not NaN
    assert ramping_index(flat) == pytest.approx(0.75, abs=1e-3)
    wave = np.sin(2 * np.pi * t / 40 * 6)[None, :, None].repeat(5, axis=0)  # six full cycles: hardly a ramp
    assert ramping_index(wave) < 0.2
    assert np.isnan(ramping_index(np.full((2, 10, 3), np.nan)))


def ar1_activity(phi, n_trials=32, T=50, N=64, seed=0):
    rng = np.random.default_rng(seed)
    x = np.empty((n_trials, T, N))
    x[:, 0] = rng.standard_normal((n_trials, N))
    for t in range(1, T):
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal((n_trials, N))
    return x


@pytest.mark.parametrize("phi", [0.0, 0.9, 0.99])
def test_ramping_null_matches_autocorrelated_activity_without_a_ramp(phi):
    """Stationary AR(1) activity scores well above 0 on the raw index (0.11 / 0.4 / 0.55 at these φ); the
    autocorrelation-matched null removes that: index − null ≈ 0 (mean over 3 draws within 0.06)."""
    diffs = [
        ramping_index(a) - ramping_null(a, seed=s)
        for s, a in enumerate(ar1_activity(phi, seed=k) for k in range(3))
    ]
    assert abs(np.mean(diffs)) < 0.06, diffs
    assert ramping_index(ar1_activity(phi)) > 0.08  # the raw index alone would call this ramping


def test_ramping_null_leaves_real_ramps_clearly_above():
    rng = np.random.default_rng(1)
    t = np.arange(50) / 50
    signs = rng.choice([-1.0, 1.0], (1, 1, 64))
    for ramp in (t, np.tanh(2 * t), t**2):  # linear, saturating, accelerating
        act = ramp[None, :, None] * signs + 0.3 * rng.standard_normal((16, 50, 64))
        assert ramping_index(act) - ramping_null(act) > 0.3
    flat = np.zeros((4, 20, 3))
    assert ramping_null(flat) == 0.0 and np.isnan(ramping_null(np.full((2, 10, 3), np.nan)))
    a = ar1_activity(0.5, N=8)
    assert ramping_null(a, seed=3) == ramping_null(a, seed=3)  # seeded


def ramping_leaky_checkpoints(path: Path):
    """A leaky RNN with W = 0 and a constant input: every unit relaxes monotonically,
    x_t = c (1 − (1−α)^t)."""
    torch.manual_seed(0)
    model = build_model({"arch": "leaky", "n_in": 3, "n_out": 3, "n_hidden": 5, "gain": 0.3, "alpha": 0.05})
    with torch.no_grad():
        model.W.zero_()
        model.W_in.copy_(torch.linspace(-1, 1.5, 15).reshape(5, 3))  # no row sums to zero
    save_checkpoints(
        path, {"spec": model.spec(), "run": {}, "snapshots": {0: model.state_dict(), 10: model.state_dict()}}
    )


def test_summary_ramping_index_and_empty_kappa_flow_for_other_archs(tmp_path):
    ramping_leaky_checkpoints(tmp_path / "checkpoints.pt")
    write_data_and_metrics(tmp_path)
    inputs = np.full((16, 50, 3), 0.5, dtype=np.float32)  # constant drive: all units ramp over the trial
    analyse_run(
        load_checkpoints(tmp_path / "checkpoints.pt"),
        inputs,
        tmp_path / "out",
        {**FAST, "n_starts": 8},
    )
    summary = pd.read_csv(tmp_path / "out" / "checkpoint_summary.tsv", sep="\t")
    assert np.allclose(summary["ramping_index"], 1.0)
    assert (summary["ramping_null"] < 0.8).all()  # the null of a perfect ramp: a near-random walk
    flow = pd.read_csv(tmp_path / "out" / "kappa_flow.tsv", sep="\t")
    assert list(flow.columns) == KAPPA_FLOW_COLUMNS and flow.empty  # uniform outputs for every architecture


def rank1_checkpoints(path: Path):
    """A rank-one RNN whose m grows along n: at small overlap κ = 0 is the only (stable) fixed point; past
    mᵀn·sech²/N = 1 a pitchfork gives two stable points and a saddle (a 1-D GR event)."""
    torch.manual_seed(0)
    model = build_model({"arch": "rank1", "n_in": 3, "n_out": 3, "n_hidden": 8, "gain": 1.0, "alpha": 1.0})
    g = torch.Generator().manual_seed(1)
    n = 1.0 + 0.3 * torch.randn(8, generator=g)
    m1 = 2.5 * (1.0 + 0.3 * torch.randn(8, generator=g))
    b = 0.1 * torch.randn(8, generator=g)
    snapshots = {}
    for it in (0, 10, 20, 30):
        with torch.no_grad():
            model.n.copy_(n)
            model.m.copy_(m1 * (0.2 + 0.8 * it / 30))
            model.b.copy_(b)
        snapshots[it] = {k: v.clone() for k, v in model.state_dict().items()}
    save_checkpoints(path, {"spec": model.spec(), "run": {}, "snapshots": snapshots})


def test_rank1_kappa_flow_matches_the_general_fixed_point_finder(tmp_path):
    rank1_checkpoints(tmp_path / "checkpoints.pt")
    write_data_and_metrics(tmp_path)
    ck = load_checkpoints(tmp_path / "checkpoints.pt")
    with np.load(tmp_path / "test.npz") as z:
        result = analyse_run(
            ck,
            z["inputs"],
            tmp_path / "out",
            {**FAST, "n_starts": 32, "kappa_grid_points": 101},
        )
    flow = pd.read_csv(tmp_path / "out" / "kappa_flow.tsv", sep="\t")
    summary = pd.read_csv(tmp_path / "out" / "checkpoint_summary.tsv", sep="\t").set_index("iteration")
    assert list(flow.columns) == KAPPA_FLOW_COLUMNS and sorted(flow["iteration"].unique()) == [0, 10, 20, 30]
    assert (flow.groupby("iteration")["kind"].apply(lambda k: (k == "grid").sum()) == 101).all()
    fps = flow[flow["kind"] != "grid"]
    # the 1-D picture is exact: per checkpoint, the same number of stable points and of fixed points as the
    # general speed minimiser found in the full state space
    for it, pts in fps.groupby("iteration"):
        assert (pts["kind"] == "stable").sum() == summary.loc[it, "n_stable"], it
        assert len(pts) == summary.loc[it, "n_fixed"], it
    assert fps[fps["iteration"] == 0]["kind"].tolist() == ["stable"]
    assert fps[fps["iteration"] == 30]["kind"].tolist() == ["stable", "saddle", "stable"]
    assert (np.abs(fps["slope"]) < 1).eq(fps["kind"] == "stable").all()
    grid = flow[flow["kind"] == "grid"]
    assert (np.diff(np.sign(grid[grid["iteration"] == 30]["dkappa"])) != 0).sum() == 3  # three zero crossings
    # and the κ of the full-space fixed points (from the finder, float64) equal the zero crossings
    model = ck.model_at(30).double()
    found = find_fixed_points(model, np.random.default_rng(0).normal(0, 2, (64, 8)))
    kappas = np.sort(model.kappa(torch.tanh(torch.as_tensor(found.positions))).detach().numpy())
    assert np.allclose(kappas, np.sort(fps[fps["iteration"] == 30]["kappa"]), atol=1e-6)
    assert [p["kind"] for p in result["kappa_fixed_points_final"]] == ["stable", "saddle", "stable"]


def test_kappa_flow_grid_covers_every_fixed_point_and_skips_diverged_models():
    model = build_model({"arch": "rank1", "n_in": 1, "n_out": 1, "n_hidden": 4, "alpha": 0.5})
    with torch.no_grad():
        model.n.copy_(torch.tensor([1.0, 2.0, 1.0, 2.0]))
        model.m.copy_(torch.full((4,), 3.0))
        model.b.zero_()
    flow = kappa_flow(model, kappa_traj=np.array([0.01, 0.02]), n_grid=11)  # trajectories near 0 only
    fp = flow[flow["kind"] != "grid"]
    assert len(fp) == 3 and fp["kappa"].abs().max() > 1.0  # the outer attractors (≈ ±1.5) are still found
    assert np.allclose(fp["dkappa"], 0) and fp["kind"].tolist() == ["stable", "saddle", "stable"]
    assert flow["kappa"].is_monotonic_increasing
    with torch.no_grad():
        model.n.fill_(float("nan"))
    assert kappa_flow(model).empty


def test_final_level_finds_fixed_points_at_the_last_checkpoint_only_and_keeps_the_cheap_columns(run_files):
    """fixed_points_at: final = the full analysis's final checkpoint, its trajectory columns at every
    checkpoint; no GR null, scores or events."""
    inputs = np.load(run_files / "test.npz")["inputs"]
    results = {
        level: analyse_run(
            load_checkpoints(run_files / "checkpoints.pt"),
            inputs,
            run_files / level,
            {**FAST, "fixed_points_at": at},
        )
        for level, at in (("full", "all"), ("final", "final"))
    }
    full, final = results["full"], results["final"]
    tables = {
        level: {
            name: pd.read_csv(run_files / level / f"{name}.tsv", sep="\t")
            for name in ("fixed_points", "checkpoint_summary", "gr_scores", "events")
        }
        for level in ("full", "final")
    }
    points = tables["final"]["fixed_points"]
    assert set(points["iteration"]) == {ITERATIONS[-1]}
    last = tables["full"]["fixed_points"]
    pd.testing.assert_frame_equal(points, last[last["iteration"] == ITERATIONS[-1]].reset_index(drop=True))
    summary, summary_full = tables["final"]["checkpoint_summary"], tables["full"]["checkpoint_summary"]
    assert list(summary.columns) == SUMMARY_COLUMNS and summary["iteration"].tolist() == ITERATIONS
    cheap = ["iteration", "mean_speed", "mean_tcr", "ramping_index", "ramping_null", "param_change"]
    pd.testing.assert_frame_equal(summary[cheap], summary_full[cheap])
    counts = ["n_fixed", "n_stable", "n_saddle", "n_unstable", "n_slow"]
    assert summary[counts].iloc[:-1].isna().all().all()
    assert summary[counts].iloc[-1].tolist() == summary_full[counts].iloc[-1].tolist()
    assert summary["n_stable"].iloc[-1] == 8
    assert tables["final"]["gr_scores"].empty and tables["final"]["events"].empty
    assert list(tables["final"]["events"].columns) == EVENT_COLUMNS
    assert len(tables["full"]["gr_scores"]) == len(ITERATIONS) - 1
    for key in ("t_GR", "t_GR_max", "gr_threshold", "gr_noise_floor"):
        assert final[key] is None and full[key] is not None, key
    assert final["gr_null_scores"] == [] and final["n_gr_events"] == 0
    assert final["final_counts"] == full["final_counts"]
    json.loads((run_files / "final/analysis.json").read_text())  # strict JSON (no NaN)
    with pytest.raises(ValueError, match="fixed_points_at"):
        resolve_settings({"fixed_points_at": "some"})


def test_cli_analyses_several_runs_in_one_process_as_single_runs(run_files):
    """--run-dir A B with one settings object per run writes what the single-run form writes for each, then
    the block manifest."""
    runs = run_files / "runs/cond"
    for seed in (0, 1):
        (runs / f"seed{seed}").mkdir(parents=True)
        for name in ("checkpoints.pt", "metrics.tsv"):
            (runs / f"seed{seed}" / name).write_bytes((run_files / name).read_bytes())
        (runs / f"seed{seed}/provenance.json").write_text(json.dumps({"settings_hash": f"h{seed}"}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "rnngeom.analysis.run_analysis", "--data", str(run_files / "test.npz")]
    per_run = [FAST, {**FAST, "fixed_points_at": "final"}]
    block = [*base, "--run-dir", str(runs / "seed0"), str(runs / "seed1"), "--settings", json.dumps(per_run)]
    proc = subprocess.run(
        [*block, "--manifest", str(runs / "block0.analysis.json")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    single = [
        *base,
        *("--checkpoints", str(run_files / "checkpoints.pt")),
        *("--out-dir", str(run_files / "single"), "--settings", json.dumps(per_run[1])),
    ]
    proc = subprocess.run(single, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in ("fixed_points", "checkpoint_summary", "gr_scores", "events", "kappa_flow"):
        ours = (runs / "seed1/analysis" / f"{name}.tsv").read_bytes()
        assert ours == (run_files / "single" / f"{name}.tsv").read_bytes(), name
    full = pd.read_csv(runs / "seed0/analysis/fixed_points.tsv", sep="\t")
    assert full["iteration"].nunique() > 1  # each run got its own settings
    written = json.loads((runs / "block0.analysis.json").read_text())
    assert [r["run_id"] for r in written["runs"]] == ["cond/seed0", "cond/seed1"]
    assert written["runs"][0]["analysis_settings_hash"] != written["runs"][1]["analysis_settings_hash"]
    # bad input is refused before any analysis: a settings list of the wrong length, mixed forms
    for argv in (
        [*base, "--run-dir", str(runs / "seed0"), "--settings", json.dumps(per_run)],
        [*block, "--out-dir", str(run_files / "x")],
        [*base, "--checkpoints", str(run_files / "checkpoints.pt")],
    ):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        assert proc.returncode == 2 and "error:" in proc.stderr, argv
