"""Exact fixed points of a PLRNN,  z' = diag(a) z + W relu(z) + h + c   (c = C s, the constant input drive).

Inside a linear region, labelled by the binary pattern d of active units (d_i = 1 iff z_i > 0), the map is
affine: z' = (diag(a) + W diag(d)) z + h + c, so its only candidate fixed point is

    z*(d) = (I − diag(a) − W diag(d))⁻¹ (h + c).

z*(d) is a true fixed point iff it lies in its own region (z*_i > 0 exactly where d_i = 1); otherwise it is
"virtual" and discarded. Its stability follows from the eigenvalues of the region's
Jacobian diag(a) + W diag(d).

For M ≤ exhaustive_max units all 2^M regions are solved (batched). For larger M we search regions like SCYFI
(Eisenmann et al., NeurIPS 2023): solve in region d, jump to the region the candidate actually lies in, repeat
until the pattern reproduces itself (a fixed point) or a chain gets too long; then restart from a new
pattern. Seeds come from the regions visited when the map is iterated from trajectory states (if given) and
random states: forward iteration reliably finds the stable points, which region jumps alone can miss. The
search is not guaranteed to be complete, but every point it returns is exact.
"""

from __future__ import annotations

import numpy as np
import torch

from rnngeom.analysis.fixed_points import FixedPointSet, classify, deduplicate, sorted_set


def _to64(v) -> torch.Tensor:
    return torch.as_tensor(np.asarray(v.detach().cpu() if torch.is_tensor(v) else v, dtype=np.float64))


def _solve_regions(a, W, b, patterns: torch.Tensor):
    """Candidate fixed points for a batch of patterns [P, M] (bool). Returns z [P, M], solvable [P]."""
    M = len(a)
    eye = torch.eye(M, dtype=torch.float64)
    A = eye - torch.diag(a) - W * patterns[:, None, :].to(torch.float64)  # W diag(d) scales columns
    z, info = torch.linalg.solve_ex(A, b.expand(len(patterns), M))
    return z, (info == 0) & torch.isfinite(z).all(-1)


def _self_consistent(z: torch.Tensor, patterns: torch.Tensor, tol: float) -> torch.Tensor:
    """z_i > 0 exactly where d_i = 1; a coordinate within tol of 0 is consistent with either label (the map is
    continuous, so the same point solves both neighbouring regions)."""
    agree = (z > 0) == patterns
    return (agree | (z.abs() <= tol)).all(-1)


def _relaxed_patterns(a, W, b, states: torch.Tensor, relax_steps: int) -> torch.Tensor:
    """Distinct sign patterns visited while iterating the map from ``states`` [P, M] for relax_steps steps.
    Forward iteration falls into the stable fixed points (which the region jumps alone can miss) and passes
    close to saddles, so these regions make good seeds."""
    seen = [states > 0]
    z = states
    for _ in range(relax_steps):
        z = a * z + torch.relu(z) @ W.T + b
        z = torch.where(torch.isfinite(z), z, torch.zeros_like(z)).clamp(
            -1e6, 1e6
        )  # diverging runs stay finite
        seen.append(z > 0)
    return torch.unique(torch.cat(seen), dim=0)


