"""Config validation: bad configs fail with a message naming the key; grid expansion is exact."""

from __future__ import annotations

import copy
import inspect
import os
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from rnngeom.config import (
    RUN_KEYS,
    ConfigError,
    all_runs,
    claim_experiments,
    experiment_run_ids,
    experiment_runs,
    fmt_num,
    load_config,
    read_config,
    rule_block,
    run_settings,
)
from rnngeom.deps import job_source_files, registry_names

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


@pytest.fixture(scope="module")
def default_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.mark.parametrize("path", ["config.yaml", "config/paper.yaml", "tests/configs/tiny.yaml"])
def test_shipped_configs_are_valid(path):
    cfg = load_config(read_config(ROOT / path), SCHEMA)
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
    (
        "training.per_rule.rflo",
        {
            "n_iterations": 10**6,
            "checkpoints": {"dense_until": 2 * 10**6, "dense_every": 1, "sparse_every": 1},
        },
        "dense_until",
    ),
    ("training.per_rule.hebbian", {"lr": 0.1}, "hebbian"),
    ("claims.C3.figure", "no_such_figure", "claims.C3.figure"),
    ("claims.C12", {"experiment": "tcr_speedup", "figure": "tcr_speedup"}, "C12"),
    ("figures.tcr_speedup.experiment", "no_such_experiment", "figures.tcr_speedup.experiment"),
    ("figures.tcr_speedup.plot", "no_such_plot", "figures.tcr_speedup.plot"),
    ("tasks.flipflop.p_pulse", 2.0, "tasks.flipflop.p_pulse"),
    ("tasks.delayed_addition", {"no_such_param": 1}, "tasks.delayed_addition"),
    ("data.n_test", 0, "data.n_test"),
    ("training", DELETE, "training"),
    # every count that must be positive is rejected at 0
    ("analysis.n_starts", 0, "analysis.n_starts"),
    ("analysis.n_trials", 0, "analysis.n_trials"),
    ("analysis.fixed_points", {"n_iters": 0}, "analysis.fixed_points.n_iters"),
    ("training.batch_size", 0, "training.batch_size"),
    ("training.eval_every", 0, "training.eval_every"),
    ("training.checkpoints.dense_every", 0, "training.checkpoints.dense_every"),
    ("training.per_rule.rflo.n_iterations", 0, "training.per_rule.rflo.n_iterations"),
    ("models.leaky.n_hidden", 0, "models.leaky.n_hidden"),
    ("data.n_train", 0, "data.n_train"),
    ("threads_per_job", 0, "threads_per_job"),
    ("experiments.tcr_speedup.seeds", [], "experiments.tcr_speedup.seeds"),
    ("tasks.evidence_accumulation", {"stim_len": 0}, "tasks.evidence_accumulation.stim_len"),
    # every key the code reads is declared, with its range
    ("analysis.bogus_setting", 1, "bogus_setting"),
    ("analysis.plrnn_method", "guess", "analysis.plrnn_method"),
    ("training.bptt", {"hand_written": "sometimes"}, "training.bptt.hand_written"),
    ("training.freeze_in", {"low_frac": 0.0}, "training.freeze_in.low_frac"),
    ("models.leaky.noise_std", 0.1, "models.leaky.noise_std"),  # RFLO (local_learning) runs without noise
    # a claim or figure naming an undefined experiment is an error, not a silent "not run"
    ("claims.C3.experiment", "no_such_exp", "claims.C3.experiment"),
    ("claims.C2.experiment", ["tcr_speedup", "no_such_exp"], "claims.C2.experiment"),
    ("claims.C3.expected_stable", 8, "expected_stable"),
    ("claims.C5.gain_threshold", 1.5, "gain_threshold"),
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
    with pytest.raises(ConfigError, match=r"experiments\.\w+\.tasks.*evidence_accumulation"):
        load_config(cfg, SCHEMA)


