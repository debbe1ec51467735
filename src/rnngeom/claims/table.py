"""The claim table: one row per claim C1..C11 (``evaluate_claims``), its Markdown copy (``render_markdown``)
and the command line (``main``; ``python -m rnngeom.claims``).

    python -m rnngeom.claims --tables results/tables --experiments @experiments.json --claims @claims.json \\
        --out results/claims.tsv --markdown results/claims.md

Inputs are the tidy tables of ``rnngeom.aggregate`` (runs, metrics, checkpoints, fixed_points, events; read by
``read_tables``), a map experiment -> [run_id, ...] (``--experiments``: each experiment's exact run list), and
a map claim id -> {"experiment": name or [names], "figure": name} (the config's claim section). The shared
values (the flip-flop's 8 stable points, the gain threshold 1.0) live in ``rnngeom.constants``.

Runs of a claim = the runs of its experiment(s) present in runs.tsv (the union, each run once), selected by
exact run_id membership (never by a grid of key values). Each claim gets its own random generator, seeded by
(seed, claim number), so the table is a deterministic function of its inputs.

Output columns (``COLUMNS``): claim_id, claim, experiment, n_runs, statistic, effect, ci_low, ci_high,
p_value, verdict, precondition, the control's columns (``CONTROL_KEYS``: C2's weight-motion control, empty for
the other claims) and figure. There are always 11 rows, in order C1..C11. ``statistic`` says in words what was
computed (or, for "not run", why nothing could be); ``precondition`` what must hold in the claim's runs, as
measured.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.registry import CLAIM_FUNCTIONS, CLAIM_IDS, CLAIM_TEXT
from rnngeom.claims.verdict import VERDICTS, NotRun, NotTestable, Outcome
from rnngeom.constants import RUN_KEYS, TABLES
from rnngeom.io import atomic_path, json_arg, write_tsv_atomic

CONTROL_KEYS = (
    "control",
    "control_effect",
    "control_ci_low",
    "control_ci_high",
    "control_p_value",
    "control_verdict",
)
COLUMNS = [
    "claim_id",
    "claim",
    "experiment",
    "n_runs",
    "statistic",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "verdict",
    "precondition",
    *CONTROL_KEYS,
    "figure",
]
CLAIM_SPEC_KEYS = {"experiment", "figure"}


def _names(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def validate_inputs(tables: dict, experiments: dict, claims: dict) -> None:
    """Raise ValueError naming the first malformed input."""
    if not isinstance(tables, dict) or not isinstance(tables.get("runs"), pd.DataFrame):
        raise ValueError("tables must hold a 'runs' DataFrame")
    needed = {
        "run_id",
        *RUN_KEYS,
        "n_iterations",
        "time_to_learn_censored",
        "censored",
        "learned",
        "diverged",
    }
    missing = sorted(needed - set(tables["runs"].columns))
    if missing and len(tables["runs"]):
        raise ValueError(f"runs table lacks column(s) {missing}")
    if not isinstance(experiments, dict) or not all(
        isinstance(k, str) and isinstance(v, (list, tuple)) and all(isinstance(r, str) for r in v)
        for k, v in experiments.items()
    ):
        raise ValueError("experiments must map experiment name -> list of run_id strings")
    if not isinstance(claims, dict):
        raise ValueError("claims must map claim id -> {experiment, figure}")
    for cid, spec in claims.items():
        if cid not in CLAIM_TEXT:
            raise ValueError(f"unknown claim id {cid!r}; known: {CLAIM_IDS}")
        if not isinstance(spec, dict):
            raise ValueError(f"claim {cid}: expected an object {{experiment, figure}}, got {spec!r}")
        unknown = sorted(set(spec) - CLAIM_SPEC_KEYS)
        if unknown:
            raise ValueError(f"claim {cid}: unknown key(s) {unknown}; allowed: {sorted(CLAIM_SPEC_KEYS)}")
        exp = spec.get("experiment")
        if exp is not None and not (isinstance(exp, str) or all(isinstance(e, str) for e in exp)):
            raise ValueError(f"claim {cid}: experiment must be a name or a list of names, got {exp!r}")


def _prepare_runs(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.drop_duplicates("run_id").copy()
    for col in ("lambda_tcr", "gain", "n_iterations"):
        runs[col] = pd.to_numeric(runs[col], errors="coerce")
    return runs


def evaluate_claims(
    tables: dict[str, pd.DataFrame],
    experiments: dict[str, list[str]],
    claims: dict[str, dict],
    *,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """The claim table (``COLUMNS``), one row per claim C1..C11 in order; see the module docstring."""
    validate_inputs(tables, experiments, claims)
    runs_all = _prepare_runs(tables["runs"]) if len(tables["runs"]) else tables["runs"]
    rows = []
    for number, cid in enumerate(CLAIM_IDS, start=1):
        spec = claims.get(cid)
        names = _names(spec.get("experiment")) if spec else []
        row = {
            "claim_id": cid,
            "claim": CLAIM_TEXT[cid],
            "experiment": ", ".join(names),
            "figure": ", ".join(_names(spec.get("figure"))) if spec else "",
        }
        try:
            if not names:
                raise NotRun(f"no experiment configured for {cid}")
            unknown = [n for n in names if n not in experiments]
            if unknown:
                raise NotRun(f"experiment(s) {unknown} not in the config")
            ids = {r for n in names for r in experiments[n]}
            runs = runs_all[runs_all["run_id"].isin(ids)] if len(runs_all) else runs_all
            if runs.empty:
                raise NotRun(f"no runs of {', '.join(names)} in runs.tsv")
            data = ClaimData(runs, tables, spec, np.random.default_rng([seed, number]), n_boot, alpha)
            out = CLAIM_FUNCTIONS[cid](data)
        except NotRun as err:
            out = Outcome("not run", str(err))
        except NotTestable as err:
            out = Outcome(
                "not testable here",
                f"the claim's precondition fails in its own runs: {err}",
                len(runs),
                precondition=str(err),
            )
        row.update(
            n_runs=out.n_runs,
            statistic=out.statistic,
            effect=out.effect,
            ci_low=out.ci_low,
            ci_high=out.ci_high,
            p_value=out.p_value,
            verdict=out.verdict,
            precondition=out.precondition,
            **{
                k: out.control.get(k, "" if k in ("control", "control_verdict") else math.nan)
                for k in CONTROL_KEYS
            },
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _fmt(v) -> str:
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3g}"


def _text(v) -> str:
    """A text cell; missing (None/NaN, as read back from a TSV) is empty."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _with_ci(effect, low, high) -> str:
    text = _fmt(effect)
    return f"{text} [{_fmt(low)}, {_fmt(high)}]" if text and _fmt(low) else text


