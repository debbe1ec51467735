"""The claim table on synthetic tidy tables with planted effects (and planted absences of effects)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import SELECTION_CONFIG

from rnngeom.aggregate import censored_time_to_learn, time_to_attractors
from rnngeom.claims import (
    CLAIM_IDS,
    COLUMNS,
    VERDICTS,
    decide,
    evaluate_claims,
    gr_drop_test,
    gr_window_at,
    main,
    render_markdown,
)
from rnngeom.claims.sim import rejection_rate, simulated_tables
from rnngeom.config import experiment_runs
from rnngeom.constants import RUN_KEYS

N_ITER, EVAL_EVERY = 2000, 50
FAST = {"n_boot": 400}  # enough for the planted effects; the default 2000 is for the pipeline


def make_run(
    task="flipflop",
    arch="leaky",
    rule="bptt",
    lam=0.0,
    gain=2.0,
    seed=0,
    ttl=math.nan,
    diverged=False,
    search_fraction=0.8,
    **extra,
) -> dict:
    """One runs.tsv row, censored by aggregate's own function; ttl NaN: never reached the threshold. The
    run searched (search_fraction 0.8: the search-phase claims' precondition holds) unless told otherwise."""
    learned = not math.isnan(ttl) and not diverged
    ttl = ttl if learned else math.nan
    run_id = f"{task}/{arch}/{rule}/lam{lam:g}/g{gain:g}/seed{seed}"
    return {
        "run_id": run_id,
        "task": task,
        "arch": arch,
        "learning_rule": rule,
        "lambda_tcr": lam,
        "gain": gain,
        "seed": seed,
        "n_iterations": N_ITER,
        "eval_every": EVAL_EVERY,
        "time_to_learn": ttl,
        "time_to_learn_censored": censored_time_to_learn(ttl, N_ITER, EVAL_EVERY),
        "censored": not learned,
        "learned": learned,
        "diverged": diverged,
        "search_fraction": search_fraction,
        **extra,
    }


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
    out = evaluate_claims(
        tables,
        {"tcr": list(tables["runs"]["run_id"])},
        {"C3": {"experiment": "tcr", "figure": "tcr_speedup"}},
        **FAST,
    )
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
    claims = {
        "C3": {"experiment": "exp", "figure": "f"},
        "C5": {"experiment": "absent", "figure": "f"},
        "C6": {"experiment": "exp"},
        "C7": {"experiment": ["exp", "empty"]},
    }
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
    assert (
        c3["verdict"] == "supported" and "unpaired" in c3["statistic"] and "Mann-Whitney" in c3["statistic"]
    )


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
    rows += [
        make_run(lam=1.0, gain=2.0, seed=s, ttl=float(rng.integers(10, 20) * EVAL_EVERY)) for s in range(8)
    ]
    rows += speedup_runs(rng, lams=(0.0, 1.0), factor=0.95, gain=0.5)
    out = evaluate(tables_of(rows), ["C5", "C9"])
    assert out.loc["C5", "verdict"] == "supported" and "λ>0 8/8, λ=0 0/8" in out.loc["C5", "statistic"]
    assert out.loc["C9", "verdict"] == "supported" and out.loc["C9", "ci_low"] > 0
    assert out.loc["C9", "n_runs"] == 32
    # C9's precondition is the strongly connected arm's search phase: low-gain runs that learn at once are
    # its contrast (TCR has nothing to shorten there), not a failed precondition
    for r in rows:
        r["search_fraction"] = 1.0 if r["gain"] > 1 else 0.0
    c9 = evaluate(tables_of(rows), ["C9"]).loc["C9"]
    assert c9["verdict"] == "supported" and c9["precondition"].startswith("gain > 1: search phase")
    for r in rows:
        r["search_fraction"] = 0.0 if r["gain"] > 1 else 1.0
    assert evaluate(tables_of(rows), ["C9"]).loc["C9", "verdict"] == "not testable here"


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


def test_abrupt_learning():
    rows = []
    for s in range(10):
        rows.append(
            make_run(
                seed=s,
                ttl=1000.0,
                escaped=True,
                abrupt=s != 0,
                plateau_length=700.0,
                width_over_plateau=0.1,
                t_drop=800.0 + 10 * s,
            )
        )
    # a run that never left its plateau has no drop to judge: left out of the fraction
    rows.append(make_run(seed=99, escaped=False, abrupt=False, t_drop=math.nan, search_fraction=1.0))
    c1 = evaluate(tables_of(rows), ["C1"]).loc["C1"]
    assert c1["verdict"] == "supported" and c1["effect"] == pytest.approx(0.9) and c1["n_runs"] == 10
    assert "median plateau 700 iterations" in c1["statistic"] and "1 runs did not leave" in c1["statistic"]
    assert "median search fraction 0.80" in c1["precondition"]
    for r in rows:  # a search phase everywhere, but every escape gradual: the opposite direction
        r["abrupt"] = False
    assert evaluate(tables_of(rows), ["C1"]).loc["C1", "verdict"] == "not supported"
    for r in rows:  # no search phase (the loss falls from the start): not "not supported" but not testable
        r["search_fraction"] = 0.0
    c1 = evaluate(tables_of(rows), ["C1"]).loc["C1"]
    assert c1["verdict"] == "not testable here" and "median search fraction 0.00" in c1["precondition"]
    assert np.isnan(c1["effect"]) and "precondition fails" in c1["statistic"]


def test_search_phase_claims_are_not_testable_without_a_search_phase():
    """TCR cannot shorten a search that λ = 0 runs do not have: C3-C5, C7, C9, C10 are "not testable here"
    (with the measured precondition), not "not supported", when the λ = 0 runs learn at once."""
    rng = np.random.default_rng(7)
    rows = speedup_runs(rng, factor=1.5)  # TCR slows learning ...
    for r in rows:  # ... of runs that have no search phase
        r["search_fraction"] = 0.1
    out = evaluate(tables_of(rows), ["C3", "C5", "C10"])
    for cid in ("C3", "C5", "C10"):
        assert out.loc[cid, "verdict"] == "not testable here", (cid, out.loc[cid, "statistic"])
        assert "median search fraction 0.10 (needs ≥ 0.5)" in out.loc[cid, "precondition"]
    for r in rows:
        r["search_fraction"] = 0.9
    out = evaluate(tables_of(rows), ["C3", "C10"])
    assert out.loc["C3", "verdict"] == "not supported" and out.loc["C10", "verdict"] == "supported"
    assert "median search fraction 0.90" in out.loc["C3", "precondition"]


def test_local_learning_needs_a_rule_that_learns_without_tcr():
    rows = [make_run(rule="rflo", lam=0.0, seed=s, ttl=1000.0 if s < 3 else math.nan) for s in range(8)]
    rows += [make_run(rule="rflo", lam=0.3, seed=s, ttl=500.0) for s in range(8)]
    c6 = evaluate(tables_of(rows), ["C6"]).loc["C6"]
    assert c6["verdict"] == "not testable here" and "3 of 8 λ=0 runs learned" in c6["precondition"]
    for r in rows[:8]:
        r.update(make_run(rule="rflo", lam=0.0, seed=r["seed"], ttl=1000.0))
    c6 = evaluate(tables_of(rows), ["C6"]).loc["C6"]
    assert c6["verdict"] == "supported" and "8 of 8 λ=0 runs learned" in c6["precondition"]


def c2_tables(
    seed: int, planted: bool, n_runs: int = 20, null: str = "stationary", motion_bump: bool = False
) -> dict[str, pd.DataFrame]:
    """Simulated GR and weight-motion series (rnngeom.claims.sim) as claims reads them: runs with an abrupt
    drop and its t_onset, checkpoints."""
    sim = simulated_tables(np.random.default_rng(seed), n_runs, planted, null, motion_bump)
    rows = [
        make_run(seed=i, ttl=1000.0, t_onset=t, abrupt=True) for i, t in enumerate(sim["runs"]["t_onset"])
    ]
    ids = {f"sim/{i}": rows[i]["run_id"] for i in range(n_runs)}
    checkpoints = sim["checkpoints"].assign(run_id=sim["checkpoints"]["run_id"].map(ids))
    return tables_of(rows, checkpoints=checkpoints)


def test_gr_before_drop_detects_a_planted_lead_and_not_independent_timing():
    c2 = evaluate(c2_tables(0, planted=True), ["C2"]).loc["C2"]
    assert c2["verdict"] == "supported" and c2["effect"] > 0.7 and c2["n_runs"] == 20, c2["statistic"]
    assert "between runs" in c2["statistic"] and "aligned on the onset" in c2["statistic"]
    # the control (weight motion, no change at the onset) is reported beside it, with its own verdict
    assert c2["control_verdict"] in ("inconclusive", "not supported") and 0.3 < c2["control_effect"] < 0.7
    assert "GR minus control, per run" in c2["statistic"]
    for null in ("stationary", "trending"):
        supported = 0
        for seed in range(1, 21):  # GR timing independent of the drop: the mean rank stays near 0.5
            # (sd of the mean u over null experiments of 20 runs: 0.065; the band is ± 3.8 sd)
            c2 = evaluate(c2_tables(seed, planted=False, null=null), ["C2"], n_boot=300).loc["C2"]
            assert 0.25 < c2["effect"] < 0.75 and c2["verdict"] != "not run", (null, seed, c2["statistic"])
            supported += c2["verdict"] == "supported"
        assert supported <= 3, null  # 20 null experiments at alpha = 0.05: P(≥ 4 false positives) = 1.6 %
    # Weights that speed up before the onset make the control supported too: GR then leads no more than it.
    c2 = evaluate(c2_tables(0, planted=True, motion_bump=True), ["C2"]).loc["C2"]
    assert c2["verdict"] == "supported" and c2["control_verdict"] == "supported", c2["statistic"]
    # A run whose onset comes before its third scored transition has no pre-onset window: left out.
    tables = c2_tables(0, planted=True, n_runs=6)
    tables["runs"].loc[0, "t_onset"] = 50.0
    c2 = evaluate(tables, ["C2"]).loc["C2"]
    assert c2["n_runs"] == 5, c2["statistic"]
    # 4 runs of one condition: 4! = 24 orderings of the onsets, too few for a permutation test.
    c2 = evaluate(c2_tables(0, planted=True, n_runs=4), ["C2"]).loc["C2"]
    assert c2["verdict"] == "not testable here" and "≥ 120 orderings" in c2["precondition"], c2["statistic"]
    # Onsets are exchangeable only within a condition: 12 runs split over λ = 0 and 0.5 are two of them.
    tables = c2_tables(0, planted=True, n_runs=12)
    tables["runs"]["lambda_tcr"] = [0.0, 0.5] * 6  # 6! · 6! orderings
    c2 = evaluate(tables, ["C2"]).loc["C2"]
    assert c2["n_runs"] == 12 and c2["verdict"] == "supported", c2["statistic"]
    tables["runs"]["lambda_tcr"] = [0.0, 0.5, 1.0, 2.0, 3.0, 4.0] * 2  # six conditions of 2: 2^6 orderings
    assert evaluate(tables, ["C2"]).loc["C2", "verdict"] == "not testable here"
    no_drop = c2_tables(0, planted=True, n_runs=10)
    no_drop["runs"]["abrupt"] = False  # GR scores but no run with an abrupt drop: nothing on a plateau
    c2 = evaluate(no_drop, ["C2"]).loc["C2"]
    assert c2["verdict"] == "not testable here" and "abrupt drops" in c2["precondition"], c2["statistic"]
    no_columns = tables_of([make_run(t_drop=500.0)])
    assert evaluate(no_columns, ["C2"]).loc["C2", "verdict"] == "not run"


def test_gr_window_at_the_drop_time_fits_the_series_or_is_nan():
    its, ratio = 100.0 * np.arange(1, 9), np.arange(1.0, 9.0)
    s = gr_window_at(its, ratio, [50.0, 299.0, 300.0, 450.0, 800.0, 899.0, 901.0])
    # before the third transition ends: NaN; then the 3 transitions ending at or before t; then NaN beyond
    # one checkpoint interval after the last
    np.testing.assert_allclose(s, [np.nan, np.nan, 2.0, 3.0, 7.0, 7.0, np.nan])
    with pytest.raises(ValueError, match="transitions"):
        gr_window_at(its[:3], ratio[:3], [300.0])


def test_gr_drop_test_permutes_drop_times_only_within_strata():
    # Two strata, GR independent of the drop within each: in A the GR level rises and the drops come late,
    # in B it falls and they come early. Pooled, A's own (late) drops look like high GR against B's early
    # ones: a spurious lead. Permuting within strata keeps each stratum's drop timing: no lead.
    pooled = stratified = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        its = 100.0 * np.arange(1, 21)
        series, t_drop, strata = [], [], []
        for stratum, slope, drop_at in (("A", 0.3, 1500.0), ("B", -0.3, 600.0)):
            for _ in range(6):
                series.append((its, np.exp(slope * np.arange(20) + 0.5 * rng.standard_normal(20))))
                t_drop.append(drop_at + rng.uniform(-200, 200))
                strata.append(stratum)
        t_drop, strata = np.array(t_drop), np.array(strata)
        pooled += gr_drop_test(series, t_drop, np.zeros(len(series)), rng, 200)[1] < 0.05
        stratified += gr_drop_test(series, t_drop, strata, rng, 200)[1] < 0.05
    assert pooled >= 18 and stratified <= 3


def test_the_control_and_the_comparison_false_positive_rate_and_power():
    """C2's control, the same test on the weight motion: at most alpha (plus the sampling margin) on 200 null
    experiments, power with the weights speeding up before the onset; GR minus control (Wilcoxon): at most
    alpha when neither leads, power when GR leads and the weights do not, no rejection when both move."""
    from rnngeom.claims.sim import motion_rejection_rate, paired_rejection_rate

    n, alpha = 200, 0.05
    margin = 2.33 * math.sqrt(alpha * (1 - alpha) / n)
    assert motion_rejection_rate(n, 20, False, n_perm=200, seed=3) <= alpha + margin
    assert motion_rejection_rate(40, 20, True, n_perm=200, seed=4) >= 0.8
    assert paired_rejection_rate(n, 20, planted=False, motion_bump=False, seed=5) <= alpha + margin
    assert paired_rejection_rate(40, 20, planted=True, motion_bump=False, seed=6) >= 0.8
    assert paired_rejection_rate(40, 20, planted=True, motion_bump=True, seed=7) <= 0.1


def test_gr_before_drop_false_positive_rate_and_power():
    # The between-run permutation test is exact when the drop times are exchangeable across runs, whatever
    # the trend of GR over training, so a finite simulation scatters around at most alpha: allow the one-sided
    # 99% sampling margin (the point estimates over 10,000 experiments, `python -m rnngeom.claims.sim`, are
    # below alpha). On the trending null the within-run shift test it replaces is anti-conservative (the
    # pre-drop window lies earlier than the drop, where GR is higher), and a sign test on t_GR rejects in
    # nearly every null experiment (t_GR is the first of many chances).
    n_experiments, alpha = 400, 0.05
    margin = 2.33 * math.sqrt(alpha * (1 - alpha) / n_experiments)
    for null in ("stationary", "trending"):
        fpr = rejection_rate(n_experiments, 20, 0.0, null=null, alpha=alpha, n_perm=400, seed=0)
        assert fpr <= alpha + margin, (null, fpr)
        assert rejection_rate(100, 20, 1.0, null=null, alpha=alpha, n_perm=400, seed=1) >= 0.8, null
    within = rejection_rate(200, 20, 0.0, null="trending", test="within-run shift", n_perm=200)
    assert within > 0.15  # the null the old test assumed does not hold under a trend (measured: 0.22)


def checkpoints_for(
    runs: list[dict], n_stable, speed, ramp=None, ramp_null=None, n_fixed=None
) -> pd.DataFrame:
    """Checkpoints every 100 iterations; n_stable(run) -> list per checkpoint; speed/ramp(run) -> final value.
    Also sets each run's time_to_attractors (flip-flop: 8 stable points) by aggregate's own function."""
    parts = []
    for r in runs:
        counts = n_stable(r)
        its = 100 * np.arange(len(counts))
        r["time_to_attractors"], r["attractors_censored"] = time_to_attractors(its, counts, 8)
        part = pd.DataFrame(
            {
                "run_id": r["run_id"],
                "iteration": its,
                "n_stable": counts,
                "n_fixed": counts if n_fixed is None else n_fixed(r),
                "mean_speed": speed(r),
            }
        )
        if ramp is not None:
            part["ramping_index"] = ramp(r)
            part["ramping_null"] = ramp_null(r) if ramp_null is not None else 0.2
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
    # Ramping that autocorrelation alone explains (the surrogate index rises as much): no ramping support.
    rows = speedup_runs(rng, lams=(0.0, 1.0))
    ramps = {r["run_id"]: ramp(r) for r in rows}
    ck_ac = checkpoints_for(
        rows,
        n_stable,
        speed=speed,
        ramp=lambda r: ramps[r["run_id"]],
        ramp_null=lambda r: ramps[r["run_id"]] - 0.1,
    )
    c8 = evaluate(tables_of(rows, checkpoints=ck_ac), ["C8"]).loc["C8"]
    assert c8["verdict"] == "not supported" and "ramping_null" in c8["statistic"], c8["statistic"]
    # Without a ramping_index column the two-part claim C8 cannot be supported.
    out = evaluate(tables_of(rows, checkpoints=ck.drop(columns="ramping_index")), ["C8"])
    assert out.loc["C8", "verdict"] == "inconclusive" and "no ramping_index" in out.loc["C8", "statistic"]
    # Without checkpoint analysis (no checkpoints.tsv rows, no time_to_attractors in runs.tsv): not run.
    from_checkpoints = ("time_to_attractors", "attractors_censored")
    bare = [{k: v for k, v in r.items() if k not in from_checkpoints} for r in rows]
    assert evaluate(tables_of(bare), ["C4", "C8"])["verdict"].eq("not run").all()


def freeze_in_tables(
    final_stable: dict, log_var: dict, n_seeds: int, rng, final_saddles: dict | None = None
) -> dict[str, pd.DataFrame]:
    """Freeze-in runs: final n_stable (and saddles) and final log10 activity variance per rule (planted)."""
    saddles = final_saddles or {}
    rows, var = [], {}
    for rule in final_stable:
        for s in range(n_seeds):
            row = make_run(rule=rule, lam=1.0, seed=s)
            rows.append(row)
            var[row["run_id"]] = 10 ** (log_var[rule] + 0.3 * rng.standard_normal())
    ck = checkpoints_for(
        rows,
        lambda r: [3, final_stable[r["learning_rule"]]],
        speed=lambda r: 1.0,
        n_fixed=lambda r: [6, final_stable[r["learning_rule"]] + saddles.get(r["learning_rule"], 0)],
    )
    return tables_of(rows, metrics=metrics_for(pd.DataFrame(rows), var), checkpoints=ck)


def test_freeze_in_collapse():
    rng = np.random.default_rng(8)
    rules = ("freeze_in", "freeze_in_noise", "freeze_in_control")
    tables = freeze_in_tables(dict(zip(rules, (1, 4, 4))), dict(zip(rules, (-8.0, -2.0, -2.5))), 6, rng)
    c11 = evaluate(tables, ["C11"]).loc["C11"]
    assert c11["verdict"] == "supported", c11["statistic"]
    assert c11["effect"] == 1.0 and c11["n_runs"] == 18 and c11["p_value"] < 0.01
    assert "freeze_in 6/6, controlled 0/12 (freeze_in_noise 0/6, freeze_in_control 0/6)" in c11["statistic"]
    # One stable point kept beside saddles (what the controller keeps) is structure, not collapse.
    tables = freeze_in_tables(
        dict(zip(rules, (1, 1, 1))), dict(zip(rules, (-8.0, -2.0, -2.5))), 6, rng, {"freeze_in_control": 3}
    )
    c11 = evaluate(tables, ["C11"]).loc["C11"]
    assert "freeze_in 6/6, controlled 6/12 (freeze_in_noise 6/6, freeze_in_control 0/6)" in c11["statistic"]
    # The controller sets the activity variance: a large variance gap with the same fixed-point structure
    # (no run collapsed) is no evidence of collapse.
    tables = freeze_in_tables(dict(zip(rules, (4, 4, 4))), dict(zip(rules, (-8.0, -2.0, -2.5))), 8, rng)
    c11 = evaluate(tables, ["C11"]).loc["C11"]
    assert c11["verdict"] == "not supported" and c11["effect"] == 0.0, c11["statistic"]
    # Every run collapsed, with control too: not supported either (the control did not prevent it).
    tables = freeze_in_tables(dict(zip(rules, (1, 1, 0))), dict(zip(rules, (-8.0, -2.0, -2.5))), 8, rng)
    assert evaluate(tables, ["C11"]).loc["C11", "verdict"] == "not supported"
    # No controlled runs in the experiment: not run.
    only_free = freeze_in_tables({"freeze_in": 1}, {"freeze_in": -8.0}, 6, rng)
    assert evaluate(only_free, ["C11"]).loc["C11", "verdict"] == "not run"


def test_claims_select_exactly_the_experiments_runs():
    # Default gains differ by arch (leaky 1.5, LSTM 1.0) and another experiment runs leaky at g = 1.0: a
    # product grid of abrupt_learning's key values would also pick those 6 leaky g = 1 runs (18, not 12).
    config = copy.deepcopy(SELECTION_CONFIG)
    experiments = {
        name: sorted({r.run_id for r in experiment_runs(config, name)}) for name in config["experiments"]
    }
    assert len(experiments["abrupt_learning"]) == 12 and len(experiments["gain_sweep"]) == 12
    every = {r for name in config["experiments"] for r in experiment_runs(config, name)}
    rows = []
    for r in sorted(every):
        keys = {k: getattr(r, k) for k in RUN_KEYS}
        row = make_run(
            rule=keys["learning_rule"],
            arch=keys["arch"],
            seed=int(keys["seed"]),
            ttl=500.0,
            abrupt=True,
            escaped=True,
        )
        rows.append({**row, **keys, "run_id": r.run_id})
    assert len(rows) == 18
    spec = {"C1": {"experiment": "abrupt_learning"}}
    c1 = evaluate_claims(tables_of(rows), experiments, spec, **FAST).set_index("claim_id").loc["C1"]
    assert c1["n_runs"] == 12 and "leaky: 6/6, lstm: 6/6" in c1["statistic"], c1["statistic"]


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
    args = [
        "--tables",
        str(folder),
        "--experiments",
        f"@{tmp_path / 'exp.json'}",
        "--claims",
        claims,
        "--out",
        str(out),
        "--markdown",
        str(md),
        "--n-boot",
        "300",
    ]
    assert main(args) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == COLUMNS and len(table) == 11
    assert table.set_index("claim_id").loc["C3", "verdict"] == "supported"
    text = md.read_text()
    assert text.startswith("| Claim |") and "**supported**" in text and len(text.strip().splitlines()) == 13
    assert render_markdown(table) == text
    capsys.readouterr()

    # Experiments are run lists: a grid {column: values} is refused with a clear message.
    runs = tables["runs"]
    grid = {
        k: sorted(runs[k].unique().tolist())
        for k in ("task", "arch", "learning_rule", "lambda_tcr", "gain", "seed")
    }
    grid_args = args[:2] + ["--experiments", json.dumps({"tcr": grid}), "--claims", claims, "--out", str(out)]
    assert main(grid_args) == 2
    assert "list of run_id strings" in capsys.readouterr().err

    missing = str(tmp_path / "nowhere")
    assert main(["--tables", missing, "--experiments", "{}", "--claims", "{}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and missing in err[0] and "--tables" in err[0]
    assert main(args[:4] + ["--claims", "{not json", "--out", str(out)]) == 2
    assert "--claims: not valid JSON" in capsys.readouterr().err
    assert main(args[:4] + ["--claims", '{"C99": {"experiment": "tcr"}}', "--out", str(out)]) == 2
    assert "unknown claim id 'C99'" in capsys.readouterr().err


def test_the_package_runs_as_a_module_without_torch_and_its_job_depends_on_every_file_it_runs():
    """``python -m rnngeom.claims`` runs (its __main__.py), imports no torch, and the claims job's inputs
    (rnngeom.deps) hold every file of the package but the simulation (claims/sim.py: not run by the job)."""
    import subprocess
    import sys
    from pathlib import Path

    import rnngeom.claims
    from rnngeom.deps import job_source_files

    done = subprocess.run([sys.executable, "-m", "rnngeom.claims", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage: python -m rnngeom.claims" in done.stdout, done.stderr
    no_torch = "import sys, rnngeom.claims; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", no_torch]).returncode == 0
    package = Path(rnngeom.claims.__file__).parent
    files = {Path(f) for f in job_source_files("rnngeom.claims")}
    assert set(package.glob("*.py")) - files == {package / "sim.py"}
