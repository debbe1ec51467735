"""One training loop for every architecture, task and learning rule.

    loss = masked MSE(y, target) + lambda_tcr * TCR(r)

The learning rule (``rnngeom.learning``: BPTT, RFLO, freeze-in) turns a minibatch into gradients; the loop
does everything else (minibatches, clipping, the optimizer, evaluation, checkpoints, resume). It trains an
ensemble of K >= 1 runs of one condition at once (the pipeline: one seed block). Members never interact;
member k's result equals training it alone up to float32 rounding of the batched products, so it depends on
its block-mates only through the block's composition, which the config fixes.

Determinism and resume: the minibatch at iteration i is drawn with ``np.random.default_rng([seed, i])``, so
it depends only on (seed, i), never on how often the run was interrupted. At every checkpoint the full
training state (model, optimizer, torch RNG, metric rows, snapshots) is written atomically to
``resume.pt`` beside the outputs; a restarted job continues from it and ends with the same weights as an
uninterrupted run. ``resume.pt`` is deliberately not a Snakemake output, so Snakemake never deletes it
when a job fails.

CLI: ``python -m rnngeom.train --settings JSON --train-data train.npz --test-data test.npz --out-dir DIR
[--device cpu|cuda|auto] [--threads N]``
writes DIR/checkpoints.pt, DIR/metrics.tsv and DIR/provenance.json. A JSON list of settings with one
--out-dir per entry trains them as one ensemble.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnngeom.checkpoints import save_checkpoints
from rnngeom.data import DatasetError, load_dataset
from rnngeom.io import json_arg, remove_stale_temporaries, write_json_atomic, write_tsv_atomic
from rnngeom.learning import Batch, StepResult, get_rule
from rnngeom.losses import masked_mse
from rnngeom.models import build_model
from rnngeom.optim import SGD, Adam
from rnngeom.provenance import provenance, settings_hash
from rnngeom.resume import ResumeFile
from rnngeom.runtime import set_threads
from rnngeom.tasks import TaskData, get_task
from rnngeom.tasks.base import chance_loss

METRIC_COLUMNS = [
    "iteration",
    "task_loss",
    "tcr_loss",
    "test_loss",
    "test_accuracy",
    "grad_norm",
    "activity_var",
    "lambda_tcr_now",
    "diverged",
]
# Averaged over the iterations since the previous evaluation (the "window").
WINDOW_KEYS = ("task_loss", "tcr_loss", "grad_norm", "activity_var", "lambda_tcr_now")


def checkpoint_schedule(
    n_iterations: int, dense_until: int, dense_every: int, sparse_every: int
) -> list[int]:
    """Checkpoint iterations: every ``dense_every`` up to ``dense_until``, then every ``sparse_every``.

    Denser early because the search phase and the geometric restructuring before the drop happen early.
    Always includes 0 (the initial network) and the last iteration.
    """
    its = set(range(0, min(dense_until, n_iterations) + 1, dense_every))
    its |= set(range(dense_until, n_iterations + 1, sparse_every))
    its.add(n_iterations)
    return sorted(i for i in its if 0 <= i <= n_iterations)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested in the config but torch sees no CUDA device")
    return torch.device(name)


def _to_tensors(data: TaskData, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in (data.inputs, data.targets, data.mask)
    )


ENSEMBLE_KEYS = ("seed", "lambda_tcr", "gain")  # what may differ between the members of one ensemble
MEMBER_RUNTIME_KEYS = ("device", "threads")


def condition_key(settings: dict) -> str:
    """Fingerprint of what members of one ensemble share (everything except seed, lambda_tcr and gain)."""
    keep = {k: v for k, v in settings.items() if k not in ENSEMBLE_KEYS + MEMBER_RUNTIME_KEYS}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


class Trainer:
    """Trains an ensemble of K >= 1 runs of one condition together (see rnngeom.learning).

    ``members`` is one run-settings dict or a list of them (same task, architecture, hyperparameters and
    learning rule; seed, lambda_tcr and gain may differ), ``out_dirs`` one output folder per member. Each
    member keeps its own initial weights (seeded by its seed alone), minibatches, metrics and outputs, so a
    run trained in an ensemble matches the same run trained alone up to float32 rounding of the batched
    matrix products (tests/test_train.py checks it).
    """

    def __init__(
        self,
        members: dict | list[dict],
        train_data: TaskData,
        test_data: TaskData,
        out_dirs: str | Path | list[str | Path],
    ):
        self.members = [members] if isinstance(members, dict) else list(members)
        out_dirs = [out_dirs] if isinstance(out_dirs, (str, Path)) else list(out_dirs)
        if not self.members or len(out_dirs) != len(self.members):
            raise ValueError(
                f"need one out_dir per member: {len(self.members)} members, {len(out_dirs)} out_dirs"
            )
        keys = {condition_key(m) for m in self.members}
        if len(keys) > 1:
            raise ValueError(
                "ensemble members must share task, arch, model, training and learning_rule; only "
                f"{list(ENSEMBLE_KEYS)} may differ"
            )
        self.out_dirs = [Path(d) for d in out_dirs]
        first = self.members[0]
        self.tr = first["training"]
        self.task = get_task(first["task"])
        self.device = resolve_device(first.get("device", "cpu"))
        if train_data.inputs.shape[-1] != self.task.n_in:
            raise ValueError(
                f"train data has {train_data.inputs.shape[-1]} input channels, task "
                f"{self.task.name} expects {self.task.n_in}"
            )
        self.K = len(self.members)

        # Every member's initial weights come from its own seed alone, exactly as if trained by itself.
        base_spec = {
            "arch": first["arch"],
            "n_in": self.task.n_in,
            "n_out": self.task.n_out,
            **first["model"],
        }
        self.models = []
        for m in self.members:
            torch.manual_seed(int(m["seed"]))
            self.models.append(build_model({**base_spec, "gain": float(m["gain"])}).to(self.device))
        torch.manual_seed(int(first["seed"]))  # model noise (autograd path) draws from the global RNG
        self.param_names = [n for n, _ in self.models[0].named_parameters()]
        self.params = {
            n: torch.stack([mod.get_parameter(n).detach() for mod in self.models]).requires_grad_(True)
            for n in self.param_names
        }
        rule_cls = get_rule(first.get("learning_rule", "bptt"))
        full_spec = {
            k: v for k, v in self.models[0].spec().items() if k != "gain"
        }  # every hparam, defaults too
        self.tcr_window = self.tr.get("tcr_window", "all")
        self.rule = rule_cls(
            full_spec,
            [{k: m[k] for k in ENSEMBLE_KEYS} for m in self.members],
            self.tr.get(rule_cls.settings_key, {}),
            self.tcr_window,
        )
        self.optimizer = self._make_optimizer()
        self.train = _to_tensors(train_data, self.device)
        if self.tcr_window == "delay":  # TCR over the delay's time pairs only: both steps at rest
            rest = np.asarray(self.task.rest_steps(train_data), dtype=bool)
            pairs = (rest[:, 1:] & rest[:, :-1]).astype(train_data.inputs.dtype)
            self.train = (*self.train, torch.from_numpy(pairs).to(self.device))
        self.test = _to_tensors(test_data, self.device)
        self.test_data = test_data
        # The training set time-first ([T, n_trials, ...], made once): a minibatch gathered from it is
        # [T, K, B, ...], the fast passes' layout, and the Batch holds its [K, B, T, ...] views, so no pass
        # copies it again.
        self._train_time_first = [a.movedim(1, 0).contiguous() for a in self.train]
        self._train_arrays: list[np.ndarray] | None = None  # NumPy views of those (CPU), made once
        n = self.tr["n_iterations"]
        ck = self.tr["checkpoints"]
        self.schedule = checkpoint_schedule(n, ck["dense_until"], ck["dense_every"], ck["sparse_every"])

        # Mutable training state (all of it goes into resume.pt).
        self.iteration = 0
        self.rows: list[list[dict]] = [[] for _ in range(self.K)]
        self.snapshots: list[dict[int, dict]] = [{} for _ in range(self.K)]
        self.window = self._empty_window()
        self.diverged = torch.zeros(self.K, dtype=torch.bool)
        self.diverged_at: list[int | None] = [None] * self.K
        self.resumed_from: int | None = None
        self.resume_file = ResumeFile(self.out_dirs[0], self.ensemble_hash())

    # -- pieces -------------------------------------------------------------------------------------
    def _per_member(self, v) -> np.ndarray:
        """A [K] per-member value (or None: NaN) as float64 in NumPy (this runs 5 times an iteration: NumPy's
        calls cost a fifth of torch's here; float32 -> float64 and float64 sums round the same in both)."""
        if v is None:
            return np.full(self.K, math.nan)
        t = torch.as_tensor(v).detach()
        return (t if t.device.type == "cpu" else t.cpu()).numpy().astype(np.float64).reshape(self.K)

    def _empty_window(self) -> dict:
        return {k: torch.zeros(self.K, dtype=torch.float64) for k in WINDOW_KEYS} | {"n": 0}

    def _make_optimizer(self):
        name, lr = self.tr["optimizer"], float(self.tr["lr"])
        params = list(self.params.values())
        if name == "adam":  # elementwise: each member is updated as if it were alone
            return Adam(params, lr=lr)
        if name == "sgd":
            return SGD(params, lr=lr, momentum=float(self.tr.get("momentum", 0.0)))
        raise ValueError(f"training.optimizer {name!r} unknown; allowed: ['adam', 'sgd']")

    def batch(self, iteration: int) -> Batch:
        """Each member's minibatch of ``iteration``: a function of (its seed, iteration) only, so resume is
        exact."""
        n_train = self.train[0].shape[0]
        size = min(self.tr["batch_size"], n_train)
        draws = [
            np.random.default_rng([int(m["seed"]), iteration]).choice(n_train, size=size, replace=False)
            for m in self.members
        ]
        idx = draws[0][None] if self.K == 1 else np.stack(draws)  # [K, B]
        if self.device.type == "cpu":  # NumPy's gather is cheaper per call than torch indexing
            if self._train_arrays is None:
                self._train_arrays = [a.numpy() for a in self._train_time_first]
            gathered = [torch.from_numpy(np.take(a, idx, axis=1)) for a in self._train_arrays]
        else:
            idx = torch.from_numpy(idx).to(self.device)
            gathered = [a[:, idx] for a in self._train_time_first]
        return Batch(*(x.movedim(0, 2) for x in gathered))  # [T, K, B, ...] -> [K, B, T, ...] views

    def member_state(self, k: int) -> dict:
        """Member k's weights as its model's state_dict (what checkpoints.pt stores)."""
        model = self.models[k]
        with torch.no_grad():
            for n in self.param_names:
                model.get_parameter(n).copy_(self.params[n][k])
        return {name: v.detach().cpu().clone() for name, v in model.state_dict().items()}

    @torch.no_grad()
    def evaluate(self, k: int) -> tuple[float, float]:
        """Held-out loss and accuracy of member k, through the model file's own forward."""
        self.member_state(k)
        model = self.models[k]
        model.eval()
        inputs, targets, mask = self.test
        out = model(inputs)
        loss = masked_mse(out.outputs, targets, mask).item()
        acc = self.task.accuracy(out.outputs.cpu().numpy(), self.test_data)
        model.train()
        return loss, acc

    def train_step(self, iteration: int) -> StepResult:
        """One iteration for all members: the rule's gradients, per-member clipping, one optimizer step."""
        batch = self.batch(iteration)
        result = self.rule.gradients(self.params, batch, iteration)  # at the rule's own λ_k(t)
        with torch.no_grad():
            # Each member's gradient norm (before clipping): the norm of its per-parameter norms, the same
            # formula as torch.nn.utils.clip_grad_norm_, member by member ([K, P] -> [K]).
            per_param = torch.stack(
                [torch.linalg.vector_norm(g.flatten(1), dim=1) for g in result.grads.values()], dim=1
            )
            grad_norm = torch.linalg.vector_norm(per_param, dim=1)  # [K]
            clip = float(self.tr.get("grad_clip") or 0.0)
            coef = (clip / (grad_norm + 1e-6)).clamp(max=1.0) if clip else torch.ones_like(grad_norm)
            # A diverged member is frozen (diverged_at is set together with diverged, and cheaper to read).
            if any(at is not None for at in self.diverged_at):
                live = (~self.diverged).to(self.device)
                coef = torch.where(live, coef, torch.zeros_like(coef))
            for name, p in self.params.items():
                g = result.grads[name]
                p.grad = g.mul_(coef.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))  # replaced every step
        self.optimizer.step()
        with torch.no_grad():
            self.rule.after_step(self.params, iteration, result)
        result.extra.setdefault("grad_norm", grad_norm)
        return result

    def record(self, k: int) -> None:
        test_loss, test_acc = self.evaluate(k)
        n = self.window["n"]
        row = {
            "iteration": self.iteration,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "diverged": bool(self.diverged[k]),
        }
        for key in WINDOW_KEYS:
            row[key] = float(self.window[key][k] / n) if n else float("nan")
        self.rows[k].append(row)

    # -- resume: the state (rnngeom.resume keeps the file) ------------------------------------------------
    def ensemble_hash(self) -> str:
        return hashlib.sha256(" ".join(settings_hash(m) for m in self.members).encode()).hexdigest()[:16]

    def state(self) -> dict:
        """Everything a resumed job needs to continue exactly (a checkpoint file's content)."""
        return {
            "spec": self.models[0].spec(),
            "run": self.members,
            "snapshots": self.snapshots,
            "resume": {
                "iteration": self.iteration,
                "params": {n: p.detach().cpu() for n, p in self.params.items()},
                "optimizer": self.optimizer.state_dict(),
                "rule": self.rule.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "rows": self.rows,
                "window": self.window,
                "diverged": self.diverged,
                "diverged_at": self.diverged_at,
            },
        }

    def restore(self, payload: dict) -> bool:
        """Continue from a saved ``state()``; False (nothing changed) if it cannot be used."""
        r = payload["resume"]
        try:
            self.optimizer.load_state_dict(r["optimizer"])
        except (ValueError, KeyError, TypeError) as err:  # written by another version of the trainer
            print(f"warning: cannot resume the optimizer ({err}); training from the start", file=sys.stderr)
            return False
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(r["params"][n])
        self.rule.load_state_dict(r["rule"])
        torch.set_rng_state(r["torch_rng"])
        self.iteration, self.rows, self.window = r["iteration"], r["rows"], r["window"]
        self.diverged, self.diverged_at = r["diverged"], r["diverged_at"]
        self.snapshots = payload["snapshots"]
        self.resumed_from = self.iteration
        print(f"resumed from iteration {self.iteration}", file=sys.stderr)
        return True

    def try_resume(self) -> bool:
        payload = self.resume_file.load()
        return payload is not None and self.restore(payload)

    def save_resume(self) -> None:
        self.resume_file.save(self.state())

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> bool:
        """Train to the end (or, for tests, stop after ``stop_after`` iterations); True when finished."""
        n, eval_every = self.tr["n_iterations"], self.tr["eval_every"]
        schedule = set(self.schedule)
        resumed = self.try_resume()
        while True:
            it = self.iteration
            if not (resumed and it == self.resumed_from):  # a resumed state was already recorded/saved
                for k in range(self.K):
                    if self.diverged_at[k] is None and (it % eval_every == 0 or it == n):
                        self.record(k)
                    if self.diverged_at[k] is None and it in schedule:
                        self.snapshots[k][it] = self.member_state(k)
                self.window = self._empty_window() if it % eval_every == 0 or it == n else self.window
                if it in schedule:
                    self.save_resume()
            resumed = False
            if it >= n or bool(self.diverged.all()):
                return True
            if stop_after is not None and it >= stop_after:
                return False
            result = self.train_step(it)
            self.iteration = it + 1
            # [len(WINDOW_KEYS), K] in float64 on the CPU, in the order of WINDOW_KEYS (one stack: this
            # bookkeeping runs every iteration)
            step = (
                result.task_loss,
                result.tcr,
                result.extra["grad_norm"],
                result.activity_var,
                result.lambda_tcr,
            )
            values = np.stack([self._per_member(v) for v in step])
            bad = ~np.isfinite(values[:3]).all(axis=0)  # task loss, TCR or gradient norm
            for k in np.flatnonzero(bad & ~self.diverged.numpy()).tolist():
                # Stop a diverged member cleanly: it is marked, counted as "did not learn", and neither
                # crashes the other members and jobs nor the aggregation.
                self.diverged[k] = True
                print(
                    f"run {k} diverged at iteration {self.iteration} (non-finite loss or gradient)",
                    file=sys.stderr,
                )
                self.record(k)
                self.diverged_at[k] = self.iteration
            values[:, self.diverged.numpy()] = 0.0  # a diverged member adds nothing
            for i, key in enumerate(WINDOW_KEYS):
                window = self.window[key].numpy()  # the float64 tensor's memory: resume.pt keeps tensors
                window += values[i]
            self.window["n"] += 1

    def write_outputs(self, t_start: float) -> None:
        for k, out_dir in enumerate(self.out_dirs):
            out_dir.mkdir(parents=True, exist_ok=True)
            metrics = pd.DataFrame(self.rows[k], columns=METRIC_COLUMNS)
            write_tsv_atomic(out_dir / "metrics.tsv", metrics)
            save_checkpoints(
                out_dir / "checkpoints.pt",
                {"spec": self.models[k].spec(), "run": self.members[k], "snapshots": self.snapshots[k]},
            )
            final = self.diverged_at[k] if self.diverged_at[k] is not None else self.iteration
            write_json_atomic(
                out_dir / "provenance.json",
                provenance(
                    self.members[k],
                    self.device,
                    {
                        "wall_seconds": round(time.time() - t_start, 3),
                        "resumed_from_iteration": self.resumed_from,
                        "diverged": bool(self.diverged[k]),
                        "final_iteration": final,
                        "ensemble_size": self.K,
                        # the held-out loss of the best constant output (the search phase's level)
                        "chance_loss": chance_loss(self.test_data),
                        **self.rule.provenance(),
                    },
                ),
            )
        self.resume_file.remove()
        # A predecessor killed while writing one of these files left its temporary: the run is done, drop it.
        for out_dir in self.out_dirs:
            for name in ("resume.pt", "metrics.tsv", "checkpoints.pt", "provenance.json"):
                remove_stale_temporaries(out_dir, name)


