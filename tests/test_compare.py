"""rnngeom.compare: a reproduction's claim table against the shipped reference (verdicts must agree)."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import ROOT

from rnngeom.claims import CLAIM_IDS, COLUMNS, VERDICTS
from rnngeom.compare import REFERENCE, compare_claims, main, read_claims


def test_the_shipped_reference_is_a_complete_claim_table():
    assert REFERENCE == ROOT / "docs/reference/claims.tsv"
    table = pd.read_csv(REFERENCE, sep="\t")
    assert list(table.columns) == COLUMNS and list(table["claim_id"]) == CLAIM_IDS
    assert set(table["verdict"]) <= set(VERDICTS)


def test_the_reference_agrees_with_itself_and_a_changed_verdict_is_caught(tmp_path, capsys):
    assert main([str(REFERENCE), str(REFERENCE)]) == 0
    assert "verdicts: 11 of 11 agree" in capsys.readouterr().out
    changed = pd.read_csv(REFERENCE, sep="\t")
    flip = {"supported": "inconclusive"}
    row = changed.index[0]
    changed.loc[row, "verdict"] = flip.get(changed.loc[row, "verdict"], "supported")
    results = tmp_path / "results"
    results.mkdir()
    changed.to_csv(results / "claims.tsv", sep="\t", index=False)
    assert main([str(results)]) == 1  # the default reference
    out = capsys.readouterr().out
    assert "DIFFERS" in out and "verdicts: 10 of 11 agree" in out


def test_ci_overlap_is_reported_per_claim(tmp_path):
    ref = pd.DataFrame(
        {
            "claim_id": ["C1", "C2"],
            "verdict": ["supported"] * 2,
            "effect": [0.8, 0.7],
            "ci_low": [0.6, 0.6],
            "ci_high": [0.9, 0.8],
        }
    )
    ours = ref.assign(effect=[0.85, 0.95], ci_low=[0.7, 0.9], ci_high=[0.95, 0.99])
    rows = compare_claims(ours.set_index("claim_id"), ref.set_index("claim_id"))
    assert [r.agrees for r in rows] == [True, True]
    assert [r.ci_overlap for r in rows] == [True, False]


def test_bad_input_is_named(tmp_path, capsys):
    assert main([str(tmp_path / "nothing")]) == 2
    assert "no claim table there" in capsys.readouterr().err
    bad = tmp_path / "claims.tsv"
    bad.write_text("a\tb\n1\t2\n")
    assert main([str(bad)]) == 2
    assert "columns missing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a claim table"):
        read_claims(bad)


def test_the_readme_quotes_the_reference_verdicts():
    """The README's verdict table is the shipped reference in words: each claim's row names its verdict, in
    bold, as docs/reference/claims.tsv has it."""
    import re

    readme = (ROOT / "README.md").read_text()
    table = pd.read_csv(REFERENCE, sep="\t")
    for claim_id, verdict in zip(table["claim_id"], table["verdict"]):
        row = re.search(rf"^\| {claim_id} [^|]*\| \*\*([^*]+)\*\*", readme, flags=re.M)
        assert row is not None, f"README has no verdict row for {claim_id}"
        assert row.group(1) == verdict, (claim_id, row.group(1), verdict)
