"""The pipeline's instruments on a recurrent network trained elsewhere, in one call.

    from rnngeom.external import analyse_training

    result = analyse_training(net, checkpoints, curve, recurrent="gru", inputs=test_inputs, out_dir="out/gru")
    result.final_counts, result.t_GR, result.loss_drop.t_drop, result.tables["checkpoints"]

For a training run of any single-layer ``torch.nn.RNN`` / ``GRU`` / ``LSTM`` (or cell), one of this
project's models, or any map F(h, x) -> h' (rnngeom.adapters): fixed and slow points under a constant input
at every checkpoint, from one start set per run, in one PCA frame fitted on the final network; the GR score
of every pair of consecutive checkpoints against the run's calibrated noise floor, and the GR events; the
search phase and the loss drop of the learning curve (rnngeom.analysis.loss_drop). It is the pipeline's own
analysis (``run_analysis.compute_run_analysis`` and ``write_run_analysis``, ``aggregate.collect_run``, the
plot modules), so a folder it writes has the files of a pipeline run and the tables of ``results/tables``.
docs/own-rnn.md is a worked example; ``snakemake analyse_external --config external=FOLDER`` runs it on a
folder with a manifest (``python -m rnngeom.external --manifest FOLDER --out-dir DIR`` is that job).

Folder written by ``analyse_training(..., out_dir=D)`` (the run id is D's name):

    D/metrics.tsv, D/provenance.json   the learning curve as metrics.tsv; what was analysed
    D/analysis/                        fixed_points.tsv, checkpoint_summary.tsv, gr_scores.tsv, events.tsv,
                                       kappa_flow.tsv, trajectories_pca.npz, analysis.json (run_analysis)
    D/tables/                          runs, metrics, checkpoints, fixed_points, events, kappa_flow (.tsv):
                                       rnngeom.aggregate's tables of this one run (the loss-drop fields in
                                       runs.tsv)
    D/figures/                         gr_timeline, phase_portraits (.png, .pdf), phase_animation (.gif, one
                                       frame per checkpoint; .png, .pdf: its frames side by side; .html)
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnngeom.adapters import MODULE_KINDS, adapt
from rnngeom.aggregate import aggregate
from rnngeom.analysis.fixed_points import FixedPointSet
from rnngeom.analysis.loss_drop import LossDrop, detect_in_metrics
from rnngeom.analysis.loss_drop import resolve_settings as loss_drop_settings
from rnngeom.analysis.run_analysis import (
    RunAnalysis,
    compute_run_analysis,
    resolve_settings,
    write_run_analysis,
)
from rnngeom.external_manifest import Manifest, ManifestError, curve_separator, read_manifest
from rnngeom.io import write_json_atomic, write_tsv_atomic
from rnngeom.tasks.base import TaskData
from rnngeom.tasks.base import chance_loss as task_chance_loss

LEARNING_RULE = "external"  # runs.tsv's learning_rule of a network trained elsewhere
METRICS_COLUMNS = ["iteration", "task_loss", "test_loss", "test_accuracy", "diverged"]
STATIC_FIGURES = ("gr_timeline", "phase_portraits")
ANIMATION = "phase_animation"
ANIMATION_FORMATS = ("gif", "png", "pdf", "html")


# ----------------------------------------------------------------------------------------------------------
# the learning curve


def load_curve(curve, columns: Mapping | None = None) -> pd.DataFrame:
    """The learning curve as the pipeline's metrics table (iteration, task_loss, test_loss, test_accuracy,
    diverged).

    curve:   a DataFrame, a dict of columns, a path to a .tsv/.txt (tab) or .csv table, or a sequence of
             (iteration, loss) or (iteration, loss, accuracy) rows.
    columns: which column holds what: {"iteration", "loss", "test_loss", "accuracy"} -> column name.
             By default iteration, loss (or task_loss), test_loss and accuracy (or test_accuracy) where
             present. The loss-drop detector reads task_loss (the training loss); test_loss is the held-out
             loss where given (else the training loss), test_accuracy the held-out accuracy (else NaN: no
             time_to_learn).
    """
    if isinstance(curve, pd.DataFrame):
        df = curve.copy()
    elif isinstance(curve, (str, os.PathLike)):
        path = Path(curve)
        if not path.is_file():
            raise ValueError(f"curve: file {path} does not exist")
        df = pd.read_csv(path, sep=curve_separator(path))
    elif isinstance(curve, Mapping):
        df = pd.DataFrame(dict(curve))
    else:
        rows = [tuple(r) for r in curve]
        width = {len(r) for r in rows}
        if not rows or width - {2, 3}:
            raise ValueError("curve: rows must be (iteration, loss) or (iteration, loss, accuracy)")
        df = pd.DataFrame(rows, columns=["iteration", "loss", "accuracy"][: max(width)])
    names = dict(columns or {})
    unknown = sorted(set(names) - {"iteration", "loss", "test_loss", "accuracy"})
    if unknown:
        raise ValueError(
            f"curve columns: unknown role(s) {unknown}; known: iteration, loss, test_loss, accuracy"
        )

    def column(role, *fallbacks, required=False):
        name = names.get(role)
        if name is None:
            name = next((c for c in (role, *fallbacks) if c in df.columns), None)
        if name is None or name not in df.columns:
            if required or names.get(role) is not None:
                raise ValueError(
                    f"curve: no column {name or role!r} for the {role} (columns: {list(df.columns)})"
                )
            return None
        return pd.to_numeric(df[name], errors="coerce")

    its = column("iteration", required=True)
    loss = column("loss", "task_loss", required=True)
    test_loss = column("test_loss")
    acc = column("accuracy", "test_accuracy")
    if its.isna().any() or (its < 0).any() or (its != its.round()).any():
        raise ValueError("curve: iterations must be non-negative integers")
    out = pd.DataFrame(
        {
            "iteration": its.astype("int64"),
            "task_loss": loss.astype(float),
            "test_loss": (loss if test_loss is None else test_loss).astype(float),
            "test_accuracy": np.nan if acc is None else acc.astype(float),
        }
    )
    out["diverged"] = ~np.isfinite(out["task_loss"])
    out = out.sort_values("iteration", kind="stable").drop_duplicates("iteration").reset_index(drop=True)
    if len(out) < 2:
        raise ValueError(f"curve: needs at least 2 evaluations, got {len(out)}")
    return out[METRICS_COLUMNS]


# ----------------------------------------------------------------------------------------------------------
# checkpoints


def load_checkpoint(path) -> dict:
    """The state dict in a torch.save file: the file's dict itself, or the one it holds under ``state_dict``
    or ``model_state_dict``. Loaded with ``weights_only=True`` (tensors and plain containers only)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, not a torch file, a pickled class, ...
        first = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(f"checkpoint {path}: unreadable ({type(err).__name__}: {first})") from None
    if isinstance(obj, nn.Module):  # pragma: no cover - weights_only refuses modules
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(
            f"checkpoint {path}: not a state dict (a mapping of tensors, or one under 'state_dict' or "
            "'model_state_dict')"
        )
    return dict(obj)


