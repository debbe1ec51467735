"""Fixed and slow points of any RecurrentModel, found numerically.

Following Sussillo & Barak (2013) and Golub & Sussillo (2018, FixedPointFinder): under a constant input s
(zeros by default) minimise the speed

    q(x) = ½ ‖F(x, s) − x‖²

from many starting states at once. Zeros of q are fixed points; local minima with small non-zero q are slow
points. The recipe here:

1. Adam (float32) on the whole batch of states: every start, and every checkpoint when several models are
   given, in one tensor (the models are stacked with torch.func and evaluated with vmap). Adam is elementwise,
   so the starts do not interact; the learning rate decays geometrically; stop when every start has converged
   (q < tol_q) or stalled.
2. Candidates: starts within ``cluster_tol`` of a better one are dropped, at most ``max_candidates`` per model
   go on. Each is polished by Levenberg–Marquardt (damped Gauss–Newton on q, float64): near a fixed point
   with an eigenvalue close to 1 the q landscape is very flat and Adam crawls; LM converges in a few steps
   and, accepting only steps that lower q, settles at a local minimum of q near a slow point.
3. Final deduplication (``dedup_tol``); keep fixed points (q < tol_q) and slow points (tol_q ≤ q < slow_q at
   a local minimum of q); classify each by the eigenvalues of the Jacobian ∂F/∂x (discrete time): "stable"
   (all |λ| < 1), "unstable" (all |λ| > 1), "saddle" (otherwise), or "slow".
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.spatial.distance import cdist
from torch import nn
from torch.func import functional_call, jacrev, stack_module_state, vmap

from rnngeom.optim import adam_update

# Order used for sorting points and for per-class counts.
KINDS = ("stable", "saddle", "unstable", "slow")


@dataclass
class FixedPointSet:
    """The fixed/slow points of one model under one constant input."""

    positions: np.ndarray  # [K, S] float64, in the model's flat state space
    q: np.ndarray  # [K] speed ½‖F(x)−x‖² at each point
    eigvals: np.ndarray  # [K, S] complex128, eigenvalues of ∂F/∂x, sorted by decreasing modulus
    kind: np.ndarray  # [K] one of KINDS

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.q = np.asarray(self.q, dtype=np.float64).reshape(-1)
        self.eigvals = np.asarray(self.eigvals, dtype=np.complex128)
        self.kind = np.asarray(self.kind, dtype=object).reshape(-1)
        K = len(self.q)
        if self.positions.shape[0] != K or self.eigvals.shape[0] != K or len(self.kind) != K:
            raise ValueError(
                f"FixedPointSet fields disagree on the number of points: positions {self.positions.shape}, "
                f"q {self.q.shape}, eigvals {self.eigvals.shape}, kind {self.kind.shape}"
            )

    @classmethod
    def empty(cls, state_size: int) -> FixedPointSet:
        return cls(
            np.zeros((0, state_size)), np.zeros(0), np.zeros((0, state_size), complex), np.array([], object)
        )

    def __len__(self) -> int:
        return len(self.q)

    @property
    def max_abs_eig(self) -> np.ndarray:
        return (
            np.abs(self.eigvals).max(axis=1) if len(self) and self.eigvals.shape[1] else np.zeros(len(self))
        )

    @property
    def n_unstable_modes(self) -> np.ndarray:
        """Number of eigenvalues with |λ| > 1 (the saddle's index)."""
        return (np.abs(self.eigvals) > 1.0).sum(axis=1) if len(self) else np.zeros(0, dtype=int)

    def counts(self) -> dict[str, int]:
        return {k: int((self.kind == k).sum()) for k in KINDS}

    def to_frame(self, pca=None) -> pd.DataFrame:
        """One row per point: point_id, [pc1..pcN if a PCA frame is given], q, max_abs_eig, n_unstable_modes,
        kind."""
        df = pd.DataFrame({"point_id": np.arange(len(self), dtype=int)})
        if pca is not None:
            pcs = pca.transform(self.positions) if len(self) else np.zeros((0, pca.components.shape[0]))
            for j in range(pcs.shape[1]):
                df[f"pc{j + 1}"] = pcs[:, j]
        df["q"] = self.q
        df["max_abs_eig"] = self.max_abs_eig
        df["n_unstable_modes"] = self.n_unstable_modes.astype(int)
        df["kind"] = pd.Series(self.kind, dtype=object)
        return df


# ----------------------------------------------------------------------------------------------------------
# helpers shared with the exact PLRNN solver


def stability_kind(eigvals: np.ndarray) -> np.ndarray:
    """Discrete-time stability from Jacobian eigenvalues [K, S] -> ["stable" | "saddle" | "unstable"] * K."""
    mod = np.abs(np.asarray(eigvals))
    if mod.shape[0] == 0:
        return np.array([], dtype=object)
    stable = mod.max(axis=1) < 1.0
    unstable = mod.min(axis=1) > 1.0
    return np.where(stable, "stable", np.where(unstable, "unstable", "saddle")).astype(object)


def classify(q: np.ndarray, eigvals: np.ndarray, tol_q: float) -> np.ndarray:
    """Kind of each point: its stability class if q < tol_q, else "slow"."""
    kinds = stability_kind(eigvals)
    return np.where(np.asarray(q) < tol_q, kinds, "slow").astype(object)


def deduplicate(positions: np.ndarray, q: np.ndarray, tol: float) -> np.ndarray:
    """Indices of a subset with pairwise distances > tol: greedy in order of increasing q (best point
    wins)."""
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) == 0:
        return np.zeros(0, dtype=int)
    order = np.argsort(q, kind="stable")
    d = cdist(positions, positions)
    kept: list[int] = []
    for i in order:
        if not kept or d[i, kept].min() > tol:
            kept.append(int(i))
    return np.array(kept, dtype=int)


