"""Delayed addition: remember two marked values early in the trial and report their sum after a delay.

Input channels: [value, marker, go].
- value ~ U(0, 1) at every step (the unmarked values are distractors the network must ignore; with
  ``distractors=False`` the value channel is 0 after the mark window);
- marker = 1 at two distinct steps drawn uniformly in the first ``mark_window`` steps, else 0;
- go = 1 during the response window (the last ``response_len`` steps), else 0. The go cue is our choice
  (reconstruction): without it the network would have to count time to know when to answer, which is a
  different, harder task than the memory one the paper studies.
Target: the sum of the two marked values (in [0, 2]) in the response window, 0 elsewhere; mask 1 only in the
response window. The steps between the mark window and the response window are the delay.
Accuracy rule (our choice): |y - target| < TOLERANCE.
"""

from __future__ import annotations

import numpy as np

from ._params import check_int, resolve
from .base import Task, TaskData

NAME = "delayed_addition"
TOLERANCE = 0.04  # absolute error counted as correct: our choice, ~2 % of the sum's range [0, 2]

# 50 steps: marks within the first 10, a delay of 30, then a 10-step response window. This is the slowest of
# the three tasks: in our checks (T = 25-60, 64 units, Adam 1e-3, grad-clip 1, 6k steps) a tanh RNN and an
# LSTM stayed at the plateau loss 1/6 = Var(sum), a leaky RNN (alpha 0.2) only got to ~0.1.
# distractors=False (values only in the mark window) is an easier variant we add; it is not from the paper.
DEFAULTS = {"n_steps": 50, "mark_window": 10, "response_len": 10, "distractors": True}


def generate(n_trials: int, *, seed, **params) -> TaskData:
    p = resolve(NAME, DEFAULTS, params)
    n_trials = check_int(NAME, "n_trials", n_trials, 1)
    T = check_int(NAME, "n_steps", p["n_steps"], 1)
    W = check_int(NAME, "mark_window", p["mark_window"], 2)  # two distinct marks need >= 2 steps
    R = check_int(NAME, "response_len", p["response_len"], 1)
    distractors = p["distractors"]
    if not isinstance(distractors, (bool, np.bool_)):
        raise ValueError(f"{NAME}: distractors must be a bool, got {distractors!r}")
    if W + R > T:
        # The marks must come before the response window starts (delay >= 0).
        raise ValueError(f"{NAME}: mark_window + response_len ({W} + {R}) must be <= n_steps ({T})")

    rng = np.random.default_rng(seed)
    values = rng.random((n_trials, T))
    if not distractors:
        values[:, W:] = 0.0  # values only inside the mark window; delay and response inputs are silent
    # Two distinct mark times per trial: the first two entries of a random permutation of the window.
    marks = rng.random((n_trials, W)).argsort(axis=1)[:, :2]
    rows = np.arange(n_trials)[:, None]

    inputs = np.zeros((n_trials, T, 3))
    inputs[:, :, 0] = values
    inputs[rows, marks, 1] = 1.0
    inputs[:, T - R :, 2] = 1.0
    inputs = inputs.astype(np.float32)

    # Sum the float32 values the network actually sees, so the target is exactly recoverable.
    total = inputs[rows, marks, 0].astype(np.float64).sum(axis=1)
    targets = np.zeros((n_trials, T, 1))
    targets[:, T - R :, 0] = total[:, None]
    mask = np.zeros((n_trials, T, 1))
    mask[:, T - R :, 0] = 1.0

    return TaskData(inputs=inputs, targets=targets.astype(np.float32), mask=mask.astype(np.float32))


def entry_correct(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Correct when the output is within TOLERANCE of the sum."""
    return np.abs(outputs - targets) < TOLERANCE


def rest_steps(data: TaskData) -> np.ndarray:
    """The delay: after a trial's last marker and before its go cue. The value channel keeps showing U(0, 1)
    distractors there, so the resting input is (~0.5, 0, 0), not zeros."""
    T = data.inputs.shape[1]
    t = np.arange(T)[None, :]
    last_mark = np.where(data.inputs[:, :, 1] > 0, t, -1).max(axis=1)
    return (t > last_mark[:, None]) & (data.inputs[:, :, 2] == 0)


TASK = Task(
    name=NAME,
    n_in=3,
    n_out=1,
    generate=generate,
    entry_correct=entry_correct,
    defaults=DEFAULTS,
    rest_steps=rest_steps,
)
