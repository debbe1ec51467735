"""Time the per-checkpoint analysis on synthetic checkpoint sequences (no training needed).

    python benchmarks/fixed_points.py --arch leaky lstm plrnn --n-hidden 64 --n-checkpoints 16 \\
        [--device cpu|cuda] [--threads 1] [--settings settings.json]

Each sequence starts from a freshly initialised model and drifts its weights a little per checkpoint, so the
fixed-point search sees realistic, slowly changing systems. Prints one line per architecture with the mean
fixed-point time per checkpoint (the number the closing note reports) and the counts at the last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnngeom.analysis.run_analysis import analyse_run


class SyntheticCheckpoints:
    """Checkpoints-like: model_at(it) is a fresh model with weights drifted by `drift` per checkpoint."""

    def __init__(self, spec: dict, n_checkpoints: int, drift: float = 0.02, seed: int = 0):
        from rnngeom.models import build_model

        torch.manual_seed(seed)
        self.spec = spec
        model = build_model(spec)
        self.iterations = [100 * k for k in range(n_checkpoints)]
        self.snapshots = {}
        gen = torch.Generator().manual_seed(seed + 1)
        for it in self.iterations:
            self.snapshots[it] = {k: v.clone() for k, v in model.state_dict().items()}
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(drift * p.detach().std() * torch.randn(p.shape, generator=gen))

    def model_at(self, iteration: int, device="cpu"):
        from rnngeom.models import build_model

        model = build_model(self.spec)
        model.load_state_dict(self.snapshots[iteration])
        return model.to(device).eval()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", nargs="+", default=["leaky", "lstm", "plrnn", "rank1"])
    ap.add_argument("--n-hidden", type=int, default=64)
    ap.add_argument("--n-checkpoints", type=int, default=16)
    ap.add_argument("--n-in", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--settings", help="JSON file of analysis-setting overrides")
    args = ap.parse_args(argv)

    overrides = json.loads(Path(args.settings).read_text()) if args.settings else {}
    overrides["device"] = args.device
    if args.threads:
        overrides["num_threads"] = args.threads
    rng = np.random.default_rng(0)
    shape = (64, 60, args.n_in)
    inputs = ((rng.random(shape) < 0.1) * rng.choice([-1.0, 1.0], shape)).astype(np.float32)
    its = np.arange(0, 100 * args.n_checkpoints, 10)
    metrics = pd.DataFrame({"iteration": its, "task_loss": np.exp(-its / its[-1])})
    for arch in args.arch:
        spec = {"arch": arch, "n_in": args.n_in, "n_out": 3, "n_hidden": args.n_hidden}
        ck = SyntheticCheckpoints(spec, args.n_checkpoints)
        with tempfile.TemporaryDirectory() as tmp:
            result = analyse_run(ck, inputs, metrics, tmp, overrides)
        t = result["timing"]
        print(
            f"{arch:6s} n_hidden={args.n_hidden} state={result['state_size']} device={args.device} "
            f"threads={t['num_threads']} method={result['method']}: "
            f"{t['fixed_points_mean_s_per_checkpoint']:.3f} s/checkpoint (total {t['total_s']:.1f} s for "
            f"{result['n_checkpoints']}); last checkpoint {result['final_counts']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
