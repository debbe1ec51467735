"""Loss-drop detection (search phase + fast fall) on planted curves with known answers, and time-to-learn.

The planted families (``rnngeom.analysis.loss_drop_sim``, which also prints the detector's rates): a sigmoid
fall after plateaus of 300-10,000 iterations on runs of 1,000-50,000 iterations evaluated every 10-100 must
be abrupt, with the same verdict whatever the run length; exponential, 1/t and two-stage slow decays never.
"""

import numpy as np
import pytest
from scipy.special import expit

from rnngeom.analysis import loss_drop_sim as sim
from rnngeom.analysis.loss_drop import detect_loss_drop, time_to_learn
from rnngeom.analysis.loss_drop_sim import sigmoid_crossing

ITS = np.arange(0, 5001, 10)


def noisy(log_loss, sd=0.05, seed=0):
    return 10 ** (log_loss + np.random.default_rng(seed).normal(0, sd, len(log_loss)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_drop_found_at_known_step(seed):
    log_loss = -0.5 - 1.5 * expit((ITS - 3000) / 50)  # 1.5 decades lost around iteration 3000
    d = detect_loss_drop(ITS, noisy(log_loss, seed=seed))
    assert d.abrupt and d.escaped and d.reason == "abrupt"
    assert abs(d.t_drop - (3000 - 50 * np.log(2))) <= 10  # 0.5 decades below: σ = 1/3
    # 0.15 decades below (σ = 0.1), where noise 0.05 moves the crossing by ~15 iterations (noise / slope)
    assert abs(d.t_onset - (3000 - 50 * np.log(9))) <= 30
    assert d.drop_decades == pytest.approx(1.5, abs=0.15)
    assert d.drop_width == pytest.approx(d.t_drop - d.t_onset)
    assert d.plateau_length > 2000 and d.plateau_loss == pytest.approx(10**-0.5, rel=0.1)
    assert d.plateau_evals == pytest.approx(d.plateau_length / 10)
    assert d.width_over_plateau == pytest.approx(d.drop_width / d.plateau_length)
    assert d.search_fraction == pytest.approx(d.plateau_length / d.t_drop)
    assert d.plateau_decline < 0.05


@pytest.mark.parametrize("plateau", [300, 1000, 3000, 10000])
@pytest.mark.parametrize("eval_every", [10, 50, 100])
def test_planted_search_phase_is_abrupt_whatever_the_run_length(plateau, eval_every):
    """A plateau, then a sigmoid fall 10 % as wide as the plateau (off the evaluation grid, noise 0.03
    decades), on runs from just after the fall to 50,000 iterations: abrupt every time, the escape within
    one evaluation step of the noise-free curve's, and the same plateau whatever the run length."""
    if plateau < 5 * 1.2 * eval_every:  # fewer than min_plateau_evals resolvable steps: not a test case
        pytest.skip("plateau shorter than 6 evaluation intervals")
    lengths = [n for n in (1000, 3000, 10000, 50000) if n >= 1.3 * plateau + 5 * eval_every]
    found = []
    for n_iterations in lengths:
        for seed in (0, 1):
            its, loss, truth = sim.planted_search(plateau, 0.1 * plateau, n_iterations, eval_every, seed=seed)
            d = detect_loss_drop(its, loss)
            assert d.abrupt, (n_iterations, seed, d)
            assert abs(d.t_drop - truth["t_drop"]) <= max(eval_every, 0.05 * truth["width"])  # noise / slope
            assert abs(d.t_onset - truth["t_onset"]) <= eval_every + 0.1 * truth["width"]
            found.append(d.plateau_length)
    assert max(found) - min(found) <= 2 * eval_every


@pytest.mark.parametrize("n_iterations", [1000, 5000, 50000])
@pytest.mark.parametrize("eval_every", [10, 100])
def test_smooth_decays_are_never_abrupt(n_iterations, eval_every):
    its = np.arange(0, n_iterations + 1, eval_every)
    for name, loss in sim.smooth_decays(its, n_iterations).items():
        for seed in (0, 1):
            d = detect_loss_drop(its, loss * noisy(np.zeros(len(its)), 0.02, seed))
            assert not d.abrupt, (name, seed, d)
            assert d.search_fraction == 0.0, (name, seed, d)  # no search phase either


def test_two_stage_slow_decay_is_not_abrupt_but_a_fast_second_stage_is():
    its = np.arange(0, 20001, 50)
    for seed in (0, 1, 2):
        slow = detect_loss_drop(its, sim.two_stage(its, pause=2000, second_width=4000, seed=seed))
        assert not slow.abrupt, slow
        fast = detect_loss_drop(its, sim.two_stage(its, pause=6000, second_width=400, seed=seed))
        assert fast.abrupt, fast


def test_a_step_between_two_evaluations_is_abrupt_and_narrower_than_one_step():
    its = np.arange(0, 1001, 50)
    d = detect_loss_drop(its, np.where(its < 610, 1.0, 0.01))
    assert d.abrupt and 600 <= d.t_onset < d.t_drop <= 650 and d.drop_width < 50
    assert d.drop_decades == pytest.approx(2.0, abs=1e-3)


def test_learned_by_iteration_50_without_a_plateau_is_not_abrupt():
    its = np.arange(0, 2001, 10)
    d = detect_loss_drop(its, noisy(np.log10(0.01 + 0.99 * expit(-(its - 30) / 5)), 0.02))
    assert d.drop_decades > 1.5 and d.t_drop < 60 and d.escaped  # a big, fast fall ...
    assert not d.abrupt and "no plateau" in d.reason  # ... but no plateau before it
    assert d.search_fraction < 0.2


def test_steep_start_does_not_hide_the_main_drop():
    # fast fall of 0.6 decades in the first ~50 iterations, plateau, then the main 1.5-decade drop at 3000
    log_loss = 0.1 - 0.6 * expit((ITS - 60) / 10) - 1.5 * expit((ITS - 3000) / 50)
    d = detect_loss_drop(ITS, noisy(log_loss, sd=0.03))
    assert d.abrupt and abs(d.t_drop - sigmoid_crossing(3000, 50 * 2 * np.log(9), 1.5, 0.5)) <= 10
    assert 80 <= d.plateau_start <= 300 and d.plateau_length > 2000  # the search phase ends by ~100


def test_the_chance_level_clips_the_first_step_to_the_mean():
    """Delayed addition: the loss falls from ~1.2 to Var(sum) = 1/6 within two evaluations (the network
    learns the mean), then searches. With the chance level given, that step is not a fall: a run stuck at
    chance has not escaped, and a run that escapes later has a plateau from the start."""
    its = np.arange(0, 4001, 50)
    chance = 1 / 6
    to_mean = np.log10(chance + 1.0 * np.exp(-its / 30))
    stuck = noisy(to_mean, 0.02)
    assert detect_loss_drop(its, stuck).escaped  # without a reference the step to the mean is "a fall"
    d = detect_loss_drop(its, stuck, reference_loss=chance)
    assert not d.escaped and not d.abrupt and d.search_fraction == 1.0 and np.isnan(d.t_drop)
    learns = noisy(to_mean - 1.5 * expit((its - 2500) / 40), 0.02)
    d = detect_loss_drop(its, learns, reference_loss=chance)
    assert d.abrupt and abs(d.t_drop - 2500) <= 50 and d.plateau_start <= 50
    assert d.plateau_loss == pytest.approx(chance, rel=0.1) and d.search_fraction > 0.9


def test_flat_noisy_curve_has_no_drop():
    d = detect_loss_drop(ITS, noisy(np.full(len(ITS), -0.7), sd=0.1))
    assert not d.abrupt and not d.escaped and np.isnan(d.t_drop) and np.isnan(d.plateau_length)
    assert "no escape" in d.reason and d.search_fraction == 1.0


def test_gradual_decline_is_not_abrupt():
    d = detect_loss_drop(ITS, noisy(-2.0 * ITS / ITS[-1], sd=0.03))  # 2 decades, steadily
    assert not d.abrupt
    slow_sigmoid = detect_loss_drop(ITS, noisy(-0.3 - 1.5 * expit((ITS - 2500) / 400), sd=0.03))
    # 10-90 % over 1760 iterations after a plateau of ~1600: it bends long before it leaves the band
    assert not slow_sigmoid.abrupt and slow_sigmoid.search_fraction == 0


@pytest.mark.parametrize("decline", [0.0, 1.0, 2.0])
def test_drop_followed_by_a_steady_decline_is_still_abrupt(decline):
    """Training losses keep falling after the drop: the fall's width is not stretched over that tail."""
    its = np.arange(0, 2001, 50)
    log_loss = -0.3 - expit((its - 1000) / 20) - decline * np.clip(its - 1000, 0, None) / 1000
    d = detect_loss_drop(its, noisy(log_loss, sd=0.02))
    assert d.abrupt and abs(d.t_drop - 1000) <= 50
    assert d.drop_width < 50 and d.drop_decades == pytest.approx(1 + decline, abs=0.1)


def test_robust_to_nan_spikes_and_unsorted_input():
    log_loss = -0.5 - 1.5 * expit((ITS - 3000) / 50)
    loss = noisy(log_loss, seed=4)
    loss[::37] = np.nan
    loss[5::41] *= 30.0  # occasional spikes
    perm = np.random.default_rng(0).permutation(len(ITS))
    d = detect_loss_drop(ITS[perm], loss[perm])
    assert d.abrupt and abs(d.t_drop - 2965) <= 10


def test_short_or_empty_curves():
    assert not detect_loss_drop([0, 1, 2], [1.0, 0.5, 0.1]).abrupt
    assert detect_loss_drop([], []).reason.startswith("too few points")


def test_rates_on_the_planted_families():
    """The detector's power (planted search phases found abrupt) and false-positive rate (smooth decays
    called abrupt) over a small grid of noise draws: what docs/reconstruction.md reports at full size."""
    rates = sim.rates(n_seeds=1)
    assert rates.loc["search phase", "abrupt"] >= 0.95
    for family in ("exponential", "1/t", "two-stage slow"):
        assert rates.loc[family, "abrupt"] == 0.0, family


def test_time_to_learn():
    its = [0, 100, 200, 300, 400]
    acc = [0.1, 0.95, 0.5, 0.92, 0.97]
    assert time_to_learn(its, acc, 0.9) == 100
    assert time_to_learn(its, acc, 0.9, sustain=2) == 300
    assert time_to_learn(its, acc, 0.99) is None
    assert time_to_learn(its, [np.nan, 0.2, np.nan, 0.91, 0.5], 0.9) == 300