def state_dict_problem(expected: Mapping, given: Mapping, prefix: str = "") -> str | None:
    """Why ``given`` (with its keys under ``prefix``) does not load into a module whose state dict is
    ``expected``, in one line; None if it does."""
    if prefix:
        inner = {k[len(prefix) :]: v for k, v in given.items() if k.startswith(prefix)}
        if not inner:
            return f"no key starts with the prefix {prefix!r} (keys: {sorted(given)[:6]})"
        given = inner
    missing = [k for k in expected if k not in given]
    if missing:
        hint = ""
        nested = sorted({k[: -len(missing[0])] for k in given if k.endswith("." + missing[0])})
        if nested:
            hint = f"; the file has it as {nested[0] + missing[0]!r}: set the prefix {nested[0]!r}"
        return f"no parameter {prefix + missing[0]!r} (the model's keys: {sorted(expected)[:6]}){hint}"
    unexpected = [k for k in given if k not in expected]
    if unexpected:
        return f"unexpected parameter {prefix + unexpected[0]!r} (the model's keys: {sorted(expected)[:6]})"
    for k, want in expected.items():
        got = tuple(given[k].shape)
        if got != tuple(want.shape):
            return f"{prefix + k!r} has shape {list(got)}, the model needs {list(want.shape)}"
    return None


