"""The quality summary of a trained adapter, from its real losses only (SPEC §10.3).

Called by ``training_job_complete`` when the artifact is created; pure (no database access), so it can be
tested with plain dicts. No training-loss point means no summary at all: a score is never invented.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

#: (loss reduction in % that must be exceeded, score), best first; anything else scores 1.
SCORE_BANDS: tuple[tuple[float, int], ...] = ((50.0, 5), (30.0, 4), (15.0, 3), (5.0, 2))
#: Validation loss this far above the final training loss marks the adapter as overfit.
OVERFIT_GAP = 0.5
#: The overfit penalty never takes a score below this.
OVERFIT_FLOOR = 2
LABELS = {5: "excellent", 4: "good", 3: "fair", 2: "poor", 1: "minimal"}


def _get(point: Any, name: str) -> Any:
    return point.get(name) if isinstance(point, dict) else getattr(point, name, None)


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ordered(points: Iterable[Any], field: str) -> list[tuple[int, float]]:
    """(step, value) of every point with a finite ``field``, in step order (stable for equal steps)."""
    values = []
    for index, point in enumerate(points):
        value = _finite(_get(point, field))
        if value is not None:
            values.append((int(_get(point, "step") or 0), index, value))
    values.sort(key=lambda item: (item[0], item[1]))
    return [(step, value) for step, _, value in values]


def score_for(reduction_percent: float) -> int:
    """The 1–5 score of a loss reduction: >50 % excellent (5), >30 good (4), >15 fair (3), >5 poor (2), else 1."""
    for bound, score in SCORE_BANDS:
        if reduction_percent > bound:
            return score
    return 1


def quality_summary(*, points: Iterable[Any]) -> dict[str, Any] | None:
    """Summarise metric ``points`` (MetricPoint rows or dicts with ``step``, ``training_loss``, ``validation_loss``).

    Returns ``None`` when there is no finite training loss. Otherwise::

        {"first_training_loss", "final_training_loss", "loss_reduction_percent", "score", "label",
         "final_validation_loss", "validation_gap", "overfit", "perplexity", "training_points",
         "validation_points"}

    ``loss_reduction_percent`` = (first − last training loss) / first × 100 (0 when the first loss is not
    positive). ``overfit`` when the final validation loss exceeds the final training loss by more than 0.5; the
    score then drops by one but never below 2 (a score already at 2 or 1 is kept, never raised).
    ``perplexity`` = exp(final validation loss), ``None`` without a validation loss or when it overflows.
    """
    points = list(points)
    training = _ordered(points, "training_loss")
    if not training:
        return None
    validation = _ordered(points, "validation_loss")
    first, last = training[0][1], training[-1][1]
    # Rounded before banding, so float noise never lifts an exact 5 % into the next band.
    reduction = round((first - last) / first * 100, 6) if first > 0 else 0.0
    score = score_for(reduction)
    final_validation = validation[-1][1] if validation else None
    gap = final_validation - last if final_validation is not None else None
    overfit = gap is not None and gap > OVERFIT_GAP
    if overfit and score > OVERFIT_FLOOR:
        score -= 1
    perplexity = None
    if final_validation is not None:
        try:
            perplexity = math.exp(final_validation)
        except OverflowError:
            perplexity = None
    return {
        "first_training_loss": round(first, 6),
        "final_training_loss": round(last, 6),
        "loss_reduction_percent": round(reduction, 2),
        "score": score,
        "label": LABELS[score],
        "final_validation_loss": round(final_validation, 6) if final_validation is not None else None,
        "validation_gap": round(gap, 6) if gap is not None else None,
        "overfit": overfit,
        "perplexity": round(perplexity, 4) if perplexity is not None else None,
        "training_points": len(training),
        "validation_points": len(validation),
    }
