"""Loss-drop detection (plateau + fast fall) on synthetic curves with known answers, and time-to-learn."""

import numpy as np
import pytest
from scipy.special import expit

from rnngeom.analysis.loss_drop import WIDTH_PER_SCALE, detect_loss_drop, time_to_learn

ITS = np.arange(0, 5001, 10)


def noisy(log_loss, sd=0.05, seed=0):
    return 10 ** (log_loss + np.random.default_rng(seed).normal(0, sd, len(log_loss)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_drop_found_at_known_step(seed):
    log_loss = -0.5 - 1.5 * expit((ITS - 3000) / 50)  # 1.5 decades lost around iteration 3000
    d = detect_loss_drop(ITS, noisy(log_loss, seed=seed))
    assert d.abrupt and d.reason == "abrupt"
    assert abs(d.t_drop - 3000) <= 10
    assert d.drop_decades == pytest.approx(1.5, abs=0.1)
    assert d.drop_start < d.t_drop < d.drop_end
    assert d.drop_width == pytest.approx(
        WIDTH_PER_SCALE * 50, rel=0.2
    )  # true 10-90% width: 2 ln 9 · 50 ≈ 220
    assert d.drop_width_rel == pytest.approx(d.drop_width / 5000)
    assert d.plateau_length > 2000 and d.plateau_loss == pytest.approx(10**-0.5, rel=0.2)
    assert d.plateau_fraction == pytest.approx(d.plateau_length / 5000)


@pytest.mark.parametrize("n_iterations", [600, 2000, 20000])
@pytest.mark.parametrize("eval_every", [10, 50, 100])
def test_same_sigmoid_same_answer_whatever_run_length_and_eval_interval(n_iterations, eval_every):
    """A plateau then a sigmoid fall (at 60 % of the run, off the evaluation grid, with small noise on the
    log-loss): t_drop within one evaluation step and the 10-90 % width within 20 %, and abrupt whenever the
    fall is at most max_width_frac of the run. The width is at least 3 evaluation steps (else
    unresolvable)."""
    its = np.arange(0, n_iterations + 1, eval_every)
    width = max(0.05 * n_iterations, 3 * eval_every)
    t_mid = 0.6 * n_iterations + 0.37 * eval_every
    for seed in (0, 1):
        d = detect_loss_drop(
            its, noisy(-0.3 - 1.5 * expit((its - t_mid) * WIDTH_PER_SCALE / width), 0.03, seed)
        )
        assert abs(d.t_drop - t_mid) <= eval_every
        assert d.drop_width == pytest.approx(width, rel=0.2)
        assert abs(d.plateau_length - (t_mid - width / 2)) <= eval_every + 0.1 * width  # from iteration 0
        assert d.abrupt == (width <= 0.1 * n_iterations), d.reason


def test_a_step_between_two_evaluations_is_abrupt_and_narrower_than_one_step():
    its = np.arange(0, 1001, 50)
    d = detect_loss_drop(its, np.where(its < 610, 1.0, 0.01))
    assert d.abrupt and 600 <= d.t_drop <= 650 and d.drop_width < 50
    assert d.drop_decades == pytest.approx(2.0, abs=1e-3)


@pytest.mark.parametrize("n_iterations", [600, 2000, 20000])
@pytest.mark.parametrize("eval_every", [10, 100])
def test_exponential_and_power_law_decays_are_never_abrupt(n_iterations, eval_every):
    its = np.arange(0, n_iterations + 1, eval_every)
    curves = {
        "0.2 + 0.8 exp(-t/100)": 0.2 + 0.8 * np.exp(-its / 100),
        "exp, tau = run/10": 0.05 + 0.95 * np.exp(-its / (n_iterations / 10)),
        "1/t": 1 / (1 + its / 10),
        "1/t, slow": 1 / (1 + its / (n_iterations / 20)),
    }
    for name, loss in curves.items():
        d = detect_loss_drop(its, loss * noisy(np.zeros(len(its)), 0.02))
        assert not d.abrupt, (name, d)


def test_learned_by_iteration_50_without_a_plateau_is_not_abrupt():
    its = np.arange(0, 2001, 10)
    d = detect_loss_drop(its, noisy(np.log10(0.01 + 0.99 * expit(-(its - 30) / 5)), 0.02))
    assert d.drop_decades > 1.5 and d.t_drop < 50  # a big, fast fall ...
    assert not d.abrupt and "no plateau" in d.reason  # ... but no plateau before it


def test_steep_search_phase_does_not_hide_the_main_drop():
    # fast fall of 0.6 decades in the first ~50 iterations, plateau, then the main 1.5-decade drop at 3000
    log_loss = 0.1 - 0.6 * expit((ITS - 60) / 10) - 1.5 * expit((ITS - 3000) / 50)
    d = detect_loss_drop(ITS, noisy(log_loss, sd=0.03))
    assert d.abrupt and abs(d.t_drop - 3000) <= 10
    assert 80 <= d.plateau_start <= 300 and d.plateau_length > 2000  # the search phase ends by ~100


def test_flat_noisy_curve_has_no_drop():
    d = detect_loss_drop(ITS, noisy(np.full(len(ITS), -0.7), sd=0.1))
    assert not d.abrupt and np.isnan(d.t_drop) and np.isnan(d.plateau_length)
    assert "min_drop_decades" in d.reason


def test_gradual_decline_is_not_abrupt():
    d = detect_loss_drop(ITS, noisy(-2.0 * ITS / ITS[-1], sd=0.03))  # 2 decades, steadily
    assert not d.abrupt and ("gradual" in d.reason or "min_drop_decades" in d.reason)
    slow_sigmoid = detect_loss_drop(ITS, noisy(-0.3 - 1.5 * expit((ITS - 2500) / 400), sd=0.03))
    assert (
        not slow_sigmoid.abrupt and "gradual" in slow_sigmoid.reason
    )  # 10-90 % over 1760 of 5000 iterations


@pytest.mark.parametrize("decline", [0.0, 1.0, 2.0])
def test_drop_followed_by_a_steady_decline_is_still_abrupt(decline):
    """Training losses keep falling after the drop: the fall's width is not stretched over that tail."""
    its = np.arange(0, 2001, 50)
    log_loss = -0.3 - expit((its - 1000) / 20) - decline * np.clip(its - 1000, 0, None) / 1000
    d = detect_loss_drop(its, noisy(log_loss, sd=0.02))
    assert d.abrupt and abs(d.t_drop - 1000) <= 50
    assert d.drop_width == pytest.approx(WIDTH_PER_SCALE * 20, rel=0.2) and d.drop_decades == pytest.approx(
        1, abs=0.1
    )


def test_robust_to_nan_spikes_and_unsorted_input():
    log_loss = -0.5 - 1.5 * expit((ITS - 3000) / 50)
    loss = noisy(log_loss, seed=4)
    loss[::37] = np.nan
    loss[5::41] *= 30.0  # occasional spikes
    perm = np.random.default_rng(0).permutation(len(ITS))
    d = detect_loss_drop(ITS[perm], loss[perm])
    assert d.abrupt and abs(d.t_drop - 3000) <= 10


def test_short_or_empty_curves():
    assert not detect_loss_drop([0, 1, 2], [1.0, 0.5, 0.1]).abrupt
    assert detect_loss_drop([], []).reason.startswith("too few points")


def test_time_to_learn():
    its = [0, 100, 200, 300, 400]
    acc = [0.1, 0.95, 0.5, 0.92, 0.97]
    assert time_to_learn(its, acc, 0.9) == 100
    assert time_to_learn(its, acc, 0.9, sustain=2) == 300
    assert time_to_learn(its, acc, 0.99) is None
    assert time_to_learn(its, [np.nan, 0.2, np.nan, 0.91, 0.5], 0.9) == 300
