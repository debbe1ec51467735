"""The hand-written BPTT passes' time loops, compiled: ``kernels/recurrence.c`` built on first use with the
system C compiler into a per-user cache and called through ctypes (no Python extension, no build step at
install).

Why: at the sizes we train, a NumPy time step is a handful of calls of ~1-5 µs each around a [B, N] x [N, N]
product of ~2 µs, and that per-call overhead, not arithmetic, was most of a training iteration
(``python -m benchmarks --only training`` measures both loops side by side). The compiled loop makes the
whole recursion one call, with the product accumulated in registers and a vectorised tanh.

Which loop runs is the BPTT setting ``time_loop``: ``auto`` (compiled where a C compiler builds it, else the
NumPy loop, with a note on stderr), ``compiled`` (fail, naming the reason, if it cannot be built) or
``numpy``. Both compute the same equations; their results differ in the last bits (a different summation
order in the product and a different float tanh), so the loop that ran is written to each run's
provenance.json. The compiled loop's own bits do not depend on the CPU's vector width, the batch size or the
ensemble (recurrence.h says why); ``tests/test_compiled.py`` checks both loops against each other and
against autograd in float64.

Environment: ``CC`` (the compiler, default ``cc``), ``RNNGEOM_KERNEL_CACHE`` (the cache folder, default
``$XDG_CACHE_HOME/rnngeom`` or ``~/.cache/rnngeom``). A build is keyed by the source, the flags, the
compiler's version and the CPU, so a shared home folder serves machines of different kinds.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SOURCES = ("recurrence.c", "recurrence.h")
SOURCE_DIR = Path(__file__).with_name("kernels")
# -ffp-contract=off: no fused multiply-adds but the ones the source writes (the same bits at any vector
# width); -fno-math-errno / -fno-trapping-math: let the tanh loop vectorise (neither changes a value).
FLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared")
NATIVE = ("-march=native",)  # tried first; a compiler without it gets the portable build
TIME_LOOPS = ("auto", "compiled", "numpy")
FUNCTIONS = (
    *("leaky_forward", "leaky_backward", "plrnn_forward", "plrnn_backward"),
    *("lstm_forward", "lstm_backward", "loss_grad", "sum_outer", "time_first"),
)


class KernelUnavailable(RuntimeError):
    """The compiled loops cannot be built or loaded here (the message says why)."""


def cache_dir() -> Path:
    if os.environ.get("RNNGEOM_KERNEL_CACHE"):
        return Path(os.environ["RNNGEOM_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnngeom"


def _cpu_signature() -> str:
    """What -march=native depends on: the machine and, on Linux, the CPU's model and feature flags."""
    sig = platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return sig + platform.processor()
    for key in ("model name", "flags", "Features", "CPU part"):
        sig += next((ln for ln in lines if ln.startswith(key)), "")
    return sig


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC", "cc")) or ["cc"]