def sorted_set(positions, q, eigvals, kind) -> FixedPointSet:
    """Build a FixedPointSet in a canonical order (kind as in KINDS, then coordinates), for reproducible
    ids."""
    positions = np.asarray(positions, dtype=np.float64)
    eigvals = np.asarray(eigvals)
    if len(eigvals):  # eigenvalues by decreasing modulus (ties broken by angle) so columns are comparable
        idx = np.lexsort((-np.angle(eigvals), -np.abs(eigvals)), axis=-1)
        eigvals = np.take_along_axis(eigvals, idx, axis=-1)
    rank = np.array([KINDS.index(k) for k in kind], dtype=int)
    rounded = np.round(positions, 6) + 0.0  # round (and turn -0.0 into 0.0) so float noise cannot reorder
    keys = [rounded[:, j] for j in reversed(range(positions.shape[1]))] + [rank]
    order = np.lexsort(keys) if len(rank) else np.zeros(0, dtype=int)
    return FixedPointSet(
        positions[order], np.asarray(q)[order], eigvals[order], np.asarray(kind, object)[order]
    )


def sample_starts(states, n: int, noise_std: float = 0.0, seed: int = 0) -> np.ndarray:
    """Draw n starting states from the finite trajectory states [..., S] (without replacement when there are
    enough), plus isotropic Gaussian noise of std ``noise_std`` (state units). Returns float64 [n, S]."""
    X = np.asarray(states.detach().cpu() if torch.is_tensor(states) else states, dtype=np.float64)
    X = X.reshape(-1, X.shape[-1])
    X = X[np.isfinite(X).all(axis=1)]
    if len(X) == 0:
        raise ValueError("sample_starts: no finite states to sample from")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(X), size=n, replace=n > len(X))
    return X[idx] + noise_std * rng.standard_normal((n, X.shape[1]))


# ----------------------------------------------------------------------------------------------------------
# the model's map F, for a stack of models sharing one architecture


