"""Abrupt learning from a training curve: a plateau, then a fast fall of the loss; and time-to-learn.

Everything is measured on the log10-loss y(t) ("decades") of the curve itself, without smoothing its width:

1. The fall: y(t) = y_top − D · σ((t − t_drop) / w) − s · w · softplus((t − t_drop) / w), a sigmoid in
   log-loss followed by a steady decline of s ≥ 0 decades per iteration (losses keep falling after the drop),
   is fitted by robust least squares (scipy ``least_squares``, soft-L1 loss, so spikes do not pull it) to the
   raw points. Its start is the best
   single step of the curve (the split of the points that explains the most variance of the log-loss, after a
   3-point running median that removes single spikes), tried with several widths. t_drop is the fall's
   midpoint, D (``drop_decades``) its size and ``drop_width`` = 2 ln 9 · w its 10–90 % width in iterations:
   continuous, so it is not floored by a smoothing window and does not depend on the evaluation interval (a
   fall narrower than one evaluation step is reported as narrower than that step; it cannot be resolved).
2. The plateau: the stretch before the fall's onset (t_drop − drop_width) where the loss stays within
   ``plateau_tol_decades`` of the fitted level before the fall, y_top (a 3-point running median, so one noisy
   point does not end it); plateau_length runs from its start to drop_start, and
   ``plateau_fraction`` = plateau_length / run length (the iterations the curve spans).
3. abrupt = (drop_decades ≥ min_drop_decades) and (plateau_fraction ≥ min_plateau_frac) and
   (drop_width_rel = drop_width / run length ≤ max_width_frac). An exponential or 1/t decay starts falling at
   once (no plateau); a slow decline is too wide. ``reason`` says which criterion failed.
t_drop, drop_width and the plateau are reported whenever a fall of at least ``min_drop_decades`` is fitted,
abrupt or not; NaN otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.optimize import least_squares
from scipy.special import expit

WIDTH_PER_SCALE = 2.0 * math.log(9.0)  # 10-90 % width of σ(t / w) is 2 ln 9 · w
NAN = float("nan")


@dataclass
class LossDrop:
    abrupt: bool  # plateau and fast fall (see the module docstring)
    reason: str  # "abrupt" or why not
    t_drop: float  # iteration of the fall's midpoint (NaN if no fall of min_drop_decades)
    drop_start: float  # 10 % of the fall reached
    drop_end: float  # 90 % of the fall reached
    drop_width: float  # drop_end − drop_start (iterations)
    drop_width_rel: float  # drop_width / run_length
    drop_decades: float  # fitted fall D (log10 units; 0 if the curve has too few points)
    plateau_start: float
    plateau_length: float  # iterations from plateau_start to drop_start
    plateau_fraction: float  # plateau_length / run_length
    plateau_loss: float  # fitted loss level before the fall, 10**y_top
    run_length: float  # iterations spanned by the curve

    def to_dict(self) -> dict:
        return asdict(self)


def log_loss_curve(iterations, loss, floor: float = 1e-12):
    """Sorted unique iterations [n] and log10-loss [n] of the finite entries (first value per iteration)."""
    it = np.asarray(iterations, dtype=np.float64)
    y = np.asarray(loss, dtype=np.float64)
    ok = np.isfinite(it) & np.isfinite(y)
    it, y = it[ok], np.log10(np.maximum(y[ok], floor))
    order = np.argsort(it, kind="stable")
    it, first = np.unique(it[order], return_index=True)
    return it, y[order][first]


def _sigmoid_fall(p, t):
    """Plateau at top, a sigmoid fall of D decades (midpoint t_mid, scale w), then a steady decline of
    ``tail`` decades per iteration that switches on with the fall (w · softplus((t − t_mid)/w) is the
    integral of the sigmoid): training losses keep falling after the drop, and without this term the fit
    would stretch the sigmoid over the whole decline."""
    top, decades, t_mid, log_w, tail = p
    w = np.exp(log_w)
    u = (t - t_mid) / w
    return top - decades * expit(u) - tail * w * np.logaddexp(0.0, u)


def _best_step(t, y) -> int:
    """Index k maximising the variance explained by splitting y into y[:k] and y[k:] (each at its mean)."""
    n = len(y)
    c1, c2 = np.cumsum(y), np.cumsum(y**2)
    k = np.arange(1, n)
    sse = (c2[k - 1] - c1[k - 1] ** 2 / k) + ((c2[-1] - c2[k - 1]) - (c1[-1] - c1[k - 1]) ** 2 / (n - k))
    falls = c1[k - 1] / k > (c1[-1] - c1[k - 1]) / (n - k)  # only falls, not rises
    sse = np.where(falls, sse, np.inf)
    return int(k[np.argmin(sse)]) if np.isfinite(sse).any() else n // 2


def fit_fall(t, y):
    """Robust sigmoid fit of a fall in log-loss; returns (top, decades, t_mid, w)."""
    step = float(np.median(np.diff(t)))
    span = float(t[-1] - t[0])
    ym = median_filter(y, size=3, mode="nearest") if len(y) >= 5 else y
    k = _best_step(t, ym)
    t0 = 0.5 * (t[k - 1] + t[k])
    top0, low0 = float(np.median(ym[:k])), float(np.median(ym[k:]))
    # noise of the log-loss from successive differences (robust), the scale of the soft-L1 loss
    noise = 1.4826 * float(np.median(np.abs(np.diff(y) - np.median(np.diff(y))))) / math.sqrt(2.0)
    f_scale = max(noise, 1e-3)
    lo = [-np.inf, 0.0, t[0], math.log(1e-3 * step), 0.0]
    hi = [np.inf, np.inf, t[-1], math.log(max(span, step)), np.inf]
    best = None
    for w0 in (step, 5.0 * step, 0.05 * span, 0.25 * span):
        log_w0 = math.log(float(np.clip(w0, 2e-3 * step, max(span, step))))
        p0 = [top0, max(top0 - low0, 1e-6), t0, log_w0, 0.0]
        fit = least_squares(
            lambda p: _sigmoid_fall(p, t) - y,
            p0,
            bounds=(lo, hi),
            loss="soft_l1",
            f_scale=f_scale,
            x_scale=[1.0, 1.0, max(span, step), 1.0, 1.0 / max(span, step)],
        )
        if best is None or fit.cost < best.cost:
            best = fit
    top, decades, t_mid, log_w, _ = best.x
    return float(top), float(decades), float(t_mid), float(math.exp(log_w))


def detect_loss_drop(
    iterations,
    loss,
    *,
    min_drop_decades: float = 0.5,
    min_plateau_frac: float = 0.1,
    max_width_frac: float = 0.1,
    plateau_tol_decades: float = 0.15,
    floor: float = 1e-12,
) -> LossDrop:
    """Plateau and fall of a training curve (see the module docstring).

    min_drop_decades:    smallest fitted fall (log10 units; 0.5 = a factor 3.2) that counts as a drop.
    min_plateau_frac:    shortest plateau before the fall, as a fraction of the run length, for "abrupt".
    max_width_frac:      widest 10–90 % fall, as a fraction of the run length, for "abrupt".
    plateau_tol_decades: how far (log10) the loss may stray from the fitted pre-fall level on the plateau.
    floor:               losses are clipped at this value before the log.
    """
    t, y = log_loss_curve(iterations, loss, floor)
    run_length = float(t[-1] - t[0]) if len(t) else 0.0
    none = LossDrop(False, "", NAN, NAN, NAN, NAN, NAN, 0.0, NAN, NAN, NAN, NAN, run_length)
    if len(t) < 6:
        none.reason = f"too few points ({len(t)})"
        return none
    top, decades, t_mid, w = fit_fall(t, y)
    if decades < min_drop_decades:
        none.reason = f"fitted fall {decades:.3g} decades < min_drop_decades={min_drop_decades}"
        none.drop_decades = decades
        return none
    width = WIDTH_PER_SCALE * w
    start, end = t_mid - width / 2, t_mid + width / 2

    # Plateau: walk back from the fall's onset (t_mid − width, where 1.2 % of the fall is done: at the 10 %
    # point itself the loss is already 0.1 D below the plateau) while the loss stays near the pre-fall level.
    ym = median_filter(y, size=3, mode="nearest")
    j = int(np.searchsorted(t, t_mid - width, side="right"))  # points before the onset: t[:j]
    i = j
    while i > 0 and abs(ym[i - 1] - top) <= plateau_tol_decades:
        i -= 1
    plateau_start = float(t[i]) if i < j else float(start)
    plateau_length = max(0.0, float(start) - plateau_start)
    result = LossDrop(
        abrupt=False,
        reason="abrupt",
        t_drop=t_mid,
        drop_start=start,
        drop_end=end,
        drop_width=width,
        drop_width_rel=width / run_length,
        drop_decades=decades,
        plateau_start=plateau_start,
        plateau_length=plateau_length,
        plateau_fraction=plateau_length / run_length,
        plateau_loss=10**top,
        run_length=run_length,
    )
    if result.drop_width_rel > max_width_frac:
        result.reason = (
            f"fall is gradual: 10-90% width {width:.4g} = {result.drop_width_rel:.3g} of the run "
            f"> max_width_frac={max_width_frac}"
        )
    elif result.plateau_fraction < min_plateau_frac:
        result.reason = (
            f"no plateau: {result.plateau_fraction:.3g} of the run < min_plateau_frac={min_plateau_frac}"
        )
    else:
        result.abrupt = True
    return result


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