@dataclass
class ExternalCheckpoints:
    """A sequence of checkpoints in the view the analysis reads (``.iterations``, ``.model_at(it)``,
    ``.run``): state dicts loaded into copies of a template module, or one map per checkpoint."""

    template: nn.Module | None  # the user's module (loaded with each state dict); None: maps per checkpoint
    entries: dict  # iteration -> state dict (keys of the template) or a map F(h, x)
    wrap: object  # module or map -> the RecurrentModel the analysis reads (rnngeom.adapters.adapt)
    run: dict = field(default_factory=dict)  # {"task": name} for the constant input "task"

    @property
    def iterations(self) -> list[int]:
        return sorted(self.entries)

    def model_at(self, iteration: int):
        entry = self.entries[iteration]
        if self.template is None or not isinstance(entry, Mapping):
            return self.wrap(entry)
        module = copy.deepcopy(self.template)
        module.load_state_dict(entry)
        return self.wrap(module).eval()


def _checkpoint_entries(checkpoints) -> list[tuple[int, object]]:
    if isinstance(checkpoints, Mapping):
        pairs = list(checkpoints.items())
    else:
        pairs = []
        for item in checkpoints:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise ValueError(
                    "checkpoints: give {iteration: checkpoint} or (iteration, checkpoint) pairs, where a "
                    "checkpoint is a state dict, a torch.save file, a module, or a map F(h, x)"
                )
            pairs.append(tuple(item))
    out = []
    for it, value in pairs:
        if isinstance(it, bool) or not float(it).is_integer() or int(it) < 0:
            raise ValueError(f"checkpoints: iteration {it!r} is not a non-negative integer")
        out.append((int(it), value))
    its = [it for it, _ in out]
    duplicate = next((it for it in its if its.count(it) > 1), None)
    if duplicate is not None:
        raise ValueError(f"checkpoints: iteration {duplicate} appears twice")
    if not out:
        raise ValueError("checkpoints: none given")
    return sorted(out, key=lambda p: p[0])


