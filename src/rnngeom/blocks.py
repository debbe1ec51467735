"""Block manifests: the one output Snakemake tracks for a job that trains or analyses a seed block.

A seed block (rnngeom.config.run_blocks) is several runs of one condition in one job. Snakemake cannot
declare a variable number of outputs per job, so each job's declared output is a manifest,
``results/runs/{condition}/block{b}.{stage}.json``, written LAST (after every run of the block has its
files) and atomically; the per-run files stay where they always were, in ``results/runs/{run_id}/``.
Downstream rules take the manifests as inputs. A job that dies leaves no manifest, so Snakemake re-runs it
(training then resumes). Written by rnngeom.train_block and rnngeom.analysis.run_analysis --manifest.

The manifest lists each run's id and the fingerprint of what produced its files: the training settings
hash (provenance.json) and, for the analysis stage, the analysis settings' hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rnngeom.io import write_json_atomic

# What every run of a block must hold before its manifest may be written.
STAGE_FILES = {
    "train": ("checkpoints.pt", "metrics.tsv", "provenance.json"),
    "analysis": tuple(
        f"analysis/{name}"
        for name in (
            "fixed_points.tsv",
            "checkpoint_summary.tsv",
            "gr_scores.tsv",
            "events.tsv",
            "trajectories_pca.npz",
            "kappa_flow.tsv",
            "analysis.json",
        )
    ),
}


def run_id_of(run_dir: str | Path, runs_root: str = "runs") -> str:
    """The run id of a run folder ``.../runs/<run_id>`` (the folder itself where no ``runs`` part)."""
    parts = Path(run_dir).parts
    return "/".join(parts[parts.index(runs_root) + 1 :]) if runs_root in parts else str(run_dir)


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def manifest(stage: str, run_dirs: list[str | Path]) -> dict:
    """The manifest of one block's ``stage`` (train | analysis); ValueError naming any missing file."""
    if stage not in STAGE_FILES:
        raise ValueError(f"unknown stage {stage!r}; known: {sorted(STAGE_FILES)}")
    missing = [str(Path(d) / f) for d in run_dirs for f in STAGE_FILES[stage] if not (Path(d) / f).exists()]
    if missing:
        raise ValueError(f"block incomplete, missing: {missing[:5]}")
    runs = []
    for d in map(Path, run_dirs):
        entry = {
            "run_id": run_id_of(d),
            "settings_hash": json.loads((d / "provenance.json").read_text())["settings_hash"],
        }
        if stage == "analysis":
            settings = json.loads((d / "analysis/analysis.json").read_text())["settings"]
            entry["analysis_settings_hash"] = _hash(settings)
        runs.append(entry)
    return {"stage": stage, "runs": runs}


def write_manifest(path: str | Path, stage: str, run_dirs: list[str | Path]) -> dict:
    result = manifest(stage, run_dirs)
    write_json_atomic(path, result)
    return result