def render_markdown(df: pd.DataFrame) -> str:
    """The claim table as Markdown: verdict, effect [CI], p, runs, where to look, and how it was computed."""
    header = (
        "| Claim | | Verdict | Effect [CI] | p | Runs | Precondition (measured) | Control | Experiment | "
        "Figure | Statistic |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        effect = _with_ci(r.effect, r.ci_low, r.ci_high)
        control = _text(r.control_verdict)
        if control:
            ci = _with_ci(r.control_effect, r.control_ci_low, r.control_ci_high)
            control = f"{_text(r.control)}: **{control}**, {ci}, p {_fmt(r.control_p_value)}"
        cells = [
            r.claim_id,
            r.claim,
            f"**{r.verdict}**",
            effect,
            _fmt(r.p_value),
            str(int(r.n_runs)),
            r.precondition,
            control,
            r.experiment,
            r.figure,
            r.statistic,
        ]
        lines.append("| " + " | ".join(_text(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The aggregate tables in ``folder``; runs.tsv is required, the others may be absent (empty)."""
    if not folder.is_dir():
        raise ValueError(f"--tables: {folder} is not a directory")
    if not (folder / "runs.tsv").is_file():
        raise ValueError(f"--tables: {folder / 'runs.tsv'} not found")
    tables = {}
    for name in TABLES:
        path = folder / f"{name}.tsv"
        try:
            tables[name] = pd.read_csv(path, sep="\t") if path.is_file() else pd.DataFrame(columns=["run_id"])
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame(columns=["run_id"])
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ValueError(f"--tables: cannot read {path}: {err}") from None
    return tables


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rnngeom.claims",
        description="Evaluate the paper's claims C1..C11 from the aggregate tables",
    )
    ap.add_argument("--tables", required=True, help="folder with runs.tsv, metrics.tsv, checkpoints.tsv, ...")
    ap.add_argument("--experiments", required=True, help="JSON {experiment: [run_id, ...]} or @file")
    ap.add_argument("--claims", required=True, help="JSON {claim id: {experiment, figure}} or @file")
    ap.add_argument("--out", required=True, help="claim table (TSV)")
    ap.add_argument("--markdown", help="the same table as Markdown")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        if a.n_boot < 1 or not 0 < a.alpha < 1:
            raise ValueError("--n-boot must be ≥ 1 and --alpha in (0, 1)")
        tables = read_tables(Path(a.tables))
        experiments = json_arg(a.experiments, "--experiments")
        claims = json_arg(a.claims, "--claims")
        table = evaluate_claims(tables, experiments, claims, n_boot=a.n_boot, alpha=a.alpha, seed=a.seed)
    except ValueError as err:
        print(f"rnngeom.claims: error: {err}", file=sys.stderr)
        return 2
    write_tsv_atomic(a.out, table)
    if a.markdown:
        with atomic_path(a.markdown) as tmp:
            tmp.write_text(render_markdown(table))
    counts = table["verdict"].value_counts()
    print("claims: " + ", ".join(f"{v} {int(counts.get(v, 0))}" for v in VERDICTS), file=sys.stderr)
    return 0
