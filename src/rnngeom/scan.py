"""Regime scan: where, over gain x lambda_TCR and any other config values (memory gap, learning rate,
optimizer, leak, readout length, ...), our reconstruction learns, how fast, and whether it learns by a
search phase (a plateau) then an abrupt drop.

The scan file (config/scan.yaml) holds only the scan; everything else (tasks, models, training, data,
loss_drop) comes from the main config, so a scan run is exactly a reproduction run at other values.
Its seeds are EXPLORATION seeds: no experiment of the main config may use them (checked), so the claims,
decided on their own (confirmation) seeds, never reuse a run that chose their regime.

A family's ``vary`` maps one or more main-config paths to their values; its cells are the product of them
(with the tasks, archs, gains and lambda_tcr values). A *cell* is one point of that grid with all the
scan's seeds: one job trains them as one ensemble (``rnngeom.train``) and writes their learning curves
(``cells/<cell>.tsv``, one row per evaluation of each run). The table (``scan.tsv``, one row per run;
``rnngeom.scan_table``, a module of its own so that a cell job imports none of it) is made from the
curves with the reproduction's own functions (``rnngeom.aggregate.run_summary`` for the
times, ``detect_in_metrics`` with the main config's ``loss_drop`` settings), so a change of the accuracy
threshold or of the drop detector re-makes the table, not the training. A cell job gets its runs' resolved
settings (``resolved_cell``), so editing a part of the main config a cell does not read (another task, an
experiment, a figure) does not retrain it.

Torch is imported only inside ``cell_curves``: the Snakefile parse expands and validates the scan torch-free.

CLI:
    python -m rnngeom.scan cell --main-config CONFIG --scan-config SCAN --cell ID --out cells/ID.tsv
    python -m rnngeom.scan cell --resolved JSON --cell ID --out cells/ID.tsv     (what the pipeline runs)
    python -m rnngeom.scan_table --main-config CONFIG --out results/scan/scan.tsv cells/*.tsv  (the table)
    python -m rnngeom.scan list --main-config CONFIG --scan-config SCAN      (one cell id a line)
CONFIG is a YAML/JSON file or inline JSON (the pipeline passes the validated config as JSON).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from rnngeom import config as rnngeom_config
from rnngeom import deps
from rnngeom.config import Run, fmt_num

SCAN_KEYS = ("seeds", "families")
FAMILY_KEYS = ("tasks", "archs", "learning_rule", "gain", "lambda_tcr", "vary")
FAMILY_REQUIRED = ("tasks", "archs", "learning_rule", "gain", "lambda_tcr")
# Columns always in the table, filled with each run's effective value (NaN where the arch has no alpha or
# the task no such parameter). A varied path gets a column named by its last part (see override_column).
EFFECTIVE_COLUMNS = ("alpha", "optimizer", "lr", "n_steps")
# The learning curves a cell job writes (cells/<cell>.tsv): identity, then one row per evaluation.
CURVE_ID_COLUMNS = ["family", "cell", "task", "arch", "learning_rule", "gain", "lambda_tcr", "seed"]
# per run, repeated on its rows (chance_loss: the held-out loss of the best constant output)
CURVE_RUN_COLUMNS = ["n_iterations", "run_diverged", "chance_loss", "wall_seconds"]
CURVE_METRICS = ["iteration", "task_loss", "tcr_loss", "test_loss", "test_accuracy", "diverged"]


class ScanError(ValueError):
    """A scan-file problem; the message names the key."""


def _fail(key: str, problem: str):
    raise ScanError(f"scan config error at '{key}': {problem}")


def _fmt_value(v) -> str:
    return v if isinstance(v, str) else fmt_num(v)


@dataclass(frozen=True)
class Cell:
    family: str
    task: str
    arch: str
    learning_rule: str
    overrides: tuple[tuple[str, float | str], ...]  # (dotted main-config path, value), in `vary` order
    gain: float
    lambda_tcr: float
    seeds: tuple[int, ...]

    @property
    def cell_id(self) -> str:
        """``family/task/arch/rule[/<name><value>...]/lam<λ>/g<gain>``, numbers as in run ids."""
        parts = [self.family, self.task, self.arch, self.learning_rule]
        parts += [f"{override_column(path)}{_fmt_value(v)}" for path, v in self.overrides]
        return "/".join(parts + [f"lam{fmt_num(self.lambda_tcr)}", f"g{fmt_num(self.gain)}"])

    def job_choice(self) -> tuple[str, str, str]:
        """(task, arch, learning_rule): what ``rnngeom.deps.job_source_files`` needs for this cell's job."""
        return self.task, self.arch, self.learning_rule

    def runs(self) -> list[Run]:
        return [
            Run(self.task, self.arch, self.learning_rule, self.lambda_tcr, self.gain, s) for s in self.seeds
        ]


