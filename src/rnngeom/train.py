"""One training loop for every architecture and task.

    loss = masked MSE(y, target) + lambda_tcr * TCR(r)          (BPTT through the whole trial)

Determinism and resume: the minibatch at iteration i is drawn with ``np.random.default_rng([seed, i])``, so
it depends only on (seed, i), never on how often the run was interrupted. At every checkpoint the full
training state (model, optimizer, torch RNG, metric rows, snapshots) is written atomically to
``resume.pt`` beside the outputs; a restarted job continues from it and ends with the same weights as an
uninterrupted run. ``resume.pt`` is deliberately not a Snakemake output, so Snakemake never deletes it
when a job fails.

CLI: ``python -m rnngeom.train --settings JSON --train-data train.npz --test-data test.npz --out-dir DIR
[--device cpu|cuda|auto] [--threads N]``
writes DIR/checkpoints.pt, DIR/metrics.tsv and DIR/provenance.json.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnngeom import __version__
from rnngeom.checkpoints import CorruptCheckpointError, read_checkpoint_payload, save_checkpoints
from rnngeom.data import DatasetError, load_dataset
from rnngeom.io import write_json_atomic, write_tsv_atomic
from rnngeom.models import build_model
from rnngeom.tasks import TaskData, get_task
from rnngeom.tcr import tcr_penalty

METRIC_COLUMNS = [
    "iteration", "task_loss", "tcr_loss", "test_loss", "test_accuracy", "grad_norm", "diverged",
]  # fmt: skip


def checkpoint_schedule(n_iterations: int, dense_until: int, dense_every: int, sparse_every: int) -> list[int]:
    """Checkpoint iterations: every ``dense_every`` up to ``dense_until``, then every ``sparse_every``.

    Denser early because the search phase and the geometric restructuring before the drop happen early.
    Always includes 0 (the initial network) and the last iteration.
    """
    its = set(range(0, min(dense_until, n_iterations) + 1, dense_every))
    its |= set(range(dense_until, n_iterations + 1, sparse_every))
    its.add(n_iterations)
    return sorted(i for i in its if 0 <= i <= n_iterations)


def masked_mse(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (mask * (outputs - targets) ** 2).sum() / mask.sum().clamp_min(1.0)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested in the config but torch sees no CUDA device")
    return torch.device(name)


def settings_hash(settings: dict) -> str:
    """Fingerprint of everything that determines a run's result (not device/threads: CPU runs agree)."""
    keep = {k: v for k, v in settings.items() if k not in ("device", "threads")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def _to_tensors(data: TaskData, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in (data.inputs, data.targets, data.mask))


class Trainer:
    """Trains one run described by a resolved settings dict (see workflow/rules/common.smk:run_settings)."""

    def __init__(self, settings: dict, train_data: TaskData, test_data: TaskData, out_dir: str | Path):
        self.settings = settings
        self.tr = settings["training"]
        self.task = get_task(settings["task"])
        self.out_dir = Path(out_dir)
        self.device = resolve_device(settings.get("device", "cpu"))
        self.seed = int(settings["seed"])
        self.lambda_tcr = float(settings["lambda_tcr"])
        if settings.get("learning_rule", "bptt") != "bptt":
            raise ValueError(f"learning_rule {settings['learning_rule']!r} is not implemented; allowed: ['bptt']")

        torch.manual_seed(self.seed)  # the only source of randomness for initial weights (and model noise)
        spec = {"arch": settings["arch"], "n_in": self.task.n_in, "n_out": self.task.n_out,
                **settings["model"], "gain": float(settings["gain"])}  # fmt: skip
        self.model = build_model(spec).to(self.device)
        self.optimizer = self._make_optimizer()
        self.train = _to_tensors(train_data, self.device)
        self.test = _to_tensors(test_data, self.device)
        if train_data.inputs.shape[-1] != self.task.n_in:
            raise ValueError(f"train data has {train_data.inputs.shape[-1]} input channels, task "
                             f"{self.task.name} expects {self.task.n_in}")  # fmt: skip
        self.test_data = test_data
        n = self.tr["n_iterations"]
        ck = self.tr["checkpoints"]
        self.schedule = checkpoint_schedule(n, ck["dense_until"], ck["dense_every"], ck["sparse_every"])

        # Mutable training state (all of it goes into resume.pt).
        self.iteration = 0
        self.rows: list[dict] = []
        self.snapshots: dict[int, dict] = {}
        self.window = {"task": 0.0, "tcr": 0.0, "grad": 0.0, "n": 0}
        self.diverged = False
        self.resumed_from: int | None = None

    # -- pieces -------------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        name, lr = self.tr["optimizer"], float(self.tr["lr"])
        if name == "adam":
            return torch.optim.Adam(self.model.parameters(), lr=lr)
        if name == "sgd":
            return torch.optim.SGD(self.model.parameters(), lr=lr, momentum=float(self.tr.get("momentum", 0.0)))
        raise ValueError(f"training.optimizer {name!r} unknown; allowed: ['adam', 'sgd']")

    def batch(self, iteration: int) -> tuple[torch.Tensor, ...]:
        """The minibatch of ``iteration``: a function of (seed, iteration) only, so resume is exact."""
        rng = np.random.default_rng([self.seed, iteration])
        n_train = self.train[0].shape[0]
        idx = torch.from_numpy(rng.choice(n_train, size=min(self.tr["batch_size"], n_train), replace=False))
        return tuple(a[idx.to(a.device)] for a in self.train)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        self.model.eval()
        inputs, targets, mask = self.test
        out = self.model(inputs)
        loss = masked_mse(out.outputs, targets, mask).item()
        acc = self.task.accuracy(out.outputs.cpu().numpy(), self.test_data)
        self.model.train()
        return loss, acc

    def train_step(self, iteration: int) -> tuple[float, float, float]:
        inputs, targets, mask = self.batch(iteration)
        out = self.model(inputs)
        task_loss = masked_mse(out.outputs, targets, mask)
        tcr = tcr_penalty(out.activity)
        loss = task_loss + self.lambda_tcr * tcr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.tr.get("grad_clip")
        params = list(self.model.parameters())
        if clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, float(clip))
        else:
            grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        self.optimizer.step()
        return task_loss.item(), tcr.item(), float(grad_norm)

    def record(self) -> None:
        test_loss, test_acc = self.evaluate()
        n = max(self.window["n"], 1)
        self.rows.append({
            "iteration": self.iteration,
            "task_loss": self.window["task"] / n if self.window["n"] else float("nan"),
            "tcr_loss": self.window["tcr"] / n if self.window["n"] else float("nan"),
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "grad_norm": self.window["grad"] / n if self.window["n"] else float("nan"),
            "diverged": self.diverged,
        })  # fmt: skip
        self.window = {"task": 0.0, "tcr": 0.0, "grad": 0.0, "n": 0}

    # -- resume ---------------------------------------------------------------------------------------
    # Two generations are kept (resume.pt and resume.prev.pt): if the newest is damaged (a disk error, a
    # kill the atomic rename did not cover), the run falls back to the previous good checkpoint.
    @property
    def resume_path(self) -> Path:
        return self.out_dir / "resume.pt"

    @property
    def previous_resume_path(self) -> Path:
        return self.out_dir / "resume.prev.pt"

    def save_resume(self) -> None:
        if self.resume_path.exists():
            os.replace(self.resume_path, self.previous_resume_path)
        save_checkpoints(self.resume_path, {
            "spec": self.model.spec(), "run": self.settings, "snapshots": self.snapshots,
            "resume": {"iteration": self.iteration, "model": self.model.state_dict(),
                       "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                       "rows": self.rows, "window": self.window, "settings_hash": settings_hash(self.settings)},
        })  # fmt: skip

    def _read_resume(self, path: Path) -> dict | None:
        if not path.exists():
            return None
        try:
            payload = read_checkpoint_payload(path)
        except CorruptCheckpointError as err:
            print(f"warning: {err}; trying the previous checkpoint", file=sys.stderr)
            return None
        if payload["resume"]["settings_hash"] != settings_hash(self.settings):
            print(f"warning: {path} belongs to other settings; not resuming from it", file=sys.stderr)
            return None
        return payload

    def try_resume(self) -> bool:
        payload = self._read_resume(self.resume_path) or self._read_resume(self.previous_resume_path)
        if payload is None:
            return False
        r = payload["resume"]
        self.model.load_state_dict(r["model"])
        self.optimizer.load_state_dict(r["optimizer"])
        torch.set_rng_state(r["torch_rng"])
        self.iteration, self.rows, self.window = r["iteration"], r["rows"], r["window"]
        self.snapshots = payload["snapshots"]
        self.resumed_from = self.iteration
        print(f"resumed from iteration {self.iteration}", file=sys.stderr)
        return True

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> bool:
        """Train to the end (or, for tests, stop after ``stop_after`` iterations); True when finished."""
        n, eval_every = self.tr["n_iterations"], self.tr["eval_every"]
        schedule = set(self.schedule)
        resumed = self.try_resume()
        while True:
            it = self.iteration
            if not (resumed and it == self.resumed_from):  # a resumed state was already recorded/saved
                if it % eval_every == 0 or it == n:
                    self.record()
                if it in schedule:
                    self.snapshots[it] = copy.deepcopy({k: v.cpu() for k, v in self.model.state_dict().items()})
                    self.save_resume()
            resumed = False
            if it >= n or self.diverged:
                return True
            if stop_after is not None and it >= stop_after:
                return False
            task_loss, tcr, grad = self.train_step(it)
            self.iteration = it + 1
            if not all(math.isfinite(v) for v in (task_loss, tcr, grad)):
                # Stop a diverged run cleanly: it is marked, counted as "did not learn", and does not crash
                # the other jobs or the aggregation.
                self.diverged = True
                print(f"run diverged at iteration {self.iteration} (non-finite loss or gradient)", file=sys.stderr)
                self.record()
                return True
            for k, v in (("task", task_loss), ("tcr", tcr), ("grad", grad)):
                self.window[k] += v
            self.window["n"] += 1

    def write_outputs(self, t_start: float) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        metrics = pd.DataFrame(self.rows, columns=METRIC_COLUMNS)
        write_tsv_atomic(self.out_dir / "metrics.tsv", metrics)
        save_checkpoints(self.out_dir / "checkpoints.pt",
                         {"spec": self.model.spec(), "run": self.settings, "snapshots": self.snapshots})  # fmt: skip
        write_json_atomic(self.out_dir / "provenance.json", provenance(self.settings, self.device, {
            "wall_seconds": round(time.time() - t_start, 3), "resumed_from_iteration": self.resumed_from,
            "diverged": self.diverged, "final_iteration": self.iteration,
        }))  # fmt: skip
        self.resume_path.unlink(missing_ok=True)
        self.previous_resume_path.unlink(missing_ok=True)


def git_revision() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", str(here)],
                                   capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def provenance(settings: dict, device: torch.device, extra: dict) -> dict:
    return {
        "settings": settings,
        "settings_hash": settings_hash(settings),
        "seed": settings["seed"],
        "versions": {"rnngeom": __version__, "python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "git_revision": git_revision(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        **extra,
    }  # fmt: skip


def train_run(settings: dict, train_path: str | Path, test_path: str | Path, out_dir: str | Path,
              stop_after: int | None = None) -> Trainer:  # fmt: skip
    """Train (or resume) one run and write its outputs; ``stop_after`` simulates an interruption."""
    t0 = time.time()
    torch.set_num_threads(int(settings.get("threads", 1)))
    torch.use_deterministic_algorithms(True)
    trainer = Trainer(settings, load_dataset(train_path), load_dataset(test_path), out_dir)
    trainer.out_dir.mkdir(parents=True, exist_ok=True)
    if trainer.run(stop_after=stop_after):
        trainer.write_outputs(t0)
    return trainer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train one RNN run (BPTT + TCR).")
    ap.add_argument("--settings", required=True, help="resolved run settings as JSON (or @file.json)")
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--test-data", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (match Snakemake's threads)")
    a = ap.parse_args(argv)
    text = Path(a.settings[1:]).read_text() if a.settings.startswith("@") else a.settings
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as err:
        ap.error(f"--settings is not valid JSON: {err}")
    # device/threads do not change a CPU result, so they are not part of the run's settings fingerprint
    settings = {**settings, "device": a.device, "threads": a.threads}
    try:
        tr = train_run(settings, a.train_data, a.test_data, a.out_dir)
    except (ValueError, KeyError, DatasetError, RuntimeError) as err:
        # Bad input (settings, datasets, device): one clear line, no traceback. Work already saved stays.
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    last = tr.rows[-1]
    print(f"done: iteration {tr.iteration}, test_accuracy {last['test_accuracy']:.3f}, diverged {tr.diverged}",
          file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
