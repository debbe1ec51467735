"""What a run's provenance.json records of how and where it was computed, so that results from different
machines or code paths can be told apart (they agree in their verdicts, not in their bits: docs/pipeline.md).

    settings, settings_hash, seed     what was run
    versions                          rnngeom, python, torch, numpy, pandas
    git_revision                      the checkout's commit (+ "-dirty" with local changes under src/)
    device, cpu, torch_threads        where: "cpu" or "cuda:0", the CPU model, torch's threads
    host, platform
    plus what the trainer adds: wall time, resume point, divergence, ensemble size, chance loss and the
    learning rule's code path (LearningRule.provenance: e.g. bptt_path)
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import socket
import subprocess
from pathlib import Path

from rnngeom import __version__

# Columns of runs.tsv taken from provenance.json (rnngeom.aggregate): how and where the run was computed.
RUN_COLUMNS = ("code_path", "device", "cpu", "torch_version", "numpy_version")


def settings_hash(settings: dict) -> str:
    """Fingerprint of everything that determines a run's result (not device/threads: CPU runs agree)."""
    keep = {k: v for k, v in settings.items() if k not in ("device", "threads")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@functools.cache
def git_revision() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if out.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--", str(here)],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere platform.processor()), "unknown" if neither."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance(settings: dict, device, extra: dict) -> dict:
    import numpy as np  # here, not at the top: rnngeom.aggregate reads run_columns without torch
    import pandas as pd
    import torch

    return {
        "settings": settings,
        "settings_hash": settings_hash(settings),
        "seed": settings["seed"],
        "versions": {
            "rnngeom": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "git_revision": git_revision(),
        "device": str(device),
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        **extra,
    }


def run_columns(prov: dict) -> dict:
    """The RUN_COLUMNS of one provenance.json (empty where an older file lacks them)."""
    versions = prov.get("versions", {})
    rule = prov.get("settings", {}).get("learning_rule", "")
    return {
        "code_path": prov.get("bptt_path", rule) if rule == "bptt" else rule,
        "device": prov.get("device", ""),
        "cpu": prov.get("cpu", ""),
        "torch_version": versions.get("torch", ""),
        "numpy_version": versions.get("numpy", ""),
    }
