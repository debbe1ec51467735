"""Loss-drop detection on synthetic curves with known answers, and time-to-learn."""

import numpy as np
import pytest

from rnngeom.analysis.loss_drop import detect_loss_drop, time_to_learn

ITS = np.arange(0, 5001, 10)


def sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


def noisy(log_loss, sd=0.05, seed=0):
    return 10 ** (log_loss + np.random.default_rng(seed).normal(0, sd, len(log_loss)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_drop_found_at_known_step(seed):
    log_loss = -0.5 - 1.5 * sigmoid((ITS - 3000) / 50)  # 1.5 decades lost around iteration 3000
    d = detect_loss_drop(ITS, noisy(log_loss, seed=seed))
    assert d.has_drop and d.reason == "drop"
    assert abs(d.t_drop - 3000) <= 60
    assert d.drop_decades == pytest.approx(1.5, abs=0.2)
    assert d.drop_start < d.t_drop < d.drop_end and d.drop_width < 500  # true 10-90% width: 2 ln 9 · 50 ≈ 220
    assert d.drop_sharpness == pytest.approx(100 * 0.8 * 1.5 / 220, rel=0.4)
    assert d.plateau_length > 2000 and d.plateau_loss == pytest.approx(10**-0.5, rel=0.2)


def test_steep_search_phase_does_not_hide_the_main_drop():
    # fast fall of 0.6 decades in the first ~50 iterations, plateau, then the main 1.5-decade drop at 3000
    log_loss = 0.1 - 0.6 * sigmoid((ITS - 60) / 10) - 1.5 * sigmoid((ITS - 3000) / 50)
    d = detect_loss_drop(ITS, noisy(log_loss, sd=0.03))
    assert d.has_drop and abs(d.t_drop - 3000) <= 60
    assert 80 <= d.plateau_start <= 300 and d.plateau_length > 2000  # the search phase ends by ~100


def test_flat_noisy_curve_has_no_drop():
    d = detect_loss_drop(ITS, noisy(np.full(len(ITS), -0.7), sd=0.1))
    assert not d.has_drop and d.t_drop is None and d.plateau_length is None
    assert "min_drop_decades" in d.reason


def test_gradual_decline_is_not_abrupt():
    d = detect_loss_drop(ITS, noisy(-2.0 * ITS / ITS[-1], sd=0.03))
    assert not d.has_drop and "gradual" in d.reason and d.drop_decades > 0.5


def test_robust_to_nan_spikes_and_unsorted_input():
    log_loss = -0.5 - 1.5 * sigmoid((ITS - 3000) / 50)
    loss = noisy(log_loss, seed=4)
    loss[::37] = np.nan
    loss[5::41] *= 30.0  # occasional spikes
    perm = np.random.default_rng(0).permutation(len(ITS))
    d = detect_loss_drop(ITS[perm], loss[perm])
    assert d.has_drop and abs(d.t_drop - 3000) <= 60


def test_short_or_empty_curves():
    assert not detect_loss_drop([0, 1, 2], [1.0, 0.5, 0.1]).has_drop
    assert detect_loss_drop([], []).reason.startswith("too few points")
    d = detect_loss_drop(ITS, noisy(-0.5 - 1.5 * sigmoid((ITS - 3000) / 50)), ignore_before=3500)
    assert not d.has_drop  # the drop is before the searched window


def test_time_to_learn():
    its = [0, 100, 200, 300, 400]
    acc = [0.1, 0.95, 0.5, 0.92, 0.97]
    assert time_to_learn(its, acc, 0.9) == 100
    assert time_to_learn(its, acc, 0.9, sustain=2) == 300
    assert time_to_learn(its, acc, 0.99) is None
    assert time_to_learn(its, [np.nan, 0.2, np.nan, 0.91, 0.5], 0.9) == 300
