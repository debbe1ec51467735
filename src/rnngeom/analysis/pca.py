"""A minimal PCA (numpy SVD) for the run's fixed phase-space frame.

The frame is fitted once per run, on the final model's trajectories, and every checkpoint's trajectories and
fixed points are projected into it, so that positions are comparable across training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PCA:
    mean: np.ndarray  # [S]
    components: np.ndarray  # [n_components, S], orthonormal rows (zero rows pad a state with fewer dims)
    explained_variance: np.ndarray  # [n_components]
    total_variance: float  # total variance of the fitted data (all dims)

    @classmethod
    def fit(cls, X: np.ndarray, n_components: int = 3) -> PCA:
        X = np.asarray(X, dtype=np.float64).reshape(-1, np.shape(X)[-1])
        X = X[np.isfinite(X).all(axis=1)]  # a diverged trajectory must not poison the frame
        if len(X) == 0:
            raise ValueError("PCA.fit: no finite states to fit")
        mean = X.mean(axis=0)
        Xc = X - mean
        _, sing, Vt = np.linalg.svd(Xc, full_matrices=False)
        var = sing**2 / max(len(X) - 1, 1)
        k = min(n_components, Vt.shape[0])
        comps = Vt[:k].copy()
        # SVD signs are arbitrary: fix them (largest-|entry| positive) so the frame is reproducible.
        signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
        comps *= np.where(signs == 0, 1.0, signs)[:, None]
        ev = var[:k].copy()
        if k < n_components:  # fewer state dims than requested PCs: pad so tables keep pc1..pcN columns
            comps = np.vstack([comps, np.zeros((n_components - k, X.shape[1]))])
            ev = np.concatenate([ev, np.zeros(n_components - k)])
        return cls(mean=mean, components=comps, explained_variance=ev, total_variance=float(var.sum()))

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return (X - self.mean) @ self.components.T

    @property
    def scale(self) -> float:
        """RMS distance of the fitted data from its mean inside the PC frame (the unit of relocation)."""
        return float(np.sqrt(max(self.explained_variance.sum(), 1e-24)))

    def to_dict(self) -> dict:
        return {
            "explained_variance": self.explained_variance.tolist(),
            "explained_variance_ratio": (self.explained_variance / max(self.total_variance, 1e-24)).tolist(),
            "scale": self.scale,
        }
