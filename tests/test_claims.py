"""The claim table on synthetic tidy tables with planted effects (and planted absences of effects)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rnngeom.claims import CLAIM_IDS, COLUMNS, VERDICTS, decide, evaluate_claims, main, render_markdown

N_ITER, EVAL_EVERY = 2000, 50
FAST = {"n_boot": 400}  # enough for the planted effects; the default 2000 is for the pipeline


def make_run(task="flipflop", arch="leaky", rule="bptt", lam=0.0, gain=2.0, seed=0, ttl=math.nan,
             diverged=False, **extra) -> dict:  # fmt: skip
    """One runs.tsv row; time_to_learn NaN means the run never reached the threshold."""
    learned = not math.isnan(ttl) and not diverged
    run_id = f"{task}/{arch}/{rule}/lam{lam:g}/g{gain:g}/seed{seed}"
    return {"run_id": run_id, "task": task, "arch": arch, "learning_rule": rule, "lambda_tcr": lam, "gain": gain,
            "seed": seed, "n_iterations": N_ITER, "time_to_learn": ttl if learned else math.nan,
            "learned": learned, "diverged": diverged, **extra}  # fmt: skip


def metrics_for(runs: pd.DataFrame, activity_var=None) -> pd.DataFrame:
    """Evaluations every EVAL_EVERY iterations (gives the eval step used for censoring)."""
    its = np.arange(0, N_ITER + 1, EVAL_EVERY)
    parts = []
    for r in runs.itertuples():
        part = pd.DataFrame({"run_id": r.run_id, "iteration": its, "test_accuracy": 0.5})
        if activity_var is not None:
            part["activity_var"] = activity_var[r.run_id]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def tables_of(runs: list[dict], **others) -> dict[str, pd.DataFrame]:
    runs = pd.DataFrame(runs)
    tables = {"runs": runs, "metrics": metrics_for(runs)}
    for name in ("checkpoints", "fixed_points", "events"):
        tables[name] = pd.DataFrame(columns=["run_id"])
    tables.update(others)
    return tables


def speedup_runs(rng, lams=(0.0, 0.3, 1.0), n_seeds=8, factor=0.5, **kw) -> list[dict]:
    """Time-to-learn ~ lognormal around 1000 iterations at λ=0, `factor` × that at λ>0 (same seed noise)."""
    rows = []
    for seed in range(n_seeds):
        base = 1000 * math.exp(0.2 * rng.standard_normal())
        for lam in lams:
            ttl = base * (1 if lam == 0 else factor) * math.exp(0.1 * rng.standard_normal())
            rows.append(make_run(lam=lam, seed=seed, ttl=round(ttl / EVAL_EVERY) * EVAL_EVERY, **kw))
    return rows


def evaluate(tables, claims: dict[str, str], **kw):
    """Every listed claim on one experiment holding all runs."""
    experiments = {"exp": list(tables["runs"]["run_id"])}
    spec = {cid: {"experiment": "exp", "figure": f"fig_{cid}"} for cid in claims}
    return evaluate_claims(tables, experiments, spec, **{**FAST, **kw}).set_index("claim_id")


def test_planted_speedup_is_supported_and_table_has_every_claim_in_order():
    tables = tables_of(speedup_runs(np.random.default_rng(0)))
    out = evaluate_claims(tables, {"tcr": list(tables["runs"]["run_id"])},
                          {"C3": {"experiment": "tcr", "figure": "tcr_speedup"}}, **FAST)  # fmt: skip
    assert list(out.columns) == COLUMNS and list(out["claim_id"]) == CLAIM_IDS
    assert set(out["verdict"]) <= set(VERDICTS)
    c3 = out.set_index("claim_id").loc["C3"]
    assert c3["verdict"] == "supported", c3["statistic"]
    assert 0.4 < c3["effect"] < 0.6 and c3["ci_low"] > 0 and c3["p_value"] < 0.01
    assert c3["n_runs"] == 24 and c3["figure"] == "tcr_speedup" and c3["experiment"] == "tcr"
    others = out[out["claim_id"] != "C3"]
    assert (others["verdict"] == "not run").all()
    assert others["statistic"].str.contains("no experiment configured").all()


def test_no_effect_is_never_supported():
    for data_seed in range(8):
        tables = tables_of(speedup_runs(np.random.default_rng(100 + data_seed), factor=1.0))
        c3 = evaluate(tables, ["C3"]).loc["C3"]
        assert c3["verdict"] in ("inconclusive", "not supported"), (data_seed, c3["statistic"])


def test_missing_experiment_and_missing_conditions_are_not_run():
    tables = tables_of(speedup_runs(np.random.default_rng(1), lams=(0.0,)))  # only λ=0
    claims = {"C3": {"experiment": "exp", "figure": "f"}, "C5": {"experiment": "absent", "figure": "f"},
              "C6": {"experiment": "exp"}, "C7": {"experiment": ["exp", "empty"]}}  # fmt: skip
    out = evaluate_claims(tables, {"exp": list(tables["runs"]["run_id"]), "empty": []}, claims, **FAST)
    out = out.set_index("claim_id")
    assert list(out.index) == CLAIM_IDS and (out["verdict"] == "not run").all()
    assert "λ=0 and λ>0" in out.loc["C3", "statistic"]
    assert "not in the config" in out.loc["C5", "statistic"]
    assert "local learning rule" in out.loc["C6", "statistic"]
    assert "LSTM" in out.loc["C7", "statistic"] and out.loc["C7", "experiment"] == "exp, empty"
    # An experiment whose runs are absent from runs.tsv (not trained yet) is also "not run".
    out = evaluate_claims(tables, {"exp": ["nope/1"]}, {"C1": {"experiment": "exp"}}, **FAST)
    assert out.iloc[0]["verdict"] == "not run" and "no runs of exp" in out.iloc[0]["statistic"]


def test_censoring_of_unlearned_and_diverged_runs():
    rng = np.random.default_rng(2)
    rows = [make_run(lam=0.0, seed=s) for s in range(8)]  # λ=0 never learns
    rows += [make_run(lam=1.0, seed=s, ttl=float(rng.integers(10, 30) * EVAL_EVERY)) for s in range(8)]
    c3 = evaluate(tables_of(rows), ["C3"]).loc["C3"]
    assert c3["verdict"] == "supported", c3["statistic"]
    assert "λ>0 8/8, λ=0 0/8" in c3["statistic"]
    # Diverged λ>0 runs count as never learned, even with a recorded time: TCR now looks harmful.
    rows = [make_run(lam=0.0, seed=s, ttl=500.0) for s in range(8)]
    rows += [make_run(lam=1.0, seed=s, ttl=300.0, diverged=True) for s in range(8)]
    c3 = evaluate(tables_of(rows), ["C3"]).loc["C3"]
    assert c3["verdict"] == "not supported" and c3["effect"] < 0


def test_unpaired_fallback_when_seeds_do_not_match():
    rng = np.random.default_rng(3)
    rows = [make_run(lam=0.0, seed=s, ttl=float(rng.integers(18, 24) * EVAL_EVERY)) for s in range(8)]
    rows += [make_run(lam=1.0, seed=100 + s, ttl=float(rng.integers(6, 10) * EVAL_EVERY)) for s in range(8)]
    c3 = evaluate(tables_of(rows), ["C3"]).loc["C3"]
    assert c3["verdict"] == "supported" and "unpaired" in c3["statistic"] and "Mann-Whitney" in c3["statistic"]


def test_local_rule_lstm_and_gain_restrictions():
    rng = np.random.default_rng(4)
    rows = speedup_runs(rng, rule="rflo") + speedup_runs(rng, factor=1.0, arch="lstm", gain=1.0)
    out = evaluate(tables_of(rows), ["C3", "C5", "C6", "C7"])
    assert out.loc["C6", "verdict"] == "supported" and out.loc["C6", "n_runs"] == 24
    assert out.loc["C7", "verdict"] != "supported" and out.loc["C7", "n_runs"] == 24
    assert out.loc["C5", "n_runs"] == 24  # gain 2.0 runs only (the LSTMs have gain 1.0)


def test_rescue_at_high_gain_and_small_benefit_at_low_gain():
    rng = np.random.default_rng(5)
    rows = [make_run(lam=0.0, gain=2.0, seed=s) for s in range(8)]  # chaotic, no TCR: never learns
    rows += [make_run(lam=1.0, gain=2.0, seed=s, ttl=float(rng.integers(10, 20) * EVAL_EVERY)) for s in range(8)]
    rows += speedup_runs(rng, lams=(0.0, 1.0), factor=0.95, gain=0.5)
    out = evaluate(tables_of(rows), ["C5", "C9"])
    assert out.loc["C5", "verdict"] == "supported" and "λ>0 8/8, λ=0 0/8" in out.loc["C5", "statistic"]
    assert out.loc["C9", "verdict"] == "supported" and out.loc["C9", "ci_low"] > 0
    assert out.loc["C9", "n_runs"] == 32


def test_hurt_at_largest_lambda_on_one_task():
    rng = np.random.default_rng(6)
    rows = speedup_runs(rng, lams=(0.0, 0.1, 10.0), factor=0.7)  # flipflop: TCR helps at every λ
    for seed in range(8):  # delayed addition: λ=0.1 helps, λ=10 is twice as slow (a U-shape)
        base = 800 * math.exp(0.2 * rng.standard_normal())
        for lam, f in ((0.0, 1.0), (0.1, 0.7), (10.0, 2.0)):
            rows.append(make_run(task="delayed_addition", lam=lam, seed=seed, ttl=round(base * f)))
    c10 = evaluate(tables_of(rows), ["C10"]).loc["C10"]
    assert c10["verdict"] == "supported", c10["statistic"]
    assert "shown: delayed_addition" in c10["statistic"] and "Bonferroni over 2" in c10["statistic"]
    assert c10["effect"] == pytest.approx(1.0, abs=0.05)


def test_abrupt_learning_and_gr_before_drop():
    rows = []
    for s in range(10):
        t_drop = 800.0 + 10 * s
        rows.append(make_run(seed=s, ttl=1000.0, has_drop=s != 0, plateau_length=500.0, drop_sharpness=0.3,
                             t_drop=t_drop, t_GR=t_drop - 150))  # fmt: skip
    rows.append(make_run(seed=99, has_drop=False, t_GR=math.nan, t_drop=math.nan))  # never learned: left out
    out = evaluate(tables_of(rows), ["C1", "C2"])
    assert out.loc["C1", "verdict"] == "supported" and out.loc["C1", "effect"] == pytest.approx(0.9)
    assert out.loc["C1", "n_runs"] == 10
    assert out.loc["C2", "verdict"] == "supported" and out.loc["C2", "effect"] == 1.0
    assert out.loc["C2", "p_value"] == pytest.approx(0.5**10)
    # GR after the drop in every run: the opposite direction.
    for r in rows:
        r["t_GR"] = r["t_drop"] + 100
    assert evaluate(tables_of(rows), ["C2"]).loc["C2", "verdict"] == "not supported"


def checkpoints_for(runs: list[dict], n_stable, speed, ramp=None) -> pd.DataFrame:
    """Checkpoints every 100 iterations; n_stable(run) -> list per checkpoint; speed/ramp(run) -> final value."""
    parts = []
    for r in runs:
        counts = n_stable(r)
        part = pd.DataFrame({"run_id": r["run_id"], "iteration": 100 * np.arange(len(counts)), "n_stable": counts,
                             "n_fixed": counts, "mean_speed": speed(r)})  # fmt: skip
        if ramp is not None:
            part["ramping_index"] = ramp(r)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_attractor_formation_and_slow_dynamics():
    rng = np.random.default_rng(7)
    rows = speedup_runs(rng, lams=(0.0, 1.0))

    def n_stable(r):  # λ>0 reaches 8 stable points at checkpoint 5, λ=0 at 15 or never
        reach = 5 if r["lambda_tcr"] > 0 else (15 if r["seed"] % 2 else 99)
        return [1 if i < reach else 8 for i in range(20)]

    def speed(r):  # TCR runs 5x slower at the end
        return (0.2 if r["lambda_tcr"] > 0 else 1.0) * rng.uniform(0.8, 1.2)

    def ramp(r):  # and ramp more
        return (0.8 if r["lambda_tcr"] > 0 else 0.3) + 0.05 * rng.standard_normal()

    ck = checkpoints_for(rows, n_stable, speed=speed, ramp=ramp)
    out = evaluate(tables_of(rows, checkpoints=ck), ["C4", "C8"])
    assert out.loc["C4", "verdict"] == "supported", out.loc["C4", "statistic"]
    assert "λ>0 8/8, λ=0 4/8" in out.loc["C4", "statistic"]
    assert out.loc["C8", "verdict"] == "supported" and out.loc["C8", "effect"] == pytest.approx(0.8, abs=0.1)
    # Without a ramping_index column the two-part claim C8 cannot be supported.
    out = evaluate(tables_of(rows, checkpoints=ck.drop(columns="ramping_index")), ["C8"])
    assert out.loc["C8", "verdict"] == "inconclusive" and "no ramping_index" in out.loc["C8", "statistic"]
    # Without checkpoint analysis: not run.
    assert evaluate(tables_of(rows), ["C4", "C8"])["verdict"].eq("not run").all()


def test_freeze_in_collapse():
    rng = np.random.default_rng(8)
    rows, var = [], {}
    for rule, log_var in (("freeze_in", -8.0), ("freeze_in_noise", -2.0), ("freeze_in_control", -2.5)):
        for s in range(6):
            row = make_run(rule=rule, lam=1.0, seed=s)
            rows.append(row)
            var[row["run_id"]] = 10 ** (log_var + 0.3 * rng.standard_normal())
    runs = pd.DataFrame(rows)
    ck = checkpoints_for(rows, lambda r: [3, 1 if r["learning_rule"] == "freeze_in" else 4], speed=lambda r: 1.0)
    tables = tables_of(rows, metrics=metrics_for(runs, var), checkpoints=ck)
    c11 = evaluate(tables, ["C11"]).loc["C11"]
    assert c11["verdict"] == "supported", c11["statistic"]
    assert 5 < c11["effect"] < 7 and c11["n_runs"] == 18
    assert "freeze_in 6/6, controlled 0/12" in c11["statistic"]
    # No controlled runs in the experiment: not run.
    only_free = [r for r in rows if r["learning_rule"] == "freeze_in"]
    c11 = evaluate(tables_of(only_free, metrics=metrics_for(pd.DataFrame(only_free), var)), ["C11"]).loc["C11"]
    assert c11["verdict"] == "not run"


def test_bootstrap_is_deterministic_for_a_seed():
    tables = tables_of(speedup_runs(np.random.default_rng(9), factor=0.8))
    a, b = evaluate(tables, ["C3"], seed=1), evaluate(tables, ["C3"], seed=1)
    pd.testing.assert_frame_equal(a, b)
    c = evaluate(tables, ["C3"], seed=2)
    assert c.loc["C3", "effect"] == a.loc["C3", "effect"]  # the point estimate does not depend on the seed


def test_decide_rule():
    assert decide(0.5, 0.3, 0.7, 0.01, n=8)[0] == "supported"
    assert decide(0.5, 0.3, 0.7, 0.01, n=2)[0] == "inconclusive"  # too few runs
    assert decide(0.5, 0.3, 0.7, 0.2, n=8)[0] == "inconclusive"  # CI and test disagree
    assert decide(-0.5, -0.7, -0.3, 0.99, n=3)[0] == "not supported"  # opposite direction
    assert decide(0.0, -0.05, 0.08, 0.5, n=8, min_effect=0.1)[0] == "not supported"  # rules out a 10% effect
    assert decide(0.0, -0.05, 0.08, 0.5, n=5, min_effect=0.1)[0] == "inconclusive"  # ... but not with 5 runs
    assert decide(0.6, 0.4, 0.8, 0.01, n=8, null=0.5)[0] == "inconclusive"  # proportion: CI includes 0.5
    assert decide(math.nan, 0.1, 0.2, 0.01, n=8)[0] == "inconclusive"


def test_cli_writes_tsv_and_markdown_and_rejects_bad_input(tmp_path, capsys):
    tables = tables_of(speedup_runs(np.random.default_rng(10)))
    folder = tmp_path / "tables"
    folder.mkdir()
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.tsv", sep="\t", index=False)
    (tmp_path / "exp.json").write_text(json.dumps({"tcr": list(tables["runs"]["run_id"])}))
    claims = '{"C3": {"experiment": "tcr", "figure": "tcr_speedup"}}'
    out, md = tmp_path / "res" / "claims.tsv", tmp_path / "res" / "claims.md"
    args = ["--tables", str(folder), "--experiments", f"@{tmp_path / 'exp.json'}", "--claims", claims,
            "--out", str(out), "--markdown", str(md), "--n-boot", "300"]  # fmt: skip
    assert main(args) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == COLUMNS and len(table) == 11
    assert table.set_index("claim_id").loc["C3", "verdict"] == "supported"
    text = md.read_text()
    assert text.startswith("| Claim |") and "**supported**" in text and len(text.strip().splitlines()) == 13
    assert render_markdown(table) == text
    capsys.readouterr()

    # The pipeline passes experiment grids ({column: values}), not run ids: same table.
    runs = tables["runs"]
    grid = {k: sorted(runs[k].unique().tolist()) for k in ("task", "arch", "learning_rule", "lambda_tcr", "gain", "seed")}
    out2 = tmp_path / "res" / "claims_grid.tsv"
    grid_args = args[:2] + ["--experiments", json.dumps({"tcr": grid}), "--claims", claims, "--out", str(out2),
                            "--n-boot", "300"]  # fmt: skip
    assert main(grid_args) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out2, sep="\t"), table)
    capsys.readouterr()

    missing = str(tmp_path / "nowhere")
    assert main(["--tables", missing, "--experiments", "{}", "--claims", "{}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and missing in err[0] and "--tables" in err[0]
    assert main(args[:4] + ["--claims", "{not json", "--out", str(out)]) == 2
    assert "--claims: not valid JSON" in capsys.readouterr().err
    assert main(args[:4] + ["--claims", '{"C99": {"experiment": "tcr"}}', "--out", str(out)]) == 2
    assert "unknown claim id 'C99'" in capsys.readouterr().err
