"""Abrupt learning from a training curve: a search phase (a plateau), then a fast fall of the loss; and
time-to-learn.

Everything is measured on the log10-loss y(t) ("decades") of the curve itself, from its own crossing times
(no fitted shape), and every criterion is relative to the curve's own timescales, its plateau and its
evaluation interval, never to the run length: the same curve gets the same answer whether the run stops
soon after the fall or goes on ten times longer.

0. Chance level (optional ``reference_loss``, e.g. the held-out loss of the best constant output): log-losses
   above it are clipped to it. A network first learns the targets' mean, which takes a few evaluations;
   that step is not the end of the search but its start. Without a reference the curve is used as it is.
   A 3-point running median ym removes single spikes.
1. Plateau level and escape. The level ``plateau_loss`` = 10**top is the median of ym before the curve's
   biggest downward step (the split of the points that explains the most variance), then re-estimated as
   the median of the plateau found below (a curve that falls from its first points, with no level before
   the fall, is measured from its start). The run has ``escaped`` when ym falls ``min_drop_decades`` below
   it; ``t_drop`` is that crossing (linearly interpolated between evaluations): the time the loss was 3.2x
   (0.5 decades) below its plateau.
2. Onset and fall. ``t_onset`` is the last crossing of top − ``plateau_tol_decades`` before t_drop: where
   the loss left the plateau band. ``drop_width`` = t_drop − t_onset: how long the escape took (a fall
   between two evaluations is narrower than one step; it cannot be resolved further).
3. The plateau: walking back from t_onset while ym stays within ``plateau_tol_decades`` of top (from the
   last point in the band's upper half; one point outside the band between two inside does not end it);
   ``plateau_length`` runs from its start to t_onset, ``plateau_evals`` = plateau_length / the evaluation
   interval (median gap). ``plateau_decline``: the median of ym over the plateau's first third minus that
   over its last third; a plateau is *flat* when this is at most half the band (a sloped decline crossing
   the band is not a search phase).
4. abrupt = escaped, a flat plateau of at least ``min_plateau_evals`` evaluations, and ``width_over_plateau``
   = drop_width / plateau_length ≤ ``max_width_over_plateau``: the run searched, then escaped much faster
   than it had searched. An exponential or 1/t decay falls from the start (no flat plateau; crossing the
   band takes about as long as the escape); a second slow stage after a pause is slow compared with the
   pause. ``reason`` says which criterion failed.
5. ``search_fraction``: the share of the time until the escape (t_drop) spent on a flat plateau of at least
   min_plateau_evals, plateau_length / t_drop (0 without one); 1 for a run that never escaped (all of it was
   search). A regime has a search phase when this is large in runs without TCR (the claims' precondition,
   rnngeom.claims.preconditions).
``drop_decades`` is the total fall, top minus the lowest ym after t_drop (NaN-free descriptive size).
Without an escape the drop fields are NaN.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import median_filter

NAN = float("nan")


@dataclass
class LossDrop:
    abrupt: bool  # flat plateau of min_plateau_evals, then an escape within max_width_over_plateau of it
    reason: str  # "abrupt" or why not
    escaped: bool  # the loss fell min_drop_decades below its plateau level
    t_onset: float  # the loss left the plateau band (top − plateau_tol_decades); NaN if not escaped
    t_drop: float  # the loss was min_drop_decades below the plateau (the escape); NaN if not escaped
    drop_width: float  # t_drop − t_onset (iterations)
    drop_decades: float  # total fall: plateau level minus the lowest (median-filtered) loss after t_drop
    plateau_start: float
    plateau_length: float  # iterations from plateau_start to t_onset
    plateau_evals: float  # plateau_length / eval_step
    plateau_decline: float  # decades lost from the plateau's first third to its last (flatness)
    width_over_plateau: float  # drop_width / plateau_length (inf without a plateau)
    search_fraction: float  # plateau_length / t_drop on a flat plateau; 1 if never escaped
    plateau_loss: float  # the plateau level, 10**top
    run_length: float  # iterations spanned by the curve
    eval_step: float  # median interval between evaluations

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


def _best_step(y) -> int:
    """Index k maximising the variance explained by splitting y into y[:k] and y[k:] (each at its mean)."""
    n = len(y)
    c1, c2 = np.cumsum(y), np.cumsum(y**2)
    k = np.arange(1, n)
    sse = (c2[k - 1] - c1[k - 1] ** 2 / k) + ((c2[-1] - c2[k - 1]) - (c1[-1] - c1[k - 1]) ** 2 / (n - k))
    falls = c1[k - 1] / k > (c1[-1] - c1[k - 1]) / (n - k)  # only falls, not rises
    sse = np.where(falls, sse, np.inf)
    return int(k[np.argmin(sse)]) if np.isfinite(sse).any() else n // 2


def _crossing(t, y, i: int, level: float) -> float:
    """Where y crosses ``level`` downwards between points i and i + 1 (linear interpolation)."""
    if y[i] == y[i + 1]:
        return float(t[i + 1])
    return float(t[i] + (t[i + 1] - t[i]) * (y[i] - level) / (y[i] - y[i + 1]))


def _escape(t, ym, top: float, min_drop: float, tol: float):
    """(escape index e, onset index o, plateau start index i) for plateau level ``top``; None if ym never
    falls min_drop below it (after its first point)."""
    below = np.flatnonzero(ym[1:] <= top - min_drop) + 1
    if not len(below):
        return None
    e = int(below[0])
    o = e - 1
    while o > 0 and ym[o] < top - tol:  # last point still in the band (above its lower edge)
        o -= 1
    # Going back from the last point in the band's upper half (near the onset the curve has started to bend
    # towards the band's lower edge, where noise takes points in and out), the plateau ends where two points
    # in a row leave the band: one noisy point does not end it.
    inside = np.abs(ym - top) <= tol
    i = o
    while i > 0 and ym[i] < top - tol / 2:
        i -= 1
    while i > 0 and (inside[i - 1] or (i > 1 and inside[i - 2])):
        i -= 1
    while i < o and not inside[i]:
        i += 1
    return e, o, i


def detect_loss_drop(
    iterations,
    loss,
    *,
    min_drop_decades: float = 0.5,
    min_plateau_evals: float = 5.0,
    max_width_over_plateau: float = 0.25,
    plateau_tol_decades: float = 0.15,
    reference_loss: float | None = None,
    floor: float = 1e-12,
) -> LossDrop:
    """Search phase and escape of a training curve (see the module docstring).

    min_drop_decades:       how far (log10) below its plateau the loss must fall to have escaped (0.5 = a
                            factor 3.2).
    min_plateau_evals:      shortest flat plateau before the escape, in evaluation intervals, for "abrupt".
    max_width_over_plateau: longest escape (t_drop − t_onset), as a fraction of the plateau before it.
    plateau_tol_decades:    how far (log10) the loss may stray from the plateau level on the plateau; the
                            onset is where it falls this far below.
    reference_loss:         chance level (e.g. the best constant output's loss); the curve is clipped to it
                            from above. None: no clip.
    floor:                  losses are clipped at this value before the log.
    """
    t, y = log_loss_curve(iterations, loss, floor)
    if reference_loss is not None and np.isfinite(reference_loss) and reference_loss > 0:
        y = np.minimum(y, math.log10(max(float(reference_loss), floor)))
    run_length = float(t[-1] - t[0]) if len(t) else 0.0
    step = float(np.median(np.diff(t))) if len(t) > 1 else NAN
    none = LossDrop(False, "", False, NAN, NAN, NAN, 0.0, NAN, NAN, NAN, NAN, NAN, 1.0, NAN, run_length, step)
    if len(t) < 6:
        none.reason = f"too few points ({len(t)})"
        none.search_fraction = NAN
        return none
    ym = median_filter(y, size=3, mode="nearest")
    top = float(np.median(ym[: _best_step(ym)]))
    found = _escape(t, ym, top, min_drop_decades, plateau_tol_decades)
    if found is not None:  # the level of the plateau itself, then the escape from it
        _, o, i = found
        top = float(np.median(ym[i : o + 1]))
        found = _escape(t, ym, top, min_drop_decades, plateau_tol_decades)
    if found is None:  # a fall from the very start (no level before it): measured from where it starts
        start = float(np.max(ym[:3]))
        if ym.min() <= start - min_drop_decades:
            top = start
            found = _escape(t, ym, top, min_drop_decades, plateau_tol_decades)
    if found is None:
        none.reason = (
            f"no escape: the loss never fell min_drop_decades={min_drop_decades:g} below its plateau"
        )
        none.drop_decades = max(0.0, top - float(ym.min()))
        none.plateau_loss = 10**top
        return none
    e, o, i = found
    t_drop = _crossing(t, ym, e - 1, top - min_drop_decades)
    t_onset = _crossing(t, ym, o, top - plateau_tol_decades) if ym[o] >= top - plateau_tol_decades else t[o]
    t_onset = min(t_onset, t_drop)
    plateau_start = float(t[i])
    plateau_length = max(0.0, t_onset - plateau_start)
    third = max(1, (o - i + 1) // 3)
    decline = float(np.median(ym[i : i + third]) - np.median(ym[o + 1 - third : o + 1]))
    width = t_drop - t_onset
    flat = decline <= plateau_tol_decades / 2
    evals = plateau_length / step
    result = LossDrop(
        abrupt=False,
        reason="abrupt",
        escaped=True,
        t_onset=t_onset,
        t_drop=t_drop,
        drop_width=width,
        drop_decades=top - float(ym[e:].min()),
        plateau_start=plateau_start,
        plateau_length=plateau_length,
        plateau_evals=evals,
        plateau_decline=decline,
        width_over_plateau=width / plateau_length if plateau_length > 0 else math.inf,
        search_fraction=min(1.0, plateau_length / t_drop) if flat and evals >= min_plateau_evals else 0.0,
        plateau_loss=10**top,
        run_length=run_length,
        eval_step=step,
    )
    if evals < min_plateau_evals:
        result.reason = (
            f"no plateau: {evals:.3g} evaluation steps before the onset < min_plateau_evals="
            f"{min_plateau_evals:g}"
        )
    elif not flat:
        result.reason = (
            f"no flat plateau: the loss declined {decline:.3g} decades across it > "
            f"plateau_tol_decades/2={plateau_tol_decades / 2:g}"
        )
    elif result.width_over_plateau > max_width_over_plateau:
        result.reason = (
            f"fall is gradual: the escape took {width:.4g} iterations = {result.width_over_plateau:.3g} of "
            f"the plateau > max_width_over_plateau={max_width_over_plateau:g}"
        )
    else:
        result.abrupt = True
    return result


LOSS_COLUMNS = ("task_loss", "test_loss")  # metrics columns the detector may read


def default_settings() -> dict:
    """The detector's settings (the config's ``loss_drop:`` block): the metrics column it reads
    (``task_loss``: the training loss averaged since the previous evaluation, or ``test_loss``: the held-out
    loss at the evaluation) and the keyword arguments of ``detect_loss_drop`` (their defaults are the single
    source), without the per-run ``reference_loss``."""
    params = inspect.signature(detect_loss_drop).parameters
    kwargs = {n: p.default for n, p in params.items() if p.kind == p.KEYWORD_ONLY and n != "reference_loss"}
    return {"loss_column": "task_loss", **kwargs}


def resolve_settings(overrides: dict | None) -> dict:
    """The defaults with ``overrides`` applied; an unknown key or loss column raises ValueError naming it."""
    settings = default_settings()
    unknown = sorted(set(overrides or {}) - set(settings))
    if unknown:
        raise ValueError(f"unknown loss_drop setting(s) {unknown}; allowed: {sorted(settings)}")
    settings.update(overrides or {})
    if settings["loss_column"] not in LOSS_COLUMNS:
        raise ValueError(f"loss_drop.loss_column {settings['loss_column']!r}; allowed: {list(LOSS_COLUMNS)}")
    return settings


def detect_in_metrics(metrics, settings: dict | None = None, reference_loss: float | None = None) -> LossDrop:
    """``detect_loss_drop`` on a run's metrics table (iteration and the settings' loss column)."""
    cfg = resolve_settings(settings)
    column = cfg.pop("loss_column")
    for col in ("iteration", column):
        if col not in metrics.columns:
            raise ValueError(f"metrics table lacks column {col!r}; it has {list(metrics.columns)}")
    return detect_loss_drop(metrics["iteration"], metrics[column], reference_loss=reference_loss, **cfg)


@dataclass(frozen=True)
class LearnCriterion:
    """When a run has learned its task: held-out accuracy ≥ ``accuracy``; or, where ``loss_fraction`` is set
    (a task whose accuracy tolerance a clearly learned run reaches only long after its drop, e.g. delayed
    addition's), held-out loss ≤ loss_fraction × the chance loss (the best constant output's) instead."""

    accuracy: float
    loss_fraction: float | None = None

    @classmethod
    def of(cls, value) -> LearnCriterion:
        """From the JSON form {"accuracy": a, "loss_fraction": f | null} (or a bare accuracy threshold)."""
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"accuracy", "loss_fraction"})
            if unknown or "accuracy" not in value:
                raise ValueError(f"a learn criterion is {{accuracy, loss_fraction}}, got {value!r}")
            f = value.get("loss_fraction")
            return cls(float(value["accuracy"]), None if f is None else float(f))
        return cls(float(value))

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "loss_fraction": self.loss_fraction}

    def describe(self) -> str:
        if self.loss_fraction is None:
            return f"accuracy >= {self.accuracy:g}"
        return f"loss <= {self.loss_fraction:g} x chance"

    def reached(self, accuracy, loss, chance_loss: float | None) -> np.ndarray:
        """Whether each (accuracy, loss) meets the criterion."""
        if self.loss_fraction is None:
            return np.asarray(accuracy, dtype=float) >= self.accuracy
        if chance_loss is None or not np.isfinite(chance_loss):
            raise ValueError("the loss criterion needs the run's chance_loss (provenance.json)")
        return np.asarray(loss, dtype=float) <= self.loss_fraction * float(chance_loss)

    def time_to_learn(self, metrics, chance_loss: float | None = None) -> float | None:
        """First evaluated iteration of ``metrics`` (iteration, test_accuracy, test_loss) that meets the
        criterion (None if none does); NaN evaluations are skipped."""
        its = np.asarray(metrics["iteration"], dtype=float)
        acc = np.asarray(metrics["test_accuracy"], dtype=float)
        loss = np.asarray(metrics["test_loss"], dtype=float)
        value = acc if self.loss_fraction is None else loss
        ok = np.isfinite(its) & np.isfinite(value)
        order = np.argsort(its[ok], kind="stable")
        hit = self.reached(acc[ok][order], loss[ok][order], chance_loss)
        return float(its[ok][order][hit][0]) if hit.any() else None


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