def _state_dict_of(value, where: str, has_template: bool) -> dict | None:
    """A checkpoint as a state dict: from a mapping, a torch.save file, or a module (whose weights it is,
    where the model is a module); None for a map F of its own."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (str, os.PathLike)):
        return load_checkpoint(value)
    if isinstance(value, nn.Module) and has_template:
        return value.state_dict()
    if callable(value):
        return None
    raise ValueError(f"{where}: a {type(value).__name__} is not a checkpoint")


# ----------------------------------------------------------------------------------------------------------
# the result


@dataclass
class TrainingAnalysis:
    """What ``analyse_training`` found. The tables are those of a pipeline run (docs/pipeline.md)."""

    run_id: str
    analysis: RunAnalysis  # fixed points per checkpoint in the fixed PCA frame, GR scores and events, ...
    loss_drop: LossDrop  # the search phase and the drop of the learning curve (detect_in_metrics)
    curve: pd.DataFrame  # the learning curve as metrics.tsv
    tables: dict[str, pd.DataFrame]  # rnngeom.aggregate's tables of this run (constants.TABLES)
    chance_loss: float | None  # the loss-drop detector's reference (None: the curve as it is)
    timing: dict  # total_s, s_per_checkpoint (the whole analysis), fixed_points_s_per_checkpoint, ...
    out_dir: Path | None = None
    figures: list[Path] = field(default_factory=list)

    @property
    def iterations(self) -> list[int]:
        return self.analysis.iterations

    @property
    def fixed_points(self) -> pd.DataFrame:
        """One row per checkpoint x fixed/slow point: pc1..pc3 (the run's frame), q, max |λ|, kind."""
        return self.analysis.fixed_points

    @property
    def checkpoint_summary(self) -> pd.DataFrame:
        return self.analysis.checkpoint_summary

    @property
    def gr_scores(self) -> pd.DataFrame:
        return self.analysis.gr.scores

    @property
    def events(self) -> pd.DataFrame:
        return self.analysis.gr.events

    @property
    def t_GR(self) -> int | None:
        return self.analysis.gr.t_gr

    @property
    def gr_threshold(self) -> float | None:
        return self.analysis.gr_threshold

    @property
    def gr_noise_floor(self) -> float | None:
        return self.analysis.gr_noise_floor

    @property
    def final_counts(self) -> dict:
        """Fixed points at the last checkpoint: n_fixed, n_stable, n_saddle, n_unstable, n_slow."""
        return dict(self.analysis.info["final_counts"])

    def points_at(self, iteration: int) -> FixedPointSet:
        """The fixed/slow points of one checkpoint in the network's own state space (positions, q,
        Jacobian eigenvalues, kind)."""
        return self.analysis.point_sets[iteration]

    def summary(self) -> str:
        d, c = self.loss_drop, self.final_counts
        drop = f"t_drop {d.t_drop:g} (onset {d.t_onset:g}), abrupt {d.abrupt}" if d.escaped else "no escape"
        floor = "none" if self.gr_noise_floor is None else f"{self.gr_noise_floor:.3g}"
        threshold = "none" if self.gr_threshold is None else f"{self.gr_threshold:.3g}"
        return (
            f"{self.run_id}: {len(self.iterations)} checkpoints in {self.timing['total_s']:.1f} s "
            f"({self.timing['s_per_checkpoint']:.2f} s per checkpoint); final: {c['n_stable']} stable, "
            f"{c['n_saddle']} saddle, {c['n_unstable']} unstable, {c['n_slow']} slow; GR events "
            f"{len(self.events)} (t_GR {self.t_GR}, threshold {threshold}, noise floor {floor}); loss: {drop}"
        )


# ----------------------------------------------------------------------------------------------------------
# the entry point


def _as_array(x, what: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    if a.ndim != 3:
        raise ValueError(f"{what}: expected [trials, T, size], got shape {a.shape}")
    return a


def analyse_training(
    model,
    checkpoints=None,
    curve=None,
    *,
    inputs=None,
    trajectories=None,
    input=None,
    task: str | None = None,
    chance_loss: float | None = None,
    accuracy_threshold: float = 0.9,
    recurrent: str | None = None,
    prefix: str = "",
    readout=None,
    state_size: int | None = None,
    settings: dict | None = None,
    loss_drop: dict | None = None,
    out_dir=None,
    figures: bool = True,
) -> TrainingAnalysis:
    """Analyse a training run of a recurrent network (see the module docstring); every check runs before
    any work, and a problem raises ValueError (TypeError for an unusable model) in one line.

    model:        a torch.nn.RNN / GRU / LSTM or cell (one layer, one direction), an rnngeom model, a
                  container module with ``recurrent`` naming its recurrent submodule, or a map F(h, x) -> h'
                  (a module or a plain function written with torch operations; rnngeom.adapters).
    checkpoints:  {iteration: checkpoint} or (iteration, checkpoint) pairs; a checkpoint is a state dict of
                  ``model`` (in memory, or a torch.save file), or, for maps, a map F per checkpoint. None:
                  ``model`` as it is, one checkpoint at the curve's last iteration.
    curve:        the learning curve: iteration, loss, optionally accuracy and test_loss (``load_curve``).
    inputs:       [trials, T, n_in] inputs the checkpoints run on (array, tensor or rnngeom TaskData; batch
                  first whatever the module's batch_first): the trajectories give the starts, the PCA frame
                  and the slow-dynamics columns. The first ``settings["n_trials"]`` (64) are used.
    trajectories: instead of inputs: states [trials, T, state_size], one array for every checkpoint or
                  {iteration: array}.
    input:        the constant input of the fixed points: a vector of n_in numbers, "zeros", or "task" (the
                  resting input of ``task``, from TaskData inputs). Default: "task" where task and TaskData
                  are given, else zeros.
    task:         the rnngeom task the network learned, if any (flipflop, delayed_addition,
                  evidence_accumulation): its resting input, the chance loss and, for the flip-flop, the 8
                  expected stable points (time_to_attractors).
    chance_loss:  the loss of the best constant output, the drop detector's reference (curve clipped
                  there from above); default from the task's TaskData, else none.
    accuracy_threshold: held-out accuracy at which the run counts as learned (time_to_learn).
    recurrent, readout: names of the recurrent and the readout submodule of a container ``model``.
    prefix:       state dicts hold the recurrent module's keys under this prefix (e.g. "gru."); other keys
                  are ignored.
    state_size:   a map F's state size (default: from trajectories).
    settings:     analysis settings overriding ``rnngeom.analysis.run_analysis.default_settings()`` (the
                  defaults and what each means: docs/own-rnn.md#settings).
    loss_drop:    loss-drop settings overriding ``rnngeom.analysis.loss_drop.default_settings()``.
    out_dir:      write the run folder, the tables and (``figures``) the figures there; the run id is its
                  name.
    """
    t_start = time.perf_counter()
    if curve is None:
        raise ValueError("curve: the learning curve is required (iteration, loss[, accuracy])")
    metrics = load_curve(curve)
    drop_cfg = loss_drop_settings(loss_drop)
    if (inputs is None) == (trajectories is None):
        raise ValueError("give inputs (trials the checkpoints run on) or trajectories, one of them")
    if task is not None:
        from rnngeom.tasks import get_task

        get_task(task)
    data = None
    if inputs is not None:
        data = inputs if isinstance(inputs, TaskData) else _as_array(inputs, "inputs").astype(np.float32)
    traj = None
    if trajectories is not None:
        traj = (
            {int(k): _as_array(v, f"trajectories[{k}]") for k, v in trajectories.items()}
            if isinstance(trajectories, Mapping)
            else _as_array(trajectories, "trajectories")
        )
    n_in_data = (data.inputs if isinstance(data, TaskData) else data).shape[-1] if data is not None else None
    some_traj = next(iter(traj.values())) if isinstance(traj, Mapping) else traj

    # the model and the checkpoints, each loaded once now: a bad one fails before any work
    module_like = isinstance(model, nn.Module)
    if checkpoints is None:
        if not (module_like or callable(model)):
            raise TypeError(f"cannot analyse a {type(model).__name__}")
        checkpoints = {int(metrics["iteration"].iloc[-1]): model.state_dict() if module_like else model}
    entries = _checkpoint_entries(checkpoints)
    if input is None:
        input = "task" if task and isinstance(data, TaskData) else "zeros"
    if isinstance(input, str):
        if input not in ("zeros", "task"):
            raise ValueError(f"input: 'zeros', 'task' or a vector, got {input!r}")
    else:
        input = [float(v) for v in np.asarray(input, dtype=np.float64).reshape(-1)]
    n_in = n_in_data if n_in_data is not None else (len(input) if isinstance(input, list) else None)
    size = state_size if state_size is not None else (some_traj.shape[-1] if some_traj is not None else None)

    def wrap(m):
        return adapt(m, recurrent=recurrent, readout=readout, state_size=size, n_in=n_in)

    template = model if module_like else None
    expected = template.state_dict() if template is not None else None
    loaded = {}
    for it, value in entries:
        where = f"checkpoint at iteration {it}"
        if isinstance(value, (str, os.PathLike)):
            where = f"checkpoint {value} (iteration {it})"
        sd = _state_dict_of(value, where, template is not None)
        if sd is None:  # a map per checkpoint
            loaded[it] = value
            continue
        if template is None:
            raise ValueError(f"{where}: a state dict needs the module it belongs to as model")
        problem = state_dict_problem(expected, sd, prefix)
        if problem:
            raise ValueError(f"{where}: {problem}")
        loaded[it] = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)} if prefix else sd
    ckpts = ExternalCheckpoints(template, loaded, wrap, {"task": task} if task else {})
    first = ckpts.model_at(entries[0][0])
    if n_in_data is not None and n_in_data != first.n_in:
        raise ValueError(f"inputs have {n_in_data} channels, the model has n_in={first.n_in}")
    if isinstance(input, list) and len(input) != first.n_in:
        raise ValueError(f"input: {len(input)} numbers, the model has n_in={first.n_in}")
    for k, t in traj.items() if isinstance(traj, Mapping) else [("all", traj)] if traj is not None else []:
        if t.shape[-1] != first.state_size:
            raise ValueError(
                f"trajectories[{k}]: state size {t.shape[-1]}, the model's is {first.state_size}"
            )
    if isinstance(traj, Mapping) and set(traj) != set(ckpts.iterations):
        raise ValueError("trajectories: give one array for all checkpoints, or one per checkpoint iteration")
    with torch.no_grad():  # a map must take states [B, S] and inputs [B, n_in] to states [B, S]
        probe = first.step(
            first.initial_state(2), torch.zeros(2, first.n_in, dtype=first.initial_state(1).dtype)
        )
    if tuple(probe.shape) != (2, first.state_size):
        raise ValueError(
            f"the map returns shape {tuple(probe.shape)} for 2 states of size {first.state_size}"
        )
    overrides = {**(settings or {}), "input": input}
    if not getattr(first, "stackable", True):  # one plain function per checkpoint: no stacked batches
        overrides["checkpoints_per_batch"] = 1
    resolve_settings(overrides)
    chance = chance_loss
    if chance is None and isinstance(data, TaskData):
        chance = task_chance_loss(data)

    # the analysis: the pipeline's own
    states_at = None
    if traj is not None:
        states_at = (lambda it, m: traj[it]) if isinstance(traj, Mapping) else (lambda it, m: traj)
    t_analysis = time.perf_counter()
    run = compute_run_analysis(ckpts, data, overrides, states_at=states_at)
    analysis_s = time.perf_counter() - t_analysis
    drop = detect_in_metrics(metrics, drop_cfg, reference_loss=chance)

    run_id = Path(out_dir).name if out_dir is not None else "external"
    provenance = {
        "settings": {
            "task": task or "external",
            "arch": getattr(first, "arch", "external"),
            "learning_rule": LEARNING_RULE,
            "lambda_tcr": None,  # unknown for a network trained elsewhere
            "gain": None,
            "seed": None,
            "model": {
                "n_hidden": int(first.n_hidden),
                "n_in": int(first.n_in),
                "state_size": first.state_size,
            },
            "training": {"n_iterations": int(metrics["iteration"].iloc[-1])},
        },
        "chance_loss": chance,
        "diverged": bool(metrics["diverged"].any()),
        "wall_seconds": None,
        "external": {
            "model": type(model).__name__,
            "recurrent": recurrent,
            "prefix": prefix,
            "checkpoints": len(entries),
            "versions": {"python": platform.python_version(), "torch": torch.__version__},
        },
    }
    timing = {
        "total_s": math.nan,
        "analysis_s": analysis_s,
        "s_per_checkpoint": analysis_s / len(entries),
        "fixed_points_s_per_checkpoint": run.info["timing"]["fixed_points_mean_s_per_checkpoint"],
        "gr_null_s": run.info["timing"]["gr_null_s"],
        "num_threads": torch.get_num_threads(),
    }
    thresholds = {
        provenance["settings"]["task"]: {"accuracy": float(accuracy_threshold), "loss_fraction": None}
    }
    with tempfile.TemporaryDirectory() as tmp:  # without out_dir the files are only a step to the tables
        folder = Path(out_dir) if out_dir is not None else Path(tmp) / run_id
        write_run_folder(folder, run, metrics, provenance)
        tables = aggregate([folder], thresholds, drop_cfg, run_ids=[run_id])
        if out_dir is not None:
            for name, df in tables.items():
                write_tsv_atomic(folder / "tables" / f"{name}.tsv", df)
    timing["total_s"] = time.perf_counter() - t_start
    result = TrainingAnalysis(run_id, run, drop, metrics, tables, chance, timing)
    if out_dir is not None:
        result.out_dir = Path(out_dir)
        if figures:
            result.figures = draw_figures(result.out_dir)
    return result


