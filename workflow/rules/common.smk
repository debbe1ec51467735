# Helpers shared by all rules: config validation, the run grid, and src/ dependencies of each stage.
import json
import os
import sys
from pathlib import Path

SRC = Path(workflow.basedir) / "src"
sys.path.insert(
    0, str(SRC)
)  # the Snakefile itself uses rnngeom.config; jobs get PYTHONPATH explicitly

from rnngeom.config import (
    ConfigError,
    all_runs,
    effective_training,
    experiment_runs,
    load_config,
    run_settings,
)
from rnngeom.aggregate import TABLES
from rnngeom.learning import rule_source_files
from rnngeom.models import model_source_files

# Validate before any job is scheduled: a bad key stops here with a message naming it.
try:
    config = load_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    )
except ConfigError as err:
    raise WorkflowError(str(err)) from None

# Results go to results/ under the working directory: say so now, not after hours of training, if that is
# impossible (a file in the way, or no write permission).
_RESULTS = Path("results")
if _RESULTS.exists() and not _RESULTS.is_dir():
    raise WorkflowError(
        f"results path '{_RESULTS.resolve()}' exists but is not a directory; move it away"
    )
if not os.access(_RESULTS if _RESULTS.exists() else Path("."), os.W_OK | os.X_OK):
    raise WorkflowError(
        f"results path '{_RESULTS.resolve()}' is not writable by this user; run from a "
        "writable working directory (snakemake --directory DIR)"
    )

RUNS = {run.run_id: run for run in all_runs(config)}
# device: cuda -> training and analysis jobs ask for one GPU each (SLURM: --gpus=1; locally, cap concurrent
# GPU jobs with --resources gpu=N); every other rule stays on CPUs.
GPUS_PER_JOB = 1 if config["device"] == "cuda" else 0
FIGURES = sorted(config["figures"])

# Every job runs the package from this checkout's src/ (conda jobs strip an inherited PYTHONPATH, so it is
# set inside the command itself). Without --sdm conda, jobs use the Python that runs Snakemake (the
# project's virtual environment), whatever is first on PATH.
_CONDA = "CONDA" in {m.name for m in workflow.deployment_settings.deployment_method}
_PATH = "" if _CONDA else f"export PATH='{Path(sys.executable).parent}':\"$PATH\"; "
shell.prefix(f"set -euo pipefail; export PYTHONPATH='{SRC}'; {_PATH}")


wildcard_constraints:
    task="[a-z_]+",
    split="train|test",
    run_id="[a-z_]+/[a-z0-9]+/[a-z0-9_]+/lam[^/]+/g[^/]+/seed[0-9]+",
    figure="|".join(FIGURES),


def plot_module(figure):
    return config["figures"][figure]["plot"]


def figure_trajectories(wildcards):
    """Phase portraits read per-run PCA trajectories; other figures need only the tables."""
    if plot_module(wildcards.figure) != "phase_portraits":
        return []
    return [
        f"results/runs/{r.run_id}/analysis/trajectories_pca.npz"
        for r in figure_runs(wildcards.figure)
    ]


def src_files(*names):
    """Source files a stage depends on, as inputs: Snakemake does not track imported modules itself,
    so editing e.g. a model file re-runs training while editing plotting code does not.
    """
    files = []
    for name in names:
        path = SRC / "rnngeom" / name
        files += (
            sorted(str(p) for p in path.glob("*.py")) if path.is_dir() else [str(path)]
        )
    return files


SRC_CORE = src_files("__init__.py", "io.py")
SRC_DATA = SRC_CORE + src_files("tasks", "data.py")
SRC_TRAIN = SRC_DATA + src_files(
    "tcr.py", "checkpoints.py", "train.py", "learning/__init__.py"
)


SRC_ANALYSIS = SRC_CORE + src_files("analysis", "models", "checkpoints.py")


def train_src(wildcards):
    """Training code of this run: the shared loop plus only its own architecture's and learning rule's files."""
    run = run_of(wildcards)
    return sorted(
        set(
            SRC_TRAIN
            + model_source_files(run.arch)
            + rule_source_files(run.learning_rule)
        )
    )


