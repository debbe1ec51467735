"""Simulated GR score series for claim C2: null runs (GR timing independent of the drop) and planted runs (a
GR event just before the drop). The tests and the README's false-positive rate and power come from this code.

A run has 20-30 scored checkpoint transitions. Its calibrated GR ratio gr_score / gr_null_q is log-normal
around ``BASELINE`` (below the event threshold 1) with AR(1) noise on the log scale (autocorrelation
``PHI``), plus sporadic calibrated events (ratio pushed above 1) at random transitions, independent of the
drop. The drop sits at a random transition. Planted runs add one more event at a random transition of the
pre-drop window.

    python -m rnngeom.claims_sim   # prints the measured false-positive rate and power
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from rnngeom.claims import C2_MIN_TRANSITIONS, C2_WINDOW, gr_lead_test, gr_shift_ranks

BASELINE = 0.5  # median calibrated ratio between events
PHI = 0.7  # AR(1) coefficient of the log ratio between consecutive transitions
NOISE_SD = 0.5  # stationary sd of the log ratio
EVENT_RATE = 0.1  # per transition: chance of a spontaneous (drop-independent) event
EVENT_LOG_SIZE = 1.5  # an event multiplies the ratio by e^1.5 ≈ 4.5 (ratio ≈ 2.2: above the threshold 1)
N_TRANSITIONS = (20, 30)  # inclusive range of scored transitions per run
EVAL_EVERY = 100  # checkpoint interval (iterations) of the simulated tables


def simulate_run(rng: np.random.Generator, planted: bool) -> tuple[np.ndarray, int]:
    """One run: (calibrated ratios per transition, index of the last transition at or before t_drop)."""
    n = int(rng.integers(N_TRANSITIONS[0], N_TRANSITIONS[1] + 1))
    innovations = rng.standard_normal(n) * NOISE_SD * np.sqrt(1 - PHI**2)
    innovations[0] = rng.standard_normal() * NOISE_SD  # start in the stationary distribution
    log_ratio = lfilter([1.0], [1.0, -PHI], innovations)  # AR(1): x_k = PHI x_{k-1} + e_k
    log_ratio += EVENT_LOG_SIZE * (rng.random(n) < EVENT_RATE)
    window_end = int(rng.integers(C2_WINDOW - 1, n))  # the drop at a random place
    if planted:
        log_ratio[window_end - int(rng.integers(0, C2_WINDOW))] += EVENT_LOG_SIZE
    return BASELINE * np.exp(log_ratio), window_end


def rejection_rate(n_experiments: int, n_runs: int, planted_fraction: float = 0.0, *, alpha: float = 0.05,
                   n_perm: int = 1000, seed: int = 0) -> float:
    """Fraction of simulated experiments (``n_runs`` runs each, a fraction ``planted_fraction`` of them with a
    planted GR event before the drop) in which the C2 test rejects at ``alpha``."""
    rng = np.random.default_rng(seed)
    n_planted = round(planted_fraction * n_runs)
    rejections = 0
    for _ in range(n_experiments):
        ranks = [gr_shift_ranks(*simulate_run(rng, planted=i < n_planted)) for i in range(n_runs)]
        _, p = gr_lead_test(ranks, rng, n_perm)
        rejections += p < alpha
    return rejections / n_experiments


def simulated_tables(rng: np.random.Generator, n_runs: int, planted: bool) -> dict[str, pd.DataFrame]:
    """runs (run_id, t_drop) and checkpoints (run_id, iteration, gr_score, gr_null_q) of simulated runs, as
    rnngeom.aggregate writes them (the first checkpoint has no incoming transition: NaN score)."""
    runs, parts = [], []
    for i in range(n_runs):
        ratio, window_end = simulate_run(rng, planted)
        assert len(ratio) >= C2_MIN_TRANSITIONS
        its = EVAL_EVERY * np.arange(len(ratio) + 1)
        null_q = rng.uniform(5.0, 20.0, len(ratio))  # per-pair thresholds vary; only the ratio matters
        score, null_q = np.r_[np.nan, ratio * null_q], np.r_[np.nan, null_q]
        parts.append(
            pd.DataFrame({"run_id": f"sim/{i}", "iteration": its, "gr_score": score, "gr_null_q": null_q})
        )
        t_drop = its[window_end + 1] + rng.uniform(0, EVAL_EVERY - 1)  # after the window's last checkpoint
        runs.append({"run_id": f"sim/{i}", "t_drop": float(t_drop)})
    return {"runs": pd.DataFrame(runs), "checkpoints": pd.concat(parts, ignore_index=True)}


def main() -> int:
    n_experiments, n_runs = 2000, 20
    print(f"C2 test, {n_experiments} simulated experiments of {n_runs} runs each, alpha = 0.05:")
    for fraction in (0.0, 0.5, 1.0):
        rate = rejection_rate(n_experiments, n_runs, fraction, seed=1)
        what = f"GR planted in {fraction:.0%} of runs (power)" if fraction else "null (false-positive rate)"
        print(f"  {what}: {rate:.3f} rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
