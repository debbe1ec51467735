"""Train one seed block: its runs in ONE process, then the block's manifest.

    python -m rnngeom.train_block --settings '[{...}, {...}]' --train-data train.npz --test-data test.npz \\
        --out-dir runs/<cond>/seed0 runs/<cond>/seed1 --manifest runs/<cond>/block0.train.json \\
        [--device cpu|cuda|auto] [--threads N] [--one-by-one]

A block exists to pay the process start-up and the torch import once per block instead of once per run, and
to train its runs as ONE ensemble (``rnngeom.train`` with every --out-dir: the trainer's K networks share one
loop, and the fast pass computes all of them in each batched product; rnngeom.learning.passes). Nothing mixes
the members, but a batched matrix product may round a member's numbers differently for another K, so a run's
bits can depend on its block-mates through the block's composition (which seeds, which K), which the config
fixes (training.seed_block); on one machine, path and seed block, a run is bit for bit reproducible.
``--one-by-one`` trains the runs one after another instead, each through ``rnngeom.train.main`` exactly as a
job of its own would (same checks, messages and files), so each then equals its solo run byte for byte.

Resume: an ensemble keeps one resume.pt in its first run's folder and resumes as a whole; one after another,
each run keeps its own, a killed block re-trains its finished runs (the same result: training is
deterministic) and resumes the interrupted one. The manifest (rnngeom.blocks) is written last.
"""

from __future__ import annotations

import argparse
import json
import sys

from rnngeom import train
from rnngeom.blocks import write_manifest
from rnngeom.io import json_arg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the runs of one seed block, then write its manifest.")
    ap.add_argument("--settings", required=True, help="JSON list (or @file.json) of the runs' settings")
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--test-data", required=True)
    ap.add_argument("--out-dir", required=True, nargs="+", help="one output folder per run")
    ap.add_argument("--manifest", required=True, help="the block manifest, written once every run is done")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--one-by-one", action="store_true", help="train the runs one after another (default: one ensemble)"
    )
    a = ap.parse_args(argv)
    try:
        members = json_arg(a.settings, "--settings")
    except ValueError as err:
        ap.error(str(err))
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        ap.error("--settings must be a JSON list of run settings (one object per --out-dir)")
    if len(members) != len(a.out_dir):
        ap.error(f"--settings has {len(members)} run(s) but --out-dir names {len(a.out_dir)} folder(s)")
    data = ["--train-data", a.train_data, "--test-data", a.test_data]
    runtime = ["--device", a.device, "--threads", str(a.threads)]
    if not a.one_by_one:
        batches = [(members, a.out_dir)]
    else:
        batches = [(settings, [out_dir]) for settings, out_dir in zip(members, a.out_dir)]
    for settings, out_dirs in batches:
        code = train.main(["--settings", json.dumps(settings), *data, "--out-dir", *out_dirs, *runtime])
        if code:
            return code
    try:
        write_manifest(a.manifest, "train", a.out_dir)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"trained block of {len(members)} run(s) -> {a.manifest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