def override_column(path: str) -> str:
    """The table column of a ``vary`` path: its last part (``tasks.delayed_addition.n_steps`` -> n_steps,
    ``training.per_rule.rflo.lr`` -> lr, ``models.leaky.per_rule.rflo.alpha`` -> alpha)."""
    return path.split(".")[-1]


# --- overrides -------------------------------------------------------------------------------------------
def _lookup(config: dict, path: str):
    node = config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def apply_overrides(config: dict, overrides) -> dict:
    """A deep copy of ``config`` with each (dotted path, value) set; the config itself is never changed."""
    out = copy.deepcopy(config)
    for path, value in overrides:
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[leaf] = value
    return out


def effective_values(config: dict, task: str, arch: str, rule: str) -> dict:
    """What a run of (task, arch, rule) uses for the EFFECTIVE_COLUMNS under ``config``."""
    from rnngeom.tasks import get_task  # numpy only

    params = {**get_task(task).defaults, **config["tasks"][task]}
    training = rnngeom_config.effective_training(config, task, rule, arch)
    model = rnngeom_config.effective_model(config, arch, rule)
    return {
        "alpha": model.get("alpha", math.nan),
        "optimizer": training["optimizer"],
        "lr": training["lr"],
        "n_steps": params.get("n_steps", math.nan),
    }


