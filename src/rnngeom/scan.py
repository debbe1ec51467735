"""Regime scan: where, over gain x lambda_TCR (and alpha, learning rate, task timing), our reconstruction
learns, how fast, and whether it learns by a plateau then a drop.

The scan file (config/scan.yaml) holds only the scan; everything else (tasks, models, training, data,
analysis.loss_drop) comes from the main config, so a scan run is exactly a reproduction run at other values.
Its seeds are EXPLORATION seeds: no experiment of the main config may use them (checked), so the claims,
decided on their own (confirmation) seeds, never reuse a run that chose their regime.

A *cell* is one point of a family's grid, (family, task, arch, learning rule, override values, gain,
lambda_tcr), with all the scan's seeds: one job trains them as one ensemble (``rnngeom.train``; members are
independent, so each row equals training that seed alone). Each run's row holds the times and loss-drop
fields of the reproduction's own functions (``rnngeom.aggregate.collect_run``, ``detect_loss_drop`` with the
main config's analysis settings); the scan keeps only these rows, not the checkpoints.

Torch is imported only inside ``train_cell``: the Snakefile parse expands and validates the scan torch-free.

CLI:
    python -m rnngeom.scan cell --main-config CONFIG --scan-config SCAN --cell ID --out cells/ID.tsv
    python -m rnngeom.scan table --out results/scan/scan.tsv cells/*.tsv
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
# Main-config sections a scan job does not need: leaving them out of its command keeps an edit of an
# experiment, a figure or a claim from retraining the scan (Snakemake re-runs a job whose params change).
NOT_FOR_JOBS = ("experiments", "figures", "claims", "scan")
# Columns always in the table, filled with each run's effective value (NaN where the arch has no alpha).
EFFECTIVE_COLUMNS = ("alpha", "lr", "n_steps")
COLUMNS = [
    "family",
    "cell",
    "task",
    "arch",
    "learning_rule",
    *EFFECTIVE_COLUMNS,
    "gain",
    "lambda_tcr",
    "seed",
    "n_iterations",
    "eval_every",
    "learned",
    "time_to_learn",
    "time_to_learn_censored",
    "censored",
    "final_accuracy",
    "best_accuracy",
    "diverged",
    "abrupt",
    "plateau_fraction",
    "drop_width_rel",
    "drop_decades",
    "t_drop",
    "wall_seconds",
]
LOSS_DROP_COLUMNS = ("abrupt", "plateau_fraction", "drop_width_rel", "drop_decades", "t_drop")


class ScanError(ValueError):
    """A scan-file problem; the message names the key."""


def _fail(key: str, problem: str):
    raise ScanError(f"scan config error at '{key}': {problem}")


@dataclass(frozen=True)
class Cell:
    family: str
    task: str
    arch: str
    learning_rule: str
    overrides: tuple[tuple[str, float], ...]  # (dotted main-config path, value); () for gain_lambda
    gain: float
    lambda_tcr: float
    seeds: tuple[int, ...]

    @property
    def cell_id(self) -> str:
        """``family/task/arch/rule[/<name><value>]/lam<λ>/g<gain>``, numbers as in run ids."""
        parts = [self.family, self.task, self.arch, self.learning_rule]
        parts += [f"{override_column(path)}{fmt_num(v)}" for path, v in self.overrides]
        return "/".join(parts + [f"lam{fmt_num(self.lambda_tcr)}", f"g{fmt_num(self.gain)}"])

    def job_choice(self) -> tuple[str, str, str]:
        """(task, arch, learning_rule): what ``rnngeom.deps.job_source_files`` needs for this cell's job."""
        return self.task, self.arch, self.learning_rule

    def runs(self) -> list[Run]:
        return [
            Run(self.task, self.arch, self.learning_rule, self.lambda_tcr, self.gain, s) for s in self.seeds
        ]


