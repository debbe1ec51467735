"""Compare a reproduction's claim table with the reference the project ships: did you reproduce it?

    python -m rnngeom.compare [RESULTS] [REFERENCE]

RESULTS is a results folder (its claims.tsv, and tables/runs.tsv when present) or a claims.tsv; default
``results``. REFERENCE is a claim table; default ``docs/reference/claims.tsv``, the table of the project's
own default run (the one home of the README's verdict table). Floating-point results differ across CPUs and
code paths, and training amplifies that, so the numbers of two runs of the same config differ in their
last digits or more; what must agree is the verdict. Per claim this prints both verdicts, both effects with
their CIs, and whether the CIs overlap. With a runs.tsv beside both tables, it also says how many runs the
two share and how many of those learned in both.

Exit status: 0 when every verdict agrees; 1 when one differs (the lines marked DIFFERS); 2 for bad input
(a missing or unreadable table, or one without the claim table's columns).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "claims.tsv"
NEEDED = ("claim_id", "verdict", "effect", "ci_low", "ci_high")


class CompareError(ValueError):
    """An input that cannot be compared; the message names the file and the problem."""


@dataclass
class ClaimComparison:
    claim_id: str
    ours: str
    reference: str
    effect: float
    ci: tuple[float, float]
    ref_effect: float
    ref_ci: tuple[float, float]

    @property
    def agrees(self) -> bool:
        return self.ours == self.reference

    @property
    def ci_overlap(self) -> bool | None:
        """Whether the two CIs overlap; None where either is missing (e.g. "not run")."""
        values = (*self.ci, *self.ref_ci)
        if any(v is None or not math.isfinite(v) for v in values):
            return None
        return self.ci[0] <= self.ref_ci[1] and self.ref_ci[0] <= self.ci[1]


def read_claims(path: Path) -> pd.DataFrame:
    """A claim table (claims.tsv), checked for the columns a comparison needs."""
    if path.is_dir():
        path = path / "claims.tsv"
    if not path.is_file():
        raise CompareError(f"{path}: no claim table there (run the pipeline first: make reproduce)")
    try:
        table = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise CompareError(f"{path}: not a readable TSV ({err})") from None
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise CompareError(f"{path}: not a claim table (columns missing: {missing})")
    return table.set_index("claim_id")


def compare_claims(ours: pd.DataFrame, reference: pd.DataFrame) -> list[ClaimComparison]:
    """One comparison per claim of the reference (a claim missing from ours counts as "missing")."""

    def num(row, key):
        v = row.get(key) if row is not None else None
        return float(v) if v is not None and pd.notna(v) else math.nan

    out = []
    for cid, ref in reference.iterrows():
        row = ours.loc[cid] if cid in ours.index else None
        out.append(
            ClaimComparison(
                claim_id=str(cid),
                ours="missing" if row is None else str(row["verdict"]),
                reference=str(ref["verdict"]),
                effect=num(row, "effect"),
                ci=(num(row, "ci_low"), num(row, "ci_high")),
                ref_effect=num(ref, "effect"),
                ref_ci=(num(ref, "ci_low"), num(ref, "ci_high")),
            )
        )
    return out


def compare_runs(ours: Path, reference: Path) -> str | None:
    """A line on the runs two runs.tsv share (same run ids) and how many learned in both; None if absent."""
    if not (ours.is_file() and reference.is_file()):
        return None
    a, b = (pd.read_csv(p, sep="\t").set_index("run_id") for p in (ours, reference))
    shared = a.index.intersection(b.index)
    learned = (a.loc[shared, "learned"].astype(str) == b.loc[shared, "learned"].astype(str)).sum()
    return (
        f"runs: {len(shared)} shared by both tables ({len(a)} here, {len(b)} in the reference); learned "
        f"or not alike in {int(learned)} of them"
    )


def _fmt(effect: float, ci: tuple[float, float]) -> str:
    if not math.isfinite(effect):
        return "—"
    if not all(math.isfinite(v) for v in ci):
        return f"{effect:.3g}"
    return f"{effect:.3g} [{ci[0]:.3g}, {ci[1]:.3g}]"


def report(rows: list[ClaimComparison]) -> str:
    lines = [f"{'claim':<6}{'here':<20}{'reference':<20}{'effect here':<28}{'effect (reference)':<28}CIs"]
    for r in rows:
        overlap = {True: "overlap", False: "DISJOINT", None: ""}[r.ci_overlap]
        mark = "" if r.agrees else "   <- verdict DIFFERS"
        lines.append(
            f"{r.claim_id:<6}{r.ours:<20}{r.reference:<20}{_fmt(r.effect, r.ci):<28}"
            f"{_fmt(r.ref_effect, r.ref_ci):<28}{overlap}{mark}"
        )
    same = sum(r.agrees for r in rows)
    lines.append(f"verdicts: {same} of {len(rows)} agree with the reference")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rnngeom.compare", description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default="results", help="results folder or claims.tsv")
    ap.add_argument("reference", nargs="?", default=str(REFERENCE), help="reference claims.tsv")
    a = ap.parse_args(argv)
    try:
        ours, reference = Path(a.results), Path(a.reference)
        rows = compare_claims(read_claims(ours), read_claims(reference))
    except CompareError as err:
        print(f"rnngeom.compare: error: {err}", file=sys.stderr)
        return 2
    print(f"claims of {ours} against {reference}:")
    print(report(rows))
    runs_here = (ours if ours.is_dir() else ours.parent) / "tables" / "runs.tsv"
    runs_ref = reference.parent / "runs.tsv"
    line = compare_runs(runs_here, runs_ref)
    if line:
        print(line)
    return 0 if all(r.agrees for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