def write_run_folder(folder: Path, run: RunAnalysis, metrics: pd.DataFrame, provenance: dict) -> None:
    """A run folder as the pipeline's training and analysis write it: metrics.tsv, provenance.json,
    analysis/."""
    write_tsv_atomic(folder / "metrics.tsv", metrics)
    write_json_atomic(folder / "provenance.json", provenance)
    write_run_analysis(run, folder / "analysis")


def figure_argv(out_dir: Path, outputs: list[str]) -> list[str]:
    """The command line of a plot module (rnngeom.plots) drawing the run in ``out_dir``."""
    tables = out_dir / "tables"
    return [
        *("--runs", str(tables / "runs.tsv"), "--metrics", str(tables / "metrics.tsv")),
        *("--tables", str(tables), "--runs-dir", str(out_dir.parent)),
        *("--run-ids", json.dumps([out_dir.name]), "--out", *outputs),
    ]


def draw_figures(out_dir) -> list[Path]:
    """The GR timeline, the phase portraits and the phase-space animation of the run in ``out_dir``
    (written there by ``analyse_training``), under out_dir/figures."""
    import importlib

    out_dir = Path(out_dir)
    written = []
    for plot in (*STATIC_FIGURES, ANIMATION):
        formats = ANIMATION_FORMATS if plot == ANIMATION else ("png", "pdf")
        outputs = [out_dir / "figures" / f"{plot}.{ext}" for ext in formats]
        importlib.import_module(f"rnngeom.plots.{plot}").main(figure_argv(out_dir, [str(p) for p in outputs]))
        written += outputs
    return written