def test_grid_expansion_shares_runs_and_uses_default_gain(default_config):
    cfg = load_config(default_config, SCHEMA)
    runs = all_runs(cfg)
    exp = cfg["experiments"]["abrupt_learning"]
    n_abrupt = len(exp["tasks"]) * len(exp["archs"]) * len(exp["lambda_tcr"]) * len(exp["seeds"])
    assert n_abrupt >= 12 and len(experiment_runs(cfg, "abrupt_learning")) == n_abrupt
    per_experiment = sum(len(experiment_runs(cfg, name)) for name in cfg["experiments"])
    assert len(runs) == len({r.run_id for r in runs}) < per_experiment  # shared runs counted once
    leaky = [r for r in experiment_runs(cfg, "abrupt_learning") if r.arch == "leaky"]
    assert {r.gain for r in leaky} == {cfg["models"]["leaky"]["gain"]}  # the architecture's default gain
    gains = cfg["experiments"]["gain_sweep"]["gain"]
    assert len(gains) > 1 and {r.gain for r in experiment_runs(cfg, "gain_sweep")} == set(gains)
    run = experiment_runs(cfg, "gain_sweep")[-1]  # numbers stay numbers; only the run id formats them
    assert isinstance(run.lambda_tcr, float) and isinstance(run.gain, float) and isinstance(run.seed, int)
    assert run.as_dict()["gain"] == gains[-1] and f"/g{fmt_num(gains[-1])}/" in run.run_id
    assert fmt_num(2.0) == "2" and fmt_num(0.01) == "0.01"


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
    cfg["training"]["per_task"] = {"delayed_addition": {"n_iterations": 3000}}  # flipflop's removed
    cfg = load_config(cfg, SCHEMA)
    bptt = [r for r in all_runs(cfg) if r.learning_rule == "bptt"]  # (rflo has per_rule n_iterations)
    by_task = {r.task: run_settings(cfg, r)["training"]["n_iterations"] for r in bptt}
    assert by_task["delayed_addition"] == 3000 and by_task["flipflop"] == cfg["training"]["n_iterations"]


