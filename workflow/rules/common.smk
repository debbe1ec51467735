# Shared by all rules: the validated config, the runs, and each job's source files (rnngeom.config and
# rnngeom.deps, torch-free, so a parse stays fast).
import json
import os
import sys
from pathlib import Path

SRC = Path(workflow.basedir) / "src"
# The Snakefile itself uses rnngeom.config; jobs get PYTHONPATH explicitly.
sys.path.insert(0, str(SRC))

from rnngeom import config as rnngeom_config
from rnngeom.deps import job_source_files, module_constant

# Validate before any job is scheduled: a bad key stops here with a message naming it (the same function
# as `python -m rnngeom.config check`).
try:
    config = rnngeom_config.load_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    )
except rnngeom_config.ConfigError as err:
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

RUNS = {run.run_id: run for run in rnngeom_config.all_runs(config)}
TABLES = module_constant("rnngeom.constants", "TABLES")
FIGURES = sorted(config["figures"])
# device: cuda -> training and analysis jobs compute on a GPU and ask for one each (SLURM: one GPU per job;
# locally, cap concurrent GPU jobs with --resources gpu=N). auto uses a GPU where torch sees one at run
# time and requests none. Every other rule stays on CPUs.
DEVICE = config["device"]
GPUS_PER_JOB = 1 if DEVICE == "cuda" else 0

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


def run_of(wildcards):
    try:
        return RUNS[wildcards.run_id]
    except KeyError:
        raise WorkflowError(
            f"run {wildcards.run_id!r} is not in the config's experiment grid"
        ) from None


def run_src(entry):
    """Input function: the source files that `python -m <entry>` runs for this run's task, arch and rule
    (Snakemake tracks no imported module, so an edit re-runs exactly the jobs that import the file).
    """

    def files(wildcards):
        run = run_of(wildcards)
        return job_source_files(entry, run.task, run.arch, run.learning_rule)

    return files


def dataset(split):
    return lambda wildcards: f"results/data/{run_of(wildcards).task}/{split}.npz"


RUNS_DIR = "results/runs"


def run_files(name):
    return [f"{RUNS_DIR}/{run_id}/{name}" for run_id in RUNS]


def plot_module(figure):
    return config["figures"][figure]["plot"]


def figure_trajectories(wildcards):
    """Phase portraits read per-run PCA trajectories; other figures need only the tables."""
    if plot_module(wildcards.figure) != "phase_portraits":
        return []
    return [
        f"{RUNS_DIR}/{run_id}/analysis/trajectories_pca.npz"
        for run_id in rnngeom_config.figure_run_ids(config, wildcards.figure)
    ]