def override_column(path: str) -> str:
    """The table column of a ``vary`` path: alpha, lr or n_steps for the three known ones, else the path."""
    parts = path.split(".")
    known = (parts[0] in ("models", "tasks") and len(parts) == 3) or (
        parts[0] == "training" and len(parts) == 2
    )
    return parts[-1] if known and parts[-1] in EFFECTIVE_COLUMNS else path


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
    return {
        "alpha": config["models"][arch].get("alpha", math.nan),
        "lr": rnngeom_config.effective_training(config, task, rule, arch)["lr"],
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
        if not isinstance(vary, dict) or len(vary) > 1:
            _fail(
                f"{where}.vary",
                "must map ONE main-config path to its list of values (one dimension at a time)",
            )
        for path, values in vary.items():
            _check_list(f"{where}.vary.{path}", values, (int, float))
            _check_override(config, family, fam, path, values)
    return scan


def load_main_config(source: str) -> dict:
    """The main config from a YAML/JSON file or inline JSON; a full config is validated (with defaults)."""
    path = Path(source)
    text = path.read_text() if not source.lstrip().startswith("{") and path.exists() else source
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ScanError(f"--main-config is neither a readable file nor JSON: {err}") from None
    if not isinstance(config, dict):
        raise ScanError(f"--main-config: no config mapping in {source[:80]!r}")
    if "experiments" in config:
        config = rnngeom_config.load_config({k: v for k, v in config.items() if k != "scan"})
    return config


def job_config(config: dict) -> dict:
    """What a scan job needs of the validated main config (see NOT_FOR_JOBS)."""
    return {k: v for k, v in config.items() if k not in NOT_FOR_JOBS}


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
    """Every cell of every family, in file order (family, task, arch, override, gain, lambda)."""
    out = []
    seeds = tuple(int(s) for s in scan["seeds"])
    for family, fam in scan["families"].items():
        vary = list(fam.get("vary", {}).items())
        override_sets = [((path, v),) for path, values in vary for v in values] or [()]
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


# --- one cell: train its seeds as one ensemble, one row per run -------------------------------------------
def cell_rows(config: dict, cell: Cell, runs_dir: str | Path, device: str = "cpu", threads: int = 1):
    """Train (or resume) the cell's runs in runs_dir/<cell_id>/seed<s>/ and return their rows (COLUMNS).

    The datasets are generated here from the cell's (overridden) task parameters and ``config["data"]``,
    exactly as the pipeline's data rule does, so a timing override gets its own data. Checkpoints and
    datasets are deleted afterwards; metrics.tsv and provenance.json of each run stay (a few kB), and runs
    whose provenance.json holds these settings are not trained again (a job killed after training)."""
    from rnngeom.aggregate import collect_run
    from rnngeom.analysis.loss_drop import detect_loss_drop
    from rnngeom.analysis.run_analysis import resolve_settings
    from rnngeom.data import generate_split, write_dataset
    from rnngeom.train import settings_hash, train_run

    varied = apply_overrides(config, cell.overrides)
    cell_dir = Path(runs_dir) / cell.cell_id
    runs = cell.runs()
    settings = [
        {**rnngeom_config.run_settings(varied, run), "device": device, "threads": threads} for run in runs
    ]
    out_dirs = [cell_dir / f"seed{run.seed}" for run in runs]
    if not all(_finished(d, settings_hash(s)) for d, s in zip(out_dirs, settings)):
        data, paths = varied["data"], {}
        for split, n in (("train", data["n_train"]), ("test", data["n_test"])):
            paths[split] = cell_dir / "data" / f"{split}.npz"
            split_data = generate_split(cell.task, split, n, data["seed"], varied["tasks"][cell.task])
            write_dataset(paths[split], split_data, {"task": cell.task, "split": split, "seed": data["seed"]})
        train_run(settings, paths["train"], paths["test"], out_dirs)
        shutil.rmtree(cell_dir / "data")

    threshold = rnngeom_config.accuracy_thresholds(varied)
    analysis = resolve_settings(varied.get("analysis"))
    effective = effective_values(varied, cell.task, cell.arch, cell.learning_rule)
    extra = {path: v for path, v in cell.overrides if override_column(path) == path}
    rows = []
    for run, out_dir in zip(runs, out_dirs):
        summary = collect_run(out_dir, threshold)["runs"]
        metrics = pd.read_csv(out_dir / "metrics.tsv", sep="\t")
        drop = detect_loss_drop(
            metrics["iteration"], metrics[analysis["loss_column"]], **analysis["loss_drop"]
        )
        (out_dir / "checkpoints.pt").unlink(missing_ok=True)
        rows.append(
            {
                "family": cell.family,
                "cell": cell.cell_id,
                **{
                    k: getattr(run, k)
                    for k in ("task", "arch", "learning_rule", "gain", "lambda_tcr", "seed")
                },
                **effective,
                **extra,
                **{k: summary[k] for k in ("n_iterations", "eval_every", "learned", "time_to_learn")},
                **{k: summary[k] for k in ("time_to_learn_censored", "censored", "diverged")},
                "final_accuracy": summary["final_test_accuracy"],
                "best_accuracy": summary["best_test_accuracy"],
                **{k: drop.to_dict()[k] for k in LOSS_DROP_COLUMNS},
                # the ensemble's training time shared equally by its runs: what one run costs in it
                "wall_seconds": round(summary["wall_seconds"] / len(runs), 3),
            }
        )
    return order_columns(pd.DataFrame(rows))


def _finished(run_dir: Path, expected_hash: str) -> bool:
    provenance = run_dir / "provenance.json"
    return provenance.exists() and json.loads(provenance.read_text()).get("settings_hash") == expected_hash


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """COLUMNS first, then the extra override columns (vary paths outside EFFECTIVE_COLUMNS)."""
    return df[COLUMNS + sorted(c for c in df.columns if c not in COLUMNS)]


def concat_cells(paths) -> pd.DataFrame:
    """The scan table: every cell's rows, sorted by cell and seed."""
    frames = [pd.read_csv(p, sep="\t") for p in paths]
    if not frames:
        raise ScanError("no cell tables given")
    missing = [str(p) for p, f in zip(paths, frames) if not set(COLUMNS) <= set(f.columns)]
    if missing:
        raise ScanError(f"not a scan cell table (columns missing): {missing[:3]}")
    table = pd.concat(frames, ignore_index=True)
    return order_columns(table).sort_values(["cell", "seed"], kind="stable").reset_index(drop=True)


def main(argv=None) -> int:
    from rnngeom.io import write_tsv_atomic

    ap = argparse.ArgumentParser(prog="python -m rnngeom.scan", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("cell", "list"):
        p = sub.add_parser(name)
        p.add_argument("--main-config", required=True, help="main config: YAML/JSON file or inline JSON")
        p.add_argument("--scan-config", required=True, help="the scan file (config/scan.yaml)")
    cell = sub.choices["cell"]
    cell.add_argument("--cell", required=True, help="cell id (see `list`)")
    cell.add_argument("--out", required=True, help="the cell's table (.tsv)")
    cell.add_argument("--runs-dir", default="results/scan/runs", help="where the runs train (resumable)")
    cell.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    cell.add_argument("--threads", type=int, default=1)
    table = sub.add_parser("table")
    table.add_argument("--out", required=True)
    table.add_argument("cells", nargs="+", help="cell tables")
    a = ap.parse_args(argv)
    try:
        if a.command == "table":
            df = concat_cells(a.cells)
            write_tsv_atomic(a.out, df)
            print(f"wrote {a.out}: {len(df)} runs in {df['cell'].nunique()} cells", file=sys.stderr)
            return 0
        config = load_main_config(a.main_config)
        scan = read_scan(a.scan_config, config)
        if a.command == "list":
            print("\n".join(c.cell_id for c in cells(scan, config)))
            return 0
        rows = cell_rows(config, find_cell(scan, config, a.cell), a.runs_dir, a.device, a.threads)
    except (ScanError, rnngeom_config.ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_tsv_atomic(a.out, rows)
    print(f"wrote {a.out}: {len(rows)} runs, {int(rows['learned'].sum())} learned", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
