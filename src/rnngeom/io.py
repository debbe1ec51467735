"""Small I/O helpers shared by every stage: atomic writes, checksums, TSV tables (and their boolean
columns), JSON arguments.

Every file a job writes appears whole or not at all: it is written to a temporary name in the same
folder and renamed into place (``os.replace`` is atomic on POSIX), so a killed job never leaves a
half-written output that a later stage could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(folder: str | os.PathLike, name: str) -> None:
    """Delete the temporaries ``atomic_path`` left for ``folder/name`` (``.name.*.tmp``): a SIGKILL during
    an atomic write cannot remove its own. Call only where no other process writes that file."""
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_tsv_atomic(path: str | os.PathLike, df) -> None:
    """Write a pandas DataFrame as a tab-separated table (floats with full round-trip precision)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.10g")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_arg(text: str, what: str):
    """A command-line argument given as inline JSON, or as ``@path`` to a JSON file.

    ``what`` names the argument in error messages (e.g. "--run-ids"); a missing file or bad JSON is a
    ValueError that says which argument and which file.
    """
    source = "inline"
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise ValueError(f"{what}: JSON file {str(path)!r} not found")
        text, source = path.read_text(), f"file {str(path)!r}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what}: not valid JSON ({source}: {err})") from None


def as_bool(series):
    """A TSV table's boolean column as True/False (object dtype): from bools, 0/1 or the strings "True" /
    "False"; missing values (NaN, "") stay NaN."""
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}

    def one(v):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return math.nan
        return mapping.get(str(v).strip().lower(), math.nan)

    return series.map(one).astype(object)
