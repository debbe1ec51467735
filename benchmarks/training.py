"""Benchmarks `training` and `training_flops`: training throughput of rnngeom's training loop against a naive
reference loop written here, and the FLOP rate both achieve as a fraction of the measured matmul peak.

Throughput unit: network-iterations/s (one iteration of one network = one minibatch forward + backward + Adam
step). Ours trains K ensemble members together, so its figure is K x iterations/s.

NAIVE REFERENCE (``NaiveTrainer``): the textbook loop, one network at a time: an rnngeom model (so the network
is the same), a Python loop over time steps calling ``model.step``, masked MSE
+ lambda * mean((r_{t+1}-r_t)^2), plain autograd, gradient-norm clipping, torch.optim.Adam. It does not use
rnngeom.train.

OURS: ``rnngeom.train.Trainer(members, train_data, test_data, out_dirs)`` and ``trainer.train_step(i)``, one
call = one iteration of all K members. Where that API is missing (or fails) the ours cases are skipped with
the reason, and the naive figures are still reported.

ANCHOR (``TorchTrainer``): what an ML user would write: torch.nn.RNN (tanh; the leaky RNN at alpha = 1) for
plrnn, leaky and rank1, torch.nn.LSTM for the LSTM, autograd, the same loss, minibatches, clipping and Adam.

Cases (per architecture and size):
  torch_nnRNN_1thread      nn.RNN anchor (plrnn, leaky, rank1), torch 1 thread    (the per-core reference)
  torch_nnLSTM_1thread     nn.LSTM anchor (lstm), torch 1 thread                  (the per-core reference)
  naive_1thread            naive loop, torch 1 thread                              ratio vs the anchor
  ours_K1_1thread          one run through our Trainer, 1 thread                   ratio vs the anchor
  ours_K<K>_1thread        K members together (seeds x lambda), 1 thread           ratio vs the anchor
  naive_2threads           naive loop, torch 2 threads                             ratio vs naive_1thread
  naive_2x1procs           two naive loops in two processes, 1 thread each (how two Snakemake jobs share
                           2 cores), summed                                        ratio vs naive_1thread
  ours_K<K>_2threads       ours, K members, torch 2 threads (default mode, and only where one iteration is
                           short: it collapses on oversubscribed cores)            ratio vs best naive 2-core
  ours_K<K>_2x1procs       ours, K members, in each of two processes, 1 thread each,
                           summed                                                  ratio vs best naive 2-core
The 2-process cases start both processes' timed loops together (a barrier) and add their rates.
The 1-thread cases (anchor, naive, ours) are measured interleaved in one process (A, B, C, A, B, C, ...).
Each figure is the median of --repeats measurements of at least --budget seconds and one iteration, after a
warm-up iteration; a case whose warm-up iteration took over 2 budgets is measured once.

TRAINING FLOPs (analytic, matmuls only; elementwise ops, the loss and the optimizer are not counted):
  forward per iteration  F = T * B * (2 G N^2 + 2 G N n_in + 2 N n_out)   (+ T N^2 for rank1: W = m n^T / N
                             is formed every step)
  with G = 4 for the LSTM (four gates), 1 otherwise; N hidden units, B batch, T steps, n_in = n_out = 3.
  training per iteration = 3 F (backward ~ 2 x forward: gradients with respect to activations and weights).
  achieved FLOP/s = 3 F x network-iterations/s; for 1-thread cases the fraction is against the 1-thread matmul
  rate of a probe product measured interleaved with them, round by round (the median of the per-round
  fractions: load drift between rounds cancels; the notes give the fraction against the run's best 1-thread
  peak too), for 2-core cases against the all-threads peak.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import queue
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, Context, SkipBenchmark, median, rate
from benchmarks.peak import MatmulProbe, case_name, peak, probe_size
from rnngeom.losses import masked_mse
from rnngeom.runtime import set_threads
from rnngeom.runtime import threads as threads_for
from rnngeom.tcr import tcr_penalty

ARCHS = ("plrnn", "leaky", "rank1", "lstm")
TASK = "flipflop"
N_IN = N_OUT = 3  # flip-flop
LAMBDAS = (0.0, 0.3, 1.0)


# ---------------------------------------------------------------------------------------------------------
# sizes and run settings


def _load(path: Path) -> dict:
    """A config file as the pipeline sees it (an overlay merged onto config.yaml), validated with the schema's
    defaults filled in."""
    from rnngeom.config import read_config

    return validated(read_config(path))


def validated(cfg: dict) -> dict:
    from rnngeom.config import load_config

    return load_config(cfg, ROOT / "workflow/schemas/config.schema.yaml")


def sizes(ctx: Context) -> dict[str, dict]:
    """name -> the config a size comes from: quick = config.yaml, paper = config/paper.yaml,
    tiny = smoke test."""
    quick = _load(ROOT / "config.yaml")
    if ctx.tiny:
        tiny = copy.deepcopy(quick)
        for m in tiny["models"].values():
            m["n_hidden"] = 8
        tiny["tasks"][TASK] = {"n_steps": 10, "p_pulse": 0.1}
        tiny["training"]["batch_size"] = 8
        tiny["data"]["n_train"], tiny["data"]["n_test"] = 64, 16
        return {"tiny": validated(tiny)}
    if ctx.quick:
        return {"quick": quick}
    return {"quick": quick, "paper": _load(ROOT / "config/paper.yaml")}


def member_settings(cfg: dict, arch: str, seed: int, lambda_tcr: float) -> dict:
    """The run settings the pipeline gives this run (rnngeom.config.run_settings), on CPU and 1 thread."""
    from rnngeom.config import Run, run_settings

    gain = float(cfg["models"][arch].get("gain", 1.0))
    run = Run(TASK, arch, "bptt", float(lambda_tcr), gain, int(seed))
    return {**run_settings(cfg, run), "device": "cpu", "threads": 1}


def ensemble(cfg: dict, arch: str, k: int, seed0: int = 0) -> list[dict]:
    """K members of one condition: seeds x lambda_tcr (5 seeds x 3 lambdas for K = 15)."""
    out = []
    seed = seed0
    while len(out) < k:
        for lam in LAMBDAS:
            if len(out) < k:
                out.append(member_settings(cfg, arch, seed, lam))
        seed += 1
    return out


def task_data(cfg: dict, seed_offset: int = 0):
    """The pipeline's train and test splits (rnngeom.data.generate_split); seed_offset gives the second
    worker process other trials."""
    from rnngeom.data import generate_split

    params, seed = cfg["tasks"].get(TASK) or {}, int(cfg["data"]["seed"]) + seed_offset
    return tuple(
        generate_split(TASK, split, int(cfg["data"][f"n_{split}"]), seed, params)
        for split in ("train", "test")
    )


def shape_of(cfg: dict, arch: str) -> dict:
    return {
        "n_hidden": int(cfg["models"][arch]["n_hidden"]),
        "T": int(cfg["tasks"][TASK]["n_steps"]),
        "batch": int(cfg["training"]["batch_size"]),
    }


def forward_matmul_flops(
    arch: str, n_hidden: int, T: int, batch: int, n_in: int = N_IN, n_out: int = N_OUT
) -> float:
    """Matmul FLOPs of one forward pass over a minibatch (see the module docstring)."""
    G = 4 if arch == "lstm" else 1
    N = n_hidden
    per_step = batch * (2 * G * N * N + 2 * G * N * n_in + 2 * N * n_out)
    extra = N * N if arch == "rank1" else 0
    return float(T * (per_step + extra))


def training_flops(arch: str, n_hidden: int, T: int, batch: int) -> float:
    return 3.0 * forward_matmul_flops(arch, n_hidden, T, batch)


# ---------------------------------------------------------------------------------------------------------
# the two training loops


class NaiveTrainer:
    """The textbook training loop for one network (independent of rnngeom.train)."""

    def __init__(self, settings: dict, train_data):
        from rnngeom.models import build_model

        torch.manual_seed(settings["seed"])
        spec = {
            "arch": settings["arch"],
            "n_in": N_IN,
            "n_out": N_OUT,
            **settings["model"],
            "gain": settings["gain"],
        }
        self.model = build_model(spec)
        tr = settings["training"]
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(tr["lr"]))
        self.inputs = torch.from_numpy(np.ascontiguousarray(train_data.inputs))
        self.targets = torch.from_numpy(np.ascontiguousarray(train_data.targets))
        self.mask = torch.from_numpy(np.ascontiguousarray(train_data.mask))
        self.batch_size = int(tr["batch_size"])
        self.clip = float(tr.get("grad_clip") or 0.0)
        self.lambda_tcr = float(settings["lambda_tcr"])
        self.gen = torch.Generator().manual_seed(int(settings["seed"]))

    def step(self) -> float:
        model = self.model
        idx = torch.randperm(self.inputs.shape[0], generator=self.gen)[: self.batch_size]
        x, y, m = self.inputs[idx], self.targets[idx], self.mask[idx]
        h = model.initial_state(x.shape[0])
        rs = []
        for t in range(x.shape[1]):  # Python loop over time
            h = model.step(h, x[:, t])
            rs.append(model.activity(h))
        r = torch.stack(rs, dim=1)  # [B, T, N]
        y_hat = model.readout(r)
        loss = masked_mse(y_hat, y, m) + self.lambda_tcr * tcr_penalty(r)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip)
        self.optimizer.step()
        return loss.item()


class TorchTrainer(NaiveTrainer):
    """The loop an ML user would write with torch's built-in recurrent layer (the anchor): ``nn.RNN`` (tanh:
    r_t = tanh(W_ih s_t + W_hh r_{t-1} + b), the leaky RNN at alpha = 1) or ``nn.LSTM``, one layer,
    batch_first, an ``nn.Linear`` readout, torch's default initialisation; the same minibatches, loss
    (masked MSE + lambda TCR), clipping and Adam as the naive loop."""

    def __init__(self, settings: dict, train_data, layer: str):
        super().__init__(settings, train_data)
        torch.manual_seed(settings["seed"])
        n_hidden = int(settings["model"]["n_hidden"])
        self.rnn = getattr(torch.nn, layer)(N_IN, n_hidden, batch_first=True)
        self.readout = torch.nn.Linear(n_hidden, N_OUT)
        self.params = [*self.rnn.parameters(), *self.readout.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=float(settings["training"]["lr"]))

    def step(self) -> float:
        idx = torch.randperm(self.inputs.shape[0], generator=self.gen)[: self.batch_size]
        x, y, m = self.inputs[idx], self.targets[idx], self.mask[idx]
        r, _ = self.rnn(x)  # [B, T, N]
        loss = masked_mse(self.readout(r), y, m) + self.lambda_tcr * tcr_penalty(r)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.optimizer.step()
        return loss.item()


def anchor_layer(arch: str) -> str:
    """The torch built-in a user would pick for ``arch``: nn.LSTM for the LSTM, nn.RNN (tanh) otherwise."""
    return "LSTM" if arch == "lstm" else "RNN"


def anchor_case(arch: str) -> str:
    return f"torch_nn{anchor_layer(arch)}_1thread"


def import_trainer():
    try:
        from rnngeom.train import Trainer
    except Exception as err:  # noqa: BLE001 - any import failure means "not available here"
        raise SkipBenchmark(f"cannot import rnngeom.train.Trainer ({type(err).__name__}: {err})") from None
    return Trainer


class OursTrainer:
    """rnngeom's training loop for K members:
    Trainer(members, train_data, test_data, out_dirs).train_step(i)."""

    def __init__(self, members: list[dict], train_data, test_data):
        import inspect

        Trainer = import_trainer()
        self._tmp = tempfile.TemporaryDirectory(prefix="rnngeom-bench-")
        out_dirs = [Path(self._tmp.name) / f"member{k}" for k in range(len(members))]
        for d in out_dirs:
            d.mkdir()
        try:
            sig = str(inspect.signature(Trainer))
        except (TypeError, ValueError):
            sig = "(?)"
        try:
            self.trainer = Trainer(members, train_data, test_data, out_dirs)
            self.iteration = 0
            t0 = time.perf_counter()
            self.step()  # warm-up; the first call also checks that train_step exists and works
            self.first_step_s = time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001
            self._tmp.cleanup()
            raise SkipBenchmark(
                f"rnngeom.train.Trainer{sig} does not work as Trainer(members, train_data, test_data, "
                f"out_dirs).train_step(i) yet ({type(err).__name__}: {err})"
            ) from None

    def step(self) -> None:
        self.trainer.train_step(self.iteration)
        self.iteration += 1

    def close(self) -> None:
        self._tmp.cleanup()


def make_runner(kind: str, cfg: dict, arch: str, k: int, seed0: int = 0):
    """An object with .step() (one iteration), .close() and .first_step_s (the time of the warm-up iteration
    it has already done, at the current thread count); kind "naive", "torch" (the nn.RNN/nn.LSTM anchor) or
    "ours"."""
    train, test = task_data(cfg, seed_offset=seed0)
    if kind in ("naive", "torch"):
        settings = member_settings(cfg, arch, seed0, LAMBDAS[1])
        if kind == "naive":
            runner = NaiveTrainer(settings, train)
        else:
            runner = TorchTrainer(settings, train, anchor_layer(arch))
        runner.close = lambda: None
        t0 = time.perf_counter()
        runner.step()
        runner.first_step_s = time.perf_counter() - t0
    else:
        runner = OursTrainer(ensemble(cfg, arch, k, seed0), train, test)  # first step: warm-up
    return runner


# ---------------------------------------------------------------------------------------------------------
# two worker processes (spawned: no fork after torch's thread pool has started)


def _worker(jobs, results, barrier) -> None:
    set_threads(1)
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            runner = make_runner(job["kind"], job["cfg"], job["arch"], job["k"], job["seed0"])
        except Exception as err:  # noqa: BLE001
            barrier.abort()
            results.put(
                (
                    "error",
                    f"{type(err).__name__}: {err}",
                    "skip" if isinstance(err, SkipBenchmark) else traceback.format_exc(),
                )
            )
            continue
        try:
            rates = []
            for _ in range(job["repeats"]):
                barrier.wait(timeout=600)
                rates.append(rate(runner.step, job["budget_s"], job["min_iters"]))
            results.put(("ok", rates, ""))
        except threading.BrokenBarrierError:
            results.put(("error", "the other worker failed", "skip"))
        except Exception as err:  # noqa: BLE001
            barrier.abort()
            results.put(("error", f"{type(err).__name__}: {err}", traceback.format_exc()))
        finally:
            runner.close()


class WorkerPair:
    """Two spawned processes, each running one training loop on 1 thread; started together per repeat."""

    def __init__(self):
        ctx = mp.get_context("spawn")
        self.barrier = ctx.Barrier(2)
        self.results = ctx.Queue()
        self.jobs = [ctx.Queue() for _ in range(2)]
        self.procs = [
            ctx.Process(target=_worker, args=(q, self.results, self.barrier), daemon=True) for q in self.jobs
        ]
        for p in self.procs:
            p.start()

    def measure(self, kind, cfg, arch, k, repeats, budget_s, min_iters) -> list[float]:
        """Summed rate (calls of step per second, both processes) per repeat."""
        self.barrier.reset()
        for w, q in enumerate(self.jobs):
            q.put(
                {
                    "kind": kind,
                    "cfg": cfg,
                    "arch": arch,
                    "k": k,
                    "seed0": 100 * w,
                    "repeats": repeats,
                    "budget_s": budget_s,
                    "min_iters": min_iters,
                }
            )
        out, t0 = [], time.perf_counter()
        while len(out) < 2:
            try:
                out.append(self.results.get(timeout=5))
            except queue.Empty:
                dead = [p.exitcode for p in self.procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"a benchmark worker process died (exit code {dead[0]})") from None
                if time.perf_counter() - t0 > 1800:
                    raise RuntimeError("a benchmark worker process did not answer within 30 min") from None
        errors = [o for o in out if o[0] == "error"]
        if errors:
            real = [e for e in errors if e[2] != "skip"]
            if real:
                raise RuntimeError(f"worker failed: {real[0][1]}\n{real[0][2]}")
            raise SkipBenchmark(next(e[1] for e in errors if e[1] != "the other worker failed"))
        return [a + b for a, b in zip(out[0][1], out[1][1])]

    def close(self):
        for q in self.jobs:
            q.put(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()


# ---------------------------------------------------------------------------------------------------------
# the benchmark


def _measure_in_process(runners: dict, threads: int, reps: dict, budget_s: float, warm_up: bool) -> dict:
    """Interleaved (A, B, C, A, B, C, ...) so that load drift hits every case alike; {name: [rates]}."""
    with threads_for(threads):
        if warm_up:
            for r in runners.values():
                r.step()
        out = {name: [] for name in runners}
        for i in range(max(reps.values())):
            for name, r in runners.items():
                if i < reps[name]:
                    out[name].append(rate(r.step, budget_s, MIN_ITERS))
        return out


PROBE = "matmul_probe"
MIN_ITERS = 1  # each measurement: at least this many iterations and at least the budget


def bench_training(ctx: Context) -> list[dict]:
    """Rows of `training`; also leaves them in ctx.cache["training"] for `training_flops`."""
    if "training" in ctx.cache:
        return ctx.cache["training"]
    K, budget = ctx.members, ctx.budget_s
    rows = []
    pair = None
    set_threads(1)

    def n_reps(runner) -> int:  # a case whose single iteration takes over 2 budgets is measured once
        return 1 if runner.first_step_s > 2 * budget else ctx.repeats

    try:
        for size, cfg in sizes(ctx).items():
            for arch in ARCHS:
                shape = shape_of(cfg, arch)
                base = dict(
                    benchmark="training", arch=arch, unit="network-iterations/s", better="higher", **shape
                )
                note = f"{size} config sizes, task {TASK}, Adam, grad_clip {cfg['training']['grad_clip']}"
                print(
                    f"  training {size} {arch} N={shape['n_hidden']} T={shape['T']} B={shape['batch']}",
                    flush=True,
                )
                ours_k = f"ours_K{K}"

                # -- 1 thread, in this process: naive, ours K=1, ours K ----------------------------------
                runners = {kind: make_runner(kind, cfg, arch, 1) for kind in ("naive", "torch")}
                for k in (1, K):
                    try:
                        runners[f"ours_K{k}"] = make_runner("ours", cfg, arch, k)
                    except SkipBenchmark as err:
                        ctx.skip("training", f"{size}/{arch}/ours_K{k}", str(err))
                runners[PROBE] = MatmulProbe(probe_size(ctx))  # the peak, interleaved with the cases
                reps = {name: n_reps(r) for name, r in runners.items()}
                res = _measure_in_process(runners, 1, reps, budget, warm_up=False)
                probe = [runners[PROBE].gflops(x) for x in res.pop(PROBE)]
                # each case's rounds (network-iterations/s), paired with the probe's (training_flops)
                rounds = {"torch": anchor_case(arch), "naive": "naive_1thread", "ours_K1": "ours_K1_1thread"}
                rounds[f"ours_K{K}"] = f"ours_K{K}_1thread"
                members = {"ours_K1": 1, f"ours_K{K}": K}
                ctx.cache.setdefault("training_probe", {})[(arch, shape["n_hidden"], shape["T"])] = {
                    "probe": probe,
                    **{
                        case: [members.get(n, 1) * x for x in res[n]]
                        for n, case in rounds.items()
                        if n in res
                    },
                }
                naive1, torch1, anchor = median(res["naive"]), median(res["torch"]), anchor_case(arch)
                rows.append(
                    ctx.row(
                        **base,
                        case=anchor,
                        members=1,
                        threads="1",
                        value=torch1,
                        repeats=reps["torch"],
                        notes=note + f"; torch.nn.{anchor_layer(arch)} + autograd, one network",
                    )
                )
                rows.append(
                    ctx.row(
                        **base,
                        case="naive_1thread",
                        members=1,
                        threads="1",
                        value=naive1,
                        reference=anchor,
                        reference_value=torch1,
                        repeats=reps["naive"],
                        notes=note + "; textbook loop over model.step, one network",
                    )
                )
                for k in (1, K):
                    name = f"ours_K{k}"
                    if name in res:
                        ours = k * median(res[name])
                        rows.append(
                            ctx.row(
                                **base,
                                case=f"{name}_1thread",
                                members=k,
                                threads="1",
                                value=ours,
                                reference=anchor,
                                reference_value=torch1,
                                repeats=reps[name],
                                notes=note + f"; K={k} members together, value = K x "
                                f"iterations/s; {ours / naive1:.3g} x naive_1thread",
                            )
                        )

                # -- 2 threads, in this process (same objects, warmed up again at 2 threads) ---------------
                two = {"naive": runners["naive"]}
                if not ctx.quick and ours_k in runners and reps[ours_k] > 1:  # default mode, cheap sizes only
                    two[ours_k] = runners[ours_k]
                res2 = _measure_in_process(two, 2, {n: reps[n] for n in two}, budget, warm_up=True)
                for r in runners.values():
                    r.close()

                # -- two processes x 1 thread --------------------------------------------------------------
                if pair is None:
                    pair = WorkerPair()
                naive2p = median(pair.measure("naive", cfg, arch, 1, reps["naive"], budget, MIN_ITERS))
                ours2p = None
                if ours_k in runners:
                    try:
                        ours2p = K * median(
                            pair.measure("ours", cfg, arch, K, reps[ours_k], budget, MIN_ITERS)
                        )
                    except SkipBenchmark as err:
                        ctx.skip("training", f"{size}/{arch}/{ours_k}_2x1procs", str(err))

                naive2t = median(res2["naive"])
                best_naive2 = max(naive2t, naive2p)
                best_name = "naive_2threads" if naive2t >= naive2p else "naive_2x1procs"
                rows.append(
                    ctx.row(
                        **base,
                        case="naive_2threads",
                        members=1,
                        threads="2",
                        value=naive2t,
                        reference="naive_1thread",
                        reference_value=naive1,
                        repeats=reps["naive"],
                        notes=note + "; one process, torch 2 threads",
                    )
                )
                rows.append(
                    ctx.row(
                        **base,
                        case="naive_2x1procs",
                        members=1,
                        threads="2x1",
                        value=naive2p,
                        reference="naive_1thread",
                        reference_value=naive1,
                        repeats=reps["naive"],
                        notes=note + "; two processes x 1 thread, rates summed",
                    )
                )
                if ours_k in res2:
                    rows.append(
                        ctx.row(
                            **base,
                            case=f"{ours_k}_2threads",
                            members=K,
                            threads="2",
                            value=K * median(res2[ours_k]),
                            reference=best_name,
                            reference_value=best_naive2,
                            repeats=reps[ours_k],
                            notes=note + "; one process, torch 2 threads; reference = best naive 2-core",
                        )
                    )
                if ours2p is not None:
                    rows.append(
                        ctx.row(
                            **base,
                            case=f"{ours_k}_2x1procs",
                            members=K,
                            threads="2x1",
                            value=ours2p,
                            reference=best_name,
                            reference_value=best_naive2,
                            repeats=reps[ours_k],
                            notes=note + f"; two processes x 1 thread, K={K} members each, rates summed; "
                            "reference = best naive 2-core",
                        )
                    )
    finally:
        if pair is not None:
            pair.close()
    ctx.cache["training"] = rows
    return rows


def bench_training_flops(ctx: Context) -> list[dict]:
    training = bench_training(ctx)
    pk = peak(ctx)
    all_threads = max(pk)
    rows = []
    for r in training:
        arch = "leaky" if r["case"].startswith("torch_nnRNN") else r["arch"]  # nn.RNN: the leaky RNN's FLOPs
        flops = training_flops(arch, r["n_hidden"], r["T"], r["batch"])
        one_thread = r["threads"] == "1"
        value = flops * r["value"] / 1e9
        group = ctx.cache.get("training_probe", {}).get((r["arch"], r["n_hidden"], r["T"]), {})
        ratio = ""
        if one_thread and r["case"] in group:  # against the peak measured interleaved with this case
            probe, rates = group["probe"], group[r["case"]]
            # round by round (a case's i-th measurement and the probe's are neighbours in the same loop), so
            # that load drift between rounds cancels; their median is the ratio
            paired = [flops * x / 1e9 / g for x, g in zip(rates, probe)]
            reference, ref_value, ratio = "matmul_f32_1thread_interleaved", median(probe), median(paired)
            extra = (
                f"; ratio = median of the per-round fractions ({', '.join(f'{q:.4g}' for q in paired)}) of a "
                f"{probe_size(ctx)}^3 probe product measured in the same rounds "
                f"({', '.join(f'{g:.1f}' for g in probe)} GFLOP/s; reference_value = their median); "
                f"against this run's best 1-thread peak ({pk[1]['best']:.1f}): {value / pk[1]['best']:.4f}"
            )
        else:
            reference = case_name(1 if one_thread else all_threads)
            ref_value, extra = pk[1 if one_thread else all_threads]["best"], ""
        rows.append(
            ctx.row(
                benchmark="training_flops",
                case=r["case"],
                arch=r["arch"],
                n_hidden=r["n_hidden"],
                T=r["T"],
                batch=r["batch"],
                members=r["members"],
                threads=r["threads"],
                value=value,
                unit="GFLOP/s",
                better="higher",
                reference=reference,
                reference_value=ref_value,
                ratio=ratio,
                repeats=r["repeats"],
                notes=f"{flops / 1e6:.2f} MFLOP per network-iteration (3 x forward matmul FLOPs) x "
                f"{r['value']:.2f} network-iterations/s; ratio = fraction of the measured peak" + extra,
            )
        )
    print_summary(training, rows)
    return rows


def print_summary(training: list[dict], flops: list[dict]) -> None:
    """One line per size and arch, 1 thread: the anchor, naive and ours (K = 1, K members) in
    network-iterations/s, x the anchor, and each as a fraction of the 1-thread matmul peak (TSV numbers)."""
    frac = {(r["arch"], r["n_hidden"], r["T"], r["case"]): r["ratio"] for r in flops}
    groups: dict[tuple, dict] = {}
    for r in training:
        if r["threads"] == "1":
            groups.setdefault((r["arch"], r["n_hidden"], r["T"], r["batch"]), {})[r["case"]] = r
    print(
        "\n  summary, 1 thread (network-iterations/s; x anchor; % of the 1-thread matmul peak measured "
        "interleaved with them):"
    )
    for (arch, N, T, B), cases in groups.items():
        parts = []
        for case, r in cases.items():
            ratio = f" = {r['ratio']:.2f}x" if r["reference"] == anchor_case(arch) else ""
            parts.append(
                f"{case.replace('_1thread', '')} {r['value']:.0f}{ratio} "
                f"({100 * frac[(arch, N, T, case)]:.1f}%)"
            )
        same = [r for r in flops if (r["arch"], r["n_hidden"], r["T"], r["threads"]) == (arch, N, T, "1")]
        peak_note = f" [peak {same[0]['reference_value']:.1f} GFLOP/s]" if same else ""
        print(f"  {arch:5s} N={N} T={T} B={B}: " + "; ".join(parts) + peak_note)
