"""Train one seed block: its runs in ONE process, then the block's manifest.

    python -m rnngeom.train_block --settings '[{...}, {...}]' --train-data train.npz --test-data test.npz \\
        --out-dir runs/<cond>/seed0 runs/<cond>/seed1 --manifest runs/<cond>/block0.train.json \\
        [--device cpu|cuda|auto] [--threads N] [--ensemble | --one-by-one]

A block exists to pay the process start-up and the torch import once per block instead of once per run, and
a run's result must not depend on which other seeds share its block. How the runs are trained:

* **As one ensemble** (``rnngeom.train`` with every --out-dir: the trainer's K networks share one loop, one
  minibatch step, one clipping and one optimizer call per iteration) where that gives every run exactly the
  bits it gets alone: on a CPU, for the rules whose CPU pass computes member by member
  (``LearningRule.exact_cpu_ensemble``: BPTT with ``hand_written: auto``, every architecture). Each member's
  gradient norm is reduced along its own row and Adam updates each member's slice as a tensor of its own
  (rnngeom.optim), so nothing depends on K (tested for every architecture with clipping active). On the
  default run this trained a 12-run block in 49 s instead of 61-80 s one run after another (measured).
* **On a GPU** (``--device cuda``, or ``auto`` where torch sees one) always as one ensemble, so the device
  is busy (the batched torch passes, K networks per matrix product): each run then equals its solo run up to
  float32 rounding, which is all a GPU guarantees anyway. ``--ensemble`` asks for that on a CPU too.
* **One after another** otherwise (the local rules, whose batched passes round differently for different
  K), or with ``--one-by-one``: each run goes through ``rnngeom.train.main`` exactly as a job of its own
  would (same checks, same messages, same files), so it equals the run trained alone byte for byte.

Resume: an ensemble keeps one resume.pt in its first run's folder and resumes as a whole; one after another,
each run keeps its own, a killed block re-trains its finished runs (the same result: training is
deterministic) and resumes the interrupted one. The manifest (rnngeom.blocks) is written last.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from rnngeom import train
from rnngeom.blocks import write_manifest
from rnngeom.io import json_arg
from rnngeom.learning import get_rule


def exact_cpu_ensemble(members: list[dict]) -> bool:
    """Whether the block's runs, all of one learning rule, get their solo bits as one ensemble on a CPU."""
    names = {m.get("learning_rule") for m in members}
    if len(members) < 2 or len(names) != 1:
        return False  # one run; or mixed rules, which train.main reports run by run
    try:
        rule = get_rule(names.pop())
        return bool(rule.exact_cpu_ensemble(members[0]))
    except (ValueError, KeyError, TypeError):
        return False  # an unknown rule or malformed settings: train.main reports it, run by run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the runs of one seed block, then write its manifest.")
    ap.add_argument("--settings", required=True, help="JSON list (or @file.json) of the runs' settings")
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--test-data", required=True)
    ap.add_argument("--out-dir", required=True, nargs="+", help="one output folder per run")
    ap.add_argument("--manifest", required=True, help="the block manifest, written once every run is done")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=1)
    how = ap.add_mutually_exclusive_group()
    how.add_argument(
        "--ensemble",
        action="store_true",
        help="train the block as one ensemble (the default on a GPU, and on a CPU where it is exact)",
    )
    how.add_argument("--one-by-one", action="store_true", help="train the runs one after another")
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
    if not a.one_by_one and (a.ensemble or on_gpu or exact_cpu_ensemble(members)):
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
