"""Simulated GR score series for claim C2: null runs (GR timing independent of the drop) of three kinds and
planted runs (a GR event on the plateau, just before the drop's onset); and the weight-motion series of its
control. The tests and docs/claims.md's false-positive rates and power come from this code.

The drop's reference time is its onset t_onset (the loss leaves its plateau band; rnngeom.analysis.loss_drop):
"before the drop" means on the plateau, in the window of transitions ending at or before the onset.

A run has 20-30 scored checkpoint transitions (``N_TRANSITIONS``), one every ``EVAL_EVERY`` iterations. Its
calibrated GR ratio gr_score / gr_null_q is log-normal below the event threshold 1, with AR(1) noise on the
log scale (autocorrelation ``PHI``), plus sporadic calibrated events (ratio pushed above 1) at random
transitions, independent of the drop. The nulls:

* ``stationary``: a constant GR level and event rate; the drop at a uniformly random transition.
* ``trending`` (what training looks like): the log GR level falls by ``TREND_LOG_FALL`` over the run and
  events are ``EVENT_RATE_EARLY`` likely at the start, ``EVENT_RATE_LATE`` at the end (the search phase
  restructures most); the drop at a Beta(4, 4) fraction of the run (mid-run), drawn independently of the GR.
  All runs share one schedule of ``TREND_N_TRANSITIONS`` transitions, as the runs of one condition do.
* ``trending_mixed_lengths``: as ``trending``, but each run has its own length (20-30 transitions), its GR
  trend and its drop both scaled to it: drop times are then not exchangeable across runs (a stress test of
  the between-run test beyond the condition it is exact under).

Planted runs add one more event at a random transition of the pre-onset window.

The control series, ‖Δθ‖ between the same checkpoints (``simulate_motion``): log-normal with the trending
null's fall of its level and the same AR(1) noise, no events; with ``bump`` the weights move e^1.5 times
faster in the pre-onset window (weights accelerating before the drop). The C2 report compares GR with it
run by run (``paired_rejection_rate``: one-sided Wilcoxon signed-rank test of u_GR − u_motion).

Two C2 tests are compared:
the within-run shift test (the drop's window ranked among all window positions of the run's own series;
exact only if that position is uniform and the series stationary) and the between-run permutation test of
``rnngeom.claims.gr_drop`` (the one claim C2 uses).

    python -m rnngeom.claims.sim   # prints the measured false-positive rates and power of both tests
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from rnngeom.claims.gr_drop import C2_WINDOW, gr_drop_test
from rnngeom.claims.stats import signed_rank_greater

BASELINE = 0.5  # median calibrated ratio between events (the mid-run level of the trending null)
PHI = 0.7  # AR(1) coefficient of the log ratio between consecutive transitions
NOISE_SD = 0.5  # stationary sd of the log ratio
EVENT_RATE = 0.1  # stationary null, per transition: chance of a spontaneous (drop-independent) event
EVENT_RATE_EARLY, EVENT_RATE_LATE = 0.25, 0.02  # trending null: event chance at the first / last transition
TREND_LOG_FALL = 1.5  # trending null: the log GR level falls by 1.5 from the first to the last transition
DROP_BETA = (4.0, 4.0)  # trending null: t_drop / run length ~ Beta(4, 4) (mid-run)
EVENT_LOG_SIZE = 1.5  # an event multiplies the ratio by e^1.5 ≈ 4.5 (ratio ≈ 2.2: above the threshold 1)
N_TRANSITIONS = (20, 30)  # inclusive range of scored transitions per run
EVAL_EVERY = 100  # checkpoint interval (iterations) of the simulated tables
TREND_N_TRANSITIONS = 25  # trending null: the shared schedule
NULLS = ("stationary", "trending", "trending_mixed_lengths")


def simulate_run(rng: np.random.Generator, planted: bool, null: str = "stationary") -> tuple[np.ndarray, int]:
    """One run: (calibrated ratios per transition, index of the last transition at or before t_drop).

    Transition k ends at checkpoint iteration EVAL_EVERY·(k + 1); under the trending nulls a drop whose
    pre-drop window does not fit (t_drop before the third transition) gives index < C2_WINDOW − 1."""
    if null not in NULLS:
        raise ValueError(f"null must be one of {NULLS}, got {null!r}")
    n = int(rng.integers(N_TRANSITIONS[0], N_TRANSITIONS[1] + 1))
    if null == "trending":
        n = TREND_N_TRANSITIONS
    innovations = rng.standard_normal(n) * NOISE_SD * np.sqrt(1 - PHI**2)
    innovations[0] = rng.standard_normal() * NOISE_SD  # start in the stationary distribution
    log_ratio = lfilter([1.0], [1.0, -PHI], innovations)  # AR(1): x_k = PHI x_{k-1} + e_k
    if null == "stationary":
        log_ratio += EVENT_LOG_SIZE * (rng.random(n) < EVENT_RATE)
        window_end = int(rng.integers(C2_WINDOW - 1, n))  # the drop at a random place
    else:
        progress = np.linspace(0.0, 1.0, n)
        log_ratio += TREND_LOG_FALL * (0.5 - progress)
        event_rate = EVENT_RATE_EARLY + (EVENT_RATE_LATE - EVENT_RATE_EARLY) * progress
        log_ratio += EVENT_LOG_SIZE * (rng.random(n) < event_rate)
        t_drop = rng.beta(*DROP_BETA) * EVAL_EVERY * n
        window_end = int(t_drop // EVAL_EVERY) - 1  # transition k ends at EVAL_EVERY·(k + 1)
    if planted and window_end >= C2_WINDOW - 1:
        log_ratio[window_end - int(rng.integers(0, C2_WINDOW))] += EVENT_LOG_SIZE
    return BASELINE * np.exp(log_ratio), window_end


def simulate_motion(rng: np.random.Generator, n: int, window_end: int, bump: bool = False) -> np.ndarray:
    """‖Δθ‖ per transition of a run with ``n`` transitions (see the module docstring)."""
    innovations = rng.standard_normal(n) * NOISE_SD * np.sqrt(1 - PHI**2)
    innovations[0] = rng.standard_normal() * NOISE_SD
    log_motion = lfilter([1.0], [1.0, -PHI], innovations) + TREND_LOG_FALL * (0.5 - np.linspace(0.0, 1.0, n))
    if bump and window_end >= C2_WINDOW - 1:
        log_motion[window_end - C2_WINDOW + 1 : window_end + 1] += EVENT_LOG_SIZE
    return 0.01 * np.exp(log_motion)


def as_series(ratio: np.ndarray, window_end: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(checkpoint iterations of the transitions, t_drop) of a simulated run: t_drop lies after the window's
    last checkpoint and before the next (for a window that does not fit: before the first checkpoints)."""
    its = EVAL_EVERY * np.arange(1, len(ratio) + 1, dtype=float)
    return its, float(EVAL_EVERY * (max(window_end, -1) + 1) + rng.uniform(0, EVAL_EVERY - 1))


