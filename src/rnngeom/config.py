"""Config validation, the experiment grid -> training runs expansion, and run selection.

Used by the Snakefile (before any job runs, at every parse) and by tests; imports neither Snakemake nor torch.
Check a config by itself:  python -m rnngeom.config check [FILE]   (exit 0: one line OK; exit 2: the error).

A run is one point of an experiment grid: (task, arch, learning_rule, lambda_tcr, gain, seed). Runs that
several experiments share get the same ``run_id`` and are trained once. Its folder is
``results/runs/{run_id}`` with run_id = ``{condition}/seed{seed}`` and condition =
``{task}/{arch}/{learning_rule}/lam{lambda}/g{gain}``. Numbers in ids are written with ``fmt_num``
(``0.1`` -> ``"0.1"``, ``1.0`` -> ``"1"``) so they round-trip.

Seed blocks: the runs of one condition are trained (and analysed) as one job per fixed block of seeds,
block b = the configured seeds s with s // training.seed_block == b (``run_blocks``). A block's membership
depends only on the seeds themselves, so adding seeds to an experiment creates or changes only the blocks
those seeds fall into.
"""

from __future__ import annotations

import argparse
import copy
import functools
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from rnngeom import deps
from rnngeom.constants import RUN_KEYS


class ConfigError(ValueError):
    """A config problem; the message names the key and what is allowed."""


DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml"
DEFAULT_BASE = Path(__file__).resolve().parents[2] / "config.yaml"  # what a --configfile overlays


def fmt_num(x: float) -> str:
    """A number as written in run ids: ``0.1`` -> ``"0.1"``, ``1.0`` -> ``"1"`` (round-trips via float)."""
    return f"{float(x):g}"


@dataclass(frozen=True, order=True)
class Run:
    task: str
    arch: str
    learning_rule: str
    lambda_tcr: float
    gain: float
    seed: int

    def __post_init__(self):
        # Numbers stay numbers whoever builds the run (a "0.3" from a path or a CLI becomes 0.3).
        for key, kind in (("lambda_tcr", float), ("gain", float), ("seed", int)):
            object.__setattr__(self, key, kind(getattr(self, key)))

    @property
    def condition(self) -> str:
        """The run id without the seed: what the runs of one seed block share."""
        lam, gain = fmt_num(self.lambda_tcr), fmt_num(self.gain)
        return f"{self.task}/{self.arch}/{self.learning_rule}/lam{lam}/g{gain}"

    @property
    def run_id(self) -> str:
        return f"{self.condition}/seed{self.seed}"

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, **{key: getattr(self, key) for key in RUN_KEYS}}


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
    validator = _validator_filling_defaults()(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"config error at '{_key(err.absolute_path)}': {err.message}")
    return config


# --- cross-field checks the schema cannot express (torch-free: the Snakefile runs them at every parse) ----
def rule_block(rule: str) -> str:
    """The training.<block> holding a learning rule's settings (the freeze_in variants share one)."""
    return deps.rule_settings_block(rule)


OVERRIDE_SECTIONS = ("per_task", "per_arch", "per_rule")  # applied in this order


def effective_training(config: dict, task: str, rule: str | None = None, arch: str | None = None) -> dict:
    """Training settings for ``task`` (and ``arch``, learning ``rule``): the global block, then its
    per_task, per_arch and per_rule overrides, in that order. With a rule, only that rule's settings block
    is kept (editing RFLO settings must not retrain BPTT runs)."""
    blocks = {rule_block(r) for r in deps.registry_names("learning_rule")}
    tr = {k: v for k, v in config["training"].items() if k not in {*OVERRIDE_SECTIONS, *blocks}}
    tr.update(copy.deepcopy(config["training"].get("per_task", {}).get(task, {})))
    if arch is not None:
        tr.update(copy.deepcopy(config["training"].get("per_arch", {}).get(arch, {})))
    if rule is not None:
        tr.update(copy.deepcopy(config["training"].get("per_rule", {}).get(rule, {})))
        block = rule_block(rule)
        tr[block] = copy.deepcopy(config["training"].get(block, {}))
    return tr


