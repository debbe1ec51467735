"""Claims are decided on confirmation seeds that played no part in choosing the experiments: the shipped
configs' experiment seeds are disjoint from the exploration seeds of the regime scans and of the
exploration config (docs/claims.md, "Exploration and confirmation seeds")."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT

from rnngeom.config import read_config


def experiment_seeds(path) -> set[int]:
    """The experiment seeds of a config as the pipeline sees it (an overlay merged onto config.yaml)."""
    config = read_config(ROOT / path)
    return {int(s) for exp in config["experiments"].values() for s in exp["seeds"]}


@pytest.mark.parametrize(
    "confirmation, exploration",
    [
        ("config.yaml", ["config/scan.yaml", "config/explore.yaml"]),
        ("config/paper.yaml", ["config/scan.yaml", "config/explore.yaml"]),
    ],
)
def test_confirmation_seeds_are_not_exploration_seeds(confirmation, exploration):
    confirm = experiment_seeds(confirmation)
    explored = set()
    for path in exploration:
        data = yaml.safe_load((ROOT / path).read_text())
        explored |= {int(s) for s in data["seeds"]} if "seeds" in data else experiment_seeds(path)
    assert confirm and explored
    assert not confirm & explored, sorted(confirm & explored)


def test_the_exploration_overlay_leaves_no_confirmation_seed_in():
    """config/explore.yaml overlays config.yaml: every experiment of the merged config runs on exploration
    seeds only (an experiment it forgot would run on its confirmation seeds)."""
    assert not experiment_seeds("config/explore.yaml") & experiment_seeds("config.yaml")


def test_the_default_claims_have_the_power_the_issue_asks_for():
    """>= 12 seeds per arm for the paired comparisons, >= 10 for C6 and C11, >= 24 runs behind C1 and C2."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    experiments = config["experiments"]
    for name in ("tcr_speedup", "gain_sweep", "lambda_sweep", "lstm_tcr"):
        assert len(set(experiments[name]["seeds"])) >= 12, name
    for name in ("local_learning", "freeze_in"):
        assert len(set(experiments[name]["seeds"])) >= 10, name
