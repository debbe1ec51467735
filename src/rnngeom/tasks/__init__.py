"""Short-term memory tasks studied in the paper, by name."""

from __future__ import annotations

from . import delayed_addition, evidence_accumulation, flipflop
from .base import Task, TaskData

TASKS: dict[str, Task] = {
    "flipflop": flipflop.TASK,
    "delayed_addition": delayed_addition.TASK,
    "evidence_accumulation": evidence_accumulation.TASK,
}


def get_task(name: str) -> Task:
    """The task registered under ``name``; a typo in a config fails here with the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; allowed: {sorted(TASKS)}") from None


__all__ = ["TASKS", "Task", "TaskData", "get_task"]
