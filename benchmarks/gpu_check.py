"""GPU check (run by benchmarks/gpu_check.sh; <= 8 minutes on one GPU): CPU vs GPU throughput and an estimate
of the paper config's wall time on one GPU.

    python -m benchmarks.gpu_check [--cpu-only] [--out-dir DIR] [--budget S] [--skip-e2e]

Writes (harness columns, benchmarks/common.py COLUMNS) to --out-dir (default $OUT, else results/benchmarks/):
  gpu_e2e.tsv        wall time of the tiny config end to end with ``--config device=cuda`` (snakemake
                     --cores 4, a fresh copy of the workflow; run last, in the time left); --cpu-only: a dry
                     run (-n) of the same command
  gpu_training.tsv   network-iterations/s of rnngeom.train.Trainer (K = 1 and ensembles of one condition) on
                     cpu (1 thread, what one job gets) and cuda, quick and paper sizes, each arch
  gpu_analysis.tsv   seconds per checkpoint of find_fixed_points_batched (C checkpoints per call), cpu vs cuda
  gpu_estimate.tsv   the paper config (config/paper.yaml) on one device: training (every condition's runs as
                     one ensemble, at the measured per-network rate of the nearest measured K) + analysis
                     (checkpoints x s/checkpoint), in hours
--cpu-only: smoke-test sizes on the CPU alone (for tests/test_benchmarks.py; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    ROOT,
    Context,
    ensure_importable,
    machine_description,
    median,
    rate,
)

ensure_importable()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import training  # noqa: E402
from rnngeom.config import effective_model  # noqa: E402
from rnngeom.runtime import set_threads  # noqa: E402

TINY_CMD = [
    "--cores",
    "4",
    "--configfile",
    "tests/configs/tiny.yaml",
    "--config",
    "device=cuda",
]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench_e2e(ctx: Context, dry: bool, timeout: float) -> list[dict]:
    from benchmarks.pipeline import _job_count, _run, copy_workflow

    args = TINY_CMD + (["-n"] if dry else [])
    with tempfile.TemporaryDirectory(prefix="rnngeom-gpu-e2e-") as tmp:
        wd = copy_workflow(Path(tmp))
        print(f"  e2e: snakemake {' '.join(args)}", flush=True)
        seconds, proc = _run(wd, args, timeout=timeout)
        jobs = _job_count(proc.stdout + proc.stderr)
        provenance = (wd / "results").rglob("provenance.json")
        devices = sorted({json.loads(p.read_text())["device"] for p in provenance})
    return [
        ctx.row(
            benchmark="gpu_e2e",
            case="tiny_dry_run" if dry else "tiny_e2e",
            value=seconds,
            unit="s",
            better="lower",
            repeats=1,
            threads="4",
            notes=f"snakemake {' '.join(args)}; {jobs} jobs; devices in provenance.json: {devices}",
        )
    ]


def trainer_rate(cfg: dict, arch: str, k: int, device: str, budget: float) -> tuple[float, float]:
    """(network-iterations/s, seconds of the first iteration) of Trainer with K members on ``device``."""
    train, test = training.task_data(cfg)
    members = [{**m, "device": device} for m in training.ensemble(cfg, arch, k)]
    with tempfile.TemporaryDirectory(prefix="rnngeom-gpu-train-") as tmp:
        trainer = training.import_trainer()(members, train, test, [Path(tmp) / f"m{i}" for i in range(k)])
        it = iter(range(10**9))

        def step():
            trainer.train_step(next(it))
            sync(device)

        t0 = time.perf_counter()
        step()  # warm-up (CUDA context, allocator, kernels)
        first = time.perf_counter() - t0
        step()
        return k * rate(step, budget, min_iters=2), first


def bench_training(ctx: Context, devices: list[str], configs: dict, members: list[int]) -> list[dict]:
    rows = []
    for size, cfg in configs.items():
        for arch in training.ARCHS:
            shape = training.shape_of(cfg, arch)
            ref = {}
            for k in members:
                for device in devices:
                    if device == "cpu" and k > max(members[:2]):  # large CPU ensembles at paper size: minutes
                        continue
                    rates, first = [], 0.0
                    for _ in range(ctx.repeats):
                        r, first = trainer_rate(cfg, arch, k, device, ctx.budget_s)
                        rates.append(r)
                    value = median(rates)
                    ref.setdefault(k, {})[device] = value
                    cpu = ref[k].get("cpu") if device != "cpu" else (ref[1]["cpu"] if k > 1 else None)
                    rows.append(
                        ctx.row(
                            benchmark="gpu_training",
                            case=f"{device}_K{k}",
                            arch=arch,
                            members=k,
                            threads="1" if device == "cpu" else "",
                            value=value,
                            unit="network-iterations/s",
                            better="higher",
                            reference=(f"cpu_K{1 if device == 'cpu' else k}" if cpu else ""),
                            reference_value=cpu or "",
                            repeats=ctx.repeats,
                            notes=f"{size} sizes, Trainer.train_step, first step {first:.2f} s",
                            **shape,
                        )
                    )
                    print(f"  training {size} {arch} {device} K={k}: {value:.1f} network-it/s", flush=True)
    return rows


def analysis_seconds(
    arch: str, n_hidden: int, n_checkpoints: int, n_starts: int, device: str, settings: dict, T: int
) -> float:
    from benchmarks.fixed_points import SyntheticCheckpoints, _starts
    from rnngeom.analysis.fixed_points import find_fixed_points_batched
    from rnngeom.tasks import get_task

    task = get_task(training.TASK)
    hp = effective_model(training._load(ROOT / "config.yaml"), arch, "bptt")
    spec = {"arch": arch, "n_in": task.n_in, "n_out": task.n_out, **hp, "n_hidden": n_hidden}
    ck = SyntheticCheckpoints(spec, n_checkpoints)
    models = [ck.model_at(it) for it in ck.iterations]
    inputs = torch.from_numpy(task.generate(16, seed=1, n_steps=T, p_pulse=0.05).inputs)
    starts = np.stack([_starts(m, inputs, n_starts, seed=k) for k, m in enumerate(models)])
    find_fixed_points_batched(models[:1], starts[:1], device=device, **settings)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    find_fixed_points_batched(models, starts, device=device, **settings)
    sync(device)
    return (time.perf_counter() - t0) / n_checkpoints


def bench_analysis(ctx: Context, devices: list[str], configs: dict) -> list[dict]:
    from benchmarks.fixed_points import finder_settings

    rows = []
    for size, cfg in configs.items():
        settings = finder_settings((cfg.get("analysis") or {}).get("fixed_points"))
        n_starts, C = int(cfg["analysis"]["n_starts"]), 8
        if ctx.tiny:
            settings.update(n_iters=100, check_every=20)
            n_starts, C = 8, 2
        for arch in ("leaky", "lstm"):
            shape = training.shape_of(cfg, arch)
            cpu = None
            for device in devices:
                s = analysis_seconds(arch, shape["n_hidden"], C, n_starts, device, settings, shape["T"])
                cpu = s if device == "cpu" else cpu
                rows.append(
                    ctx.row(
                        benchmark="gpu_analysis",
                        case=f"{device}_C{C}",
                        arch=arch,
                        n_hidden=shape["n_hidden"],
                        batch=n_starts,
                        members=C,
                        value=s,
                        unit="s/checkpoint",
                        better="lower",
                        repeats=1,
                        reference=f"cpu_C{C}" if device != "cpu" else "",
                        reference_value=cpu if device != "cpu" else "",
                        notes=f"{size} sizes; find_fixed_points_batched, {n_starts} starts per "
                        f"checkpoint, {C} synthetic checkpoints per call",
                    )
                )
                print(f"  analysis {size} {arch} {device}: {s:.3f} s/checkpoint", flush=True)
    return rows


def estimate_paper(
    ctx: Context, training_rows: list[dict], analysis_rows: list[dict], device: str
) -> list[dict]:
    """Hours of the paper config on one ``device``: every condition (task, arch, rule) as one ensemble."""
    from rnngeom.config import all_runs, effective_training
    from rnngeom.tasks import get_task
    from rnngeom.train import checkpoint_schedule

    cfg = training._load(ROOT / "config/paper.yaml")
    size = "paper" if any("paper" in r["notes"] for r in training_rows) else None
    trows = [
        r for r in training_rows if r["case"].startswith(device) and (size is None or "paper" in r["notes"])
    ]
    arows = [r for r in analysis_rows if r["case"].startswith(device)]
    T_ref = training.shape_of(cfg, "leaky")["T"]
    conditions: dict[tuple, list] = {}
    for run in all_runs(cfg):
        conditions.setdefault((run.task, run.arch, run.learning_rule), []).append(run)
    train_s = analysis_s = 0.0
    n_checkpoints = 0
    for (task, arch, rule), runs in conditions.items():
        tr = effective_training(cfg, task, rule)
        K = len(runs)
        measured = {int(r["members"]): r["value"] for r in trows if r["arch"] == arch}
        if not measured:
            continue
        k_used = max([k for k in measured if k <= K] or [min(measured)])
        T = get_task(task).generate(1, seed=0, **(cfg["tasks"].get(task) or {})).inputs.shape[1]
        train_s += K * tr["n_iterations"] / measured[k_used] * T / T_ref  # time steps scale the work
        ck = tr["checkpoints"]
        n_ck = K * len(
            checkpoint_schedule(tr["n_iterations"], ck["dense_until"], ck["dense_every"], ck["sparse_every"])
        )
        n_checkpoints += n_ck
        per_ck = [r["value"] for r in arows if r["arch"] == ("lstm" if arch == "lstm" else "leaky")]
        analysis_s += n_ck * (per_ck[0] if per_ck else 0.0)
    runs = sum(len(v) for v in conditions.values())
    note = (
        f"config/paper.yaml: {runs} runs in {len(conditions)} conditions (one ensemble each), "
        f"{n_checkpoints} checkpoints; training at the measured per-network rate of the nearest "
        f"measured K (flip-flop rates, scaled by each task's time steps; RFLO/freeze-in at the BPTT "
        f"rate), analysis at the fixed-point s/checkpoint (PLRNN: the leaky figure); jobs one after "
        f"another on one {device}"
    )
    base = dict(benchmark="gpu_estimate", unit="h", better="lower", repeats=1, notes=note)
    return [
        ctx.row(**base, case=f"{device}_training", value=train_s / 3600),
        ctx.row(**base, case=f"{device}_analysis", value=analysis_s / 3600),
        ctx.row(**base, case=f"{device}_total", value=(train_s + analysis_s) / 3600),
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-only", action="store_true", help="smoke-test sizes on the CPU (no GPU needed)")
    ap.add_argument("--out-dir", default=os.environ.get("OUT") or str(ROOT / "results/benchmarks"))
    ap.add_argument(
        "--budget", type=float, help="seconds per throughput measurement (default 0.5; --cpu-only 0.02)"
    )
    ap.add_argument("--skip-e2e", action="store_true", help="do not run the tiny config end to end")
    a = ap.parse_args(argv)
    from benchmarks.run import write_tsv

    if not a.cpu_only and not torch.cuda.is_available():
        print("error: torch sees no CUDA device; use --cpu-only for the dry mode", file=sys.stderr)
        return 2
    set_threads(1)
    gpu_name = "" if a.cpu_only else f"; {torch.cuda.get_device_name(0)}"
    budget = a.budget or (0.02 if a.cpu_only else 0.5)
    ctx = Context(
        quick=a.cpu_only,
        tiny=a.cpu_only,
        repeats=1,
        budget_s=budget,
        machine=machine_description() + gpu_name,
        date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    devices = ["cpu"] if a.cpu_only else ["cpu", "cuda"]
    configs = training.sizes(ctx)  # tiny, or quick (config.yaml) and paper (config/paper.yaml)
    members = [1, 3] if a.cpu_only else [1, 16, 128]
    out = Path(a.out_dir)
    tables = {}

    def done(name: str, rows: list[dict]) -> None:  # written at once: a timeout later keeps what is done
        tables[name] = rows
        write_tsv(out / f"{name}.tsv", rows)
        for r in rows:
            ratio = f"  ({r['ratio']:.3g} x {r['reference']})" if r["ratio"] != "" else ""
            print(
                f"  {name:13s} {r['case']:16s} {r['arch']:6s} {r['n_hidden']!s:>4} {r['members']!s:>4} "
                f"{r['value']:.4g} {r['unit']}{ratio}",
                flush=True,
            )

    t_start = time.perf_counter()
    done("gpu_training", bench_training(ctx, devices, configs, members))
    done("gpu_analysis", bench_analysis(ctx, devices, configs))
    done(
        "gpu_estimate",
        [
            row
            for d in devices
            for row in estimate_paper(ctx, tables["gpu_training"], tables["gpu_analysis"], d)
        ],
    )
    failed = False
    if not a.skip_e2e:  # last, with what is left of the 8 minutes (gpu_check.sh stops everything at 470 s)
        try:
            time_left = max(60.0, 460 - (time.perf_counter() - t_start))
            done("gpu_e2e", bench_e2e(ctx, dry=a.cpu_only, timeout=time_left))
        except Exception:  # noqa: BLE001 - report it, fail at the end
            traceback.print_exc()
            failed = True
    print(f"wrote {', '.join(str(out / (n + '.tsv')) for n in tables)}")
    if failed:
        print("FAILED: the tiny config end to end (traceback above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