def effective_model(config: dict, arch: str, rule: str | None = None) -> dict:
    """Model hyperparameters of ``arch`` for learning ``rule``: models.<arch>, then its per_rule.<rule>
    overrides (e.g. a leak the local rules need: RFLO's eligibility traces span 1/alpha steps). The gain
    stays in (an experiment's gain list overrides it per run)."""
    model = {k: v for k, v in config["models"][arch].items() if k != "per_rule"}
    if rule is not None:
        model.update(config["models"][arch].get("per_rule", {}).get(rule, {}))
    return model


def override_source(config: dict, key: str, *, task: str, arch: str, rule: str) -> str:
    """The config section that sets training ``key`` for (task, arch, rule): the last override holding it."""
    training = config["training"]
    for section, name in (("per_rule", rule), ("per_arch", arch), ("per_task", task)):
        if key in training.get(section, {}).get(name, {}):
            return f"training.{section}.{name}"
    return "training"


def as_list(names) -> list[str]:
    """An ``experiment:`` value (one name or a list of names) as a list."""
    return [names] if isinstance(names, str) else list(names)


def _fail(key: str, problem: str):
    raise ConfigError(f"config error at '{key}': {problem}")


def _check_defined(config: dict, key: str, names, section: str) -> None:
    for name in names:
        if name not in config[section]:
            defined = sorted(config[section])
            _fail(key, f"{section[:-1]} {name!r} is not defined under '{section}'; defined: {defined}")


def _check_rule_archs(config: dict) -> None:
    """Local learning rules (RFLO and what builds on it) run the dynamics themselves: only for the
    architectures rnngeom.learning.rflo.LOCAL_ARCHS, and without noise."""
    local_archs = deps.module_constant("rnngeom.learning.rflo", "LOCAL_ARCHS")
    for name, exp in config["experiments"].items():
        for rule in exp["learning_rules"]:
            if "rnngeom.learning.rflo" not in deps.job_modules("rnngeom.train", learning_rule=rule):
                continue
            for arch in exp["archs"]:
                where = f"experiments.{name}.learning_rules"
                if arch not in local_archs:
                    _fail(where, f"({rule} x {arch}): {rule!r} supports arch {list(local_archs)} only")
                if effective_model(config, arch, rule).get("noise_std", 0.0) > 0:
                    _fail(where, f"({rule} x {arch}): {rule!r} needs models.{arch}.noise_std = 0")


def check_semantics(config: dict) -> None:
    from rnngeom.tasks import get_task  # numpy only

    if "fixed_points_at" in config["analysis"]:
        # one home for the analysis level: the experiments that need the full analysis say so
        _fail(
            "analysis.fixed_points_at",
            "is set per run from its experiments' `analysis: full | final` (experiments.<name>.analysis); "
            "remove it here",
        )
    for name, exp in config["experiments"].items():
        _check_defined(config, f"experiments.{name}.tasks", exp["tasks"], "tasks")
        _check_defined(config, f"experiments.{name}.archs", exp["archs"], "models")
    _check_rule_archs(config)
    # A claim names experiments and a figure that must exist; a smaller config leaves the claim out (the claim
    # table then reports it as "not run").
    for claim, spec in config["claims"].items():
        _check_defined(config, f"claims.{claim}.experiment", as_list(spec["experiment"]), "experiments")
        _check_defined(config, f"claims.{claim}.figure", [spec["figure"]], "figures")
    for fig, spec in config["figures"].items():
        _check_defined(config, f"figures.{fig}.experiment", as_list(spec["experiment"]), "experiments")
    for task, params in config["tasks"].items():
        try:
            get_task(task).generate(1, seed=0, **params)
        except (ValueError, TypeError) as err:
            _fail(f"tasks.{task}", str(err))
    rules = sorted({r for exp in config["experiments"].values() for r in exp["learning_rules"]})
    archs = sorted({a for exp in config["experiments"].values() for a in exp["archs"]})
    for task, arch, rule in itertools.product(config["tasks"], archs, rules):
        tr = effective_training(config, task, rule, arch)
        where = functools.partial(override_source, config, task=task, arch=arch, rule=rule)
        n, ck = tr["n_iterations"], tr["checkpoints"]
        if ck["dense_until"] > n:
            problem = f"{ck['dense_until']} is beyond n_iterations={n}; allowed: 0..{n}"
            _fail(f"{where('checkpoints')}.checkpoints.dense_until", problem)
        for key in ("dense_every", "sparse_every"):
            if ck[key] > n:
                problem = f"{ck[key]} is beyond n_iterations={n}; allowed: 1..{n}"
                _fail(f"{where('checkpoints')}.checkpoints.{key}", problem)
        if tr["eval_every"] > n:
            _fail(
                f"{where('eval_every')}.eval_every",
                f"{tr['eval_every']} is beyond n_iterations={n}; allowed: 1..{n}",
            )
        if tr["batch_size"] > config["data"]["n_train"]:
            n_train = config["data"]["n_train"]
            _fail(f"{where('batch_size')}.batch_size", f"{tr['batch_size']} exceeds data.n_train={n_train}")


