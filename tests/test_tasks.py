"""Behaviour of the task generators: determinism, shapes, target/mask semantics, accuracy, validation."""

import numpy as np
import pytest

from rnngeom.tasks import TASKS, Task, TaskData, get_task

N = 64


@pytest.fixture(params=sorted(TASKS))
def task(request) -> Task:
    return TASKS[request.param]


def test_seeded_determinism(task):
    a, b, c = (task.generate(N, seed=s) for s in (1, 1, 2))
    for f in ("inputs", "targets", "mask"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.inputs, c.inputs)
    assert not np.array_equal(a.targets, c.targets)


def test_shapes_and_dtypes(task):
    d = task.generate(N, seed=0)
    T = task.defaults["n_steps"]
    assert isinstance(d, TaskData) and d.n_trials == N
    assert d.inputs.shape == (N, T, task.n_in)
    assert d.targets.shape == d.mask.shape == (N, T, task.n_out)
    for x in (d.inputs, d.targets, d.mask):
        assert x.dtype == np.float32
    assert set(np.unique(d.mask)) <= {0.0, 1.0}
    assert 0 < d.mask.mean() < 1
    assert np.all(d.targets[d.mask == 0] == 0)  # no stray target values where nothing is scored


def test_perfect_output_is_fully_accurate_and_zero_output_is_not(task):
    d = task.generate(N, seed=3)
    assert task.accuracy(d.targets, d) == 1.0
    assert task.accuracy(np.zeros_like(d.targets), d) < 0.05
    # Flipping every scored answer must be wrong everywhere (guards an always-true rule).
    assert task.accuracy(-d.targets - 1.0, d) == 0.0


def test_unknown_param_and_bad_n_trials(task):
    with pytest.raises(ValueError, match="n_stpes"):
        task.generate(4, seed=0, n_stpes=10)
    with pytest.raises(ValueError, match="n_steps"):
        task.generate(4, seed=0, n_steps=0)
    with pytest.raises(ValueError, match="n_trials"):
        task.generate(0, seed=0)


def test_params_override_defaults(task):
    T = 2 * task.defaults["n_steps"]
    assert task.generate(2, seed=0, n_steps=T).inputs.shape[1] == T


def test_get_task():
    assert get_task("flipflop") is TASKS["flipflop"]
    with pytest.raises(ValueError, match="nosuchtask.*delayed_addition.*evidence_accumulation.*flipflop"):
        get_task("nosuchtask")


# --- 3-bit flip-flop ---------------------------------------------------------------------------------


def test_flipflop_target_is_sign_of_last_pulse():
    d = get_task("flipflop").generate(20, seed=7, n_steps=80, p_pulse=0.1)
    assert d.inputs.shape[-1] == 3 and set(np.unique(d.inputs)) == {-1.0, 0.0, 1.0}
    for i in range(20):
        for c in range(3):
            last = 0.0  # independent loop: remember the last nonzero input
            for t in range(80):
                if d.inputs[i, t, c] != 0:
                    last = d.inputs[i, t, c]
                assert d.mask[i, t, c] == (last != 0)  # mask 0 before the first pulse, 1 from it on
                assert d.targets[i, t, c] == last


def test_flipflop_pulse_rate_and_validation():
    d = get_task("flipflop").generate(200, seed=0, p_pulse=0.2)
    assert abs(np.mean(d.inputs != 0) - 0.2) < 0.01
    assert np.all(get_task("flipflop").generate(5, seed=0, p_pulse=0.0).mask == 0)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="p_pulse"):
            get_task("flipflop").generate(4, seed=0, p_pulse=bad)


# --- delayed addition --------------------------------------------------------------------------------


def test_delayed_addition_target_is_sum_of_marked_values():
    T, W, R = 40, 8, 5
    d = get_task("delayed_addition").generate(50, seed=11, n_steps=T, mark_window=W, response_len=R)
    value, marker, go = d.inputs[..., 0], d.inputs[..., 1], d.inputs[..., 2]
    assert np.all((value >= 0) & (value < 1))
    assert np.all(marker.sum(axis=1) == 2) and np.all(marker[:, W:] == 0)  # two marks, all early
    resp = np.zeros(T, bool)
    resp[T - R :] = True
    assert np.all(go[:, resp] == 1) and np.all(go[:, ~resp] == 0)
    assert np.all(d.mask[:, resp, 0] == 1) and np.all(d.mask[:, ~resp, 0] == 0)
    expected = (value * marker).sum(axis=1)
    np.testing.assert_allclose(d.targets[:, resp, 0], np.repeat(expected[:, None], R, 1), atol=1e-6)


def test_delayed_addition_tolerance():
    task = get_task("delayed_addition")
    d = task.generate(10, seed=0)
    assert task.accuracy(d.targets + 0.03, d) == 1.0
    assert task.accuracy(d.targets + 0.05, d) == 0.0


