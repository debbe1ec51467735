"""Config validation: bad configs fail with a message naming the key; grid expansion is exact."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import ROOT
from rnngeom.config import ConfigError, all_runs, experiment_runs, fmt_num, load_config, run_settings

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


@pytest.fixture(scope="module")
def default_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.mark.parametrize("path", ["config.yaml", "config/paper.yaml", "tests/configs/tiny.yaml"])
def test_shipped_configs_are_valid(path):
    cfg = load_config(yaml.safe_load((ROOT / path).read_text()), SCHEMA)
    assert all_runs(cfg)


def _set(cfg, dotted, value):
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value


DELETE = object()

BAD = [  # (key to change, new value, text the error must contain)
    ("bogus_key", 1, "bogus_key"),
    ("training.lerning_rate", 0.1, "lerning_rate"),
    ("training.lr", "fast", "training.lr"),
    ("training.lr", -0.1, "training.lr"),
    ("training.n_iterations", 0, "training.n_iterations"),
    ("training.batch_size", 2.5, "training.batch_size"),
    ("training.optimizer", "rmsprop", "training.optimizer"),
    ("models.leaky.n_hidden", -4, "models.leaky.n_hidden"),
    ("models.leaky.alpha", 1.5, "models.leaky.alpha"),
    ("models.gru", {"n_hidden": 4}, "gru"),
    ("experiments.tcr_speedup.lambda_tcr", [-1.0, 0.0], "experiments.tcr_speedup.lambda_tcr"),
    ("experiments.tcr_speedup.lambda_tcr", [], "experiments.tcr_speedup.lambda_tcr"),
    ("experiments.tcr_speedup.seeds", [0, 0, 1], "experiments.tcr_speedup.seeds"),
    ("experiments.tcr_speedup.tasks", ["flipflap"], "flipflap"),
    ("experiments.tcr_speedup.archs", ["transformer"], "transformer"),
    ("experiments", {}, "experiments"),
    ("device", "tpu", "device"),
    ("training.checkpoints.dense_until", 10**6, "training.checkpoints.dense_until"),
    ("training.eval_every", 10**6, "training.eval_every"),
    ("training.batch_size", 10**6, "training.batch_size"),
    ("experiments.local_learning.learning_rules", ["hebbian"], "experiments.local_learning.learning_rules"),
    ("experiments.local_learning.archs", ["lstm"], "rflo x lstm"),  # RFLO is defined for leaky/rank-one only
    ("training.rflo", {"feedback_scal": 1.0}, "feedback_scal"),
    ("training.freeze_in", {"schedule": "sometimes"}, "schedule"),
    ("training.per_rule.rflo", {"n_iterations": 10**6, "checkpoints": {"dense_until": 2 * 10**6, "dense_every": 1,
                                                                       "sparse_every": 1}}, "dense_until"),
    ("training.per_rule.hebbian", {"lr": 0.1}, "hebbian"),
    ("claims.C3.figure", "no_such_figure", "claims.C3.figure"),
    ("claims.C12", {"experiment": "tcr_speedup", "figure": "tcr_speedup"}, "C12"),
    ("figures.tcr_speedup.experiment", "no_such_experiment", "figures.tcr_speedup.experiment"),
    ("figures.tcr_speedup.plot", "no_such_plot", "figures.tcr_speedup.plot"),
    ("tasks.flipflop.p_pulse", 2.0, "tasks.flipflop.p_pulse"),
    ("tasks.delayed_addition", {"no_such_param": 1}, "tasks.delayed_addition"),
    ("data.n_test", 0, "data.n_test"),
    ("training", DELETE, "training"),
]


@pytest.mark.parametrize("key,value,needle", BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD])
def test_bad_config_is_rejected_naming_the_key(default_config, key, value, needle):
    cfg = copy.deepcopy(default_config)
    _set(cfg, key, value)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, SCHEMA)
    msg = str(err.value)
    assert needle in msg, msg
    assert "\n" not in msg  # one line


def test_experiment_task_without_task_entry(default_config):
    cfg = copy.deepcopy(default_config)
    del cfg["tasks"]["evidence_accumulation"]
    with pytest.raises(ConfigError, match=r"experiments\.abrupt_learning\.tasks.*evidence_accumulation"):
        load_config(cfg, SCHEMA)


def test_grid_expansion_shares_runs_and_uses_default_gain(default_config):
    cfg = load_config(default_config, SCHEMA)
    runs = all_runs(cfg)
    n_abrupt = 3 * 4 * 1 * 1
    assert len(experiment_runs(cfg, "abrupt_learning")) == n_abrupt
    per_experiment = sum(len(experiment_runs(cfg, name)) for name in cfg["experiments"])
    assert len(runs) == len({r.run_id for r in runs}) < per_experiment  # shared runs counted once
    leaky = [r for r in experiment_runs(cfg, "abrupt_learning") if r.arch == "leaky"]
    assert {r.gain for r in leaky} == {fmt_num(cfg["models"]["leaky"]["gain"])}  # the architecture's default gain
    assert {r.gain for r in experiment_runs(cfg, "tcr_speedup")} == {"2"}


def test_shared_run_is_trained_once(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["experiments"]["copy"] = copy.deepcopy(cfg["experiments"]["tcr_speedup"])
    assert len(all_runs(load_config(cfg, SCHEMA))) == len(all_runs(load_config(default_config, SCHEMA)))


def test_run_settings_exclude_analysis_only_keys(default_config):
    cfg = load_config(default_config, SCHEMA)
    cfg2 = copy.deepcopy(cfg)
    cfg2["training"]["accuracy_threshold"] = 0.5
    run = all_runs(cfg)[0]
    assert run_settings(cfg, run) == run_settings(cfg2, run)  # changing the threshold never retrains
    cfg2["training"]["lr"] = 0.1234
    assert run_settings(cfg2, run)["training"]["lr"] == 0.1234


def test_per_task_override(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["training"]["per_task"] = {"delayed_addition": {"n_iterations": 3000}}
    cfg = load_config(cfg, SCHEMA)
    by_task = {r.task: run_settings(cfg, r)["training"]["n_iterations"] for r in all_runs(cfg)}
    assert by_task["delayed_addition"] == 3000 and by_task["flipflop"] == cfg["training"]["n_iterations"]


def test_run_id_round_trips_numbers(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["experiments"]["tcr_speedup"]["lambda_tcr"] = [0.0, 0.1, 1e-4, 10.0]
    ids = {r.run_id for r in experiment_runs(load_config(cfg, SCHEMA), "tcr_speedup")}
    assert any("/lam0.1/" in i for i in ids) and any("/lam0.0001/" in i for i in ids)
    assert any("/lam10/" in i for i in ids) and any("/lam0/" in i for i in ids)