def check_model_overrides(config: dict, schema_path: str | Path) -> None:
    """Each models.<arch>.per_rule.<rule> block holds only that architecture's hyperparameters, each valid
    as it would be at the top of models.<arch> (the schema checks the merged model)."""
    for arch, spec in config["models"].items():
        for rule, over in spec.get("per_rule", {}).items():
            merged = {k: v for k, v in spec.items() if k != "per_rule"} | over
            try:
                validate_schema({**config, "models": {arch: merged}}, schema_path)
            except ConfigError as err:
                detail = str(err).split(": ", 1)[-1]
                _fail(f"models.{arch}.per_rule.{rule}", detail)


def load_config(config: dict, schema_path: str | Path = DEFAULT_SCHEMA) -> dict:
    """Schema + semantic validation (no torch); returns the config with defaults filled in."""
    config = validate_schema(config, schema_path)
    check_model_overrides(config, schema_path)
    check_semantics(config)
    return config


# --- grid expansion and run selection --------------------------------------------------------------------
def experiment_runs(config: dict, name: str) -> list[Run]:
    """The runs of one experiment: its grid tasks x archs x learning_rules x lambda_tcr x gain x seeds."""
    exp = config["experiments"][name]
    runs = []
    for task, arch, rule, lam, seed in itertools.product(
        exp["tasks"], exp["archs"], exp["learning_rules"], exp["lambda_tcr"], exp["seeds"]
    ):
        gains = exp.get("gain") or [config["models"][arch].get("gain", 1.0)]
        runs += [Run(task, arch, rule, float(lam), float(g), int(seed)) for g in gains]
    return runs


def all_runs(config: dict) -> list[Run]:
    """Every distinct run of every experiment, sorted (shared runs once)."""
    return sorted({r for name in config["experiments"] for r in experiment_runs(config, name)})


def experiment_run_ids(config: dict, names) -> list[str]:
    """The run ids of the experiment(s) ``names`` (one name or a list), sorted and unique: what a figure or
    a claim selects from the tables (by exact run_id, never by a product of key values)."""
    return sorted({r.run_id for name in as_list(names) for r in experiment_runs(config, name)})


def figure_run_ids(config: dict, figure: str) -> list[str]:
    return experiment_run_ids(config, config["figures"][figure]["experiment"])


def claim_experiments(config: dict) -> dict[str, list[str]]:
    """{experiment: [run_id, ...]} for every experiment a claim names (rnngeom.claims --experiments)."""
    names = sorted({n for spec in config["claims"].values() for n in as_list(spec["experiment"])})
    return {name: experiment_run_ids(config, name) for name in names}


def run_blocks(config: dict) -> dict[str, list[Run]]:
    """{block id: its runs, by seed} over every run: block id = ``{condition}/block{b}``, holding the
    condition's runs with seed // training.seed_block == b. One training job and one analysis job each."""
    size = int(config["training"]["seed_block"])
    blocks: dict[str, list[Run]] = {}
    for run in all_runs(config):
        blocks.setdefault(f"{run.condition}/block{run.seed // size}", []).append(run)
    return {block: sorted(runs, key=lambda r: r.seed) for block, runs in sorted(blocks.items())}


# Analysis levels, least to most: final = fixed points at the final checkpoint only, no GR scores or events;
# full = fixed points at every checkpoint plus the GR noise floor and events (run_analysis fixed_points_at).
ANALYSIS_LEVELS = {"final": "final", "full": "all"}  # experiment level -> run_analysis fixed_points_at