def within_run_shift_test(
    ratios: list[np.ndarray], window_ends: list[int], rng: np.random.Generator, n_perm: int
) -> float:
    """The within-run test C2 used before (kept here for comparison only): per run, u = mid-rank of the
    pre-drop window mean among the window means at every position of the run's own series, scaled to [0, 1];
    T = mean u over runs; null: an independent uniformly random window position per run. One-sided p."""
    rows = []
    for ratio, end in zip(ratios, window_ends):
        if end < C2_WINDOW - 1:
            continue
        means = np.convolve(ratio, np.ones(C2_WINDOW) / C2_WINDOW, mode="valid")
        below = (means[:, None] > means[None, :]).sum(axis=1)
        tied = (means[:, None] == means[None, :]).sum(axis=1) - 1
        u = (below + 0.5 * tied) / (len(means) - 1)
        rows.append(np.r_[u[end - (C2_WINDOW - 1)], np.delete(u, end - (C2_WINDOW - 1))])
    lengths = np.array([len(u) for u in rows])
    table = np.full((len(rows), lengths.max()), np.nan)
    for i, u in enumerate(rows):
        table[i, : len(u)] = u
    picks = (rng.random((n_perm, len(rows))) * lengths).astype(int)
    null = table[np.arange(len(rows)), picks].mean(axis=1)
    t_obs = table[:, 0].mean()
    return float((1 + np.sum(null >= t_obs - 1e-12)) / (1 + n_perm))


