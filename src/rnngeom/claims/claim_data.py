"""What a claim's function receives (``ClaimData``): the tables restricted to the claim's runs, the claim's
config entry, and the settings of the evaluation (its own random generator, bootstrap size, alpha).

The registry of claim functions (``registry``) imports every claim module, and every claim module takes a
``ClaimData``: so it lives here, apart from both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class ClaimData:
    """The tables restricted to one claim's runs, plus the settings of the evaluation."""

    runs: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    spec: dict
    rng: np.random.Generator
    n_boot: int
    alpha: float

    def table(self, name: str) -> pd.DataFrame:
        df = self.tables.get(name)
        if df is None or df.empty or "run_id" not in df.columns:
            return pd.DataFrame(columns=["run_id"])
        return df[df["run_id"].isin(set(self.runs["run_id"]))]