def train_run(
    settings: dict | list[dict],
    train_path: str | Path,
    test_path: str | Path,
    out_dir: str | Path | list[str | Path],
    stop_after: int | None = None,
) -> Trainer:
    """Train (or resume) one run, or an ensemble of runs of one condition (a list of settings and one
    out_dir per run), and write their outputs; ``stop_after`` simulates an interruption."""
    t0 = time.time()
    first = settings if isinstance(settings, dict) else settings[0]
    set_threads(int(first.get("threads", 1)))
    if resolve_device(first.get("device", "cpu")).type == "cuda":
        # Deterministic kernels where CUDA has nondeterministic ones. Not called on a CPU, where the kernels
        # these runs use are deterministic already (same bytes either way, tested): the call imports torch's
        # compiler stack, 1.5-3 s per process (measured), more than a quick run trains.
        torch.use_deterministic_algorithms(True)
    trainer = Trainer(settings, load_dataset(train_path), load_dataset(test_path), out_dir)
    for d in trainer.out_dirs:
        d.mkdir(parents=True, exist_ok=True)
    if trainer.run(stop_after=stop_after):
        trainer.write_outputs(t0)
    return trainer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train one RNN run, or an ensemble of runs of one condition.")
    ap.add_argument(
        "--settings",
        required=True,
        help="resolved run settings as JSON (or @file.json); a JSON list trains an ensemble",
    )
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--test-data", required=True)
    ap.add_argument("--out-dir", required=True, nargs="+", help="one output folder per run")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (match Snakemake's threads)")
    a = ap.parse_args(argv)
    try:
        settings = json_arg(a.settings, "--settings")
    except ValueError as err:
        ap.error(str(err))
    members = [settings] if isinstance(settings, dict) else settings
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        ap.error("--settings must be a JSON object or a list of objects")
    if len(members) != len(a.out_dir):
        ap.error(f"--settings has {len(members)} run(s) but --out-dir names {len(a.out_dir)} folder(s)")
    # device/threads do not change a CPU result, so they are not part of the run's settings fingerprint
    members = [{**m, "device": a.device, "threads": a.threads} for m in members]
    try:
        tr = train_run(members, a.train_data, a.test_data, a.out_dir)
    except (ValueError, KeyError, DatasetError, RuntimeError) as err:
        # Bad input (settings, datasets, device): one clear line, no traceback. Work already saved stays.
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    for k, rows in enumerate(tr.rows):
        print(
            f"done {a.out_dir[k]}: iteration {rows[-1]['iteration']}, test_accuracy "
            f"{rows[-1]['test_accuracy']:.3f}, diverged {bool(tr.diverged[k])}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