def between_run_test(
    ratios: list[np.ndarray], window_ends: list[int], rng: np.random.Generator, n_perm: int
) -> float:
    """Claim C2's test (``rnngeom.claims.gr_drop.gr_drop_test``) on simulated runs of one stratum, at their
    onsets: one-sided p."""
    series, t_drop = [], []
    for ratio, end in zip(ratios, window_ends):
        its, t = as_series(ratio, end, rng)
        series.append((its, ratio))
        t_drop.append(t)
    _, p, _ = gr_drop_test(series, np.array(t_drop), np.zeros(len(series)), rng, n_perm)
    return p


TESTS = {"within-run shift": within_run_shift_test, "between-run permutation": between_run_test}


def rejection_rate(
    n_experiments: int,
    n_runs: int,
    planted_fraction: float = 0.0,
    *,
    null: str = "stationary",
    test: str = "between-run permutation",
    alpha: float = 0.05,
    n_perm: int = 1000,
    seed: int = 0,
) -> float:
    """Fraction of simulated experiments (``n_runs`` runs each, a fraction ``planted_fraction`` of them with a
    planted GR event before the drop, the rest drawn from ``null``) in which ``test`` rejects at ``alpha``."""
    rng = np.random.default_rng(seed)
    n_planted = round(planted_fraction * n_runs)
    rejections = 0
    for _ in range(n_experiments):
        ratios, window_ends = zip(*(simulate_run(rng, i < n_planted, null) for i in range(n_runs)))
        rejections += TESTS[test](list(ratios), list(window_ends), rng, n_perm) < alpha
    return rejections / n_experiments


def paired_rejection_rate(
    n_experiments: int,
    n_runs: int,
    *,
    planted: bool,
    motion_bump: bool,
    null: str = "trending",
    alpha: float = 0.05,
    n_perm: int = 200,
    seed: int = 0,
) -> float:
    """Fraction of simulated experiments in which GR leads the onset more than the weight motion does: the
    one-sided Wilcoxon signed-rank test of u_GR − u_motion over runs (the comparison C2 reports) rejects at
    ``alpha``. GR planted or not, the motion bumped before the onset or not."""
    rng = np.random.default_rng(seed)
    rejections = 0
    for _ in range(n_experiments):
        gr, motion, t_onset = [], [], []
        for _ in range(n_runs):
            ratio, window_end = simulate_run(rng, planted, null)
            its, t = as_series(ratio, window_end, rng)
            gr.append((its, ratio))
            motion.append((its, simulate_motion(rng, len(ratio), window_end, motion_bump)))
            t_onset.append(t)
        groups = np.zeros(n_runs)
        u_gr, _, used_gr = gr_drop_test(gr, np.array(t_onset), groups, rng, n_perm)
        u_motion, _, used_motion = gr_drop_test(motion, np.array(t_onset), groups, rng, n_perm)
        by_run = dict(zip(np.flatnonzero(used_motion), u_motion))
        diff = np.array([u - by_run[i] for i, u in zip(np.flatnonzero(used_gr), u_gr) if i in by_run])
        rejections += signed_rank_greater(diff) < alpha
    return rejections / n_experiments


