"""Figures: each module draws one figure from the tidy tables in results/tables/ (never from raw runs)."""
