"""The one interface every task implements.

A task is a seeded generator ``generate(n_trials, *, seed, **params) -> TaskData`` plus a per-entry
correctness rule ``entry_correct(outputs, targets) -> bool array``; accuracy is the masked mean of it.
``rest_steps(data) -> bool [n_trials, T]`` marks the steps of the delay/hold period, where the network must
keep its memory under a constant input; ``resting_input`` is that input (fixed points are sought there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskData:
    inputs: np.ndarray  # [n_trials, T, n_in]  float32
    targets: np.ndarray  # [n_trials, T, n_out] float32
    mask: np.ndarray  # [n_trials, T, n_out] float32, 1 where the loss and accuracy count

    @property
    def n_trials(self) -> int:
        return self.inputs.shape[0]


def chance_loss(data: TaskData) -> float:
    """The masked MSE of the best constant output (each output channel at its masked mean target): the
    loss a network reaches by learning the targets' mean alone, the level of the search phase's plateau
    (delayed addition: Var(sum) = 1/6; flip-flop and evidence accumulation: ~1)."""
    m = data.mask.astype(np.float64)
    y = data.targets.astype(np.float64)
    per_channel = (m * y).sum(axis=(0, 1)) / np.maximum(m.sum(axis=(0, 1)), 1.0)
    return float((m * (y - per_channel) ** 2).sum() / max(m.sum(), 1.0))


@dataclass(frozen=True)
class Task:
    name: str
    n_in: int
    n_out: int
    generate: Callable[..., TaskData]  # (n_trials, *, seed, **params) -> TaskData
    entry_correct: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (outputs, targets) -> bool, same shape
    defaults: dict  # default params (documented reconstructions)
    rest_steps: Callable[[TaskData], np.ndarray]  # data -> bool [n_trials, T]: the delay/hold steps

    def accuracy(self, outputs: np.ndarray, data: TaskData) -> float:
        """Fraction of masked (trial, time, channel) entries that are correct."""
        ok = self.entry_correct(np.asarray(outputs), data.targets)
        m = data.mask > 0
        return float(ok[m].mean()) if m.any() else float("nan")

    def resting_input(self, data: TaskData) -> np.ndarray:
        """[n_in] mean input over the delay/hold steps of all trials: the constant input the memory is held
        under (flip-flop: no pulse; delayed addition: the distractor value's mean, markers and go off)."""
        rest = np.asarray(self.rest_steps(data), dtype=bool)
        if rest.shape != data.inputs.shape[:2]:
            raise ValueError(
                f"{self.name}: rest_steps gave shape {rest.shape}, expected {data.inputs.shape[:2]}"
            )
        if not rest.any():
            raise ValueError(f"{self.name}: the data has no delay/hold steps to take a resting input from")
        return data.inputs[rest].astype(np.float64).mean(axis=0)