def simulated_tables(
    rng: np.random.Generator, n_runs: int, planted: bool, null: str = "stationary", motion_bump: bool = False
) -> dict[str, pd.DataFrame]:
    """runs (run_id, t_onset, abrupt) and checkpoints (run_id, iteration, gr_score, gr_null_q, param_change)
    of simulated runs, as rnngeom.aggregate writes them (the first checkpoint has no incoming transition:
    NaN score and weight motion)."""
    runs, parts = [], []
    for i in range(n_runs):
        ratio, window_end = simulate_run(rng, planted, null)
        its, t_onset = as_series(ratio, window_end, rng)
        motion = simulate_motion(rng, len(ratio), window_end, motion_bump)
        null_q = rng.uniform(5.0, 20.0, len(ratio))  # per-pair thresholds vary; only the ratio matters
        score, null_q = np.r_[np.nan, ratio * null_q], np.r_[np.nan, null_q]
        parts.append(
            pd.DataFrame(
                {
                    "run_id": f"sim/{i}",
                    "iteration": np.r_[0.0, its],
                    "gr_score": score,
                    "gr_null_q": null_q,
                    "param_change": np.r_[np.nan, motion],
                }
            )
        )
        runs.append({"run_id": f"sim/{i}", "t_onset": t_onset, "abrupt": True})
    return {"runs": pd.DataFrame(runs), "checkpoints": pd.concat(parts, ignore_index=True)}


def motion_rejection_rate(
    n_experiments: int, n_runs: int, bump: bool, *, alpha: float = 0.05, n_perm: int = 200, seed: int = 0
) -> float:
    """The control's rejection rate: C2's between-run test on simulated weight-motion series (trending level,
    no events), with or without the weights speeding up before the onset."""
    rng = np.random.default_rng(seed)
    rejections = 0
    for _ in range(n_experiments):
        series, t_onset = [], []
        for _ in range(n_runs):
            ratio, window_end = simulate_run(rng, False, "trending")  # only its onset is used
            its, t = as_series(ratio, window_end, rng)
            series.append((its, simulate_motion(rng, len(ratio), window_end, bump)))
            t_onset.append(t)
        _, p, _ = gr_drop_test(series, np.array(t_onset), np.zeros(n_runs), rng, n_perm)
        rejections += p < alpha
    return rejections / n_experiments


def main() -> int:
    n_null, n_planted, n_runs, n_perm = 10000, 1000, 20, 200  # many null experiments: the FPR to ± 0.004
    print(
        f"C2 tests on simulated experiments of {n_runs} runs each, alpha = 0.05, {n_perm} permutations "
        f"(rejection rate: false-positive rate over {n_null} null experiments, power over {n_planted}):"
    )
    for test in TESTS:
        for null in NULLS:
            for fraction in (0.0, 0.5, 1.0):
                n_experiments = n_planted if fraction else n_null
                rate = rejection_rate(
                    n_experiments, n_runs, fraction, null=null, test=test, n_perm=n_perm, seed=1
                )
                what = f"GR planted in {fraction:.0%} of runs" if fraction else "no GR before the drop"
                print(f"  {test}, {null} null, {what}: {rate:.3f}", flush=True)
    for bump in (False, True):
        rate = motion_rejection_rate(n_null if not bump else n_planted, n_runs, bump, n_perm=n_perm, seed=1)
        what = "weights speed up before the onset" if bump else "no weight-motion change at the onset"
        print(f"  control (weight motion), trending: {what}: {rate:.3f}", flush=True)
    for planted, bump in ((False, False), (False, True), (True, False), (True, True)):
        rate = paired_rejection_rate(
            n_planted, n_runs, planted=planted, motion_bump=bump, n_perm=n_perm, seed=2
        )
        print(
            f"  GR minus control (Wilcoxon, trending): GR planted {planted}, weights speed up {bump}: "
            f"{rate:.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
