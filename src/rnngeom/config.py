"""Config validation and the experiment grid -> training runs expansion.

Used by the Snakefile (before any job runs) and by tests; importable without Snakemake.

A run is one point of an experiment grid: (task, arch, learning_rule, lambda_tcr, gain, seed). Runs that
several experiments share get the same ``run_id`` and are trained once. Its folder is
``results/runs/{run_id}`` with run_id = ``{task}/{arch}/{learning_rule}/lam{lambda}/g{gain}/seed{seed}``.
Numbers in ids are written with ``fmt_num`` (``0.1`` -> ``"0.1"``, ``1.0`` -> ``"1"``) so they round-trip.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    """A config problem; the message names the key and what is allowed."""


def fmt_num(x: float) -> str:
    return f"{float(x):g}"


RUN_KEYS = ("task", "arch", "learning_rule", "lambda_tcr", "gain", "seed")


@dataclass(frozen=True, order=True)
class Run:
    task: str
    arch: str
    learning_rule: str
    lambda_tcr: str  # formatted with fmt_num, exactly as in the path
    gain: str
    seed: int

    @property
    def run_id(self) -> str:
        return (f"{self.task}/{self.arch}/{self.learning_rule}/lam{self.lambda_tcr}/g{self.gain}"
                f"/seed{self.seed}")  # fmt: skip

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "task": self.task, "arch": self.arch, "learning_rule": self.learning_rule,
                "lambda_tcr": float(self.lambda_tcr), "gain": float(self.gain), "seed": self.seed}  # fmt: skip


# --- schema validation with defaults ---------------------------------------------------------------------
def _validator_filling_defaults():
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": properties_with_defaults})


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_schema(config: dict, schema_path: str | Path) -> dict:
    """Validate against the JSON schema (filling defaults); raise ConfigError naming the first bad key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    config = copy.deepcopy(config)
    errors = sorted(_validator_filling_defaults()(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"config error at '{_key(err.absolute_path)}': {err.message}")
    return config


# --- cross-field checks the schema cannot express ----------------------------------------------------------
RULE_BLOCKS = ("bptt", "rflo", "freeze_in")  # training.<block>: settings of the learning rules


def rule_block(rule: str) -> str:
    """The training.<block> holding a learning rule's settings (the freeze_in variants share one)."""
    from rnngeom.learning import get_rule

    return get_rule(rule).settings_key


def effective_training(config: dict, task: str, rule: str | None = None) -> dict:
    """Training settings for ``task`` (and learning ``rule``): the global block, then its per_task and
    per_rule overrides. With a rule, only that rule's settings block is kept (editing RFLO settings must
    not retrain BPTT runs)."""
    tr = {k: v for k, v in config["training"].items() if k not in ("per_task", "per_rule") + RULE_BLOCKS}
    tr.update(copy.deepcopy(config["training"].get("per_task", {}).get(task, {})))
    if rule is not None:
        tr.update(copy.deepcopy(config["training"].get("per_rule", {}).get(rule, {})))
        block = rule_block(rule)
        tr[block] = copy.deepcopy(config["training"].get(block, {}))
    return tr


def check_semantics(config: dict) -> None:
    from rnngeom.models import build_model
    from rnngeom.tasks import get_task

    for name, exp in config["experiments"].items():
        for task in exp["tasks"]:
            if task not in config["tasks"]:
                raise ConfigError(f"config error at 'experiments.{name}.tasks': task {task!r} has no entry "
                                  f"under 'tasks'; defined: {sorted(config['tasks'])}")  # fmt: skip
        for arch in exp["archs"]:
            if arch not in config["models"]:
                raise ConfigError(f"config error at 'experiments.{name}.archs': arch {arch!r} has no entry "
                                  f"under 'models'; defined: {sorted(config['models'])}")  # fmt: skip
    from rnngeom.learning import get_rule

    for name, exp in config["experiments"].items():
        for rule in exp.get("learning_rules", ["bptt"]):
            cls = get_rule(rule)
            for arch in exp["archs"]:
                model = build_model({"arch": arch, "n_in": 1, "n_out": 1, **{**config["models"][arch], "n_hidden": 2}})
                try:
                    cls({k: v for k, v in model.spec().items() if k != "gain"},
                        [{"seed": 0, "lambda_tcr": 0.0, "gain": 1.0}], config["training"].get(cls.settings_key, {}))
                except (ValueError, TypeError) as err:
                    raise ConfigError(f"config error at 'experiments.{name}.learning_rules' ({rule} x {arch}): "
                                      f"{err}") from None  # fmt: skip
    # A claim whose experiment is not in the config is not an error (a smaller config may leave it out): the
    # claim table reports it as "not run". Its figure must exist, though.
    for claim, spec in config.get("claims", {}).items():
        if spec["figure"] not in config["figures"]:
            raise ConfigError(f"config error at 'claims.{claim}.figure': figure {spec['figure']!r} is not "
                              f"defined; defined: {sorted(config['figures'])}")  # fmt: skip
    for fig, spec in config["figures"].items():
        for exp in [spec["experiment"]] if isinstance(spec["experiment"], str) else spec["experiment"]:
            if exp not in config["experiments"]:
                raise ConfigError(f"config error at 'figures.{fig}.experiment': experiment {exp!r} is not "
                                  f"defined; defined: {sorted(config['experiments'])}")  # fmt: skip
    for task, params in config["tasks"].items():
        try:
            get_task(task).generate(1, seed=0, **params)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"config error at 'tasks.{task}': {err}") from None
    for arch, hp in config["models"].items():
        try:
            build_model({"arch": arch, "n_in": 1, "n_out": 1, **{**hp, "n_hidden": 2}})
        except (ValueError, TypeError) as err:
            raise ConfigError(f"config error at 'models.{arch}': {err}") from None
    from rnngeom.analysis.run_analysis import resolve_settings

    try:
        resolve_settings(config.get("analysis", {}))
    except ValueError as err:
        raise ConfigError(f"config error at 'analysis': {err}") from None
    rules = sorted({r for exp in config["experiments"].values() for r in exp.get("learning_rules", ["bptt"])})
    for task, rule in itertools.product(config["tasks"], rules):
        tr = effective_training(config, task, rule)
        where = ("training.per_rule." + rule if rule in config["training"].get("per_rule", {}) else
                 f"training.per_task.{task}" if task in config["training"].get("per_task", {}) else "training")
        n, ck = tr["n_iterations"], tr["checkpoints"]
        if ck["dense_until"] > n:
            raise ConfigError(f"config error at '{where}.checkpoints.dense_until': {ck['dense_until']} is beyond "
                              f"n_iterations={n}; allowed: 0..{n}")  # fmt: skip
        for key in ("dense_every", "sparse_every"):
            if ck[key] > n:
                raise ConfigError(f"config error at '{where}.checkpoints.{key}': {ck[key]} is beyond "
                                  f"n_iterations={n}; allowed: 1..{n}")  # fmt: skip
        if tr["eval_every"] > n:
            raise ConfigError(f"config error at '{where}.eval_every': {tr['eval_every']} is beyond "
                              f"n_iterations={n}; allowed: 1..{n}")  # fmt: skip
        if tr["batch_size"] > config["data"]["n_train"]:
            raise ConfigError(f"config error at '{where}.batch_size': {tr['batch_size']} exceeds "
                              f"data.n_train={config['data']['n_train']}")  # fmt: skip