def plrnn_fixed_points(
    a,
    W,
    h,
    c=None,
    *,
    exhaustive_max: int = 12,
    chunk_size: int = 4096,
    start_states=None,
    n_random_states: int = 256,
    random_state_std: float = 1.0,
    relax_steps: int = 30,
    n_starts: int = 256,
    n_iters: int = 60,
    max_chain: int = 20,
    boundary_tol: float = 1e-12,
    dedup_tol: float = 1e-8,
    seed: int = 0,
) -> FixedPointSet:
    """All (M ≤ exhaustive_max) or the findable (larger M) fixed points of z' = diag(a) z + W relu(z) + h + c.

    a [M], W [M, M] (the zero-diagonal recurrent matrix), h [M], c [M] input drive (default 0).
    exhaustive_max: largest M solved exhaustively (2^M regions, chunk_size regions per batched solve).
    For larger M, a region search:
      seeds: the sign patterns visited when iterating the map for relax_steps steps from start_states
        ([P, M], e.g. trajectory states) and from n_random_states Gaussian states of std random_state_std;
        every seed region is solved directly.
      chains (SCYFI): n_starts chains advanced together for n_iters steps, each jumping to the region its
        candidate lies in; a chain restarts (from the jump pattern of an unresolved seed, then from a random
        pattern) when it finds a fixed point, meets a singular region, or exceeds max_chain steps.
    boundary_tol: |z_i| ≤ boundary_tol counts as consistent with either label.
    dedup_tol: points closer than this are one point (a point on a region boundary is found twice).
    seed: seed for the random states and patterns.
    Returns a FixedPointSet (q ≈ 0, eigenvalues of the region Jacobian; kind never "slow").
    """
    a, W, h = _to64(a).reshape(-1), _to64(W), _to64(h).reshape(-1)
    M = len(a)
    b = h + (_to64(c).reshape(-1) if c is not None else torch.zeros(M, dtype=torch.float64))
    found_z = []  # self-consistent solutions, one tensor per batch of regions

    def solve_and_record(patterns: torch.Tensor):
        """Solve each pattern's region, record the self-consistent ones; return z, solvable."""
        zs, oks = [], []
        for i in range(0, len(patterns), chunk_size):
            P = patterns[i : i + chunk_size]
            z, ok = _solve_regions(a, W, b, P)
            consistent = ok & _self_consistent(z, P, boundary_tol)
            found_z.append(z[consistent])
            zs.append(z)
            oks.append(ok & ~consistent)
        return torch.cat(zs), torch.cat(oks)

    if M <= exhaustive_max:
        idx = torch.arange(2**M)
        solve_and_record(((idx[:, None] >> torch.arange(M)) & 1).bool())
    else:
        gen = torch.Generator().manual_seed(int(seed))
        states = [torch.randn(n_random_states, M, generator=gen, dtype=torch.float64) * random_state_std]
        if start_states is not None:
            states.insert(0, _to64(start_states).reshape(-1, M))
        seeds = _relaxed_patterns(a, W, b, torch.cat(states), relax_steps)
        z, unresolved = solve_and_record(seeds)
        # Unresolved seeds continue as chains from the region their candidate lies in (seeded random order).
        queue = (z[unresolved] > 0)[torch.randperm(int(unresolved.sum()), generator=gen)]
        queue_pos = 0

        def new_patterns(n: int) -> torch.Tensor:
            nonlocal queue_pos
            take = queue[queue_pos : queue_pos + n]
            queue_pos += len(take)
            rand = torch.rand(n - len(take), M, generator=gen) < 0.5
            return torch.cat([take, rand])

        patterns = new_patterns(n_starts)
        chain_len = torch.zeros(n_starts, dtype=torch.long)
        for _ in range(n_iters):
            z, ok = _solve_regions(a, W, b, patterns)
            consistent = ok & _self_consistent(z, patterns, boundary_tol)
            found_z.append(z[consistent])
            chain_len += 1
            restart = consistent | ~ok | (chain_len >= max_chain)
            nxt = torch.where(ok[:, None], z > 0, patterns)  # jump to the region the candidate lies in
            if restart.any():
                nxt[restart] = new_patterns(int(restart.sum()))
                chain_len[restart] = 0
            patterns = nxt

    z = torch.cat(found_z).numpy() if found_z else np.zeros((0, M))
    if len(z) == 0:
        return FixedPointSet.empty(M)
    # The same point is often found many times (from many chains, or from every region that shares a
    # boundary it lies on: with h + c = 0 the origin solves all 2^M regions). Collapse exact repeats on a
    # grid of size dedup_tol first, then merge neighbours greedily.
    _, first = np.unique(np.round(z / dedup_tol), axis=0, return_index=True)  # float keys: no int overflow
    z = z[np.sort(first)]
    zt = torch.as_tensor(z)
    q = (0.5 * ((a * zt + torch.relu(zt) @ W.T + b - zt) ** 2).sum(-1)).numpy()
    keep = deduplicate(z, q, dedup_tol)
    z, q = z[keep], q[keep]
    # Region Jacobian diag(a) + W diag(d) with d = (z > 0), i.e. relu'(0) = 0 as in autograd, so that points
    # on a boundary get the same eigenvalues from this solver and from the generic finder.
    d = torch.as_tensor(z > 0, dtype=torch.float64)
    jac = torch.diag(a)[None] + W[None] * d[:, None, :]
    eig = torch.linalg.eigvals(jac).numpy()
    # Exact points have q ~ 1e-30; classify with an infinite tolerance so none is labelled "slow".
    return sorted_set(z, q, eig, classify(q, eig, tol_q=np.inf))


def plrnn_fixed_points_of(model, input=None, **settings) -> FixedPointSet:
    """Exact fixed points of a PLRNN model (anything with ``linear_pieces() -> (a, W, h, C)``) under the
    constant input s (zeros by default): the drive is c = C s."""
    a, W, h, C = model.linear_pieces()
    c = None if input is None else _to64(C) @ _to64(input).reshape(-1)
    return plrnn_fixed_points(a, W, h, c, **settings)
