"""Shortcut baselines: the held-out scores of strategies that do not use the memory a task tests.

A task only measures memory if no shortcut meets its learn criterion (held-out accuracy at its threshold,
or, where the task sets one, held-out loss at most a fraction of the chance loss; LearnCriterion). For each
task we score, with the task's own ``accuracy`` and the masked MSE on the test split, chance and trivial
strategies (zero output, the best constant,
echoing the current input) and *forgetting* memories: a memory whose span is at most half the task's own
memory span (flip-flop: a decaying hold with half-life <= n_steps / 2; evidence accumulation: integrating
only the last <= stim_len / 2 samples, or a leaky integrator with time constant 1 / (1 - gamma) <= stim_len
/ 2). Their free parameter is fitted on the train split within that cap (the best is usually at the cap, since
a longer memory is closer to the task's solution; the cap is what makes them shortcuts).

``python -m rnngeom.tasks.baselines --tasks JSON --data-dir results/data --thresholds JSON --out FILE.tsv``
writes one row per (task, baseline): task, baseline, accuracy, loss_over_chance (its held-out loss over the
chance loss), criterion (the task's learn criterion in words), reaches_threshold (meets it), params (the
fitted and capped parameters as ``name=value`` pairs separated by ``;``, empty if none).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from rnngeom.analysis.loss_drop import LearnCriterion
from rnngeom.data import load_dataset
from rnngeom.io import json_arg, write_tsv_atomic
from rnngeom.tasks import get_task
from rnngeom.tasks._params import resolve
from rnngeom.tasks.base import TaskData, chance_loss
from rnngeom.tasks.flipflop import last_pulse_step

# A forgetting memory may span at most this fraction of the task's memory span (trial or stimulus length).
MAX_SPAN_FRACTION = 0.5

COLUMNS = ["task", "baseline", "accuracy", "loss_over_chance", "criterion", "reaches_threshold", "params"]


def _fit(task_name: str, train: TaskData, outputs: Callable[[TaskData, float], np.ndarray], grid) -> float:
    """The grid value whose outputs score best on the train split (first one on ties)."""
    task = get_task(task_name)
    scores = [task.accuracy(outputs(train, v), train) for v in grid]
    return grid[int(np.argmax(scores))]


def _constant(data: TaskData, c: float) -> np.ndarray:
    return np.full(data.targets.shape, c, dtype=np.float64)


# --- flip-flop ---------------------------------------------------------------------------------------------
def pulse_age(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (trial, step, channel): steps since the channel's last pulse, and that pulse's sign (0 before
    any pulse)."""
    last = last_pulse_step(inputs)
    sign = np.where(last >= 0, np.take_along_axis(inputs, np.maximum(last, 0), axis=1), 0.0)
    return np.arange(inputs.shape[1])[None, :, None] - last, sign


def decaying_hold(data: TaskData, half_life: float) -> np.ndarray:
    """The last pulse's sign, fading as 2^(-age / half_life): a memory without attractors."""
    age, sign = pulse_age(data.inputs)
    return sign * np.exp2(-age / half_life)


def flipflop_baselines(train: TaskData, params: dict) -> list[tuple[str, Callable, dict]]:
    max_half_life = MAX_SPAN_FRACTION * params["n_steps"]
    grid = list(np.arange(1.0, max_half_life + 1e-9))  # only whole steps of age matter
    age, sign = pulse_age(train.inputs)  # once for the whole grid
    half_life = _fit("flipflop", train, lambda d, h: sign * np.exp2(-age / h), grid)
    best_sign = _fit("flipflop", train, _constant, [-1.0, 1.0])
    return [
        ("zero_output", lambda d: _constant(d, 0.0), {}),
        ("constant_sign", lambda d: _constant(d, best_sign), {"value": best_sign}),
        ("echo_input", lambda d: d.inputs.astype(np.float64), {}),  # the pulse at its own step, then 0
        (
            "decaying_hold",
            lambda d: decaying_hold(d, half_life),
            {"half_life": round(half_life, 2), "max_half_life": max_half_life},
        ),
    ]


# --- evidence accumulation ---------------------------------------------------------------------------------
def _answer(data: TaskData, per_trial: np.ndarray) -> np.ndarray:
    """One answer per trial, given at every step (only the response window is scored)."""
    return np.broadcast_to(per_trial[:, None, None], data.targets.shape).astype(np.float64)


def last_k_sign(data: TaskData, k: float, stim_len: int) -> np.ndarray:
    """Sign of the sum of only the last k stimulus samples (held over the delay)."""
    k = int(k)
    return _answer(data, np.sign(data.inputs[:, stim_len - k : stim_len, 0].sum(axis=1)))


def leaky_integrator_sign(data: TaskData, gamma: float, stim_len: int) -> np.ndarray:
    """Sign of h = sum_t gamma^(S-1-t) x_t, the state of h_t = gamma h_(t-1) + x_t at the stimulus end (the
    delay only rescales h by a positive factor, so its sign is held for free)."""
    weights = gamma ** np.arange(stim_len)[::-1]
    return _answer(data, np.sign(data.inputs[:, :stim_len, 0].astype(np.float64) @ weights))


