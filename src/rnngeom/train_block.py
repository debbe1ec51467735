"""Train one seed block: its runs one after another in ONE process, then the block's manifest.

    python -m rnngeom.train_block --settings '[{...}, {...}]' --train-data train.npz --test-data test.npz \\
        --out-dir runs/<cond>/seed0 runs/<cond>/seed1 --manifest runs/<cond>/block0.train.json \\
        [--device cpu|cuda|auto] [--threads N]

Why one after another and not as one ensemble (rnngeom.train with several --out-dir): a block exists to pay
the process start-up and the torch import once per block instead of once per run, and a run's result must
not depend on which other seeds share its block. The ensemble path does not guarantee that bit for bit:
its per-member gradient norm (clipping) is a float32 reduction over a [parameters, members] stack whose
summation order changes with the number of members, so a clipped step differs in the last bits, which
chaotic training amplifies. Each run here goes through ``rnngeom.train.main`` exactly as a job of its own
would (same checks, same messages, same files), so it equals the run trained alone byte for byte.

On a GPU (``--device cuda``, or ``auto`` where torch sees one) one small network at a time would leave the
device idle, so there the block trains as ONE ensemble (``rnngeom.train`` with every --out-dir: the batched
torch pass, K networks per matrix product); each run then equals its solo run up to float32 rounding, which
is all a GPU guarantees anyway. ``--ensemble`` asks for that path on a CPU too.

Resume: each run keeps its own resume.pt (an ensemble's lives in its first run's folder); a killed block
re-trains its finished runs (the same result, as training is deterministic) and resumes the interrupted one.
The manifest (rnngeom.blocks) is written last.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

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
        "--ensemble", action="store_true", help="train the block as one ensemble (the default on a GPU)"
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
    on_gpu = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
    if a.ensemble or on_gpu:
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
