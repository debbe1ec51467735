"""C2, geometric restructuring (GR) precedes the loss drop: it happens on the plateau, just before the loss
starts to fall, and more so than plain weight motion.

Runs: those of the claim with an ``abrupt`` drop (a flat plateau, then a fast escape), aligned on the drop's
**onset** ``t_onset`` (runs.tsv; ``rnngeom.analysis.loss_drop``: the loss leaves its plateau band), not on its
midpoint, so "before" means on the plateau. A run enters with ≥ ``C2_MIN_TRANSITIONS`` (8) scored checkpoint
transitions of GR and a weight-motion series.

*Statistic.* Per run, S(t) = mean calibrated GR ratio r_k = gr_score / gr_null_q (checkpoints.tsv) over the
``C2_WINDOW`` (3) checkpoint transitions ending at or before iteration t (``gr_window_at``). S at the run's
own t_onset is ranked among S at the t_onset of every other run of its condition (``C2_CONDITION``: stratum, λ
and n_iterations; mapped by iteration; onsets at which the window does not fit the run's series are skipped):
u = (mid-rank − 1)/(m − 1) in [0, 1], 1 = more restructuring just before its own onset than just before any
other run's (``gr_drop_ranks``). This compares each run with itself at the same iterations, so it keeps each
run's own GR series (noise, autocorrelation, events, trend over training), and the reference times are the
onsets' real timing distribution. Effect = mean u over runs (null 0.5); CI: percentile bootstrap over runs.

*Test.* A between-run permutation (``gr_drop_permutation_test``): the onsets are reassigned across the runs of
each condition at random, p = (1 + #{T_b ≥ T}) / (1 + B), B = n_boot. Exact when the onsets are exchangeable
within a condition (GR independent of the drop, the runs of a condition differing only in seed), whatever the
trend. A run is used when its window fits at its own onset and at another onset of its condition
(``gr_drop_test``); conditions of n_g used runs give Π n_g! orderings, and the test needs ≥
``C2_MIN_ORDERINGS`` (120 = 5!, e.g. 5 runs of one condition, so that p can go well below alpha), else
"not testable here" (the precondition, with the counts).

*Control.* The same test on the weight motion ‖Δθ‖ between the same checkpoints (checkpoints.tsv
``param_change``), on the runs the GR test used, gets its own verdict in the ``control*`` columns: if it is
supported too, "restructuring" says no more than "the weights moved". GR against the control, run by run: the
difference u_GR − u_‖Δθ‖ (mean, bootstrap CI, one-sided Wilcoxon signed-rank p), in the text. C2's verdict
rests on GR alone; the control and the comparison are reported beside it. The text also counts the runs with
a calibrated event (ratio > 1) in their pre-onset window.

*Why not simpler tests.* The first calibrated event t_GR is the first of many chances to fire, so
P(t_GR < t_drop) is far above 0.5 when GR is independent of the drop: no test on t_GR is used. Nor is a
within-run null (the pre-drop window ranked among all window positions of the run's own series): it assumes a
stationary GR series and a drop at a uniformly random position, but GR is largest early in training (the
search phase) and drops come mid-run, and then that test is anti-conservative (22 % false positives at alpha
0.05 on the trending simulated null).

*Calibration* (``python -m rnngeom.claims.sim``; 10,000 simulated null experiments of 20 runs, alpha 0.05):
false positives 4.4 % on a stationary, 4.6 % on a trending null; 5.3 % when each run has its own length with
its GR trend and drop time scaled to it (drop times then not exchangeable); power with a GR event planted
before every drop 99.6 % (trending). The control: 4.3 % false positives; GR minus control: 5.0 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.stats import percentile_ci, signed_rank_greater
from rnngeom.claims.tcr_effect import STRATUM
from rnngeom.claims.verdict import NotRun, NotTestable, Outcome, decide
from rnngeom.io import as_bool

C2_WINDOW = 3  # C2: the GR transitions into the last 3 checkpoints at or before t_drop are "before the drop"
C2_MIN_TRANSITIONS = 8  # C2: scored transitions a run needs (a window at its own and at other drop times)
C2_MIN_ORDERINGS = math.factorial(5)  # C2: orderings of drop times within conditions a permutation needs
C2_CONDITION = STRATUM + ["lambda_tcr", "n_iterations"]  # C2: runs whose drop times are exchangeable
RATIO_FLOOR = 1e-12  # C2: floor of gr_null_q in the calibrated ratio gr_score / gr_null_q


def gr_window_at(
    its: np.ndarray, ratios: np.ndarray, times: np.ndarray, window: int = C2_WINDOW
) -> np.ndarray:
    """C2, one run: S(t) = mean calibrated GR ratio over the ``window`` scored transitions ending at or before
    t, for each t of ``times`` (iterations); NaN where that window does not fit the series: t before the end
    of its ``window``-th transition, or more than one checkpoint interval after its last."""
    its, ratios, times = (np.asarray(a, dtype=float) for a in (its, ratios, times))
    if len(its) != len(ratios) or len(its) < window + 1:
        raise ValueError(f"a GR series needs ≥ {window + 1} transitions with iterations, got {len(ratios)}")
    means = np.convolve(ratios, np.ones(window) / window, mode="valid")  # [k]: window ending at k+window-1
    window_end = np.searchsorted(its, times, side="right") - 1  # last transition ending ≤ t
    fits = (window_end >= window - 1) & (times <= its[-1] + (its[-1] - its[-2]))
    return np.where(fits, means[np.clip(window_end - (window - 1), 0, len(means) - 1)], np.nan)


def gr_drop_ranks(
    series: list[tuple[np.ndarray, np.ndarray]], t_drop: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """C2, all runs: U[i, j] = u of run i's GR window at run j's drop time, j in i's group (else NaN).

    Row i holds S_i(t_drop_j) (``gr_window_at``) for every run j of its group whose drop time fits run i's
    series, mid-ranked among themselves and scaled to [0, 1]: U[i, i] = 1 means run i restructures more
    just before its own drop than just before any other run's drop. Rows with fewer than two fitting drop
    times are all NaN (nothing to rank against).
    """
    t_drop, groups = np.asarray(t_drop, dtype=float), np.asarray(groups)
    if not len(series) == len(t_drop) == len(groups):
        raise ValueError(f"{len(series)} series, {len(t_drop)} drop times and {len(groups)} groups differ")
    same_group = groups[:, None] == groups[None, :]
    values = np.array([gr_window_at(its, ratio, t_drop) for its, ratio in series]).reshape(len(t_drop), -1)
    values[~same_group] = np.nan
    ranks = np.full_like(values, np.nan)
    for row, u in zip(values, ranks):
        ok = np.isfinite(row)
        if ok.sum() >= 2:
            u[ok] = (stats.rankdata(row[ok]) - 1) / (ok.sum() - 1)  # (mid-rank − 1) / (m − 1)
    return ranks


def gr_drop_permutation_test(
    ranks: np.ndarray, groups: np.ndarray, rng: np.random.Generator, n_perm: int
) -> tuple[float, float]:
    """C2, all runs: (T = mean over runs of U[i, i], one-sided permutation p).

    Null (GR independent of the drop): the drop times are exchangeable across the runs of a group, so every
    reassignment of them within groups is as likely as the observed one. T_b = mean of U[i, π_b(i)] over
    the runs whose reassigned drop time fits their series; p = (1 + #{T_b ≥ T}) / (1 + n_perm). Exact for
    any trend of GR over training and any distribution of the drop times.
    """
    ranks, groups = np.asarray(ranks, dtype=float), np.asarray(groups)
    n = len(ranks)
    if not np.isfinite(np.diag(ranks)).all():
        raise ValueError("every run needs a rank at its own drop time (drop runs without one first)")
    _, codes = np.unique(groups, return_inverse=True)
    by_group = np.argsort(codes, kind="stable")
    shuffled = np.argsort(codes[by_group] + rng.random((n_perm, n)), axis=1)  # a permutation within groups
    assigned = np.empty_like(shuffled)
    assigned[:, by_group] = by_group[shuffled]  # assigned[b, i]: the run whose drop time run i gets
    null = np.nanmean(ranks[np.arange(n), assigned], axis=1)
    t_obs = float(np.diag(ranks).mean())
    return t_obs, float((1 + np.sum(null >= t_obs - 1e-12)) / (1 + n_perm))


def gr_drop_test(
    series: list[tuple[np.ndarray, np.ndarray]],
    t_drop: np.ndarray,
    groups: np.ndarray,
    rng: np.random.Generator,
    n_perm: int,
) -> tuple[np.ndarray, float, np.ndarray]:
    """C2: (u at the own drop time per used run, permutation p, mask of the runs used) on runs with a drop.

    A run is used when its own pre-drop window fits its series and at least one other drop time of its group
    fits it too (ranks are recomputed without the runs left out, until none is). Groups of n_g used runs
    give Π n_g! orderings of the drop times; fewer than ``C2_MIN_ORDERINGS`` (5! = 120: p could not go much
    below alpha): p = NaN.
    """
    used = np.isfinite([gr_window_at(its, ratio, [t])[0] for (its, ratio), t in zip(series, t_drop)])
    t_drop, groups = np.asarray(t_drop, dtype=float), np.asarray(groups)
    while True:
        idx = np.flatnonzero(used)
        if len(idx) < 2:
            return np.full(len(idx), np.nan), math.nan, used
        ranks = gr_drop_ranks([series[i] for i in idx], t_drop[idx], groups[idx])
        ranked = np.isfinite(np.diag(ranks))
        if ranked.all():
            break
        used[idx[~ranked]] = False
    _, group_sizes = np.unique(groups[idx], return_counts=True)
    if sum(math.lgamma(k + 1) for k in group_sizes) < math.log(C2_MIN_ORDERINGS) - 1e-9:
        return np.diag(ranks), math.nan, used
    _, p = gr_drop_permutation_test(ranks, groups[idx], rng, n_perm)
    return np.diag(ranks), p, used


def checkpoint_series(checkpoints: pd.DataFrame, value: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per run: (iterations, values) of its scored checkpoint transitions, for ``value`` "gr_ratio" (the
    calibrated GR ratio gr_score / gr_null_q) or "param_change" (‖θ_k − θ_{k−1}‖, the weight motion)."""
    if value == "gr_ratio":
        score = pd.to_numeric(checkpoints["gr_score"], errors="coerce")
        null_q = pd.to_numeric(checkpoints["gr_null_q"], errors="coerce")
        values = score / np.maximum(null_q, RATIO_FLOOR)
    elif value == "param_change":
        values = pd.to_numeric(checkpoints["param_change"], errors="coerce")
    else:
        raise ValueError(f"unknown checkpoint series {value!r}")
    ck = checkpoints.assign(_value=values)
    ck = ck[np.isfinite(ck["_value"])]
    return {
        run_id: (c["iteration"].to_numpy(float), c["_value"].to_numpy(float))
        for run_id, c in ck.sort_values(["run_id", "iteration"], kind="stable").groupby("run_id")
    }


def gr_series(checkpoints: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per run: (iterations, calibrated ratio gr_score / gr_null_q) of its scored checkpoint transitions."""
    return checkpoint_series(checkpoints, "gr_ratio")


@dataclass
class Alignment:
    """C2's between-run test of one checkpoint series at the runs' onsets (see ``aligned_at_onset``)."""

    run_ids: list  # the runs used
    u: np.ndarray  # per used run: rank of its window at its own onset among the other onsets of its condition
    p_value: float
    effect: float  # mean u
    ci_low: float
    ci_high: float

    @property
    def n(self) -> int:
        return len(self.run_ids)


def aligned_at_onset(series: dict, runs: pd.DataFrame, groups: np.ndarray, d: ClaimData) -> Alignment | None:
    """The between-run permutation test (``gr_drop_test``) of ``series`` at the runs' t_onset; None when the
    used runs give fewer than C2_MIN_ORDERINGS orderings of the onsets within their conditions."""
    observed, p, used = gr_drop_test(
        [series[r] for r in runs["run_id"]], runs["t_onset"].to_numpy(float), groups, d.rng, d.n_boot
    )
    if not np.isfinite(p):
        return None
    n = int(used.sum())
    lo, hi = percentile_ci(observed[d.rng.integers(0, n, size=(d.n_boot, n))].mean(axis=1), d.alpha)
    ids = list(runs["run_id"][used])
    return Alignment(ids, observed, p, float(observed.mean()), lo, hi)


@dataclass
class C2Test:
    """C2 on one claim's runs (``c2_test``): the runs it uses, its test of GR at their onsets, the control on
    the weight motion and the run-by-run comparison of the two; what the claim table reports, in numbers."""

    gr: dict  # run_id -> (iterations, calibrated GR ratio) of its scored transitions (``gr_series``)
    motion: dict  # run_id -> (iterations, ‖Δθ‖) (``checkpoint_series`` "param_change"); {} without the column
    n_runs: int  # the claim's runs
    on_plateau: pd.DataFrame  # the runs with an abrupt drop (t_onset numeric)
    scored: pd.DataFrame  # of those, ≥ C2_MIN_TRANSITIONS scored GR transitions and a weight-motion series
    strata: list  # the columns of C2_CONDITION present: a condition = one value of each
    groups: np.ndarray  # the condition of each scored run ("/"-joined values of ``strata``)
    main: Alignment | None = None  # GR at the onsets; None: too few orderings of the onsets (not testable)
    verdict: tuple[str, str] = ("", "")  # (verdict, why) of GR by the verdict rule
    control: Alignment | None = None  # ‖Δθ‖ at the onsets, on the runs ``main`` used; None: not testable
    control_verdict: tuple[str, str] = ("", "")
    difference: np.ndarray | None = None  # per run of ``control``: u_GR − u_‖Δθ‖
    difference_ci: tuple[float, float] = (math.nan, math.nan)  # bootstrap CI of its mean
    difference_p: float = math.nan  # one-sided Wilcoxon signed-rank p (GR leads more than ‖Δθ‖)


def c2_test(d: ClaimData) -> C2Test:
    """C2's runs and tests on ``d`` (see the module docstring); raises NotRun when the tables lack the
    loss-drop columns or the calibrated GR scores. The random draws (permutations, bootstraps) come from
    ``d.rng`` in a fixed order, so the same ``d`` gives the claim table's numbers."""
    runs = d.runs
    ck = d.table("checkpoints")
    if not {"t_onset", "abrupt"} <= set(runs.columns):
        raise NotRun("runs.tsv has no t_onset / abrupt columns (no loss-drop analysis)")
    if ck.empty or not {"gr_score", "gr_null_q"} <= set(ck.columns):
        raise NotRun("no calibrated GR scores (checkpoints.tsv gr_score, gr_null_q) for these runs")
    gr = gr_series(ck)
    motion = checkpoint_series(ck, "param_change") if "param_change" in ck.columns else {}
    on_plateau = runs[as_bool(runs["abrupt"]).eq(True)].assign(
        t_onset=lambda r: pd.to_numeric(r["t_onset"], errors="coerce")
    )
    scored = on_plateau[
        [r in gr and len(gr[r][1]) >= C2_MIN_TRANSITIONS and r in motion for r in on_plateau["run_id"]]
    ]
    strata = [c for c in C2_CONDITION if c in runs.columns]  # (an empty selection keeps no columns)
    out = C2Test(gr, motion, len(runs), on_plateau, scored, strata, np.array([], dtype=str))
    if scored.empty:
        return out
    out.groups = scored[strata].astype(str).agg("/".join, axis=1).to_numpy()
    out.main = main = aligned_at_onset(gr, scored, out.groups, d)
    if main is None:
        return out
    out.verdict = decide(
        main.effect, main.ci_low, main.ci_high, main.p_value, n=main.n, null=0.5, alpha=d.alpha
    )
    # The control: the same test on the plain weight motion between the same checkpoints, on the same runs.
    in_main = scored["run_id"].isin(main.run_ids).to_numpy()
    out.control = control = aligned_at_onset(motion, scored[in_main], out.groups[in_main], d)
    if control is None:
        return out
    out.control_verdict = decide(
        control.effect, control.ci_low, control.ci_high, control.p_value, n=control.n, null=0.5, alpha=d.alpha
    )
    # GR vs weight motion, run by run: does restructuring lead the drop more than the weights' motion?
    u_gr = dict(zip(main.run_ids, main.u))
    diff = np.array([u_gr[r] - u for r, u in zip(control.run_ids, control.u) if r in u_gr])
    out.difference = diff
    out.difference_ci = percentile_ci(
        diff[d.rng.integers(0, len(diff), size=(d.n_boot, len(diff)))].mean(axis=1), d.alpha
    )
    out.difference_p = signed_rank_greater(diff)
    return out


def claim_c2(d: ClaimData) -> Outcome:
    c2 = c2_test(d)
    main, control = c2.main, c2.control
    precondition = (
        f"abrupt drops (a flat plateau, then a fast escape) in {len(c2.on_plateau)} of {c2.n_runs} runs, "
        f"{len(c2.scored)} of them with ≥ {C2_MIN_TRANSITIONS} scored transitions of GR and weight motion; "
        f"the permutation needs ≥ {C2_MIN_ORDERINGS} orderings of their onsets within conditions "
        f"({'/'.join(c2.strata)}), e.g. 5 runs of one condition"
    )
    if main is None:
        raise NotTestable(precondition)
    verdict, why = c2.verdict
    control_fields, comparison = {}, "control not testable (too few runs with a weight-motion series)"
    if control is not None:
        c_verdict, c_why = c2.control_verdict
        control_fields = {
            "control": "‖Δθ‖ (weight motion) at the onset, same test",
            "control_effect": control.effect,
            "control_ci_low": control.ci_low,
            "control_ci_high": control.ci_high,
            "control_p_value": control.p_value,
            "control_verdict": c_verdict,
        }
        diff, (lo, hi) = c2.difference, c2.difference_ci
        comparison = (
            f"control ‖Δθ‖: mean u {control.effect:.3g} [{control.ci_low:.3g}, {control.ci_high:.3g}], "
            f"p = {control.p_value:.3g} -> {c_verdict} ({c_why}); GR minus control, per run: mean "
            f"{diff.mean():.3g} [{lo:.3g}, {hi:.3g}], one-sided Wilcoxon signed-rank p = "
            f"{c2.difference_p:.3g} ({len(diff)} runs)"
        )
    used = c2.scored[c2.scored["run_id"].isin(main.run_ids)]
    strata = "/".join(c2.strata)
    events_before = 0
    for run_id, t in zip(used["run_id"], used["t_onset"]):
        its, ratio = c2.gr[run_id]
        window_end = int(np.searchsorted(its, t, side="right"))  # one past the last transition ending ≤ t
        events_before += bool((ratio[window_end - C2_WINDOW : window_end] > 1).any())
    text = (
        f"GR on the plateau, aligned on the onset of the drop (t_onset: the loss has left its plateau "
        f"band), between runs: per run, S(t) = mean calibrated GR ratio gr_score/gr_null_q over the "
        f"{C2_WINDOW} checkpoint transitions ending at or before t; S at the run's own t_onset ranked among "
        f"S at the t_onset of the other runs of its condition ({strata}; u = 0..1, 0.5 = chance); "
        f"effect = mean u, {main.n} runs with an abrupt drop; {100 * (1 - d.alpha):g}% bootstrap CI over "
        f"runs; one-sided permutation test (onsets reassigned across runs within conditions, {d.n_boot} "
        f"permutations); {events_before}/{main.n} runs have a calibrated event (ratio > 1) in the window; "
        f"{comparison}; verdict (GR): {why}"
    )
    return Outcome(
        verdict,
        text,
        main.n,
        main.effect,
        main.ci_low,
        main.ci_high,
        main.p_value,
        precondition=precondition,
        control=control_fields,
    )