class _StepAsForward(nn.Module):
    """Wrap a RecurrentModel so that forward(x, s) = step(x, s) (functional_call calls forward)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, s):
        return self.model.step(x, s)


class StackedMap:
    """F(x, s) for C models with identical architecture, evaluated together.

    Parameters of the C models are stacked along a new leading axis (torch.func.stack_module_state) and the
    step is vmapped over it, so one call advances states [C, N, S] of all models: the whole analysis of a
    chunk of checkpoints is one batched computation.
    """

    def __init__(self, models: Sequence[nn.Module], *, dtype=torch.float64, device=None):
        wrapped = [_StepAsForward(copy.deepcopy(m)).to(dtype=dtype, device=device).eval() for m in models]
        params, buffers = stack_module_state(wrapped)
        self.params = {k: v.detach() for k, v in params.items()}
        self.buffers = {k: v.detach() for k, v in buffers.items()}
        self.base = copy.deepcopy(wrapped[0]).to("meta")
        self.n_models = len(models)
        self.dtype, self.device = dtype, device

    def _f(self, p, b, x, s):
        return functional_call(self.base, (p, b), (x, s))

    def __call__(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x [C, N, S], s [n_in] (constant input) -> F(x) [C, N, S]."""
        s_b = s.expand(x.shape[1], -1)
        return vmap(self._f, in_dims=(0, 0, 0, None))(self.params, self.buffers, x, s_b)

    def jacobian(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x [C, K, S] -> ∂F/∂x at every point, [C, K, S, S]."""

        def f_one(p, b, x1):
            return self._f(p, b, x1[None], s[None])[0]

        jac_one = jacrev(f_one, argnums=2)
        per_model = vmap(jac_one, in_dims=(None, None, 0))
        return vmap(per_model, in_dims=(0, 0, 0))(self.params, self.buffers, x)


def _speed(F: StackedMap, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((F(x, s) - x) ** 2).sum(-1)


def _adam_descent(F, x0, s, *, n_iters, lr, lr_final, tol_q, check_every, stall_rtol):
    """Adam on q for all states [C, N, S] at once (elementwise, so the starts do not interact). The learning
    rate decays geometrically from lr to lr*lr_final over n_iters; stop early once every start has converged
    (q < tol_q) or improved by less than the fraction stall_rtol since the previous check."""
    x = x0.clone().requires_grad_(True)
    exp_avg, exp_avg_sq = torch.zeros_like(x), torch.zeros_like(x)  # Adam's moments (rnngeom.optim)
    decay = lr_final ** (1.0 / max(n_iters, 1))
    q_last_check = None
    n_done = 0
    for it in range(n_iters):
        x.grad = None
        q = _speed(F, x, s)
        q.sum().backward()
        adam_update(x, x.grad, exp_avg, exp_avg_sq, step=it + 1, lr=lr)
        lr *= decay
        n_done = it + 1
        if n_done % check_every == 0:
            qd = q.detach()
            done = (qd < tol_q) | ~torch.isfinite(qd)  # a diverged start has nothing left to find
            if q_last_check is not None:
                done |= qd > (1.0 - stall_rtol) * q_last_check
            if bool(done.all()):
                break
            q_last_check = qd
    return x.detach(), n_done


def _levenberg_marquardt(F: StackedMap, x: torch.Tensor, s: torch.Tensor, steps: int, mu0: float = 1e-3):
    """Damped Gauss–Newton on q for points x [C, K, S]; each point keeps its own damping and only accepts
    steps that lower its q, so it converges to a fixed point or settles at a local minimum of q (slow point).
    Returns positions, q, the relative gradient ‖∇q‖/‖r‖ = ‖J_rᵀ r̂‖ (dimensionless: J_r = ∂F/∂x − I; 0 at a
    minimum of q) and the Jacobians ∂F/∂x."""
    S = x.shape[-1]
    eye = torch.eye(S, dtype=x.dtype, device=x.device)
    mu = torch.full(x.shape[:-1], mu0, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        r = F(x, s) - x
        q = 0.5 * (r**2).sum(-1)
        for _ in range(steps):
            if bool(((q < 1e-26) | (mu > 1e10)).all()):
                break
            Jr = F.jacobian(x, s) - eye  # Jacobian of the residual r(x) = F(x) - x
            JtJ = Jr.transpose(-1, -2) @ Jr
            g = (Jr.transpose(-1, -2) @ r[..., None])[..., 0]
            delta, info = torch.linalg.solve_ex(JtJ + mu[..., None, None] * eye, -g)
            delta = torch.where(
                (info == 0)[..., None] & torch.isfinite(delta), delta, torch.zeros_like(delta)
            )
            x_new = x + delta
            r_new = F(x_new, s) - x_new
            q_new = 0.5 * (r_new**2).sum(-1)
            accept = torch.isfinite(q_new) & (q_new < q)
            x = torch.where(accept[..., None], x_new, x)
            r = torch.where(accept[..., None], r_new, r)
            q = torch.where(accept, q_new, q)
            mu = torch.where(accept, mu * 0.3, mu * 10.0)
        jac = F.jacobian(x, s)
        Jr = jac - eye
        grad = (Jr.transpose(-1, -2) @ r[..., None])[..., 0]
        r_norm = torch.linalg.vector_norm(r, dim=-1)
        rel_grad = torch.where(
            r_norm > 0, torch.linalg.vector_norm(grad, dim=-1) / r_norm, torch.zeros_like(q)
        )
    return x, q, rel_grad, jac


def _as_input(model, input, dtype, device):
    if input is None:
        return torch.zeros(model.n_in, dtype=dtype, device=device)
    s = torch.as_tensor(np.asarray(input, dtype=np.float64), dtype=dtype, device=device).reshape(-1)
    if s.numel() != model.n_in:
        raise ValueError(f"input has {s.numel()} entries, the model has n_in={model.n_in}")
    return s


def find_fixed_points_batched(
    models: Sequence[nn.Module],
    starts,
    *,
    input=None,
    n_iters: int = 400,
    lr: float = 0.05,
    lr_final: float = 0.01,
    tol_q: float = 1e-10,
    slow_q: float = 1e-4,
    slow_grad_tol: float = 1e-3,
    dedup_tol: float = 1e-2,
    cluster_tol: float = 0.1,
    max_candidates: int = 64,
    check_every: int = 50,
    stall_rtol: float = 1e-3,
    lm_steps: int = 20,
    device=None,
) -> list[FixedPointSet]:
    """Fixed/slow points of C models with the same architecture, all optimised in one batch.

    models:     C RecurrentModels sharing one spec (e.g. a chunk of checkpoints of one run).
    starts:     [C, N, S] (or [N, S], shared by all models) initial states, e.g. from ``sample_starts``.
    input:      constant input s [n_in]; None means zeros.
    n_iters, lr, lr_final: Adam iterations (max) and learning rate, decaying geometrically to lr*lr_final.
    tol_q:      q below which a point is a fixed point.
    slow_q:     a point that is not fixed is kept as a *slow point* if q < slow_q and it is a local minimum
                of q: ‖∇q‖/‖r‖ ≤ slow_grad_tol, with r = F(x) − x (dimensionless; a start still crawling
                downhill is not a slow point).
    dedup_tol:  final points closer than this (Euclidean, state units) are one point.
    cluster_tol, max_candidates: after Adam, starts within cluster_tol of a better one are dropped and at most
                max_candidates per model (lowest q first) go on to polishing; this bounds the cost of the
                Jacobians (one S x S matrix per candidate per step).
    check_every, stall_rtol: Adam stops early when every start has q < tol_q or improved by less than the
                fraction stall_rtol over the last check_every iterations.
    lm_steps:   Levenberg–Marquardt (float64) polishing steps per candidate (0 disables).
    device:     torch device for the computation (None = CPU).
    Returns one FixedPointSet per model, points in canonical order (see ``sorted_set``).
    """
    models = list(models)
    C = len(models)
    x0 = torch.as_tensor(np.asarray(starts.detach().cpu() if torch.is_tensor(starts) else starts, np.float64))
    if x0.dim() == 2:
        x0 = x0.expand(C, -1, -1).contiguous()
    if x0.dim() != 3 or x0.shape[0] != C:
        raise ValueError(f"starts must be [C, N, S] or [N, S] with C={C} models, got {tuple(x0.shape)}")
    S = x0.shape[-1]
    if S != models[0].state_size:
        raise ValueError(f"starts have {S} dims but the model's state_size is {models[0].state_size}")

    # 1. Adam in float32 (it only has to get close; float32 is about twice as fast on CPU).
    F32 = StackedMap(models, dtype=torch.float32, device=device)
    x, _ = _adam_descent(
        F32,
        x0.to(device=device, dtype=torch.float32),
        _as_input(models[0], input, torch.float32, device),
        n_iters=n_iters,
        lr=lr,
        lr_final=lr_final,
        tol_q=tol_q,
        check_every=check_every,
        stall_rtol=stall_rtol,
    )

    # 2. Candidates per model: coarse clustering, best max_candidates; pad to a common count so polishing
    #    all models stays one batched computation (padding repeats a candidate, removed again below).
    F64 = StackedMap(models, dtype=torch.float64, device=device)
    s64 = _as_input(models[0], input, torch.float64, device)
    x = x.to(torch.float64)
    with torch.no_grad():
        q = _speed(F64, x, s64)
    xs_np, qs_np = x.cpu().numpy(), q.cpu().numpy()
    keep = []
    for c in range(C):
        ok = np.flatnonzero(np.isfinite(qs_np[c]) & np.isfinite(xs_np[c]).all(-1))
        ok = ok[deduplicate(xs_np[c, ok], qs_np[c, ok], cluster_tol)]
        keep.append(ok[np.argsort(qs_np[c, ok], kind="stable")][:max_candidates])
    K = max(1, max(len(k) for k in keep))
    pad_idx = np.stack([np.resize(k, K) if len(k) else np.zeros(K, int) for k in keep])
    cand = torch.stack([x[c, torch.as_tensor(pad_idx[c])] for c in range(C)])

    # 3. Polish (float64), then dedup, threshold and classify.
    cand, cand_q, rel_grad, jac = _levenberg_marquardt(F64, cand, s64, lm_steps)
    results = []
    for c in range(C):
        n = len(keep[c])
        pos, qq, rg = cand[c, :n].cpu().numpy(), cand_q[c, :n].cpu().numpy(), rel_grad[c, :n].cpu().numpy()
        good = np.isfinite(qq) & ((qq < tol_q) | ((qq < slow_q) & (rg <= slow_grad_tol)))
        ok = np.flatnonzero(good)
        ok = ok[deduplicate(pos[ok], qq[ok], dedup_tol)]
        if len(ok) == 0:
            results.append(FixedPointSet.empty(S))
            continue
        eig = torch.linalg.eigvals(jac[c, torch.as_tensor(ok)]).cpu().numpy()
        results.append(sorted_set(pos[ok], qq[ok], eig, classify(qq[ok], eig, tol_q)))
    return results


def find_fixed_points(model: nn.Module, starts, *, input=None, **settings) -> FixedPointSet:
    """Fixed/slow points of one model from starts [N, S]; settings and defaults as in
    ``find_fixed_points_batched``."""
    starts = np.asarray(starts.detach().cpu() if torch.is_tensor(starts) else starts, dtype=np.float64)
    return find_fixed_points_batched([model], starts[None], input=input, **settings)[0]


def jacobian_at(model: nn.Module, positions, input=None) -> np.ndarray:
    """∂F/∂x of one model at points [K, S] (float64), [K, S, S]."""
    F = StackedMap([model])
    s = _as_input(model, input, torch.float64, None)
    x = torch.as_tensor(np.asarray(positions, dtype=np.float64))[None]
    with torch.no_grad():
        return F.jacobian(x, s)[0].numpy()


def speed_at(model: nn.Module, positions, input=None) -> np.ndarray:
    """q(x) = ½‖F(x)−x‖² of one model at points [K, S] (float64)."""
    F = StackedMap([model])
    s = _as_input(model, input, torch.float64, None)
    x = torch.as_tensor(np.asarray(positions, dtype=np.float64))[None]
    with torch.no_grad():
        return _speed(F, x, s)[0].numpy()
