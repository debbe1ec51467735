"""Abrupt-learning detection from a training curve: plateau, drop time t_drop, drop sharpness; time-to-learn.

Method (all in log10-loss, "decades"):
1. Resample the curve on a uniform iteration grid (the logging interval), smooth it with a running median
   (robust to spikes) followed by a running mean, both ``smooth_window`` grid points wide.
2. Slope = derivative of the smoothed log-loss. Falling segments are maximal runs where the slope is below
   ``segment_slope_frac`` x the steepest slope of the run (a fraction of the steepest fall, so the criterion
   does not depend on units or run length).
3. The drop is the segment that loses the most decades (so a short initial "search phase" fall does not win
   over the main drop just by being steep); t_drop is its steepest point. Its 10%–90% span of the fall gives
   drop_start, drop_end and the sharpness (mean decades lost per 100 iterations over that span).
4. has_drop requires a fall of at least ``min_drop_decades`` and a 10–90% width of at most ``max_width_frac``
   of the whole curve; otherwise the result says why (``reason``) and the drop times are None.
5. The plateau is the stretch before the drop's segment where the smoothed log-loss stays no more than
   ``plateau_tol_decades`` above its level just before the onset (median over one smoothing window).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d


@dataclass
class LossDrop:
    has_drop: bool
    reason: str  # "drop" or why there is none
    t_drop: float | None  # iteration of steepest fall of the smoothed log-loss within the drop
    drop_start: float | None  # 10% of the drop's fall reached
    drop_end: float | None  # 90% of the drop's fall reached
    drop_width: float | None  # drop_end - drop_start (iterations)
    drop_decades: float  # decades of loss lost across the candidate drop segment (0 if none)
    drop_sharpness: float | None  # mean decades lost per 100 iterations between drop_start and drop_end
    peak_rate: float | None  # decades lost per 100 iterations at t_drop
    plateau_start: float | None
    plateau_length: float | None  # iterations from plateau_start to the onset of the drop's segment
    plateau_loss: float | None  # smoothed loss just before the drop's segment (median over one window)

    def to_dict(self) -> dict:
        return asdict(self)


def smooth_log_loss(iterations, loss, smooth_window: int = 11, floor: float = 1e-12):
    """Uniform grid and smoothed log10-loss on it: (grid [G], smoothed [G]); robust to NaN/inf entries."""
    it = np.asarray(iterations, dtype=np.float64)
    y = np.asarray(loss, dtype=np.float64)
    ok = np.isfinite(it) & np.isfinite(y)
    it, y = it[ok], np.log10(np.maximum(y[ok], floor))
    order = np.argsort(it, kind="stable")
    it, y = it[order], y[order]
    it, first = np.unique(it, return_index=True)
    y = y[first]
    if len(it) < 2:
        return it, y
    step = float(np.median(np.diff(it)))
    grid = it[0] + step * np.arange(int(round((it[-1] - it[0]) / step)) + 1)
    yg = np.interp(grid, it, y)
    w = max(1, int(smooth_window))
    ys = uniform_filter1d(median_filter(yg, size=w, mode="nearest"), size=w, mode="nearest")
    return grid, ys


def _crossing(grid, ys, i0, i1, level) -> float:
    """First iteration in [i0, i1] where ys falls to `level` (linear interpolation between grid points)."""
    for i in range(i0, i1 + 1):
        if ys[i] <= level:
            if i == i0:
                return float(grid[i])
            f = (ys[i - 1] - level) / max(ys[i - 1] - ys[i], 1e-300)
            return float(grid[i - 1] + f * (grid[i] - grid[i - 1]))
    return float(grid[i1])


def detect_loss_drop(
    iterations,
    loss,
    *,
    smooth_window: int = 11,
    segment_slope_frac: float = 0.1,
    min_drop_decades: float = 0.5,
    max_width_frac: float = 0.3,
    plateau_tol_decades: float = 0.1,
    ignore_before: float | None = None,
    floor: float = 1e-12,
) -> LossDrop:
    """Find the abrupt loss drop of a training curve (see the module docstring).

    smooth_window:       running median + running mean width, in logged points (odd is best).
    segment_slope_frac:  a falling segment is where the slope is below this fraction of the steepest slope.
    min_drop_decades:    smallest fall (log10 units, 0.5 = a factor 3.2) that counts as a drop.
    max_width_frac:      largest 10–90% width, as a fraction of the iterations spanned, that counts as abrupt.
    plateau_tol_decades: how far (log10) above the drop's onset the loss may be and still be on the plateau.
    ignore_before:       iterations before this are not searched for the drop (e.g. to skip a search phase).
    floor:               losses are clipped at this value before the log.
    """
    none = LossDrop(False, "", None, None, None, None, 0.0, None, None, None, None, None)
    grid, ys = smooth_log_loss(iterations, loss, smooth_window, floor)
    if len(grid) < max(5, 3 * smooth_window // 2):
        none.reason = f"too few points ({len(grid)})"
        return none
    slope = np.gradient(ys, grid)  # decades per iteration
    search = np.ones_like(slope, dtype=bool) if ignore_before is None else grid >= ignore_before
    if not search.any() or slope[search].min() >= 0:
        none.reason = "loss never falls"
        return none
    peak = slope[search].min()
    falling = search & (slope < segment_slope_frac * peak)

    # Maximal runs of `falling`; pick the one that loses the most decades.
    edges = np.flatnonzero(np.diff(np.concatenate([[0], falling.astype(int), [0]])))
    segments = list(zip(edges[::2], edges[1::2] - 1))
    falls = [ys[i0] - ys[i1] for i0, i1 in segments]
    best = int(np.argmax(falls))
    i0, i1 = segments[best]
    fall = float(falls[best])
    i_peak = i0 + int(np.argmin(slope[i0 : i1 + 1]))
    start = _crossing(grid, ys, i0, i1, ys[i0] - 0.1 * fall)
    end = _crossing(grid, ys, i0, i1, ys[i0] - 0.9 * fall)
    width = max(end - start, float(grid[1] - grid[0]))

    # Plateau: walk back from the segment's onset while the loss stays at most plateau_tol_decades above its
    # onset value (only an upper bound: dipping below is noise, rising above is the search phase).
    # The reference level is the median over the smoothing window before the onset (one point is too noisy).
    level = float(np.median(ys[max(0, i0 - smooth_window) : i0 + 1]))
    j = i0
    while j > 0 and ys[j - 1] - level <= plateau_tol_decades:
        j -= 1
    result = LossDrop(
        has_drop=True,
        reason="drop",
        t_drop=float(grid[i_peak]),
        drop_start=start,
        drop_end=end,
        drop_width=width,
        drop_decades=fall,
        drop_sharpness=100.0 * 0.8 * fall / width,
        peak_rate=float(-100.0 * slope[i_peak]),
        plateau_start=float(grid[j]),
        plateau_length=float(grid[i0] - grid[j]),
        plateau_loss=float(10**level),
    )
    span = float(grid[-1] - grid[0])
    if fall < min_drop_decades:
        reason = f"largest fall {fall:.3g} decades < min_drop_decades={min_drop_decades}"
    elif width > max_width_frac * span:
        reason = f"fall is gradual: 10-90% width {width:.4g} > {max_width_frac} x span {span:.4g}"
    else:
        return result
    # No drop: keep the candidate's size for diagnostics, but no times, so nothing downstream uses them.
    none.reason = reason
    none.drop_decades = fall
    return none


def time_to_learn(iterations, accuracy, threshold: float, *, sustain: int = 1) -> float | None:
    """First iteration at which accuracy ≥ threshold for `sustain` consecutive evaluations (None if never).
    NaN accuracies (iterations without an evaluation) are skipped."""
    it = np.asarray(iterations, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    ok = np.isfinite(it) & np.isfinite(acc)
    it, acc = it[ok], acc[ok]
    order = np.argsort(it, kind="stable")
    it, hit = it[order], acc[order] >= threshold
    run = 0
    for k in range(len(hit)):
        run = run + 1 if hit[k] else 0
        if run >= sustain:
            return float(it[k - sustain + 1])
    return None