# ----------------------------------------------------------------------------------------------------------
# a folder with a manifest (the rule analyse_external)


def manifest_template(manifest: Manifest) -> nn.Module:
    """The module a manifest's checkpoints load into (its parameters are replaced by each checkpoint's)."""
    model = manifest.model
    if model["kind"] == "rnngeom":
        from rnngeom.models import build_model

        try:
            return build_model(model["spec"])
        except (ValueError, TypeError) as err:
            raise ManifestError(f"{manifest.file}: manifest error at 'model.spec': {err}") from None
    cls = MODULE_KINDS[model["kind"]]
    kwargs = {"bias": bool(model["bias"])}
    if model["kind"] in ("rnn", "rnn_cell"):
        kwargs["nonlinearity"] = model["nonlinearity"]
    with torch.random.fork_rng():  # building it draws random weights: leave the caller's random state alone
        return cls(int(model["input_size"]), int(model["hidden_size"]), **kwargs)


def check_manifest_models(manifest: Manifest) -> None:
    """Every checkpoint of a manifest loads into its model (keys and shapes), and the analysis settings
    resolve; ManifestError naming the file (and key) otherwise. Needs torch; run before any work."""
    template = manifest_template(manifest)
    expected = template.state_dict()
    prefix = manifest.model["prefix"]
    for it, path in manifest.checkpoints:
        try:
            sd = load_checkpoint(path)
        except ValueError as err:
            raise ManifestError(f"{manifest.file}: {err} (iteration {it})") from None
        problem = state_dict_problem(expected, sd, prefix)
        if problem:
            raise ManifestError(f"{manifest.file}: checkpoint {path} (iteration {it}): {problem}")
    try:
        resolve_settings(manifest.analysis)
    except ValueError as err:
        raise ManifestError(f"{manifest.file}: manifest error at 'analysis': {err}") from None