def analysis_levels(config: dict) -> dict[str, str]:
    """{run_id: analysis level}: the fullest level any experiment holding the run asks for."""
    order = list(ANALYSIS_LEVELS).index
    levels: dict[str, str] = {}
    for name, exp in config["experiments"].items():
        for run in experiment_runs(config, name):
            levels[run.run_id] = max(levels.get(run.run_id, exp["analysis"]), exp["analysis"], key=order)
    return levels


def analysis_settings(config: dict, level: str) -> dict:
    """The settings of an analysis at ``level`` (its Snakemake params: a change re-analyses)."""
    return {**config["analysis"], "fixed_points_at": ANALYSIS_LEVELS[level]}


def run_settings(config: dict, run: Run) -> dict:
    """Everything that determines a training run's result (its Snakemake params: a change retrains)."""
    tr = effective_training(config, run.task, run.learning_rule, run.arch)
    tr.pop("accuracy_threshold", None)  # used by aggregation only; changing it must not retrain
    tr.pop("loss_threshold", None)
    if tr.get("tcr_window") == "all":  # the default: runs without a window have no such key
        del tr["tcr_window"]
    tr.pop("seed_block", None)  # which job trains a run does not change its result
    model = {k: v for k, v in effective_model(config, run.arch, run.learning_rule).items() if k != "gain"}
    return {**{key: getattr(run, key) for key in RUN_KEYS}, "model": model, "training": tr}


def learn_criteria(config: dict) -> dict[str, dict]:
    """{task: {"accuracy": accuracy_threshold, "loss_fraction": loss_threshold or None}}: when a run of the
    task has learned (time_to_learn, by rnngeom.aggregate; rnngeom.analysis.loss_drop.LearnCriterion)."""
    out = {}
    for task in config["tasks"]:
        tr = effective_training(config, task)
        out[task] = {"accuracy": tr["accuracy_threshold"], "loss_fraction": tr.get("loss_threshold")}
    return out


# --- overlays: how a --configfile combines with config.yaml ------------------------------------------------
def merge_overlay(base: dict, overlay: dict) -> dict:
    """``base`` with ``overlay`` merged in (a new dict): mappings merge key by key, any other value (a list, a
    number) replaces the base's: Snakemake's own merge of a --configfile onto the workflow's configfile. An
    overlay with ``standalone: true`` is a whole config: the base is left out."""
    if overlay.get("standalone"):
        return copy.deepcopy(overlay)
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overlay(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_config(path: str | Path, base: str | Path = DEFAULT_BASE) -> dict:
    """The config file ``path`` as the pipeline sees it, not yet validated: ``base`` itself, or an overlay
    merged onto it (``merge_overlay``) as ``snakemake --configfile path`` does."""
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict):
        raise ConfigError(f"config error at '<top level>': not a mapping of keys ({type(raw).__name__})")
    if Path(path).resolve() != Path(base).resolve():
        raw = merge_overlay(yaml.safe_load(Path(base).read_text()), raw)
    return raw


# --- python -m rnngeom.config check [FILE] ------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rnngeom.config", description="Validate a pipeline config.")
    sub = ap.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate a config as the Snakefile does")
    check.add_argument(
        "file",
        nargs="?",
        default="config.yaml",
        help="config file (default: config.yaml); any other file is an overlay merged onto config.yaml, as "
        "snakemake --configfile FILE does, unless it says standalone: true",
    )
    check.add_argument("--base", default=str(DEFAULT_BASE), help="the config an overlay is merged onto")
    check.add_argument("--schema", default=str(DEFAULT_SCHEMA), help="JSON schema (default: the workflow's)")
    args = ap.parse_args(argv)
    try:
        config = load_config(read_config(args.file, args.base), args.schema)
    except ConfigError as err:
        print(f"{args.file}: {err}", file=sys.stderr)
        return 2
    except (OSError, yaml.YAMLError) as err:
        print(f"{args.file}: cannot read the config: {err}".replace("\n", " "), file=sys.stderr)
        return 2
    n_runs = len(all_runs(config))
    n_exp, n_fig = len(config["experiments"]), len(config["figures"])
    print(f"{args.file}: OK ({n_exp} experiments, {n_runs} runs, {n_fig} figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
