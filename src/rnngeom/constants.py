"""Values shared by the aggregate step, the claims and the figures (one home each; importable without torch).

EXPECTED_STABLE  stable fixed points of a task's learned solution, where the task fixes it (the 3-bit
                 flip-flop stores 2^3 = 8 memories). aggregate.py writes ``time_to_attractors`` against it;
                 claim C4 and the attractor-count figure read it.
RUN_KEYS         what identifies a training run (its run_id is formatted from them by rnngeom.config.Run).
TABLES           the tidy tables results/tables/<name>.tsv that aggregate.py writes and the claims read.
GAIN_THRESHOLD   gain above which the initial leaky / rank-one RNN is strongly connected (chaotic): claims
                 C5, C9 and the dotted line of the gain-sweep figure.
"""

from __future__ import annotations

RUN_KEYS = ("task", "arch", "learning_rule", "lambda_tcr", "gain", "seed")
TABLES = ("runs", "metrics", "checkpoints", "fixed_points", "events", "kappa_flow")
EXPECTED_STABLE = {"flipflop": 8}
GAIN_THRESHOLD = 1.0


def final_checkpoints(checkpoints):
    """The last checkpoint row of every run (highest iteration), indexed by run_id."""
    last = checkpoints.sort_values(["run_id", "iteration"], kind="stable").groupby("run_id").tail(1)
    return last.set_index("run_id")
