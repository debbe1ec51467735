"""Shared fixtures: repository paths, a small dataset on disk, small run settings."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from rnngeom.data import generate_split, write_dataset

ROOT = Path(__file__).resolve().parents[1]

# Torch threads: tests run on 2-core CI machines; one thread keeps timings predictable.
torch.set_num_threads(1)

SMALL_SETTINGS = {
    "task": "flipflop",
    "arch": "leaky",
    "learning_rule": "bptt",
    "lambda_tcr": 0.1,
    "gain": 1.5,
    "seed": 3,
    "model": {"n_hidden": 12, "alpha": 0.2},
    "training": {
        "optimizer": "adam",
        "lr": 0.01,
        "batch_size": 16,
        "n_iterations": 30,
        "eval_every": 5,
        "grad_clip": 1.0,
        "checkpoints": {"dense_until": 10, "dense_every": 5, "sparse_every": 10},
    },
}


# Default gains differ by arch (leaky 1.5, LSTM 1.0) and a second experiment runs leaky at g = 1.0 and 1.5: a
# product grid of abrupt_learning's key values would also pick gain_sweep's leaky g = 1 runs (18, not 12).
SELECTION_CONFIG = {
    "models": {"leaky": {"gain": 1.5}, "lstm": {"gain": 1.0}},
    "experiments": {
        "abrupt_learning": {
            "tasks": ["flipflop"],
            "archs": ["leaky", "lstm"],
            "learning_rules": ["bptt"],
            "lambda_tcr": [0.0],
            "seeds": list(range(6)),
        },
        "gain_sweep": {
            "tasks": ["flipflop"],
            "archs": ["leaky"],
            "learning_rules": ["bptt"],
            "lambda_tcr": [0.0],
            "gain": [1.0, 1.5],
            "seeds": list(range(6)),
        },
    },
}


@pytest.fixture
def small_settings():
    return copy.deepcopy(SMALL_SETTINGS)


def make_datasets(folder: Path, task: str = "flipflop", n_train: int = 64, n_test: int = 32, params=None):
    params = params if params is not None else ({"n_steps": 30, "p_pulse": 0.1} if task == "flipflop" else {})
    paths = {}
    for split, n in (("train", n_train), ("test", n_test)):
        paths[split] = folder / f"{task}_{split}.npz"
        write_dataset(
            paths[split], generate_split(task, split, n, 11, params), {"task": task, "split": split}
        )
    return paths


@pytest.fixture
def flipflop_data(tmp_path):
    return make_datasets(tmp_path)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny config run once per session, end to end; tests inspect it or dry-run against it."""
    from pipeline_helpers import TINY, copy_workflow, snakemake

    wd = copy_workflow(tmp_path_factory.mktemp("wf"))
    snakemake(wd, "--cores", "2", *TINY)
    return wd