def analyse_manifest(manifest: Manifest, out_dir, *, figures: bool = True, threads: int | None = None):
    """``analyse_training`` on a folder with a manifest (rnngeom.external_manifest); writes ``out_dir``."""
    check_manifest_models(manifest)
    curve = load_curve(manifest.curve["file"], {k: v for k, v in manifest.curve.items() if k != "file"})
    kwargs = {}
    if manifest.inputs is not None:
        loaded = np.load(manifest.inputs, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            kwargs["inputs"] = loaded
        else:
            with loaded as z:
                has_all = {"inputs", "targets", "mask"} <= set(z.files)
                kwargs["inputs"] = (
                    TaskData(inputs=z["inputs"], targets=z["targets"], mask=z["mask"])
                    if has_all
                    else z["inputs"]
                )
    else:
        kwargs["trajectories"] = np.load(manifest.trajectories, allow_pickle=False)
    settings = dict(manifest.analysis)
    if threads:
        settings["num_threads"] = int(threads)
    return analyse_training(
        manifest_template(manifest),
        [(it, path) for it, path in manifest.checkpoints],
        curve,
        input=manifest.input,
        task=manifest.task,
        chance_loss=manifest.chance_loss,
        accuracy_threshold=manifest.accuracy_threshold,
        prefix=manifest.model["prefix"],
        settings=settings,
        loss_drop=manifest.loss_drop,
        out_dir=out_dir,
        figures=figures,
        **kwargs,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Analyse the checkpoints of a network trained elsewhere")
    ap.add_argument("--manifest", required=True, help="the folder with manifest.yaml (or the manifest file)")
    ap.add_argument("--out-dir", help="where to write (default results/external/<name>)")
    ap.add_argument(
        "--figures", action="store_true", help="also draw the figures (the rule draws them itself)"
    )
    ap.add_argument("--check", action="store_true", help="check the folder only (manifest and checkpoints)")
    ap.add_argument("--threads", type=int, help="torch threads")
    args = ap.parse_args(argv)
    try:
        manifest = read_manifest(args.manifest)
        if args.check:
            check_manifest_models(manifest)
            print(
                f"{manifest.file}: OK ({len(manifest.checkpoints)} checkpoints of a {manifest.model['kind']})"
            )
            return 0
        out = Path(args.out_dir or Path("results/external") / manifest.name)
        result = analyse_manifest(manifest, out, figures=args.figures, threads=args.threads)
    except (ManifestError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