# --- the scan file ---------------------------------------------------------------------------------------
def _check_list(key: str, value, kind) -> list:
    if not isinstance(value, list) or not value:
        _fail(key, f"must be a non-empty list, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, kind):
            _fail(key, f"{v!r} is not a {kind.__name__ if isinstance(kind, type) else 'number'}")
    if len(set(value)) != len(value):
        _fail(key, f"has repeated values: {value}")
    return value


def _check_override(config: dict, family: str, fam: dict, path: str, values: list) -> None:
    key = f"families.{family}.vary.{path}"
    try:
        default = _lookup(config, path)
    except KeyError:
        _fail(key, f"'{path}' is not a key of the main config (only existing values can be varied)")
    if isinstance(default, (dict, list)):
        _fail(key, f"'{path}' is a section of the main config, not a value")
    if isinstance(default, str) != all(isinstance(v, str) for v in values):
        _fail(key, f"values {values} are not of the kind of the main config's {default!r}")
    parts = path.split(".")
    # An override of one task's or architecture's value must reach every cell it is crossed with.
    for section, names in (("tasks", fam["tasks"]), ("models", fam["archs"])):
        if parts[0] == section and set(names) != {parts[1]}:
            _fail(key, f"varies {section}.{parts[1]} only, but the family's {section[:-1]}s are {names}")
    for value in values:
        varied = apply_overrides(config, [(path, value)])
        if "experiments" in config:  # a job gets the already-validated config without them
            try:
                rnngeom_config.load_config(varied)
            except rnngeom_config.ConfigError as err:
                _fail(key, f"value {value!r}: {err}")
        if parts[0] == "training":
            for task, arch in itertools.product(fam["tasks"], fam["archs"]):
                effective = rnngeom_config.effective_training(varied, task, fam["learning_rule"], arch)
                if effective.get(parts[-1]) != value:
                    _fail(
                        key,
                        f"is shadowed for task {task!r}, arch {arch!r} by training.per_task / per_arch / "
                        "per_rule overrides",
                    )
        if parts[0] == "models" and parts[2] != "per_rule":
            model = rnngeom_config.effective_model(varied, parts[1], fam["learning_rule"])
            if model.get(parts[-1]) != value:
                _fail(key, f"is shadowed by models.{parts[1]}.per_rule.{fam['learning_rule']}")


def validate_scan(scan: dict, config: dict) -> dict:
    """Check a scan file against the (validated) main config; raise ScanError naming the first bad key."""
    if not isinstance(scan, dict):
        _fail("<top level>", f"must be a mapping with keys {list(SCAN_KEYS)}")
    for key in scan:
        if key not in SCAN_KEYS:
            _fail(key, f"unknown key; allowed: {list(SCAN_KEYS)}")
    for key in SCAN_KEYS:
        if key not in scan:
            _fail(key, "is missing")
    seeds = _check_list("seeds", scan["seeds"], int)
    if any(s < 0 for s in seeds):
        _fail("seeds", f"seeds must be >= 0, got {seeds}")
    for name, exp in config.get("experiments", {}).items():
        shared = sorted(set(seeds) & set(exp["seeds"]))
        if shared:
            _fail(
                "seeds",
                f"seed(s) {shared} are also seeds of experiment '{name}': exploration seeds must be "
                "disjoint from the claims' confirmation seeds",
            )
    if not isinstance(scan["families"], dict) or not scan["families"]:
        _fail("families", "must be a non-empty mapping of family name -> grid")
    for family, fam in scan["families"].items():
        where = f"families.{family}"
        if not isinstance(family, str) or not family.replace("_", "").isalnum() or not family.islower():
            _fail(where, "a family name is lower-case letters, digits and '_'")
        if not isinstance(fam, dict):
            _fail(where, "must be a mapping")
        for key in fam:
            if key not in FAMILY_KEYS:
                _fail(f"{where}.{key}", f"unknown key; allowed: {list(FAMILY_KEYS)}")
        for key in FAMILY_REQUIRED:
            if key not in fam:
                _fail(f"{where}.{key}", "is missing")
        for key, section in (("tasks", "tasks"), ("archs", "models")):
            for name in _check_list(f"{where}.{key}", fam[key], str):
                if name not in config[section]:
                    _fail(
                        f"{where}.{key}",
                        f"{name!r} is not defined under '{section}': {sorted(config[section])}",
                    )
        if fam["learning_rule"] not in deps.registry_names("learning_rule"):
            rules = deps.registry_names("learning_rule")
            _fail(f"{where}.learning_rule", f"{fam['learning_rule']!r} unknown; allowed: {rules}")
        _check_list(f"{where}.lambda_tcr", fam["lambda_tcr"], (int, float))
        gains = fam["gain"]
        if isinstance(gains, dict):
            for arch in fam["archs"]:
                if arch not in gains:
                    _fail(
                        f"{where}.gain", f"no gains for arch {arch!r} (a per-arch mapping needs every arch)"
                    )
            for arch in gains:
                if arch not in fam["archs"]:
                    _fail(f"{where}.gain.{arch}", f"{arch!r} is not one of the family's archs {fam['archs']}")
                _check_list(f"{where}.gain.{arch}", gains[arch], (int, float))
        else:
            _check_list(f"{where}.gain", gains, (int, float))
        vary = fam.get("vary", {})
        if not isinstance(vary, dict):
            _fail(f"{where}.vary", "must map main-config paths to their lists of values")
        columns = [override_column(path) for path in vary]
        if len(set(columns)) != len(columns):
            _fail(f"{where}.vary", f"two paths end in the same name ({columns}): their columns would clash")
        for path, values in vary.items():
            _check_list(f"{where}.vary.{path}", values, (int, float, str))
            _check_override(config, family, fam, path, values)
    return scan


def load_main_config(source: str) -> dict:
    """The main config from a YAML file (an overlay is merged onto config.yaml, as the pipeline does) or
    inline JSON; a full config is validated (with defaults)."""
    path = Path(source)
    try:
        if not source.lstrip().startswith("{") and path.exists():
            config = rnngeom_config.read_config(path)
        else:
            config = yaml.safe_load(source)
    except yaml.YAMLError as err:
        raise ScanError(f"--main-config is neither a readable file nor JSON: {err}") from None
    except rnngeom_config.ConfigError as err:
        raise ScanError(f"--main-config {source}: {err}") from None
    if not isinstance(config, dict):
        raise ScanError(f"--main-config: no config mapping in {source[:80]!r}")
    if "experiments" in config:
        config = rnngeom_config.load_config({k: v for k, v in config.items() if k != "scan"})
    return config


def read_scan(path: str | Path, config: dict) -> dict:
    try:
        scan = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ScanError(f"cannot read the scan config {path}: {err}".replace("\n", " ")) from None
    try:
        return validate_scan(scan, config)
    except ScanError as err:
        raise ScanError(f"{path}: {err}") from None


def cells(scan: dict, config: dict) -> list[Cell]:
    """Every cell of every family, in file order (family, task, arch, overrides, gain, lambda)."""
    out = []
    seeds = tuple(int(s) for s in scan["seeds"])
    for family, fam in scan["families"].items():
        vary = fam.get("vary", {})
        override_sets = [tuple(zip(vary, values)) for values in itertools.product(*vary.values())]
        for task, arch, overrides in itertools.product(fam["tasks"], fam["archs"], override_sets):
            gains = fam["gain"][arch] if isinstance(fam["gain"], dict) else fam["gain"]
            for gain, lam in itertools.product(gains, fam["lambda_tcr"]):
                out.append(
                    Cell(family, task, arch, fam["learning_rule"], overrides, float(gain), float(lam), seeds)
                )
    ids = [c.cell_id for c in out]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        _fail("families", f"cell {duplicate!r} appears twice (repeated values?)")
    return out


def cell_of(by_id: dict[str, Cell], cell_id: str) -> Cell:
    if cell_id not in by_id:
        raise ScanError(f"cell {cell_id!r} is not in the scan ({len(by_id)} cells; list them with `list`)")
    return by_id[cell_id]


def find_cell(scan: dict, config: dict, cell_id: str) -> Cell:
    return cell_of({c.cell_id: c for c in cells(scan, config)}, cell_id)


def unless_invalid(error: str | None, paths: list[str]) -> list[str]:
    """``paths``, or the scan file's ``error`` raised: the Snakefile validates the scan at every parse but
    lets a problem stop only the scan targets (an input function of theirs calls this)."""
    if error:
        raise ScanError(error)
    return paths


def _scan_checkpoints(settings: dict) -> dict:
    """A scan run keeps no checkpoints (only its curve), so its schedule is fixed here, not read from the
    config: a snapshot every tenth of the run, for resume (the schedule does not change what is trained)."""
    n = int(settings["training"]["n_iterations"])
    every = max(1, n // 10)
    schedule = {"dense_until": 0, "dense_every": every, "sparse_every": every}
    return {**settings, "training": {**settings["training"], "checkpoints": schedule}}


def resolved_cell(config: dict, cell: Cell) -> dict:
    """Everything a cell's training reads, resolved: its runs' settings, the data settings and the task's
    parameters, and the effective values of the table (the cell job's Snakemake params: a change of any of
    them, and only of them, retrains the cell)."""
    varied = apply_overrides(config, cell.overrides)
    return {
        "cell": {**cell.__dict__, "overrides": [list(o) for o in cell.overrides], "seeds": list(cell.seeds)},
        "runs": [_scan_checkpoints(rnngeom_config.run_settings(varied, run)) for run in cell.runs()],
        "data": varied["data"],
        "task_params": varied["tasks"][cell.task],
        "columns": {
            **effective_values(varied, cell.task, cell.arch, cell.learning_rule),
            # a varied key the curves already record per run (n_iterations: the effective run length) keeps
            # that column
            **{
                override_column(path): v
                for path, v in cell.overrides
                if override_column(path) not in CURVE_ID_COLUMNS + CURVE_RUN_COLUMNS
            },
        },
    }


def cell_from_resolved(resolved: dict) -> Cell:
    """The Cell a ``resolved_cell`` dict was made for."""
    try:
        c = dict(resolved["cell"])
        c["overrides"] = tuple(tuple(o) for o in c["overrides"])
        c["seeds"] = tuple(int(s) for s in c["seeds"])
        return Cell(**c)
    except (KeyError, TypeError) as err:
        raise ScanError(f"--resolved is not a resolved scan cell: {err}") from None


# --- one cell: train its seeds as one ensemble, keep their learning curves ------------------------------
def cell_curves(resolved: dict, cell: Cell, runs_dir: str | Path, device: str = "cpu", threads: int = 1):
    """Train (or resume) the cell's runs in runs_dir/<cell_id>/seed<s>/ and return their learning curves:
    one row per evaluation of each run (CURVE_ID_COLUMNS, the cell's columns, CURVE_RUN_COLUMNS,
    CURVE_METRICS).

    The datasets are generated here from the cell's (overridden) task parameters and data settings, exactly
    as the pipeline's data rule does, so a timing override gets its own data. Checkpoints and datasets are
    deleted afterwards; metrics.tsv and provenance.json of each run stay (a few kB), and runs whose
    provenance.json holds these settings are not trained again (a job killed after training)."""
    from rnngeom.data import generate_split, write_dataset
    from rnngeom.provenance import settings_hash
    from rnngeom.train import train_run

    cell_dir = Path(runs_dir) / cell.cell_id
    runs = cell.runs()
    settings = [{**s, "device": device, "threads": threads} for s in resolved["runs"]]
    if [int(s["seed"]) for s in settings] != [run.seed for run in runs]:
        raise ScanError(f"the resolved settings are not those of cell {cell.cell_id!r} (seeds differ)")
    out_dirs = [cell_dir / f"seed{run.seed}" for run in runs]
    if not all(_finished(d, settings_hash(s)) for d, s in zip(out_dirs, settings)):
        data, paths = resolved["data"], {}
        for split, n in (("train", data["n_train"]), ("test", data["n_test"])):
            paths[split] = cell_dir / "data" / f"{split}.npz"
            split_data = generate_split(cell.task, split, n, data["seed"], resolved["task_params"])
            write_dataset(paths[split], split_data, {"task": cell.task, "split": split, "seed": data["seed"]})
        train_run(settings, paths["train"], paths["test"], out_dirs)
        shutil.rmtree(cell_dir / "data")

    frames = []
    for run, s, out_dir in zip(runs, settings, out_dirs):
        provenance = json.loads((out_dir / "provenance.json").read_text())
        metrics = pd.read_csv(out_dir / "metrics.tsv", sep="\t")
        (out_dir / "checkpoints.pt").unlink(missing_ok=True)
        ident = {"family": cell.family, "cell": cell.cell_id}
        ident |= {k: getattr(run, k) for k in ("task", "arch", "learning_rule", "gain", "lambda_tcr", "seed")}
        per_run = {
            "n_iterations": s["training"]["n_iterations"],
            "run_diverged": bool(provenance.get("diverged", False)),
            "chance_loss": provenance["chance_loss"],
            # the ensemble's training time shared equally by its runs: what one run costs in it
            "wall_seconds": round(float(provenance["wall_seconds"]) / len(runs), 3),
        }
        frames.append(metrics[CURVE_METRICS].assign(**ident, **resolved["columns"], **per_run))
    curves = pd.concat(frames, ignore_index=True)
    first = CURVE_ID_COLUMNS + list(resolved["columns"]) + CURVE_RUN_COLUMNS
    return curves[first + CURVE_METRICS]


def _finished(run_dir: Path, expected_hash: str) -> bool:
    provenance = run_dir / "provenance.json"
    return provenance.exists() and json.loads(provenance.read_text()).get("settings_hash") == expected_hash


def main(argv=None) -> int:
    from rnngeom.io import json_arg, write_tsv_atomic

    ap = argparse.ArgumentParser(prog="python -m rnngeom.scan", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    cell = sub.add_parser("cell")
    cell.add_argument("--main-config", help="main config: YAML/JSON file or inline JSON")
    cell.add_argument("--scan-config", help="the scan file (config/scan.yaml)")
    cell.add_argument(
        "--resolved", help="the cell's resolved settings (JSON or @file), instead of the configs"
    )
    cell.add_argument("--cell", required=True, help="cell id (see `list`)")
    cell.add_argument("--out", required=True, help="the cell's learning curves (.tsv)")
    cell.add_argument("--runs-dir", default="results/scan/runs", help="where the runs train (resumable)")
    cell.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    cell.add_argument("--threads", type=int, default=1)
    listing = sub.add_parser("list")
    listing.add_argument("--main-config", required=True, help="main config: YAML/JSON file or inline JSON")
    listing.add_argument("--scan-config", required=True, help="the scan file (config/scan.yaml)")
    a = ap.parse_args(argv)
    try:
        if a.command == "cell" and a.resolved:
            resolved = json_arg(a.resolved, "--resolved")
            target = cell_from_resolved(resolved)
            if target.cell_id != a.cell:
                raise ScanError(f"--resolved holds cell {target.cell_id!r}, not --cell {a.cell!r}")
        else:
            if not (a.main_config and a.scan_config):
                ap.error("give --resolved, or --main-config and --scan-config")
            config = load_main_config(a.main_config)
            scan = read_scan(a.scan_config, config)
            if a.command == "list":
                print("\n".join(c.cell_id for c in cells(scan, config)))
                return 0
            target = find_cell(scan, config, a.cell)
            resolved = resolved_cell(config, target)
        curves = cell_curves(resolved, target, a.runs_dir, a.device, a.threads)
    except (ScanError, rnngeom_config.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_tsv_atomic(a.out, curves)
    n_runs = curves["seed"].nunique()
    print(f"wrote {a.out}: learning curves of {n_runs} runs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
