"""Run the benchmark harness: print a table and write one TSV per benchmark (see benchmarks/README.md).

python -m benchmarks [--quick] [--only NAME ...] [--out-dir results/benchmarks] [--e2e-tiny] [--e2e]
python benchmarks/run.py ...            (the same)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` (and rnngeom from src/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import COLUMNS, ROOT, Context, SkipBenchmark, ensure_importable  # noqa: E402

ensure_importable()


def registry():
    from benchmarks import fixed_points, peak, pipeline, training

    # name -> (function, one-line description); order = run order. e2e_* run only when asked for.
    return {
        "matmul_peak": (peak.bench_matmul_peak, "dense float32 matmul GFLOP/s, 1 thread and all threads"),
        "training": (
            training.bench_training,
            "training network-iterations/s: ours (K=1, K members) vs naive",
        ),
        "training_flops": (
            training.bench_training_flops,
            "training GFLOP/s as a fraction of the matmul peak",
        ),
        "fixed_points": (
            fixed_points.bench_fixed_points,
            "fixed-point time per checkpoint: batched vs per start",
        ),
        "dag_build": (pipeline.bench_dag_build, "snakemake -n on config/paper.yaml, median wall time"),
        "e2e_tiny": (pipeline.bench_e2e_tiny, "whole pipeline on tests/configs/tiny.yaml (--e2e-tiny)"),
        "e2e_default": (pipeline.bench_e2e_default, "whole pipeline on config.yaml, ~10 min (--e2e)"),
    }


E2E = ("e2e_tiny", "e2e_default")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="quick-config sizes only, one repeat, short timings (~1 min)"
    )
    ap.add_argument(
        "--tiny", action="store_true", help="smoke-test sizes (for tests: the numbers mean nothing)"
    )
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (see --list)")
    ap.add_argument(
        "--out-dir",
        default=str(ROOT / "results/benchmarks"),
        help="where the TSVs go (default: results/benchmarks of this checkout)",
    )
    ap.add_argument(
        "--e2e-tiny", action="store_true", help="also time the whole pipeline on the tiny test config"
    )
    ap.add_argument(
        "--e2e",
        action="store_true",
        help="also time the whole pipeline on the tiny and the default "
        "config (the default one takes ~10 min on 2 cores)",
    )
    ap.add_argument("--repeats", type=int, help="measurements per figure (median); default 3, --quick 1")
    ap.add_argument(
        "--budget", type=float, help="seconds per timed throughput measurement; default 0.3, --quick 0.2"
    )
    ap.add_argument(
        "--members", type=int, default=15, help="ensemble size K for ours (default 15 = 5 seeds x 3 lambda)"
    )
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return ap.parse_args(argv)


def _fmt(x) -> str:
    if isinstance(x, float):
        return "" if not math.isfinite(x) else f"{x:.4g}"
    return str(x)


def print_table(rows: list[dict]) -> None:
    cols = [
        "case",
        "arch",
        "n_hidden",
        "T",
        "batch",
        "members",
        "threads",
        "value",
        "unit",
        "reference",
        "reference_value",
        "ratio",
    ]
    cells = [cols] + [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for row in cells:
        print(
            "  "
            + "  ".join(
                v.rjust(w) if i >= 7 and v and v[0].isdigit() else v.ljust(w)
                for i, (v, w) in enumerate(zip(row, widths))
            ).rstrip()
        )


def write_tsv(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    cells = [{c: (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]) for c in COLUMNS} for r in rows]
    pd.DataFrame(cells, columns=COLUMNS).to_csv(tmp, sep="\t", index=False)
    tmp.replace(path)


def main(argv=None) -> int:
    args = parse_args(argv)
    reg = registry()
    if args.list:
        for name, (_, desc) in reg.items():
            print(f"{name:15s} {desc}")
        return 0
    if args.only:
        unknown = [n for n in args.only if n not in reg]
        if unknown:
            print(f"unknown benchmark(s) {unknown}; known: {list(reg)}", file=sys.stderr)
            return 2
        selected = [n for n in reg if n in args.only]
    else:
        selected = [n for n in reg if n not in E2E]
        if args.e2e or args.e2e_tiny:
            selected.append("e2e_tiny")
        if args.e2e:
            selected.append("e2e_default")

    import torch

    from benchmarks.common import machine_description
    from rnngeom.runtime import set_threads

    quick = args.quick or args.tiny
    ctx = Context(
        quick=quick,
        tiny=args.tiny,
        repeats=args.repeats or (1 if quick else 3),
        budget_s=args.budget if args.budget is not None else (0.05 if args.tiny else 0.2 if quick else 0.3),
        members=3 if args.tiny and args.members == 15 else args.members,
        machine=machine_description(),
        date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    out_dir = Path(args.out_dir)
    torch_threads = torch.get_num_threads()
    print(
        f"benchmarks: {', '.join(selected)}  "
        f"({'tiny' if args.tiny else 'quick' if quick else 'default'} mode, "
        f"repeats {ctx.repeats}, {ctx.budget_s} s per measurement, K = {ctx.members})"
    )
    print(f"machine: {ctx.machine}; date {ctx.date}; output {out_dir}/<benchmark>.tsv", flush=True)

    failed, t_all = [], time.perf_counter()
    for name in selected:
        fn = reg[name][0]
        print(f"\n== {name}: {reg[name][1]}", flush=True)
        t0 = time.perf_counter()
        try:
            rows = fn(ctx)
        except SkipBenchmark as err:
            ctx.skip(name, "*", str(err))
            continue
        except Exception:  # noqa: BLE001 - report, go on with the other benchmarks, fail at the end
            traceback.print_exc()
            failed.append(name)
            continue
        finally:
            set_threads(torch_threads)
        if rows:
            write_tsv(out_dir / f"{name}.tsv", rows)
            print_table(rows)
        print(
            f"  ({time.perf_counter() - t0:.1f} s; {len(rows)} rows -> {out_dir / (name + '.tsv')})",
            flush=True,
        )

    print(f"\ntotal {time.perf_counter() - t_all:.1f} s")
    if ctx.skipped:
        print("skipped:")
        for bench, case, reason in ctx.skipped:
            print(f"  {bench}/{case}: {reason}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
