# Shared by all rules: the validated config, the runs, and each job's source files (rnngeom.config and
# rnngeom.deps, torch-free, so a parse stays fast).
import json
import os
import re
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
# Seed blocks: one training job and one analysis job per block of a condition's seeds. Snakemake cannot
# declare a variable number of outputs, so a block job's declared output is its manifest
# results/runs/{block}.{train,analysis}.json (rnngeom.blocks, written last and atomically); the runs' files
# stay in results/runs/{run_id}/ and downstream rules take the manifests as inputs.
BLOCKS = rnngeom_config.run_blocks(config)
BLOCK_OF = {run.run_id: block for block, runs in BLOCKS.items() for run in runs}
ANALYSIS_LEVEL = rnngeom_config.analysis_levels(config)
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
    block="[a-z_]+/[a-z0-9]+/[a-z0-9_]+/lam[^/]+/g[^/]+/block[0-9]+",
    figure="|".join(FIGURES),


def block_runs(wildcards):
    """The runs of the block {block} (same task, arch, rule, lambda_tcr and gain), by seed."""
    try:
        return BLOCKS[wildcards.block]
    except KeyError:
        raise WorkflowError(
            f"seed block {wildcards.block!r} is not in the config's experiment grid"
        ) from None


def block_src(entry):
    """Input function: the source files that `python -m <entry>` runs for this block's task, arch and rule
    (one set per block: its runs share them). Snakemake tracks no imported module, so an edit re-runs
    exactly the jobs that import the file.
    """

    def files(wildcards):
        run = block_runs(wildcards)[0]
        return job_source_files(entry, run.task, run.arch, run.learning_rule)

    return files


def dataset(split):
    return lambda wildcards: f"results/data/{block_runs(wildcards)[0].task}/{split}.npz"


RUNS_DIR = "results/runs"


def block_run_dirs(wildcards):
    return [f"{RUNS_DIR}/{run.run_id}" for run in block_runs(wildcards)]


def block_manifests(stage, run_ids=None):
    """The ``stage`` (train | analysis) manifests of the blocks holding ``run_ids`` (default: every run)."""
    blocks = sorted({BLOCK_OF[r] for r in (RUNS if run_ids is None else run_ids)})
    return [f"{RUNS_DIR}/{block}.{stage}.json" for block in blocks]


def plot_module(figure):
    return config["figures"][figure]["plot"]


# The phase-space animation writes a GIF and its page besides the PNG and PDF: its own rule (figures.smk).
ANIMATED_FIGURES = [f for f in FIGURES if plot_module(f) == "phase_animation"]
STATIC_FIGURES = [f for f in FIGURES if f not in ANIMATED_FIGURES]


def one_of(names):
    """A wildcard constraint matching exactly ``names`` (nothing where there are none)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def figure_trajectories(wildcards):
    """Phase portraits and the animation read per-run PCA trajectories (the analysis manifests of their
    blocks); other figures need only the tables."""
    if plot_module(wildcards.figure) not in ("phase_portraits", "phase_animation"):
        return []
    return block_manifests(
        "analysis", rnngeom_config.figure_run_ids(config, wildcards.figure)
    )


# Networks trained elsewhere (workflow/rules/external.smk, docs/own-rnn.md): --config external=FOLDER names a
# folder with checkpoints and a manifest (workflow/schemas/external.schema.yaml). The manifest is read and
# checked at every parse where `external` is set: a bad one stops here, before any job, in one line naming the
# file and the key. Whether every checkpoint loads into the model (keys, shapes) needs torch: the analysis
# job's input function checks it when the job is planned, still before any job.
from rnngeom import external_manifest as rnngeom_external

EXTERNAL_DIR = "results/external"
EXTERNAL = None
if config.get("external"):
    try:
        EXTERNAL = rnngeom_external.read_manifest(config["external"])
    except rnngeom_external.ManifestError as err:
        raise WorkflowError(str(err)) from None
EXTERNAL_STATIC = ["gr_timeline", "phase_portraits"]
EXTERNAL_TABLES = {
    table: f"{EXTERNAL_DIR}/{{name}}/tables/{table}.tsv" for table in TABLES
}


def external_files(wildcards):
    """Input function: the folder's files, once each checkpoint is known to load into the manifest's model
    (rnngeom.external.check_manifest_models; imports torch, so only where this job is planned).
    """
    from rnngeom.external import check_manifest_models

    try:
        check_manifest_models(EXTERNAL)
    except rnngeom_external.ManifestError as err:
        raise WorkflowError(str(err)) from None
    return EXTERNAL.files


def external_targets(wildcards):
    """The target's files; without --config external=FOLDER, an error naming that key."""
    if EXTERNAL is None:
        raise WorkflowError(
            "analyse_external needs the folder to analyse: --config external=FOLDER "
            "(a folder with manifest.yaml; docs/own-rnn.md)"
        )
    figures = f"{EXTERNAL_DIR}/{EXTERNAL.name}/figures"
    return [
        *(t.format(name=EXTERNAL.name) for t in EXTERNAL_TABLES.values()),
        *(
            f"{figures}/{plot}.{ext}"
            for plot in EXTERNAL_STATIC
            for ext in ("png", "pdf")
        ),
        *(f"{figures}/phase_animation.{ext}" for ext in ("gif", "html", "png", "pdf")),
    ]