def _build(out: Path) -> None:
    cc = _compiler()
    source = str(SOURCE_DIR / "recurrence.c")
    errors = []
    for extra in (NATIVE, ()):
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        cmd = [*cc, *FLAGS, *extra, "-o", str(tmp), source, "-lm"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as err:
            raise KernelUnavailable(f"cannot run the C compiler {cc[0]!r} ({err}); set CC") from None
        if proc.returncode == 0:
            os.replace(tmp, out)  # atomic: jobs building at the same time each install a whole file
            return
        tmp.unlink(missing_ok=True)
        errors.append(f"{shlex.join(cmd)}: {proc.stderr.strip()[-400:]}")
    raise KernelUnavailable("the C compiler failed: " + " | ".join(errors))


@functools.cache
def library() -> ctypes.CDLL:
    """The compiled loops, built if this machine has no build of this source yet (KernelUnavailable if
    they cannot be)."""
    cc = _compiler()
    try:
        version = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise KernelUnavailable(f"no C compiler: {cc[0]!r} cannot run ({err}); set CC") from None
    key = hashlib.sha256()
    for name in SOURCES:
        key.update((SOURCE_DIR / name).read_bytes())
    key.update(repr((FLAGS, NATIVE, cc, version, _cpu_signature())).encode())
    folder = cache_dir()
    path = folder / f"recurrence-{key.hexdigest()[:20]}.so"
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:  # an unwritable home: a private folder for this process
            folder = Path(tempfile.mkdtemp(prefix="rnngeom-kernels-"))
            path = folder / path.name
        _build(path)
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        raise KernelUnavailable(f"cannot load {path} ({err}); delete it to rebuild") from None
    _declare(lib)
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    L, P, Int, D = ctypes.c_long, ctypes.c_void_p, ctypes.c_int, ctypes.c_double
    for suffix, R in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        getattr(lib, f"leaky_forward_{suffix}").argtypes = [L, L, L, P, P, P, R, Int, P]
        getattr(lib, f"leaky_backward_{suffix}").argtypes = [L, L, L, P, P, P, R, Int, P]
        getattr(lib, f"plrnn_forward_{suffix}").argtypes = [L, L, L, P, P, P, P, P]
        getattr(lib, f"plrnn_backward_{suffix}").argtypes = [L, L, L, P, P, P, P, P]
        getattr(lib, f"loss_grad_{suffix}").argtypes = [L, L, L, L, P, P, P, P, P, P, D, P, P, P]
        getattr(lib, f"sum_outer_{suffix}").argtypes = [L, L, L, P, P, P]
        getattr(lib, f"column_variance_{suffix}").argtypes = [L, L, P]
        getattr(lib, f"time_first_{suffix}").argtypes = [L, L, L, L, P, P]
        getattr(lib, f"lstm_forward_{suffix}").argtypes = [L, L, L, P, P, P, P, P, P]
        getattr(lib, f"lstm_backward_{suffix}").argtypes = [L, L, L, P, P, P, P, P, P, P, P]
        getattr(lib, f"column_variance_{suffix}").restype = ctypes.c_double
    for name in ("rnngeom_tanh_f32", "rnngeom_sigmoid_f32"):
        getattr(lib, name).argtypes = [ctypes.c_float]
        getattr(lib, name).restype = ctypes.c_float
    for name in FUNCTIONS:
        for suffix in ("f32", "f64"):
            getattr(lib, f"{name}_{suffix}").restype = None


def resolve(time_loop: str) -> tuple[str, str]:
    """("compiled" | "numpy", why) for a ``time_loop`` setting; KernelUnavailable if "compiled" cannot be."""
    if time_loop not in TIME_LOOPS:
        raise ValueError(f"bptt setting time_loop must be one of {', '.join(TIME_LOOPS)}, got {time_loop!r}")
    if time_loop == "numpy":
        return "numpy", "time_loop: numpy"
    try:
        library()
    except KernelUnavailable as err:
        if time_loop == "compiled":
            raise KernelUnavailable(f"time_loop: compiled, but {err}") from None
        print(f"note: the NumPy time loop runs (time_loop: auto; {err})", file=sys.stderr)
        return "numpy", f"time_loop: auto, compiled loop unavailable: {err}"
    return "compiled", f"time_loop: {time_loop}"


def _ptr(a: np.ndarray, dtype) -> int:
    # The C side reads raw memory: anything but a C-contiguous array of the right type is a bug here.
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise TypeError(f"compiled loop: expected a C-contiguous {dtype} array, got {a.dtype} {a.strides}")
    try:  # through the buffer protocol: ~1 µs, where a.ctypes.data costs ~4 (~30 pointers per member)
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError):  # read-only or empty arrays
        return a.ctypes.data