def evidence_baselines(train: TaskData, params: dict) -> list[tuple[str, Callable, dict]]:
    S = params["stim_len"]
    max_window = MAX_SPAN_FRACTION * S
    k = _fit(
        "evidence_accumulation", train, lambda d, v: last_k_sign(d, v, S), list(range(1, int(max_window) + 1))
    )
    max_gamma = 1.0 - 1.0 / max_window  # time constant 1 / (1 - gamma) <= max_window
    gamma = _fit(
        "evidence_accumulation",
        train,
        lambda d, v: leaky_integrator_sign(d, v, S),
        list(np.linspace(0.0, max_gamma, 50)),
    )
    best_sign = _fit("evidence_accumulation", train, _constant, [-1.0, 1.0])
    return [
        ("zero_output", lambda d: _constant(d, 0.0), {}),
        ("constant_sign", lambda d: _constant(d, best_sign), {"value": best_sign}),
        ("last_sample_sign", lambda d: last_k_sign(d, 1, S), {}),
        ("last_k_sign", lambda d: last_k_sign(d, k, S), {"k": int(k), "max_k": int(max_window)}),
        (
            "leaky_integrator",
            lambda d: leaky_integrator_sign(d, gamma, S),
            {"gamma": round(float(gamma), 4), "max_gamma": round(max_gamma, 4)},
        ),
    ]


# --- delayed addition --------------------------------------------------------------------------------------
def first_mark_plus(data: TaskData, c: float) -> np.ndarray:
    """Remember only the first marked value and add a constant for the other: half the memory."""
    first = np.argmax(data.inputs[:, :, 1] > 0, axis=1)
    value = data.inputs[np.arange(data.n_trials), first, 0].astype(np.float64)
    return _answer(data, value + c)


def delayed_addition_baselines(train: TaskData, params: dict) -> list[tuple[str, Callable, dict]]:
    grid = list(np.round(np.arange(0.0, 2.0001, 0.01), 2))
    best_constant = _fit("delayed_addition", train, _constant, grid)
    offset = _fit("delayed_addition", train, first_mark_plus, list(np.round(np.arange(0.0, 1.0001, 0.01), 2)))
    # the least-squares half memory (for a loss criterion): the first value plus the other's mean
    first = first_mark_plus(train, 0.0)
    m = train.mask > 0
    mean_rest = float((train.targets[m] - first[m]).mean())
    return [
        ("zero_output", lambda d: _constant(d, 0.0), {}),
        ("best_constant", lambda d: _constant(d, best_constant), {"value": float(best_constant)}),
        ("echo_value", lambda d: d.inputs[:, :, :1].astype(np.float64), {}),  # the current (distractor) value
        ("first_mark_plus_constant", lambda d: first_mark_plus(d, offset), {"constant": float(offset)}),
        ("first_mark_plus_mean", lambda d: first_mark_plus(d, mean_rest), {"mean": mean_rest}),
    ]


BASELINES = {
    "flipflop": flipflop_baselines,
    "evidence_accumulation": evidence_baselines,
    "delayed_addition": delayed_addition_baselines,
}


def task_baselines(
    task_name: str, train: TaskData, test: TaskData, params: dict, criterion: LearnCriterion
) -> list[dict]:
    """Rows (COLUMNS) of one task: parameters fitted on ``train``, scored on ``test`` against the task's learn
    ``criterion``. ``params`` are the task's generator parameters (defaults filled in)."""
    task = get_task(task_name)
    if task_name not in BASELINES:
        raise ValueError(
            f"no shortcut baselines defined for task {task_name!r}; defined: {sorted(BASELINES)}"
        )
    full = resolve(task_name, task.defaults, params)
    chance = chance_loss(test)
    rows = []
    for name, outputs, fitted in BASELINES[task_name](train, full):
        out = outputs(test)
        acc = task.accuracy(out, test)
        m = test.mask.astype(np.float64)
        loss = float((m * (out - test.targets) ** 2).sum() / max(m.sum(), 1.0))
        rows.append(
            {
                "task": task_name,
                "baseline": name,
                "accuracy": acc,
                "loss_over_chance": loss / chance,
                "criterion": criterion.describe(),
                "reaches_threshold": bool(criterion.reached(acc, loss, chance)),
                "params": ";".join(f"{k}={v:g}" for k, v in sorted(fitted.items())),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", required=True, help="JSON {task: generator params} (the config's tasks block)")
    ap.add_argument("--data-dir", required=True, help="folder with {task}/train.npz and {task}/test.npz")
    ap.add_argument(
        "--thresholds", required=True, help="JSON {task: learn criterion {accuracy, loss_fraction}}"
    )
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    try:
        tasks, thresholds = json_arg(a.tasks, "--tasks"), json_arg(a.thresholds, "--thresholds")
    except ValueError as err:
        ap.error(str(err))
    missing = sorted(set(tasks) - set(thresholds))
    if missing:
        ap.error(f"--thresholds has no threshold for task(s) {missing}")
    rows = []
    for name, params in sorted(tasks.items()):
        train, test = (load_dataset(Path(a.data_dir) / name / f"{split}.npz") for split in ("train", "test"))
        rows += task_baselines(name, train, test, params or {}, LearnCriterion.of(thresholds[name]))
    table = pd.DataFrame(rows, columns=COLUMNS)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_tsv_atomic(a.out, table)
    print(table.to_string(index=False), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
