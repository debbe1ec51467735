"""How many CPU threads a process's numerical libraries use: one home for training, analysis and benchmarks.

torch has its own thread pool; NumPy and SciPy use a BLAS (OpenBLAS in the pip wheels, MKL in some conda
builds) that starts one thread per core by default. A job given one thread must hold both to one: NumPy's
OpenBLAS threads spin while waiting, and next to one other busy process the CPU training pass ran 20x slower
with them (measured on 2 cores). ``threadpoolctl`` sets the BLAS limit whichever BLAS is loaded.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np  # noqa: F401  (loads NumPy's BLAS, so that threadpoolctl finds it)
import torch
from threadpoolctl import threadpool_limits


def set_threads(n: int) -> None:
    """torch intra-op threads and the BLAS under NumPy/SciPy, both to ``n`` (for the rest of the process)."""
    torch.set_num_threads(int(n))
    threadpool_limits(limits=int(n), user_api="blas")


@contextmanager
def threads(n: int):
    """``set_threads(n)`` inside a ``with`` block; the previous torch and BLAS settings after it."""
    old = torch.get_num_threads()
    with threadpool_limits(limits=int(n), user_api="blas"):
        torch.set_num_threads(int(n))
        try:
            yield
        finally:
            torch.set_num_threads(old)
