"""Aggregation into tidy tables: identity columns, time-to-learn, divergence counted as not learned, the
checkpoint summary (ramping index) and the rank-one latent flow."""

from __future__ import annotations

import json
import math

import pandas as pd

from rnngeom.aggregate import aggregate, main


def fake_run(root, run_id, accuracy, diverged=False, analysis=None, kappa_flow=None):
    d = root / "runs" / run_id
    d.mkdir(parents=True)
    task, arch, rule, lam, gain, seed = run_id.split("/")
    settings = {"task": task, "arch": arch, "learning_rule": rule, "lambda_tcr": float(lam[3:]),
                "gain": float(gain[1:]), "seed": int(seed[4:]), "model": {"n_hidden": 8},
                "training": {"n_iterations": 100}}  # fmt: skip
    (d / "provenance.json").write_text(json.dumps({"settings": settings, "diverged": diverged, "wall_seconds": 1.0}))
    its = [0, 50, 100][: len(accuracy)]
    pd.DataFrame({"iteration": its, "task_loss": 1.0, "tcr_loss": 0.1, "test_loss": [1.0, 0.5, 0.1][: len(its)],
                  "test_accuracy": accuracy, "grad_norm": 1.0, "diverged": [False] * (len(its) - 1) + [diverged]}
                 ).to_csv(d / "metrics.tsv", sep="\t", index=False)  # fmt: skip
    if analysis is not None:
        (d / "analysis").mkdir()
        (d / "analysis/analysis.json").write_text(json.dumps(analysis))
        pd.DataFrame({"iteration": its, "n_stable": [1, 2, 8][: len(its)],
                      "ramping_index": [0.1, 0.5, 0.9][: len(its)]}).to_csv(
            d / "analysis/checkpoint_summary.tsv", sep="\t", index=False)  # fmt: skip
        if kappa_flow is not None:
            kappa_flow.to_csv(d / "analysis/kappa_flow.tsv", sep="\t", index=False)
    return d


def test_runs_table(tmp_path):
    a = fake_run(tmp_path, "flipflop/leaky/bptt/lam0/g2/seed0", [0.1, 0.95, 0.97],
                 analysis={"t_drop": 40.0, "has_drop": True, "t_GR": 30.0, "final_counts": {"n_stable": 8}})  # fmt: skip
    b = fake_run(tmp_path, "flipflop/leaky/bptt/lam1/g2/seed0", [0.1, 0.96, 0.2], diverged=True)
    c = fake_run(tmp_path, "flipflop/leaky/bptt/lam1/g2/seed1", [0.1, 0.2, 0.3])
    tables = aggregate([a, b, c], {"flipflop": 0.9})
    runs = tables["runs"].set_index("run_id")
    assert runs.loc["flipflop/leaky/bptt/lam0/g2/seed0", "time_to_learn"] == 50
    assert runs.loc["flipflop/leaky/bptt/lam0/g2/seed0", "t_GR"] == 30 and runs.iloc[0]["n_stable_final"] == 8
    diverged = runs.loc["flipflop/leaky/bptt/lam1/g2/seed0"]
    assert diverged["diverged"] and not diverged["learned"] and math.isnan(diverged["time_to_learn"])
    never = runs.loc["flipflop/leaky/bptt/lam1/g2/seed1"]
    assert not never["learned"] and not never["diverged"] and math.isnan(never["t_drop"])
    assert runs.loc["flipflop/leaky/bptt/lam1/g2/seed1", "lambda_tcr"] == 1.0
    assert len(tables["metrics"]) == 9 and list(tables["metrics"].columns[:7]) == [
        "run_id", "task", "arch", "learning_rule", "lambda_tcr", "gain", "seed"]  # fmt: skip
    assert list(tables["checkpoints"]["n_stable"]) == [1, 2, 8]


def test_cli_writes_every_table_and_rejects_missing_runs(tmp_path, capsys):
    a = fake_run(tmp_path, "flipflop/lstm/bptt/lam0/g1/seed0", [0.1, 0.5, 0.99])
    assert main(["--thresholds", '{"flipflop": 0.9}', "--out-dir", str(tmp_path / "tables"), str(a)]) == 0
    for name in ("runs", "metrics", "checkpoints", "fixed_points", "events", "kappa_flow"):
        assert (tmp_path / "tables" / f"{name}.tsv").exists()
    try:
        main(["--out-dir", str(tmp_path / "t2"), str(tmp_path / "runs/nope")])
    except SystemExit as err:
        assert err.code == 2
    assert "without metrics.tsv" in capsys.readouterr().err


def test_kappa_flow_table_from_rank1_runs_only(tmp_path):
    cols = ["iteration", "kappa", "dkappa", "slope", "kind"]
    flow = pd.DataFrame({"iteration": [50, 0, 0], "kappa": [0.0, -1.0, 0.0], "dkappa": [0.0, 0.5, 0.0],
                         "slope": [2.0, 0.3, 0.4], "kind": ["saddle", "grid", "stable"]})[cols]  # fmt: skip
    analysis = {"t_drop": 40.0, "has_drop": True, "final_counts": {"n_stable": 8}}
    r = fake_run(tmp_path, "flipflop/rank1/bptt/lam0/g1/seed0", [0.1, 0.95, 0.97], analysis=analysis,
                 kappa_flow=flow)  # fmt: skip
    leaky = fake_run(tmp_path, "flipflop/leaky/bptt/lam0/g1/seed0", [0.1, 0.2, 0.3], analysis=analysis,
                     kappa_flow=pd.DataFrame(columns=cols))  # header only, as run_analysis writes for leaky
    tables = aggregate([leaky, r], {})
    kf = tables["kappa_flow"]
    assert list(kf.columns) == ["run_id", "task", "arch", "learning_rule", "lambda_tcr", "gain", "seed"] + cols
    assert set(kf["arch"]) == {"rank1"} and len(kf) == 3
    assert kf["iteration"].tolist() == [0, 0, 50] and kf["kind"].tolist() == ["grid", "stable", "saddle"]  # by κ
    assert tables["checkpoints"]["ramping_index"].tolist() == [0.1, 0.5, 0.9] * 2
    only_leaky = aggregate([leaky], {})["kappa_flow"]
    assert only_leaky.empty and list(only_leaky.columns)[-5:] == cols  # header-only tables keep their columns
    assert main(["--out-dir", str(tmp_path / "tables"), str(leaky), str(r)]) == 0
    assert len(pd.read_csv(tmp_path / "tables" / "kappa_flow.tsv", sep="\t")) == 3
