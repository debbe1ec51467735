"""Datasets: generated once per task and split, written with a checksum, reused by every run.

``python -m rnngeom.data --task flipflop --split train --n-trials 4096 --seed 1 --params '{}' --out data.npz``
writes ``data.npz`` (inputs, targets, mask) and ``data.json`` (task, params, seed, sha256 of the .npz).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from rnngeom.io import atomic_path, json_arg, sha256_file, write_json_atomic
from rnngeom.tasks import TaskData, get_task

# Splits get different seed streams so train and test trials never coincide.
SPLIT_OFFSETS = {"train": 0, "test": 1_000_003}


class DatasetError(RuntimeError):
    pass


def meta_path(npz_path: str | Path) -> Path:
    return Path(npz_path).with_suffix(".json")


def generate_split(task_name: str, split: str, n_trials: int, seed: int, params: dict) -> TaskData:
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"unknown split {split!r}; allowed: {sorted(SPLIT_OFFSETS)}")
    task = get_task(task_name)
    return task.generate(n_trials, seed=seed + SPLIT_OFFSETS[split], **params)


def write_dataset(path: str | Path, data: TaskData, meta: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object keeps numpy from appending a second .npz suffix
            np.savez(f, inputs=data.inputs, targets=data.targets, mask=data.mask)
        digest = sha256_file(tmp)
    write_json_atomic(meta_path(path), {**meta, "sha256": digest, "n_trials": data.n_trials})


def load_dataset(path: str | Path, *, verify: bool = True) -> TaskData:
    """Load a dataset; with ``verify`` check it against the checksum in its .json sidecar."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset file {path} does not exist")
    if verify:
        mp = meta_path(path)
        if not mp.exists():
            raise DatasetError(f"dataset {path} has no checksum file {mp}")
        expected = json.loads(mp.read_text())["sha256"]
        if sha256_file(path) != expected:
            raise DatasetError(f"dataset {path} does not match the sha256 in {mp} (corrupted or edited)")
    try:
        with np.load(path) as z:
            return TaskData(inputs=z["inputs"], targets=z["targets"], mask=z["mask"])
    except Exception as err:
        raise DatasetError(f"dataset {path} is unreadable: {err}") from err


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--split", required=True, choices=sorted(SPLIT_OFFSETS))
    ap.add_argument("--n-trials", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--params", default="{}", help="task parameters as JSON")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.n_trials < 1:
        ap.error(f"--n-trials must be >= 1, got {a.n_trials}")
    try:
        params = json_arg(a.params, "--params")
    except ValueError as err:
        ap.error(str(err))
    data = generate_split(a.task, a.split, a.n_trials, a.seed, params)
    write_dataset(a.out, data, {"task": a.task, "split": a.split, "seed": a.seed, "params": params})
    print(f"wrote {a.out}: {data.n_trials} trials, inputs {data.inputs.shape}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
