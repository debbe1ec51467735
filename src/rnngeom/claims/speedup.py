"""The time-to-learn claims: TCR accelerates training (C3), in strongly connected networks (C5), with a local
learning rule (C6) and in LSTMs (C7); its benefit is small in non-chaotic regimes (C9); it can hurt (C10).

All compare the censored time-to-learn (runs.tsv ``time_to_learn_censored``: a run that never learned or
diverged counts as n_iterations + eval_every) between λ>0 and λ=0 runs of the same stratum, seed-paired
(``tcr_effect``), and leave out the freeze-in family (except C6, which selects its local rule).

C3  Every learning rule but the freeze-in family: median relative speed-up 1 − ttl(λ>0)/ttl(λ=0), λ>0 pooled;
    the counts of runs that learned per arm are in the text. Precondition: the search phase.
C5  As C3 restricted to gain > ``GAIN_THRESHOLD`` (1.0: the chaotic regime of the leaky / rank-one RNN).
    Censoring makes failure to learn count. Precondition: the search phase of those runs.
C6  As C3 restricted to the local learning rules (``LOCAL_RULES``: "rflo"). Precondition: the rule learns
    without TCR (``preconditions.local_rule_precondition``); no search-phase precondition.
C7  As C3 restricted to arch "lstm" (the search phase is the bulk of time-to-learn). Precondition: the search
    phase of the LSTM runs.
C9  Effect = median speed-up at gain > threshold minus median speed-up at gain ≤ threshold; CI: percentile of
    the differences of independent bootstraps of the two gain groups; p: one-sided Mann-Whitney U of the
    per-unit log ratios, high gain > low gain. Both groups must be seed-paired (else "inconclusive"). The
    "near the solution" half (initial distance) is not measured. Precondition: the search phase, on the runs
    of both gain levels together.
C10 Per task: seed-paired relative slow-down ttl(λmax)/ttl(λ=0) − 1 at each stratum's largest λ (an a priori
    choice: the regime where a penalty on change bites hardest; picking the "best" λ after the fact would bias
    the test). The claim is existential ("a task or regime"), so each task is tested with Bonferroni
    correction over the k tasks tested (CI level 1 − alpha/k, p multiplied by k); supported if any task is,
    not supported if every task is, else inconclusive. Row = the deciding (or strongest) task; the median
    time-to-learn per λ of that task (the U-shape) is in the text. Precondition: the search phase, per task;
    tasks without one are left out and named in the text. With no task left: "not testable here" if every
    task lacked the search phase, else "not run".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.preconditions import SEARCH_CLAIMS, local_rule_precondition, search_precondition
from rnngeom.claims.stats import mann_whitney_greater, percentile_ci
from rnngeom.claims.tcr_effect import STRATUM, compare_tcr, not_freeze_in, outcome_from
from rnngeom.claims.verdict import MIN_EFFECT, MIN_N, NotRun, NotTestable, Outcome, decide
from rnngeom.constants import GAIN_THRESHOLD
from rnngeom.io import as_bool

LOCAL_RULES = ("rflo",)


def _learned_counts(runs: pd.DataFrame) -> str:
    ok = as_bool(runs["censored"]).eq(False)
    pos = runs["lambda_tcr"] > 0
    return (
        f"learned: λ>0 {int((ok & pos).sum())}/{int(pos.sum())}, "
        f"λ=0 {int((ok & ~pos).sum())}/{int((~pos).sum())}"
    )


def _speedup(claim_id: str, d: ClaimData, runs: pd.DataFrame, label: str) -> Outcome:
    precondition = search_precondition(runs) if claim_id in SEARCH_CLAIMS else ""
    runs = runs.assign(ttl=pd.to_numeric(runs["time_to_learn_censored"], errors="coerce"))
    comp = compare_tcr(
        runs,
        "ttl",
        better="lower",
        scale="ratio",
        rng=d.rng,
        n_boot=d.n_boot,
        alpha=d.alpha,
        label="time_to_learn",
    )
    what = (
        f"{label}median relative speed-up 1 − ttl(λ>0)/ttl(λ=0) of censored time-to-learn "
        "(runs.tsv time_to_learn_censored: unlearned/diverged = n_iterations + eval_every)"
    )
    used = runs[runs["run_id"].isin(comp.run_ids)]
    out = outcome_from(claim_id, comp, what, d.alpha, f"; {_learned_counts(used)}")
    out.precondition = precondition
    return out


def claim_c3(d: ClaimData) -> Outcome:
    runs = not_freeze_in(d.runs)
    if runs.empty:
        raise NotRun("no runs outside the freeze-in rules")
    return _speedup("C3", d, runs, "")


def claim_c5(d: ClaimData) -> Outcome:
    g = GAIN_THRESHOLD
    runs = not_freeze_in(d.runs)
    runs = runs[runs["gain"].astype(float) > g]
    if runs.empty:
        raise NotRun(f"needs runs at gain > {g:g}; found gains {sorted(d.runs['gain'].unique())}")
    return _speedup("C5", d, runs, f"gain > {g:g}: ")


def claim_c6(d: ClaimData) -> Outcome:
    runs = d.runs[d.runs["learning_rule"].isin(LOCAL_RULES)]
    if runs.empty:
        raise NotRun(f"needs runs with a local learning rule {LOCAL_RULES}")
    precondition = local_rule_precondition(runs)
    out = _speedup("C6", d, runs, "local rules: ")
    out.precondition = precondition
    return out


def claim_c7(d: ClaimData) -> Outcome:
    runs = not_freeze_in(d.runs[d.runs["arch"] == "lstm"])
    if runs.empty:
        raise NotRun("needs LSTM runs")
    return _speedup("C7", d, runs, "LSTM: ")


def claim_c9(d: ClaimData) -> Outcome:
    g = GAIN_THRESHOLD
    runs = not_freeze_in(d.runs)
    runs = runs.assign(ttl=pd.to_numeric(runs["time_to_learn_censored"], errors="coerce"))
    high, low = runs[runs["gain"].astype(float) > g], runs[runs["gain"].astype(float) <= g]
    if high.empty or low.empty:
        raise NotRun(
            f"needs runs at gain ≤ {g:g} and gain > {g:g}; found gains {sorted(runs['gain'].unique())}"
        )
    # the claim contrasts a regime where TCR could shorten a search (the strongly connected one) with one
    # where it is said to matter little; the low-gain runs need not search (their not searching is the
    # contrast)
    precondition = f"gain > {g:g}: " + search_precondition(high)
    kw = dict(better="lower", scale="ratio", rng=d.rng, n_boot=d.n_boot, alpha=d.alpha, label="time_to_learn")
    try:
        c_high = compare_tcr(high, "ttl", **kw)
        c_low = compare_tcr(low, "ttl", **kw)
    except NotRun as err:
        raise NotRun(f"at each gain level (≤ {g:g} and > {g:g}): {err}") from None
    if c_high.design != "paired" or c_low.design != "paired":
        return Outcome(
            "inconclusive",
            f"needs ≥ {MIN_N} seed-paired λ=0/λ>0 units at both gain levels "
            f"(gain > {g:g}: {c_high.n}, ≤ {g:g}: {c_low.n})",
            c_high.n_runs + c_low.n_runs,
            precondition=precondition,
        )
    effect = c_high.effect - c_low.effect
    lo, hi = percentile_ci(c_high.replicates - c_low.replicates, d.alpha)
    p = mann_whitney_greater(c_high.unit_scores, c_low.unit_scores)
    n = min(c_high.n, c_low.n)
    verdict, why = decide(effect, lo, hi, p, n=n, min_effect=MIN_EFFECT["C9"], alpha=d.alpha)
    text = (
        f"median censored time-to-learn speed-up at gain > {g:g} ({c_high.effect:.3g}, n = {c_high.n}) "
        f"minus at gain ≤ {g:g} ({c_low.effect:.3g}, n = {c_low.n}); seed-paired, λ>0 pooled; "
        f"{100 * (1 - d.alpha):g}% CI from independent bootstraps; one-sided Mann-Whitney U on per-unit "
        f"log ratios; initial distance to the solution not measured; verdict: {why}"
    )
    return Outcome(verdict, text, c_high.n_runs + c_low.n_runs, effect, lo, hi, p, precondition=precondition)


def claim_c10(d: ClaimData) -> Outcome:
    runs = not_freeze_in(d.runs)
    runs = runs.assign(ttl=pd.to_numeric(runs["time_to_learn_censored"], errors="coerce"))
    per_task, reasons, preconditions, untestable = {}, [], [], []
    for task, sub in runs.groupby("task"):
        try:
            preconditions.append(f"{task}: {search_precondition(sub)}")
        except NotTestable as err:
            untestable.append(f"{task}: {err}")
            continue
        try:
            per_task[task] = (
                sub,
                compare_tcr(
                    sub,
                    "ttl",
                    better="higher",
                    scale="ratio",
                    rng=d.rng,
                    n_boot=d.n_boot,
                    alpha=d.alpha,
                    treated="largest",
                    label="time_to_learn",
                ),
            )
        except NotRun as err:
            reasons.append(f"{task}: {err}")
    if not per_task:
        if untestable and not reasons:
            raise NotTestable("; ".join(untestable))
        raise NotRun("; ".join(reasons + untestable) or "no runs")
    k = len(per_task)
    a_k = d.alpha / k
    results = {}
    for task, (_sub, comp) in per_task.items():
        lo, hi = percentile_ci(comp.replicates, a_k)
        p = min(1.0, comp.p_value * k)  # Bonferroni-adjusted, compared with alpha
        verdict, why = decide(comp.effect, lo, hi, p, n=comp.n, min_effect=MIN_EFFECT["C10"], alpha=d.alpha)
        results[task] = (verdict, why, lo, hi, p)
    verdicts = [r[0] for r in results.values()]
    overall = (
        "supported"
        if "supported" in verdicts
        else "not supported"
        if all(v == "not supported" for v in verdicts)
        else "inconclusive"
    )
    candidates = [t for t in results if results[t][0] == overall] or list(results)
    task = min(candidates, key=lambda t: (np.nan_to_num(results[t][4], nan=2.0), -per_task[t][1].effect))
    sub, comp = per_task[task]
    _, why, lo, hi, p = results[task]
    # Every λ (intermediate ones too: the U-shape) of the strata that entered the comparison.
    strata = sub.set_index(STRATUM).index
    in_used_strata = strata.isin(strata[sub["run_id"].isin(comp.run_ids).to_numpy()])
    medians = sub[in_used_strata].groupby("lambda_tcr")["ttl"].median()
    shape = ", ".join(f"λ={lam:g}: {v:.4g}" for lam, v in medians.items())
    others = "; ".join(f"{t}: {results[t][0]}" for t in results if t != task)
    text = (
        f"per task, median relative slow-down ttl(largest λ)/ttl(λ=0) − 1 of censored time-to-learn; "
        f"shown: {task} ({comp.describe()}); Bonferroni over {k} task(s): {100 * (1 - a_k):.3g}% bootstrap "
        f"CI, p × {k}; one-sided {'Wilcoxon signed-rank' if comp.design == 'paired' else 'Mann-Whitney U'}; "
        f"median ttl by λ: {shape}"
        + (f"; other tasks: {others}" if others else "")
        + (f"; not comparable: {'; '.join(reasons)}" if reasons else "")
        + (f"; not testable here (no search phase): {'; '.join(untestable)}" if untestable else "")
        + f"; verdict: {why}"
    )
    n_runs = int(sum(c.n_runs for _, c in per_task.values()))
    return Outcome(overall, text, n_runs, comp.effect, lo, hi, p, precondition="; ".join(preconditions))
