"""Benchmark `matmul_peak`: the machine's measured dense float32 matmul rate, on 1 thread and on all threads.

FLOPs of one n x n @ n x n product: 2 n^3. The peak is the best of several products (the least disturbed by
other load), measured in the same harness run. `training_flops` divides 2-core figures by the all-threads
peak, and 1-thread figures by the 1-thread rate of a probe product (`MatmulProbe`) measured interleaved with
them, so that both rates are taken under the same load; it reports the fraction against this run's best
1-thread peak too.
"""

from __future__ import annotations

import time

import torch

from benchmarks.common import Context, usable_cpus
from rnngeom.runtime import threads as threads_for


def case_name(threads: int) -> str:
    return f"matmul_f32_{threads}thread{'s' if threads > 1 else ''}"


class MatmulProbe:
    """One float32 n x n product per step(), on whatever threads are set: measured interleaved with the
    training cases (benchmarks.training), so that their fraction of the peak compares rates taken under the
    same load (this shared VM's rates drift by up to 2x within minutes, measured)."""

    def __init__(self, n: int):
        gen = torch.Generator().manual_seed(0)
        self.n = n
        self.a, self.b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
        self.out = torch.empty(n, n)
        t0 = time.perf_counter()
        self.step()  # warm-up
        self.first_step_s = time.perf_counter() - t0

    def step(self) -> None:
        torch.matmul(self.a, self.b, out=self.out)

    def gflops(self, steps_per_s: float) -> float:
        return 2.0 * self.n**3 * steps_per_s / 1e9

    def close(self) -> None:
        pass


def matmul_gflops(n: int, threads: int, repeats: int) -> list[float]:
    """GFLOP/s of `repeats` float32 n x n matmuls on `threads` torch threads (after one warm-up)."""
    with threads_for(threads):
        probe = MatmulProbe(n)  # its first product is the warm-up (allocations, thread pool)
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            probe.step()
            out.append(probe.gflops(1.0 / (time.perf_counter() - t0)))
        return out


def probe_size(ctx: Context) -> int:
    return 256 if ctx.tiny else 1024


def peak(ctx: Context) -> dict[int, float]:
    """{threads: best GFLOP/s} for 1 thread and all usable CPUs; computed once per harness run."""
    if "peak" not in ctx.cache:
        n = 256 if ctx.tiny else (1024 if ctx.quick else 2048)
        repeats = 3 if ctx.tiny or ctx.quick else 5
        res = {}
        for threads in sorted({1, usable_cpus()}):
            g = matmul_gflops(n, threads, repeats)
            res[threads] = {"best": max(g), "n": n, "repeats": repeats, "all": g}
        ctx.cache["peak"] = res
    return ctx.cache["peak"]


def bench_matmul_peak(ctx: Context) -> list[dict]:
    res = peak(ctx)
    one = res[1]["best"]
    rows = []
    for threads, r in sorted(res.items()):
        rows.append(
            ctx.row(
                benchmark="matmul_peak",
                case=case_name(threads),
                n_hidden=r["n"],
                threads=str(threads),
                value=r["best"],
                unit="GFLOP/s",
                better="higher",
                reference="matmul_f32_1thread" if threads > 1 else "",
                reference_value=one if threads > 1 else "",
                repeats=r["repeats"],
                notes=f"torch.matmul float32 {r['n']}x{r['n']}, 2n^3 FLOPs, best of {r['repeats']} "
                f"(all: {', '.join(f'{g:.1f}' for g in r['all'])})",
            )
        )
    return rows
