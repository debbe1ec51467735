"""Benchmark `fixed_points`: fixed-point analysis time per checkpoint, rnngeom's batched finder against a
per-start reference loop written here. Also, as a script, the older per-run analysis timing (see ``main``).

Harness benchmark (``bench_fixed_points``; run with ``python -m benchmarks --only fixed_points``):
a synthetic checkpoint sequence per architecture (a freshly initialised model with the config's
hyperparameters whose weights drift a little per checkpoint, so consecutive systems change slowly as in
training), starts sampled from each checkpoint's own trajectories on flip-flop inputs plus noise (5 % of
their spread, as the pipeline does), the zero input, and the finder settings the pipeline uses
(``find_fixed_points_batched`` defaults updated by config.yaml's ``analysis.fixed_points``).

  reference_per_start     the same algorithm one start at a time, written here: for each start, Adam on
                          q(x) = 1/2 |F(x) - x|^2 (float32) with the same learning rate, geometric decay,
                          iteration cap and early stop (q < tol_q, or less than stall_rtol improvement per
                          check_every iterations); then the same candidate selection (cluster_tol,
                          max_candidates), a per-point Levenberg-Marquardt polish in float64 (same lm_steps,
                          Jacobian by torch.autograd.functional.jacobian), dedup, and per-point eigenvalues.
                          On checkpoint 0, 16 of its starts (one start at a time is slow).
  batched_C1_same_starts  find_fixed_points_batched on exactly those 16 starts: the exact comparison.
  batched_C1              find_fixed_points_batched([checkpoint 0], all its starts) in one batch.
  batched_C<C>            find_fixed_points_batched(C checkpoints, their starts), time / C: the pipeline's
                          mode (checkpoints_per_batch = 16 by default).
value = seconds per checkpoint (lower is better); ratio = value / reference (below 1: faster than the
reference). batched_C1 and batched_C<C> are compared with the reference extrapolated to all starts: its Adam
time scaled by n_starts / 16 (starts are independent, so that part is additive) plus its polish time per
candidate times min(max_candidates, candidates x n_starts / 16). The notes give the counts by kind both
methods found from the same 16 starts, as a check that they do the same job.

Older script (kept): time the whole per-run analysis on synthetic checkpoints, one line per architecture:

    python benchmarks/fixed_points.py --arch leaky lstm plrnn --n-hidden 64 --n-checkpoints 16 \\
        [--device cpu|cuda] [--threads 1] [--settings settings.json]
"""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` (and rnngeom from src/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import ensure_importable

    ensure_importable()

import numpy as np
import torch
import yaml

from benchmarks.common import ROOT, Context, median, wall
from rnngeom.config import effective_model
from rnngeom.runtime import set_threads


class SyntheticCheckpoints:
    """Checkpoints-like: model_at(it) is a fresh model with weights drifted by `drift` per checkpoint."""

    def __init__(self, spec: dict, n_checkpoints: int, drift: float = 0.02, seed: int = 0):
        from rnngeom.models import build_model

        torch.manual_seed(seed)
        self.spec = spec
        model = build_model(spec)
        self.iterations = [100 * k for k in range(n_checkpoints)]
        self.snapshots = {}
        gen = torch.Generator().manual_seed(seed + 1)
        for it in self.iterations:
            self.snapshots[it] = {k: v.clone() for k, v in model.state_dict().items()}
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(drift * p.detach().std() * torch.randn(p.shape, generator=gen))

    def model_at(self, iteration: int, device="cpu"):
        from rnngeom.models import build_model

        model = build_model(self.spec)
        model.load_state_dict(self.snapshots[iteration])
        return model.to(device).eval()


# ---------------------------------------------------------------------------------------------------------
# the per-start reference


def finder_settings(overrides: dict | None = None) -> dict:
    """Keyword defaults of find_fixed_points_batched, updated by `overrides` (config
    analysis.fixed_points)."""
    from rnngeom.analysis.fixed_points import find_fixed_points_batched

    params = inspect.signature(find_fixed_points_batched).parameters
    settings = {
        n: p.default for n, p in params.items() if p.kind == p.KEYWORD_ONLY and n not in ("input", "device")
    }
    settings.update(overrides or {})
    return settings


def reference_fixed_points(model, starts: np.ndarray, cfg: dict) -> dict:
    """The finder's algorithm one start (then one point) at a time. Returns counts by kind and the seconds of
    its two phases: {"counts", "adam_s" (all starts), "polish_s" (all candidates), "n_candidates"}."""
    from rnngeom.analysis.fixed_points import classify, deduplicate

    m32 = copy.deepcopy(model).float().eval().requires_grad_(False)
    m64 = copy.deepcopy(model).double().eval().requires_grad_(False)
    s32 = torch.zeros(1, model.n_in, dtype=torch.float32)
    s64 = torch.zeros(1, model.n_in, dtype=torch.float64)
    n_iters, check_every = int(cfg["n_iters"]), int(cfg["check_every"])
    decay = cfg["lr_final"] ** (1.0 / max(n_iters, 1))

    # 1. Adam from each start, one at a time.
    t0 = time.perf_counter()
    finals = []
    for x0 in starts:
        x = torch.tensor(x0, dtype=torch.float32)[None].requires_grad_(True)
        opt = torch.optim.Adam([x], lr=cfg["lr"])
        q_last = None
        for it in range(n_iters):
            opt.zero_grad()
            q = 0.5 * ((m32.step(x, s32) - x) ** 2).sum()
            q.backward()
            opt.step()
            for group in opt.param_groups:
                group["lr"] *= decay
            if (it + 1) % check_every == 0:
                qv = q.item()
                if (
                    not np.isfinite(qv)
                    or qv < cfg["tol_q"]
                    or (q_last is not None and qv > (1 - cfg["stall_rtol"]) * q_last)
                ):
                    break
                q_last = qv
        finals.append(x.detach()[0].double())

    adam_s = time.perf_counter() - t0
    t0 = time.perf_counter()

    def F(x):
        return m64.step(x[None], s64)[0]

    def speed(x):
        return float(0.5 * ((F(x) - x) ** 2).sum())

    # 2. Candidates: the same clustering and cap.
    X = torch.stack(finals)
    with torch.no_grad():
        q = np.array([speed(x) for x in X])
    ok = np.flatnonzero(np.isfinite(q) & torch.isfinite(X).all(-1).numpy())
    ok = ok[deduplicate(X[ok].numpy(), q[ok], cfg["cluster_tol"])]
    cand = ok[np.argsort(q[ok], kind="stable")][: cfg["max_candidates"]]

    # 3. Levenberg-Marquardt polish, one point at a time; eigenvalues per point.
    S = X.shape[1]
    eye = torch.eye(S, dtype=torch.float64)
    pos, qs, rel = [], [], []
    for i in cand:
        x = X[i].clone()
        with torch.no_grad():
            r = F(x) - x
        qi, mu = float(0.5 * (r**2).sum()), 1e-3
        for _ in range(int(cfg["lm_steps"])):
            if qi < 1e-26 or mu > 1e10:
                break
            Jr = torch.autograd.functional.jacobian(F, x) - eye
            g = Jr.T @ r
            try:
                delta = torch.linalg.solve(Jr.T @ Jr + mu * eye, -g)
            except RuntimeError:
                delta = torch.zeros_like(x)
            with torch.no_grad():
                x_new = x + delta
                r_new = F(x_new) - x_new
            q_new = float(0.5 * (r_new**2).sum())
            if np.isfinite(q_new) and q_new < qi:
                x, r, qi, mu = x_new, r_new, q_new, mu * 0.3
            else:
                mu *= 10.0
        Jr = torch.autograd.functional.jacobian(F, x) - eye
        rn = float(torch.linalg.vector_norm(r))
        rel.append(float(torch.linalg.vector_norm(Jr.T @ r)) / rn if rn > 0 else 0.0)
        pos.append(x.numpy())
        qs.append(qi)
    pos, qs, rel = np.array(pos).reshape(-1, S), np.array(qs), np.array(rel)
    good = np.isfinite(qs) & ((qs < cfg["tol_q"]) | ((qs < cfg["slow_q"]) & (rel <= cfg["slow_grad_tol"])))
    keep = np.flatnonzero(good)
    keep = keep[deduplicate(pos[keep], qs[keep], cfg["dedup_tol"])]
    eig = [
        torch.linalg.eigvals(torch.autograd.functional.jacobian(F, torch.as_tensor(pos[i]))).numpy()
        for i in keep
    ]
    eig = np.array(eig).reshape(len(keep), S)
    kinds = classify(qs[keep], eig, cfg["tol_q"]) if len(keep) else np.array([], object)
    counts = {k: int((kinds == k).sum()) for k in ("stable", "saddle", "unstable", "slow")}
    return {
        "counts": counts,
        "adam_s": adam_s,
        "polish_s": time.perf_counter() - t0,
        "n_candidates": len(cand),
    }


# ---------------------------------------------------------------------------------------------------------
# the harness benchmark


def _starts(model, inputs: torch.Tensor, n: int, seed: int) -> np.ndarray:
    from rnngeom.analysis.fixed_points import sample_starts

    with torch.no_grad():
        st = model(inputs).states.double().numpy()
    flat = st.reshape(-1, st.shape[-1])
    flat = flat[np.isfinite(flat).all(axis=1)]
    spread = float(np.sqrt(flat.var(axis=0).mean())) if len(flat) else 1.0
    return sample_starts(flat, n, 0.05 * spread, seed=seed)


def _fmt_counts(c: dict) -> str:
    return "/".join(str(c[k]) for k in ("stable", "saddle", "unstable", "slow"))


def bench_fixed_points(ctx: Context) -> list[dict]:
    from rnngeom.analysis.fixed_points import find_fixed_points_batched
    from rnngeom.tasks import get_task

    cfg_all = yaml.safe_load((ROOT / "config.yaml").read_text())
    analysis = cfg_all.get("analysis") or {}
    settings = finder_settings(analysis.get("fixed_points"))
    if ctx.tiny:
        archs, n_hidden, n_starts, n_ref, n_trials, C, T = ("leaky",), 8, 8, 4, 8, 2, 20
        settings.update(n_iters=100, check_every=20)
    else:
        archs = ("leaky",) if ctx.quick else ("leaky", "rank1", "lstm")
        n_hidden, n_starts, n_trials = (
            None,
            int(analysis.get("n_starts", 128)),
            int(analysis.get("n_trials", 64)),
        )
        n_ref, C, T = 16, 16, int(cfg_all["tasks"]["flipflop"]["n_steps"])
    repeats = ctx.repeats
    task = get_task("flipflop")
    data = task.generate(n_trials, seed=1, n_steps=T, p_pulse=0.05 if not ctx.tiny else 0.2)
    inputs = torch.from_numpy(data.inputs)
    set_threads(1)
    rows = []
    for arch in archs:
        hp = effective_model(cfg_all, arch, "bptt")
        if n_hidden is not None:
            hp["n_hidden"] = n_hidden
        spec = {"arch": arch, "n_in": task.n_in, "n_out": task.n_out, **hp}
        ck = SyntheticCheckpoints(spec, C)
        models = [ck.model_at(it) for it in ck.iterations]
        starts = np.stack([_starts(m, inputs, n_starts, seed=k) for k, m in enumerate(models)])
        sub = starts[:1, :n_ref]  # the reference's starts (sample_starts draws them in random order)
        N = models[0].n_hidden
        print(f"  fixed_points {arch} N={N} starts={n_starts} (reference: {n_ref}) C={C}", flush=True)
        base = dict(
            benchmark="fixed_points",
            arch=arch,
            n_hidden=N,
            T="",
            threads="1",
            unit="s/checkpoint",
            better="lower",
        )
        note = (
            "synthetic drifting checkpoints, config.yaml hparams, zero input, "
            f"n_iters {settings['n_iters']}, lr {settings['lr']}, lm_steps {settings['lm_steps']}, "
            f"max_candidates {settings['max_candidates']}"
        )

        # the three timed calls, their arguments bound now (this loop's models and starts)
        run_sub = functools.partial(find_fixed_points_batched, models[:1], sub, **settings)
        run_c1 = functools.partial(find_fixed_points_batched, models[:1], starts[:1], **settings)
        run_cc = functools.partial(find_fixed_points_batched, models, starts, **settings)
        run_sub()  # warm-up (vmap/functorch tracing)
        t_sub, t_c1, t_cc = [], [], []
        for _ in range(repeats):
            t_sub.append(wall(run_sub))
            t_c1.append(wall(run_c1))
        t_cc.append(wall(run_cc) / C)  # long: once
        counts_sub = find_fixed_points_batched(models[:1], sub, **settings)[0].counts()
        ref = reference_fixed_points(models[0], sub[0], settings)
        t_ref = ref["adam_s"] + ref["polish_s"]
        # The reference at all n_starts: Adam is per start (additive); polishing is per candidate, at most
        # max_candidates.
        n_cand_full = min(settings["max_candidates"], ref["n_candidates"] * n_starts / n_ref)
        per_cand = ref["polish_s"] / ref["n_candidates"] if ref["n_candidates"] else 0.0
        t_ref_full = ref["adam_s"] * n_starts / n_ref + per_cand * n_cand_full

        counts = (
            f"counts stable/saddle/unstable/slow on checkpoint 0 from the {n_ref} reference starts: batched "
            f"{_fmt_counts(counts_sub)}, reference {_fmt_counts(ref['counts'])}"
        )
        rows.append(
            ctx.row(
                **base,
                case="reference_per_start",
                batch=n_ref,
                members=1,
                value=t_ref,
                repeats=1,
                notes=f"{note}; one start at a time; Adam {ref['adam_s']:.2f} s, polish "
                f"{ref['polish_s']:.2f} s for {ref['n_candidates']} candidates; {counts}",
            )
        )
        rows.append(
            ctx.row(
                **base,
                case="batched_C1_same_starts",
                batch=n_ref,
                members=1,
                value=median(t_sub),
                reference="reference_per_start",
                reference_value=t_ref,
                repeats=repeats,
                notes=f"{note}; exactly the reference's model and starts; {counts}",
            )
        )
        ext = (
            f"reference_per_start extrapolated to {n_starts} starts (Adam x {n_starts}/{n_ref}, polish per "
            f"candidate x {n_cand_full:.0f} candidates)"
        )
        rows.append(
            ctx.row(
                **base,
                case="batched_C1",
                batch=n_starts,
                members=1,
                value=median(t_c1),
                reference="reference_per_start_extrapolated",
                reference_value=t_ref_full,
                repeats=repeats,
                notes=f"{note}; all {n_starts} starts of checkpoint 0; reference = {ext}",
            )
        )
        rows.append(
            ctx.row(
                **base,
                case=f"batched_C{C}",
                batch=n_starts,
                members=C,
                value=median(t_cc),
                reference="reference_per_start_extrapolated",
                reference_value=t_ref_full,
                repeats=1,
                notes=f"{note}; {C} checkpoints x {n_starts} starts in one call, time / {C}; "
                f"reference = {ext}",
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------------------
# the older script: whole per-run analysis on synthetic checkpoints


def main(argv=None) -> None:
    from rnngeom.analysis.run_analysis import analyse_run

    ap = argparse.ArgumentParser(
        description="Time the per-checkpoint analysis on synthetic checkpoint sequences."
    )
    ap.add_argument("--arch", nargs="+", default=["leaky", "lstm", "plrnn", "rank1"])
    ap.add_argument("--n-hidden", type=int, default=64)
    ap.add_argument("--n-checkpoints", type=int, default=16)
    ap.add_argument("--n-in", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--settings", help="JSON file of analysis-setting overrides")
    args = ap.parse_args(argv)

    overrides = json.loads(Path(args.settings).read_text()) if args.settings else {}
    overrides["device"] = args.device
    overrides.setdefault("input", "zeros")  # synthetic checkpoints name no task
    if args.threads:
        overrides["num_threads"] = args.threads
    rng = np.random.default_rng(0)
    shape = (64, 60, args.n_in)
    inputs = ((rng.random(shape) < 0.1) * rng.choice([-1.0, 1.0], shape)).astype(np.float32)
    for arch in args.arch:
        spec = {"arch": arch, "n_in": args.n_in, "n_out": 3, "n_hidden": args.n_hidden}
        ck = SyntheticCheckpoints(spec, args.n_checkpoints)
        with tempfile.TemporaryDirectory() as tmp:
            result = analyse_run(ck, inputs, tmp, overrides)
        t = result["timing"]
        print(
            f"{arch:6s} n_hidden={args.n_hidden} state={result['state_size']} device={args.device} "
            f"threads={t['num_threads']} method={result['method']}: "
            f"{t['fixed_points_mean_s_per_checkpoint']:.3f} s/checkpoint (total {t['total_s']:.1f} s for "
            f"{result['n_checkpoints']}); last checkpoint {result['final_counts']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
