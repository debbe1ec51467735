"""Phase-space analysis: fixed/slow points (generic and exact PLRNN), loss-drop and GR-event detection.

The per-run pipeline stage is ``python -m rnngeom.analysis.run_analysis`` (not imported here, so that
``-m`` runs it cleanly). Nothing is re-exported here either: importing one submodule (e.g. loss_drop for
the aggregation) must not import torch or the other submodules, so a job depends only on the files it uses.
"""