def load_config(config: dict, schema_path: str | Path) -> dict:
    """Schema + semantic validation; returns the config with defaults filled in."""
    config = validate_schema(config, schema_path)
    check_semantics(config)
    return config


# --- grid expansion ---------------------------------------------------------------------------------------
def experiment_runs(config: dict, name: str) -> list[Run]:
    exp = config["experiments"][name]
    runs = []
    for task, arch, rule, lam, seed in itertools.product(
        exp["tasks"], exp["archs"], exp.get("learning_rules", ["bptt"]), exp["lambda_tcr"], exp["seeds"]
    ):
        gains = exp.get("gain") or [config["models"][arch].get("gain", 1.0)]
        runs += [Run(task, arch, rule, fmt_num(lam), fmt_num(g), int(seed)) for g in gains]
    return runs


def all_runs(config: dict) -> list[Run]:
    """Every distinct run of every experiment, sorted (shared runs once)."""
    return sorted({r for name in config["experiments"] for r in experiment_runs(config, name)})


def run_settings(config: dict, run: Run) -> dict:
    """Everything that determines a training run's result (its Snakemake params: a change retrains)."""
    tr = effective_training(config, run.task, run.learning_rule)
    tr.pop("accuracy_threshold", None)  # used by aggregation only; changing it must not retrain
    model = {k: v for k, v in config["models"][run.arch].items() if k != "gain"}
    return {
        "task": run.task, "arch": run.arch, "learning_rule": run.learning_rule,
        "lambda_tcr": float(run.lambda_tcr), "gain": float(run.gain), "seed": run.seed,
        "model": model, "training": tr,
    }  # fmt: skip


def in_grid(df, grid: dict):
    """Boolean mask of the rows of a runs table inside one experiment grid {column: allowed values}
    (numbers compared as numbers: the grid says 1.0 where a table may say 1)."""
    import pandas as pd

    inside = pd.Series(True, index=df.index)
    for col, allowed in grid.items():
        if pd.api.types.is_numeric_dtype(df[col]):
            inside &= df[col].astype(float).isin([float(v) for v in allowed])
        else:
            inside &= df[col].astype(str).isin([str(v) for v in allowed])
    return inside
