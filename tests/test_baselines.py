"""Shortcut baselines: correct on planted cases, and below the accuracy threshold on the default tasks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, make_datasets

from rnngeom.analysis.loss_drop import LearnCriterion
from rnngeom.config import learn_criteria, load_config, read_config
from rnngeom.data import generate_split
from rnngeom.tasks import get_task
from rnngeom.tasks.baselines import (
    COLUMNS,
    decaying_hold,
    first_mark_plus,
    last_k_sign,
    leaky_integrator_sign,
    main,
    task_baselines,
)


def test_decaying_hold_is_the_task_when_it_never_fades_and_fails_when_short():
    task = get_task("flipflop")
    d = task.generate(64, seed=0, n_steps=60, p_pulse=0.05)
    assert task.accuracy(decaying_hold(d, 1e9), d) == 1.0  # an endless hold is the perfect memory
    age_lt_5 = np.mean(_ages(d.inputs)[d.mask > 0] < 5)
    assert task.accuracy(decaying_hold(d, 5.0), d) == pytest.approx(age_lt_5)  # correct only for age < h


def _ages(inputs):
    """Steps since each channel's last pulse, by an explicit loop (independent of pulse_age)."""
    n, T, c = inputs.shape
    out = np.zeros((n, c, T), int)
    for i in range(n):
        for k in range(c):
            last = -1
            for t in range(T):
                last = t if inputs[i, t, k] != 0 else last
                out[i, k, t] = t - last if last >= 0 else T
    return out.transpose(0, 2, 1)


def test_full_window_integrators_solve_evidence_accumulation():
    task = get_task("evidence_accumulation")
    d = task.generate(200, seed=1, stim_len=20, mu=0.1)
    assert task.accuracy(last_k_sign(d, 20, 20), d) == 1.0
    assert task.accuracy(leaky_integrator_sign(d, 1.0, 20), d) >= 0.99  # float summation order aside
    assert task.accuracy(last_k_sign(d, 1, 20), d) < 0.8


def test_first_mark_plus_the_second_value_is_exact():
    task = get_task("delayed_addition")
    d = task.generate(50, seed=2)
    marks = [np.flatnonzero(m) for m in d.inputs[:, :, 1]]
    second = np.array([d.inputs[i, m[1], 0] for i, m in enumerate(marks)])
    # Adding each trial's true second value to the first-mark readout gives the target exactly.
    out = first_mark_plus(d, 0.0) + second[:, None, None]
    assert task.accuracy(out, d) == 1.0


@pytest.fixture(scope="module", params=["config.yaml", "config/paper.yaml"])
def shipped_config(request):
    return load_config(read_config(ROOT / request.param), ROOT / "workflow/schemas/config.schema.yaml")


@pytest.mark.parametrize("task_name", ["flipflop", "delayed_addition", "evidence_accumulation"])
def test_no_shortcut_reaches_the_threshold_on_the_shipped_tasks(shipped_config, task_name):
    cfg = shipped_config
    assert task_name in cfg["tasks"]
    params, data = cfg["tasks"][task_name], cfg["data"]
    train, test = (
        generate_split(task_name, split, data[f"n_{split}"], data["seed"], params)
        for split in ("train", "test")
    )
    criterion = LearnCriterion.of(learn_criteria(cfg)[task_name])
    rows = task_baselines(task_name, train, test, params, criterion)
    assert len(rows) >= 4 and {r["baseline"] for r in rows} >= {"zero_output"}
    for r in rows:
        assert not r["reaches_threshold"], r
        if criterion.loss_fraction is None:
            assert 0.0 <= r["accuracy"] < criterion.accuracy, r
        else:
            assert r["loss_over_chance"] > criterion.loss_fraction, r


def test_cli_writes_the_table(tmp_path):
    tasks = {"flipflop": {"n_steps": 30, "p_pulse": 0.1}, "evidence_accumulation": {}}
    for name, params in tasks.items():
        paths = make_datasets(tmp_path / "data" / name, name, n_train=128, n_test=64, params=params)
        for split, path in paths.items():
            path.rename(path.with_name(f"{split}.npz"))
            path.with_suffix(".json").rename(path.with_name(f"{split}.json"))
    out = tmp_path / "baselines.tsv"
    args = ["--tasks", json.dumps(tasks), "--data-dir", str(tmp_path / "data"), "--out", str(out)]
    assert main([*args, "--thresholds", json.dumps({"flipflop": 0.9, "evidence_accumulation": 0.8})]) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == COLUMNS and set(table["task"]) == set(tasks)
    assert (table.loc[table.task == "flipflop", "criterion"] == "accuracy >= 0.9").all()
    hold = table[table.baseline == "decaying_hold"].iloc[0]
    assert "max_half_life=15" in hold["params"].split(";")  # half of n_steps = 30
    assert table.loc[table.baseline == "zero_output", "params"].isna().all()  # nothing fitted
    accuracy_threshold = table["task"].map({"flipflop": 0.9, "evidence_accumulation": 0.8})
    assert (table["reaches_threshold"] == (table["accuracy"] >= accuracy_threshold)).all()
    assert (table.loc[table.baseline == "best_constant", "loss_over_chance"] < 1.001).all()  # the chance loss
    # a loss criterion: learned = held-out loss at most a tenth of the chance loss
    loss_args = {"flipflop": {"accuracy": 0.9, "loss_fraction": 0.1}, "evidence_accumulation": 0.8}
    assert main([*args, "--thresholds", json.dumps(loss_args)]) == 0
    table = pd.read_csv(out, sep="\t")
    flipflop = table[table.task == "flipflop"]
    assert (flipflop["criterion"] == "loss <= 0.1 x chance").all()
    assert (flipflop["reaches_threshold"] == (flipflop["loss_over_chance"] <= 0.1)).all()
    with pytest.raises(SystemExit):
        main([*args, "--thresholds", "{}"])  # no threshold for the tasks
