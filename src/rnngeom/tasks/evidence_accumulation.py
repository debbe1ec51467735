"""Evidence accumulation: integrate a noisy stream, hold the running total over a delay, report its sign.

Input channels: [evidence, go].
- evidence, during the stimulus window (the first ``stim_len`` steps): d * mu + noise_std * N(0, 1), with
  a per-trial direction d = ±1 (equal odds); 0 afterwards;
- go = 1 during the response window (the last ``response_len`` steps): our choice (reconstruction), so the
  network need not count time to know when to answer.
Target: the sign of the *sum of the samples actually shown* (not of d), in the response window, 0 elsewhere;
mask 1 only there. With this target the task is exactly solvable by a perfect integrator (a line
attractor), so accuracy measures memory, not the noise's luck. A sum of exactly 0 falls back to d.
"""

from __future__ import annotations

import numpy as np

from ._params import check_float, check_int, resolve
from .base import Task, TaskData

NAME = "evidence_accumulation"

# 50 steps: 20 of evidence, a 20-step delay, a 10-step response. mu/noise_std = 0.05/0.5 (SNR 0.1 per
# sample) makes the label depend on the whole stream, so integrating only part of it fails: the sign of the
# last 10 samples scores ~0.79 and a leaky integrator with time constant <= 10 steps ~0.88 (at mu = 0.2 they
# scored 0.90 and 0.95, above the 0.9 threshold; see rnngeom.tasks.baselines).
DEFAULTS = {"n_steps": 50, "stim_len": 20, "response_len": 10, "mu": 0.05, "noise_std": 0.5}


def generate(n_trials: int, *, seed, **params) -> TaskData:
    p = resolve(NAME, DEFAULTS, params)
    n_trials = check_int(NAME, "n_trials", n_trials, 1)
    T = check_int(NAME, "n_steps", p["n_steps"], 1)
    S = check_int(NAME, "stim_len", p["stim_len"], 1)
    R = check_int(NAME, "response_len", p["response_len"], 1)
    mu = check_float(NAME, "mu", p["mu"], 0.0)
    noise_std = check_float(NAME, "noise_std", p["noise_std"], 0.0)
    if S + R > T:
        raise ValueError(f"{NAME}: stim_len + response_len ({S} + {R}) must be <= n_steps ({T})")

    rng = np.random.default_rng(seed)
    direction = rng.choice(np.array([-1.0, 1.0]), size=n_trials)
    evidence = direction[:, None] * mu + noise_std * rng.standard_normal((n_trials, S))

    inputs = np.zeros((n_trials, T, 2))
    inputs[:, :S, 0] = evidence
    inputs[:, T - R :, 1] = 1.0
    inputs = inputs.astype(np.float32)

    # Sign of the float32 samples the network sees (summed in float64), so the label matches the input.
    total = inputs[:, :S, 0].astype(np.float64).sum(axis=1)
    label = np.where(total != 0, np.sign(total), direction)
    targets = np.zeros((n_trials, T, 1))
    targets[:, T - R :, 0] = label[:, None]
    mask = np.zeros((n_trials, T, 1))
    mask[:, T - R :, 0] = 1.0

    return TaskData(inputs=inputs, targets=targets.astype(np.float32), mask=mask.astype(np.float32))


def entry_correct(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Correct when the output has the sign of the accumulated evidence."""
    return np.sign(outputs) == targets


def rest_steps(data: TaskData) -> np.ndarray:
    """The delay: after a trial's last evidence sample and before its go cue (input all zeros there)."""
    T = data.inputs.shape[1]
    t = np.arange(T)[None, :]
    last_sample = np.where(data.inputs[:, :, 0] != 0, t, -1).max(axis=1)
    return (t > last_sample[:, None]) & (data.inputs[:, :, 1] == 0)


TASK = Task(
    name=NAME,
    n_in=2,
    n_out=1,
    generate=generate,
    entry_correct=entry_correct,
    defaults=DEFAULTS,
    rest_steps=rest_steps,
)
