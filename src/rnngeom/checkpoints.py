"""All checkpoints of one training run live in one file, ``checkpoints.pt``.

Layout (a dict saved with ``torch.save``; the payload is checksummed so corruption is detected):

    {"format_version": 1,
     "spec": model spec (see RecurrentModel.spec; rebuild with models.build_model),
     "run": the run's resolved settings,
     "snapshots": {iteration: model state_dict}   # the fixed checkpoint schedule (denser early)
     "resume": {"iteration": i, "model": ..., "optimizer": ..., "torch_rng": ...}  # latest state, for resume
    }
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from rnngeom.io import atomic_path, sha256_bytes

FORMAT_VERSION = 1


class CorruptCheckpointError(RuntimeError):
    pass


def save_checkpoints(path: str | os.PathLike, payload: dict) -> None:
    """Atomically write ``payload`` with a sha256 of its serialised bytes."""
    buf = io.BytesIO()
    torch.save({**payload, "format_version": FORMAT_VERSION}, buf)
    data = buf.getvalue()
    with atomic_path(path) as tmp:
        torch.save({"sha256": sha256_bytes(data), "payload": data}, tmp)


def read_checkpoint_payload(path: str | os.PathLike) -> dict:
    """Load and verify a checkpoint file; raise CorruptCheckpointError naming the file if it is damaged."""
    path = Path(path)
    try:
        outer = torch.load(path, map_location="cpu", weights_only=False)
        data = outer["payload"]
        ok = sha256_bytes(data) == outer["sha256"]
    except Exception as err:  # truncated pickle, missing keys, not a torch file, ...
        raise CorruptCheckpointError(f"checkpoint file {path} is unreadable or truncated: {err}") from err
    if not ok:
        raise CorruptCheckpointError(f"checkpoint file {path} fails its sha256 check (corrupted)")
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    if payload.get("format_version") != FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"checkpoint file {path} has format_version {payload.get('format_version')}, "
            f"expected {FORMAT_VERSION}"
        )
    return payload


@dataclass
class Checkpoints:
    """Read-only view of a run's checkpoint file, for the analysis stages."""

    spec: dict
    run: dict
    snapshots: dict  # iteration -> state_dict

    @property
    def iterations(self) -> list[int]:
        return sorted(self.snapshots)

    def model_at(self, iteration: int, device: str | torch.device = "cpu"):
        from rnngeom.models import build_model

        model = build_model(self.spec)
        model.load_state_dict(self.snapshots[iteration])
        return model.to(device).eval()


def load_checkpoints(path: str | os.PathLike) -> Checkpoints:
    p = read_checkpoint_payload(path)
    return Checkpoints(spec=p["spec"], run=p.get("run", {}), snapshots=p["snapshots"])