def run_of(wildcards):
    try:
        return RUNS[wildcards.run_id]
    except KeyError:
        raise WorkflowError(
            f"run {wildcards.run_id!r} is not in the config's experiment grid"
        ) from None


def train_settings_json(wildcards):
    return json.dumps(run_settings(config, run_of(wildcards)), sort_keys=True)


def dataset(split):
    return lambda wildcards: f"results/data/{run_of(wildcards).task}/{split}.npz"


def run_files(name):
    return [f"results/runs/{run_id}/{name}" for run_id in RUNS]


def figure_experiments(figure):
    exp = config["figures"][figure]["experiment"]
    return [exp] if isinstance(exp, str) else list(exp)


def figure_runs(figure):
    return sorted(
        {r for exp in figure_experiments(figure) for r in experiment_runs(config, exp)}
    )


def experiment_grid_json(figure):
    """The grids of the experiments a figure draws, for filtering runs.tsv (small, whatever the run count)."""
    keys = ["task", "arch", "learning_rule", "lambda_tcr", "gain", "seed"]
    grids = []
    for exp in figure_experiments(figure):
        runs = experiment_runs(config, exp)
        grids.append({k: sorted({getattr(r, k) for r in runs}, key=str) for k in keys})
    return json.dumps(grids)


def accuracy_thresholds_json():
    return json.dumps(
        {
            t: effective_training(config, t)["accuracy_threshold"]
            for t in config["tasks"]
        }
    )


def experiment_grids(names):
    """{experiment: {task: [...], arch: [...], ...}}: the grid of each experiment in ``names`` that the config
    defines (small whatever the run count; rnngeom.claims and the plots select runs with it).
    """
    keys = ["task", "arch", "learning_rule", "lambda_tcr", "gain", "seed"]
    grids = {}
    for exp in names:
        if exp in config["experiments"]:
            runs = experiment_runs(config, exp)
            grids[exp] = {
                k: sorted({getattr(r, k) for r in runs}, key=str) for k in keys
            }
    return grids


def claim_experiments(spec):
    return (
        [spec["experiment"]]
        if isinstance(spec["experiment"], str)
        else list(spec["experiment"])
    )


def claims_json():
    return json.dumps(config["claims"], sort_keys=True)


def claims_grids_json():
    names = sorted(
        {exp for spec in config["claims"].values() for exp in claim_experiments(spec)}
    )
    return json.dumps(experiment_grids(names), sort_keys=True)


# --- the HTML report (snakemake --report) ---------------------------------------------------------------
def figure_claims(figure):
    """Claim ids whose row in the claim table points at this figure."""
    ids = [c for c, spec in config["claims"].items() if spec["figure"] == figure]
    return sorted(ids, key=lambda c: int(c[1:]))


def figure_category(wildcards):
    claims = figure_claims(wildcards.figure)
    return "Claims " + ", ".join(claims) if claims else "Other figures"


def figure_labels(wildcards):
    runs = figure_runs(wildcards.figure)
    values = lambda key: ", ".join(
        sorted({str(getattr(r, key)) for r in runs}, key=str)
    )
    return {
        "figure": wildcards.figure,
        "experiment": ", ".join(figure_experiments(wildcards.figure)),
        "task": values("task"),
        "architecture": values("arch"),
        "learning rule": values("learning_rule"),
        "λTCR": values("lambda_tcr"),
        "gain": values("gain"),
        "seeds": values("seed"),
    }


def figure_caption(wildcards):
    """The plot's caption (workflow/report/plots/<plot>.rst) plus which claims and experiments it shows."""
    text = (
        Path(workflow.basedir)
        / "workflow/report/plots"
        / f"{plot_module(wildcards.figure)}.rst"
    ).read_text()
    claims = figure_claims(wildcards.figure)
    tested = (
        f"Tests claim(s) {', '.join(claims)} (see the claim table)."
        if claims
        else "Context figure."
    )
    exps = ", ".join(figure_experiments(wildcards.figure))
    return f"{text.strip()}\n\n{tested} Experiment(s): {exps}; {len(figure_runs(wildcards.figure))} runs."