def test_run_id_round_trips_numbers(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["experiments"]["tcr_speedup"]["lambda_tcr"] = [0.0, 0.1, 1e-4, 10.0]
    ids = {r.run_id for r in experiment_runs(load_config(cfg, SCHEMA), "tcr_speedup")}
    assert any("/lam0.1/" in i for i in ids) and any("/lam0.0001/" in i for i in ids)
    assert any("/lam10/" in i for i in ids) and any("/lam0/" in i for i in ids)


def test_a_config_without_a_claims_experiment_leaves_the_claim_out(default_config):
    cfg = copy.deepcopy(default_config)
    del cfg["experiments"]["lstm_tcr"]
    del cfg["figures"]["lstm_tcr"]
    with pytest.raises(ConfigError, match=r"claims\.C7\.experiment.*lstm_tcr"):
        load_config(cfg, SCHEMA)
    del cfg["claims"]["C7"]  # left out: the claim table reports it as "not run"
    cfg = load_config(cfg, SCHEMA)
    assert "lstm_tcr" not in claim_experiments(cfg) and "C7" not in cfg["claims"]


def test_selection_is_exact_run_ids(default_config):
    cfg = load_config(default_config, SCHEMA)
    ids = experiment_run_ids(cfg, ["tcr_speedup", "gain_sweep"])
    assert ids == sorted(set(ids))
    assert set(ids) == {r.run_id for n in ("tcr_speedup", "gain_sweep") for r in experiment_runs(cfg, n)}
    # lambda 1.0 at gain 3 is in neither grid, though both values occur in the union of the two grids
    assert not any("/lam1/g3/" in i for i in ids)
    assert claim_experiments(cfg)["tcr_speedup"] == experiment_run_ids(cfg, "tcr_speedup")
    assert RUN_KEYS == ("task", "arch", "learning_rule", "lambda_tcr", "gain", "seed")


def test_load_config_imports_no_torch():
    """The Snakefile validates the config at every parse (once per job): torch would add ~1.7 s each."""
    code = (
        "import sys, yaml\n"
        "from rnngeom.config import load_config, all_runs, run_settings, read_config\n"
        "for path in ('config.yaml', 'config/paper.yaml'):\n"
        "    cfg = load_config(read_config(path))\n"
        "    [run_settings(cfg, r) for r in all_runs(cfg)]\n"
        "from rnngeom.deps import job_source_files\n"
        "job_source_files('rnngeom.train', 'flipflop', 'lstm', 'bptt')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr


def check(*args):
    cmd = [sys.executable, "-m", "rnngeom.config", "check", *args]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)


def test_check_cli_accepts_a_good_config():
    proc = check("config/paper.yaml")
    assert proc.returncode == 0, proc.stderr
    n_runs = len(all_runs(load_config(read_config(ROOT / "config/paper.yaml"))))
    assert n_runs > len(all_runs(load_config(read_config(ROOT / "config.yaml"))))  # more seeds: an overlay
    assert proc.stdout.count("\n") == 1 and "OK" in proc.stdout and f"{n_runs} runs" in proc.stdout


def test_a_configfile_is_an_overlay_of_config_yaml(tmp_path):
    """A --configfile holds only what it changes: merged onto config.yaml key by key (Snakemake's own merge),
    lists and numbers replaced; `standalone: true` makes a file a whole config instead."""
    from snakemake.utils import update_config

    from rnngeom.config import merge_overlay

    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    overlay = {"training": {"lr": 0.003, "per_task": {"flipflop": {"n_iterations": 10}}}, "data": {"seed": 1}}
    merged = merge_overlay(base, overlay)
    ours = copy.deepcopy(base)
    update_config(ours, overlay)
    assert merged == ours and merged != base
    assert merged["training"]["batch_size"] == base["training"]["batch_size"]  # untouched keys stay
    assert merged["experiments"] == base["experiments"]
    assert merge_overlay(base, {"standalone": True, "device": "cpu"}) == {"standalone": True, "device": "cpu"}
    one_key = tmp_path / "my.yaml"
    one_key.write_text("training: {lr: 0.003}\n")
    proc = check(str(one_key))
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {lr: -1}\n")
    proc = check(str(bad))
    assert proc.returncode == 2 and "training.lr" in proc.stderr


def test_check_cli_rejects_a_bad_config_naming_the_key(tmp_path, default_config):
    cfg = copy.deepcopy(default_config)
    cfg["analysis"]["n_starts"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = check(str(bad))
    assert proc.returncode == 2 and "analysis.n_starts" in proc.stderr and proc.stdout == ""
    missing = check(str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2 and "missing.yaml" in missing.stderr


def _schema_keys(node) -> set:
    return set(node["properties"])


def test_schema_declares_every_key_the_code_reads():
    from rnngeom.analysis.loss_drop import default_settings as loss_drop_defaults
    from rnngeom.analysis.run_analysis import default_settings
    from rnngeom.learning import get_rule
    from rnngeom.models import MODELS
    from rnngeom.tasks import TASKS

    schema = yaml.safe_load(SCHEMA.read_text())
    props = schema["properties"]
    for rule in registry_names("learning_rule"):
        cls = get_rule(rule)
        assert rule_block(rule) == cls.settings_key
        block = props["training"]["properties"][cls.settings_key]
        assert _schema_keys(block) == set(cls.default_settings()), rule
    # the pipeline sets these two itself: the top-level device and threads_per_job
    analysis = {k: v for k, v in default_settings().items() if k not in ("device", "num_threads")}
    assert _schema_keys(props["analysis"]) == set(analysis)
    for key, value in analysis.items():
        if isinstance(value, dict):
            assert _schema_keys(props["analysis"]["properties"][key]) == set(value), key
    for arch, cls in MODELS.items():
        params = set(inspect.signature(cls.__init__).parameters) - {"self", "n_in", "n_out"}
        # per_rule: the same hyperparameters for one learning rule (checked against this schema)
        assert _schema_keys(props["models"]["properties"][arch]) == params | {"per_rule"}, arch
    assert _schema_keys(props["loss_drop"]) == set(loss_drop_defaults())
    for name, task in TASKS.items():
        assert _schema_keys(props["tasks"]["properties"][name]) == set(task.defaults), name
    defs = schema["$defs"]
    assert set(defs["taskname"]["enum"]) == set(TASKS)
    assert set(defs["archname"]["enum"]) == set(registry_names("arch")) == set(MODELS)
    assert set(defs["rulename"]["enum"]) == set(registry_names("learning_rule"))
    # scan_maps draws the regime scan (rule scan_figure), not an entry of `figures:`
    plots = {p.stem for p in (ROOT / "src/rnngeom/plots").glob("*.py")} - {"__init__", "style", "scan_maps"}
    assert set(props["figures"]["additionalProperties"]["properties"]["plot"]["enum"]) == plots


def test_job_sources_follow_the_jobs_own_task_arch_and_rule():
    def files(entry, *choice):
        return {f.split("src/rnngeom/", 1)[1] for f in job_source_files(entry, *choice)}

    data = files("rnngeom.data", "flipflop")
    assert "tasks/flipflop.py" in data and "tasks/delayed_addition.py" not in data and "data.py" in data
    train = files("rnngeom.train", "flipflop", "rank1", "freeze_in_noise")
    own = {"train.py", "models/rank1.py", "models/leaky.py", "learning/freeze_in.py", "learning/rflo.py"}
    assert own <= train
    assert not {"models/lstm.py", "learning/bptt.py", "tasks/evidence_accumulation.py"} & train
    assert "analysis/plrnn_exact.py" in files("rnngeom.analysis.run_analysis", "flipflop", "plrnn", "bptt")
    lstm = files("rnngeom.analysis.run_analysis", "flipflop", "lstm", "bptt")
    assert "models/lstm.py" in lstm and not {"analysis/plrnn_exact.py", "models/leaky.py", "train.py"} & lstm
    aggregate = files("rnngeom.aggregate")  # no task/arch of its own: what its imports really run
    assert {"aggregate.py", "analysis/loss_drop.py"} <= aggregate and "train.py" not in aggregate
