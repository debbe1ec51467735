"""Aggregation into tidy tables: identity columns, time-to-learn, divergence counted as not learned, the
checkpoint summary (ramping index) and the rank-one latent flow."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rnngeom.aggregate import ID_COLUMNS, aggregate, main, time_to_attractors
from rnngeom.constants import RUN_KEYS

THRESHOLDS = {"flipflop": 0.9, "delayed_addition": 0.9, "evidence_accumulation": 0.9}


def fake_run(root, run_id, accuracy, diverged=False, analysis=None, kappa_flow=None):
    d = root / "runs" / run_id
    d.mkdir(parents=True)
    task, arch, rule, lam, gain, seed = run_id.split("/")
    settings = {
        "task": task,
        "arch": arch,
        "learning_rule": rule,
        "lambda_tcr": float(lam[3:]),
        "gain": float(gain[1:]),
        "seed": int(seed[4:]),
        "model": {"n_hidden": 8},
        "training": {"n_iterations": 100},
    }
    (d / "provenance.json").write_text(
        json.dumps({"settings": settings, "diverged": diverged, "wall_seconds": 1.0})
    )
    its = [0, 50, 100][: len(accuracy)]
    pd.DataFrame(
        {
            "iteration": its,
            "task_loss": 1.0,
            "tcr_loss": 0.1,
            "test_loss": [1.0, 0.5, 0.1][: len(its)],
            "test_accuracy": accuracy,
            "grad_norm": 1.0,
            "diverged": [False] * (len(its) - 1) + [diverged],
        }
    ).to_csv(d / "metrics.tsv", sep="\t", index=False)
    if analysis is not None:
        (d / "analysis").mkdir()
        (d / "analysis/analysis.json").write_text(json.dumps(analysis))
        pd.DataFrame(
            {
                "iteration": its,
                "n_stable": [1, 2, 8][: len(its)],
                "ramping_index": [0.1, 0.5, 0.9][: len(its)],
            }
        ).to_csv(d / "analysis/checkpoint_summary.tsv", sep="\t", index=False)
        if kappa_flow is not None:
            kappa_flow.to_csv(d / "analysis/kappa_flow.tsv", sep="\t", index=False)
    return d


def test_runs_table(tmp_path):
    a = fake_run(
        tmp_path,
        "flipflop/leaky/bptt/lam0/g2/seed0",
        [0.1, 0.95, 0.97],
        analysis={"t_GR": 30.0, "final_counts": {"n_stable": 8}},
    )
    b = fake_run(tmp_path, "flipflop/leaky/bptt/lam1/g2/seed0", [0.1, 0.96, 0.2], diverged=True)
    c = fake_run(tmp_path, "flipflop/leaky/bptt/lam1/g2/seed1", [0.1, 0.2, 0.3])
    tables = aggregate([a, b, c], THRESHOLDS)
    runs = tables["runs"].set_index("run_id")
    assert runs.loc["flipflop/leaky/bptt/lam0/g2/seed0", "time_to_learn"] == 50
    assert runs.loc["flipflop/leaky/bptt/lam0/g2/seed0", "t_GR"] == 30 and runs.iloc[0]["n_stable_final"] == 8
    diverged = runs.loc["flipflop/leaky/bptt/lam1/g2/seed0"]
    assert diverged["diverged"] and not diverged["learned"] and math.isnan(diverged["time_to_learn"])
    never = runs.loc["flipflop/leaky/bptt/lam1/g2/seed1"]
    assert not never["learned"] and not never["diverged"] and math.isnan(never["t_drop"])
    assert runs.loc["flipflop/leaky/bptt/lam1/g2/seed1", "lambda_tcr"] == 1.0
    assert len(tables["metrics"]) == 9 and list(tables["metrics"].columns[:7]) == [
        "run_id",
        "task",
        "arch",
        "learning_rule",
        "lambda_tcr",
        "gain",
        "seed",
    ]
    assert list(tables["checkpoints"]["n_stable"]) == [1, 2, 8]
    assert ID_COLUMNS == ["run_id", *RUN_KEYS]
    learned = runs.loc["flipflop/leaky/bptt/lam0/g2/seed0"]  # 3 evaluations: too few for a drop
    assert not learned["abrupt"] and not learned["escaped"] and math.isnan(learned["t_drop"])
    assert "has_drop" not in runs.columns and "drop_sharpness" not in runs.columns


def test_the_loss_drop_is_read_from_the_curve_against_the_chance_level(tmp_path):
    """runs.tsv's search phase and drop come from metrics.tsv (rnngeom.analysis.loss_drop, the config's
    loss_drop settings), measured against the run's chance_loss (provenance.json): a curve that first falls
    to chance, sits there and then drops is abrupt with its plateau from the start."""
    d = fake_run(tmp_path, "delayed_addition/leaky/bptt/lam0/g1/seed0", [0.1, 0.2, 0.3])
    its = list(range(0, 3001, 50))
    loss = [1.2 if t == 0 else (0.167 if t < 2000 else 0.005) for t in its]
    pd.DataFrame(
        {"iteration": its, "task_loss": loss, "test_loss": loss, "test_accuracy": 0.1, "diverged": False}
    ).to_csv(d / "metrics.tsv", sep="\t", index=False)
    provenance = json.loads((d / "provenance.json").read_text())
    (d / "provenance.json").write_text(json.dumps({**provenance, "chance_loss": 1 / 6}))
    run = aggregate([d], THRESHOLDS)["runs"].iloc[0]
    assert run["escaped"] and run["abrupt"] and 1950 < run["t_onset"] < run["t_drop"] <= 2000
    assert run["plateau_start"] == 0 and run["search_fraction"] > 0.9 and run["chance_loss"] == 1 / 6
    # the detector's settings come from the config (loss_drop:): a plateau shorter than 50 evaluations
    strict = aggregate([d], THRESHOLDS, {"min_plateau_evals": 50})["runs"].iloc[0]
    assert strict["escaped"] and not strict["abrupt"]
    with pytest.raises(ValueError, match="unknown loss_drop setting"):
        aggregate([d], THRESHOLDS, {"min_plateau": 5})


def test_censored_times_are_computed_once_into_the_runs_table(tmp_path):
    # 100 iterations evaluated every 50: a censored run ranks at 150, after any run that learned.
    analysis = {"t_GR": 40.0, "final_counts": {"n_stable": 8}}
    learned = fake_run(tmp_path, "flipflop/leaky/bptt/lam0/g2/seed0", [0.1, 0.95, 0.97], analysis=analysis)
    early = fake_run(tmp_path, "flipflop/leaky/bptt/lam0/g2/seed1", [0.95, 0.96, 0.97])  # learned at 0
    diverged = fake_run(tmp_path, "flipflop/leaky/bptt/lam1/g2/seed0", [0.1, 0.96, 0.2], diverged=True)
    never = fake_run(
        tmp_path, "delayed_addition/leaky/bptt/lam1/g2/seed1", [0.1, 0.2, 0.3], analysis=analysis
    )
    runs = aggregate([learned, early, diverged, never], THRESHOLDS)["runs"].set_index("run_id")
    assert runs["eval_every"].tolist() == [50.0] * 4 and runs["n_iterations"].tolist() == [100] * 4
    by_id = runs["time_to_learn_censored"].to_dict()
    assert by_id["flipflop/leaky/bptt/lam0/g2/seed0"] == 50.0
    assert by_id["flipflop/leaky/bptt/lam0/g2/seed1"] == 50.0  # learned at iteration 0: clipped to one step
    assert by_id["flipflop/leaky/bptt/lam1/g2/seed0"] == 150.0  # diverged: censored
    assert by_id["delayed_addition/leaky/bptt/lam1/g2/seed1"] == 150.0  # never reached 0.9: censored
    assert runs["censored"].tolist() == [True, False, False, True]  # sorted by run_id
    # flip-flop: n_stable 1, 2, 8 at checkpoints 0, 50, 100 -> 8 stable points first at 100
    assert runs.loc["flipflop/leaky/bptt/lam0/g2/seed0", "time_to_attractors"] == 100.0
    assert not runs.loc["flipflop/leaky/bptt/lam0/g2/seed0", "attractors_censored"]
    # no expected count for delayed addition, no checkpoint analysis for the others: NaN
    assert runs["time_to_attractors"].isna().sum() == 3


def test_a_run_analysed_at_its_final_checkpoint_only_has_no_time_to_attractors(tmp_path):
    """analysis level final: counts at the last checkpoint only, so no first time they were reached."""
    analysis = {"final_counts": {"n_stable": 8}, "t_GR": None}
    final = fake_run(tmp_path, "flipflop/leaky/bptt/lam0/g2/seed0", [0.1, 0.95, 0.97], analysis=analysis)
    summary = pd.read_csv(final / "analysis/checkpoint_summary.tsv", sep="\t")
    summary.loc[summary.index[:-1], "n_stable"] = None
    summary.to_csv(final / "analysis/checkpoint_summary.tsv", sep="\t", index=False)
    tables = aggregate([final], THRESHOLDS)
    run = tables["runs"].iloc[0]
    assert math.isnan(run["time_to_attractors"]) and math.isnan(run["attractors_censored"])
    assert run["n_stable_final"] == 8 and pd.isna(run["t_GR"])
    assert tables["checkpoints"]["ramping_index"].tolist() == [0.1, 0.5, 0.9]  # the cheap columns stay


def test_time_to_attractors_censors_at_one_checkpoint_interval_past_the_end():
    assert time_to_attractors([0, 100, 200], [1, 8, 8], 8) == (100.0, False)
    assert time_to_attractors([200, 0, 100], [8, 1, 3], 8) == (200.0, False)  # order of rows does not matter
    assert time_to_attractors([0, 100, 200], [1, 3, 7], 8) == (300.0, True)  # never: last + interval
    assert time_to_attractors([0, 100, 200], [8, 8, 8], 8) == (100.0, False)  # at 0: clipped to one interval


def test_cli_writes_every_table_and_rejects_missing_runs(tmp_path, capsys):
    a = fake_run(tmp_path, "flipflop/lstm/bptt/lam0/g1/seed0", [0.1, 0.5, 0.99])
    assert main(["--thresholds", json.dumps(THRESHOLDS), "--out-dir", str(tmp_path / "tables"), str(a)]) == 0
    for name in ("runs", "metrics", "checkpoints", "fixed_points", "events", "kappa_flow"):
        assert (tmp_path / "tables" / f"{name}.tsv").exists()
    try:
        main(
            [
                "--thresholds",
                json.dumps(THRESHOLDS),
                "--out-dir",
                str(tmp_path / "t2"),
                str(tmp_path / "runs/nope"),
            ]
        )
    except SystemExit as err:
        assert err.code == 2
    assert "without metrics.tsv" in capsys.readouterr().err


def test_kappa_flow_table_from_rank1_runs_only(tmp_path):
    cols = ["iteration", "kappa", "dkappa", "slope", "kind"]
    flow = pd.DataFrame(
        {
            "iteration": [50, 0, 0],
            "kappa": [0.0, -1.0, 0.0],
            "dkappa": [0.0, 0.5, 0.0],
            "slope": [2.0, 0.3, 0.4],
            "kind": ["saddle", "grid", "stable"],
        }
    )[cols]
    analysis = {"t_GR": 40.0, "final_counts": {"n_stable": 8}}
    r = fake_run(
        tmp_path, "flipflop/rank1/bptt/lam0/g1/seed0", [0.1, 0.95, 0.97], analysis=analysis, kappa_flow=flow
    )
    leaky = fake_run(
        tmp_path,
        "flipflop/leaky/bptt/lam0/g1/seed0",
        [0.1, 0.2, 0.3],
        analysis=analysis,
        kappa_flow=pd.DataFrame(columns=cols),
    )  # header only, as run_analysis writes for leaky
    tables = aggregate([leaky, r], THRESHOLDS)
    kf = tables["kappa_flow"]
    assert (
        list(kf.columns) == ["run_id", "task", "arch", "learning_rule", "lambda_tcr", "gain", "seed"] + cols
    )
    assert set(kf["arch"]) == {"rank1"} and len(kf) == 3
    assert kf["iteration"].tolist() == [0, 0, 50] and kf["kind"].tolist() == [
        "grid",
        "stable",
        "saddle",
    ]  # by κ
    assert tables["checkpoints"]["ramping_index"].tolist() == [0.1, 0.5, 0.9] * 2
    only_leaky = aggregate([leaky], THRESHOLDS)["kappa_flow"]
    assert only_leaky.empty and list(only_leaky.columns)[-5:] == cols  # header-only tables keep their columns
    assert (
        main(
            [
                "--thresholds",
                json.dumps(THRESHOLDS),
                "--out-dir",
                str(tmp_path / "tables"),
                str(leaky),
                str(r),
            ]
        )
        == 0
    )
    assert len(pd.read_csv(tmp_path / "tables" / "kappa_flow.tsv", sep="\t")) == 3


def test_a_task_without_a_threshold_is_an_error_naming_it(tmp_path):
    run = fake_run(tmp_path, "flipflop/leaky/bptt/lam0/g1/seed0", [0.5, 0.95])
    with pytest.raises(ValueError, match="no learn criterion for task 'flipflop'"):
        aggregate([run], {"evidence_accumulation": 0.9})
    # a loss criterion needs the run's chance loss (runs trained before it was recorded lack it)
    with pytest.raises(ValueError, match="needs the run's chance_loss"):
        aggregate([run], {"flipflop": {"accuracy": 0.9, "loss_fraction": 0.1}})
