"""The resume file of a training job: two generations (resume.pt and resume.prev.pt in the first member's
folder), written atomically at every checkpoint; if the newest is damaged (a disk error, a kill the atomic
rename did not cover) the job falls back to the previous. A file written for other settings is not used.
What goes into the state and how it is restored is the trainer's (rnngeom.train.Trainer.state/restore).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rnngeom.checkpoints import CorruptCheckpointError, read_checkpoint_payload, save_checkpoints


class ResumeFile:
    def __init__(self, folder: Path, settings_hash: str):
        self.path = Path(folder) / "resume.pt"
        self.previous = Path(folder) / "resume.prev.pt"
        self.settings_hash = settings_hash

    def save(self, payload: dict) -> None:
        """payload: checkpoint-file content whose "resume" dict gets the settings hash."""
        payload["resume"]["settings_hash"] = self.settings_hash
        if self.path.exists():
            os.replace(self.path, self.previous)
        save_checkpoints(self.path, payload)

    def _read(self, path: Path) -> dict | None:
        if not path.exists():
            return None
        try:
            payload = read_checkpoint_payload(path)
        except CorruptCheckpointError as err:
            print(f"warning: {err}; trying the previous checkpoint", file=sys.stderr)
            return None
        if payload.get("resume", {}).get("settings_hash") != self.settings_hash:
            print(f"warning: {path} belongs to other settings; not resuming from it", file=sys.stderr)
            return None
        return payload

    def load(self) -> dict | None:
        """The newest usable payload, or None."""
        return self._read(self.path) or self._read(self.previous)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.previous.unlink(missing_ok=True)