class CompiledLoops:
    """The functions of recurrence.h for float32 or float64 arrays (shapes as in its comments)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"compiled loops exist for float32 and float64, not {self.dtype}")
        lib = library()
        suffix = "f32" if self.dtype == np.float32 else "f64"
        self._fns = {n: getattr(lib, f"{n}_{suffix}") for n in FUNCTIONS}
        self._variance = getattr(lib, f"column_variance_{suffix}")
        self._sums = np.zeros(2, dtype=np.float64)

    def leaky_forward(self, xs, rs, Wt_a, leak: float, leaky: bool, buf) -> None:
        T, B, N = xs.shape
        p = functools.partial(_ptr, dtype=self.dtype)
        self._fns["leaky_forward"](T, B, N, p(xs), p(rs), p(Wt_a), leak, int(leaky), p(buf))

    def leaky_backward(self, g, r, W_a, leak: float, leaky: bool, buf) -> None:
        T, B, N = g.shape
        p = functools.partial(_ptr, dtype=self.dtype)
        self._fns["leaky_backward"](T, B, N, p(g), p(r), p(W_a), leak, int(leaky), p(buf))

    def plrnn_forward(self, zs, relu, Wt, a, buf) -> None:
        T, B, N = zs.shape
        p = functools.partial(_ptr, dtype=self.dtype)
        self._fns["plrnn_forward"](T, B, N, p(zs), p(relu), p(Wt), p(a), p(buf))

    def plrnn_backward(self, g, zs, Wm, a, buf) -> None:
        T, B, N = g.shape
        p = functools.partial(_ptr, dtype=self.dtype)
        self._fns["plrnn_backward"](T, B, N, p(g), p(zs), p(Wm), p(a), p(buf))

    def lstm_forward(self, gates, h, c, tc, Wt, buf) -> None:
        T, B, N = h.shape
        p = functools.partial(_ptr, dtype=self.dtype)
        self._fns["lstm_forward"](T, B, N, p(gates), p(h), p(c), p(tc), p(Wt), p(buf))

    def lstm_backward(self, dh, gates, c, tc, W, dgates, buf, dc) -> None:
        T, B, N = dh.shape
        p = functools.partial(_ptr, dtype=self.dtype)
        self._fns["lstm_backward"](T, B, N, p(dh), p(gates), p(c), p(tc), p(W), p(dgates), p(buf), p(dc))

    def loss_grad(self, r, ry, Bo, bo, targets, mask, lam: float, dy, dr) -> tuple[float, float]:
        """(task loss, tcr) given ry = r Boᵀ [T, B, O]; writes dL/dy into dy and the direct dL/dr into dr.
        targets and mask: [B, T, O], the minibatch's own layout (r, ry, dy, dr are time-first)."""
        T, B, N = r.shape
        p = functools.partial(_ptr, dtype=self.dtype)
        sums = self._sums
        self._fns["loss_grad"](
            *(T, B, N, Bo.shape[0], p(r), p(ry), p(Bo), p(bo), p(targets), p(mask), lam, p(dy), p(dr)),
            sums.ctypes.data,
        )
        return float(sums[0]), float(sums[1])

    def sum_outer(self, g, h) -> np.ndarray:
        """[I, J] = Σ over the rows of g [..., I] and h [..., J] of g_rowᵀ h_row (a weight gradient)."""
        n_g, n_h = g.shape[-1], h.shape[-1]
        out = np.empty((n_g, n_h), dtype=self.dtype)
        p = functools.partial(_ptr, dtype=self.dtype)
        self._fns["sum_outer"](g.size // n_g, n_g, n_h, p(g), p(h), p(out))
        return out

    def time_first(self, x, out) -> np.ndarray:
        """[B, T, n] into out [T, B, n(+1)], a column beyond n set to ones (as bptt_cpu._time_first)."""
        B, T, n = x.shape
        p = functools.partial(_ptr, dtype=self.dtype)
        self._fns["time_first"](B, T, n, out.shape[2], p(x), p(out))
        return out

    def column_variance(self, x) -> float:
        """The variance of each unit of x [..., N] over all other axes, averaged over the units."""
        N = x.shape[-1]
        return float(self._variance(x.size // N, N, _ptr(x, self.dtype)))


@functools.cache
def loops(dtype) -> CompiledLoops:
    return CompiledLoops(np.dtype(dtype))


__all__ = ["TIME_LOOPS", "CompiledLoops", "KernelUnavailable", "cache_dir", "library", "loops", "resolve"]