def test_delayed_addition_without_distractors():
    d = get_task("delayed_addition").generate(20, seed=4, mark_window=6, distractors=False)
    value = d.inputs[..., 0]
    assert np.all(value[:, 6:] == 0) and np.all(value[:, :6] > 0)
    expected = (value * d.inputs[..., 1]).sum(axis=1)
    np.testing.assert_allclose(d.targets[:, -1, 0], expected, atol=1e-6)


def test_delayed_addition_validation():
    gen = get_task("delayed_addition").generate
    with pytest.raises(ValueError, match="mark_window"):
        gen(4, seed=0, mark_window=1)
    with pytest.raises(ValueError, match="response_len"):
        gen(4, seed=0, response_len=0)
    with pytest.raises(ValueError, match="mark_window \\+ response_len"):
        gen(4, seed=0, n_steps=10, mark_window=6, response_len=5)
    with pytest.raises(ValueError, match="distractors"):
        gen(4, seed=0, distractors="no")


# --- evidence accumulation ---------------------------------------------------------------------------


def test_evidence_accumulation_target_is_sign_of_summed_evidence():
    T, S, R = 50, 15, 6
    d = get_task("evidence_accumulation").generate(300, seed=5, n_steps=T, stim_len=S, response_len=R)
    ev, go = d.inputs[..., 0], d.inputs[..., 1]
    assert np.all(ev[:, S:] == 0) and np.all(go[:, : T - R] == 0) and np.all(go[:, T - R :] == 1)
    assert np.all(d.mask[:, T - R :] == 1) and np.all(d.mask[:, : T - R] == 0)
    expected = np.sign(ev.astype(np.float64).sum(axis=1))
    np.testing.assert_array_equal(d.targets[:, T - R :, 0], np.repeat(expected[:, None], R, 1))
    assert 0.3 < np.mean(expected > 0) < 0.7  # both answers occur, roughly balanced


def test_evidence_accumulation_drift_sets_label_without_noise():
    d = get_task("evidence_accumulation").generate(100, seed=0, noise_std=0.0, mu=0.3)
    ev = d.inputs[:, :20, 0]
    assert np.allclose(np.abs(ev), 0.3)
    assert np.all(np.sign(ev[:, :1]) == d.targets[:, -1:, 0])


def test_evidence_accumulation_validation():
    gen = get_task("evidence_accumulation").generate
    with pytest.raises(ValueError, match="noise_std"):
        gen(4, seed=0, noise_std=-1.0)
    with pytest.raises(ValueError, match="mu"):
        gen(4, seed=0, mu="big")
    with pytest.raises(ValueError, match="stim_len \\+ response_len"):
        gen(4, seed=0, n_steps=10, stim_len=8, response_len=5)


# --- resting input (the constant input of the delay/hold period) --------------------------------------


def test_flipflop_resting_input_is_no_pulse():
    task = get_task("flipflop")
    d = task.generate(40, seed=2)
    rest = task.rest_steps(d)
    assert rest.shape == d.inputs.shape[:2] and 0 < rest.mean() < 1
    assert np.all(d.inputs[rest] == 0) and np.all((d.inputs[~rest] != 0).any(axis=1))
    np.testing.assert_array_equal(task.resting_input(d), np.zeros(3))


def test_delayed_addition_resting_input_is_mean_distractor_with_cues_off():
    task = get_task("delayed_addition")
    T, W, R = 40, 6, 5
    d = task.generate(400, seed=1, n_steps=T, mark_window=W, response_len=R)
    rest = task.rest_steps(d)
    last_mark = np.array([np.flatnonzero(m)[-1] for m in d.inputs[:, :, 1]])
    for i in (0, 1, 2):  # independent per-trial check of the delay window
        expected = np.zeros(T, bool)
        expected[last_mark[i] + 1 : T - R] = True
        np.testing.assert_array_equal(rest[i], expected)
    value, marker, go = task.resting_input(d)
    assert abs(value - 0.5) < 0.01 and marker == 0 and go == 0  # U(0, 1) distractors, mean 1/2
    silent = task.generate(50, seed=1, mark_window=2, distractors=False)  # marks at steps 0, 1; then silence
    np.testing.assert_array_equal(task.resting_input(silent), np.zeros(3))


def test_evidence_accumulation_resting_input_is_the_silent_delay():
    task = get_task("evidence_accumulation")
    T, S, R = 50, 15, 6
    d = task.generate(30, seed=3, n_steps=T, stim_len=S, response_len=R)
    rest = task.rest_steps(d)
    expected = np.zeros(T, bool)
    expected[S : T - R] = True
    np.testing.assert_array_equal(rest, np.broadcast_to(expected, rest.shape))
    np.testing.assert_array_equal(task.resting_input(d), np.zeros(2))


def test_resting_input_without_rest_steps_is_an_error():
    task = get_task("evidence_accumulation")
    d = task.generate(4, seed=0, n_steps=30, stim_len=20, response_len=10)  # no delay at all
    with pytest.raises(ValueError, match="no delay/hold steps"):
        task.resting_input(d)
