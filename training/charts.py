"""Server-side SVG chart geometry for the training pages: line charts (loss, learning rate) and stacked bars (costs).

The templates draw ``<svg>`` elements from these dicts, so the charts need no JavaScript and no chart library.
Coordinates are in the SVG's own ``viewBox`` units; the image scales with the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MAX_POINTS = 500
WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 10, 26


def downsample(points: Sequence[Any], limit: int = MAX_POINTS) -> list[Any]:
    """At most ``limit`` items, evenly spaced, always keeping the first and the last."""
    points = list(points)
    if len(points) <= limit:
        return points
    if limit < 2:
        return points[-limit:] if limit else []
    last = len(points) - 1
    indices = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [points[i] for i in indices]


def _nice(value: float) -> float:
    """1, 2 or 5 × a power of ten, at least ``value``."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    fraction = value / 10**exponent
    for nice in (1, 2, 5, 10):
        if fraction <= nice:
            return nice * 10**exponent
    return 10 ** (exponent + 1)


def ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        return [low]
    step = _nice((high - low) / count)
    start = math.floor(low / step) * step
    values = []
    value = start
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            values.append(round(value, 12))
        value += step
    return values


def _label(value: float, scientific: bool) -> str:
    if value == 0:
        return "0"
    if scientific:
        return f"{value:.1e}"
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.3g}"


def line_chart(
    series: Sequence[dict[str, Any]], *, scientific: bool = False, width: int = WIDTH, height: int = HEIGHT
) -> dict[str, Any] | None:
    """Geometry of a line chart; ``None`` when no series has a point.

    ``series`` items are ``{"name", "css", "points": [(x, y), ...]}`` with finite numbers; each series is
    downsampled to ``MAX_POINTS``. Series with few points also get dots, so a single evaluation is visible.
    """
    prepared = []
    for item in series:
        points = [
            (float(x), float(y))
            for x, y in item["points"]
            if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
        ]
        if points:
            prepared.append({**item, "points": downsample(points)})
    if not prepared:
        return None
    xs = [x for item in prepared for x, _ in item["points"]]
    ys = [y for item in prepared for _, y in item["points"]]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high == y_low:
        margin = abs(y_low) * 0.1 or 1.0
        y_low, y_high = y_low - margin, y_high + margin
    else:
        margin = (y_high - y_low) * 0.05
        y_low, y_high = y_low - margin, y_high + margin
    if y_low < 0 <= min(ys):
        y_low = 0.0
    left, right, top, bottom = PAD_LEFT, width - PAD_RIGHT, PAD_TOP, height - PAD_BOTTOM

    def sx(x: float) -> float:
        return round(left + (x - x_low) / (x_high - x_low) * (right - left), 1)

    def sy(y: float) -> float:
        return round(bottom - (y - y_low) / (y_high - y_low) * (bottom - top), 1)

    drawn = []
    for item in prepared:
        coords = [(sx(x), sy(y)) for x, y in item["points"]]
        drawn.append(
            {
                "name": item["name"],
                "css": item["css"],
                "points": " ".join(f"{x},{y}" for x, y in coords),
                "dots": coords if len(coords) <= 30 else [],
                "first": item["points"][0][1],
                "last": item["points"][-1][1],
                "count": len(item["points"]),
            }
        )
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "top": top,
        "bottom": bottom,
        "series": drawn,
        "x_ticks": [{"x": sx(v), "label": _label(v, False)} for v in ticks(x_low, x_high, 5) if v >= 0],
        "y_ticks": [{"y": sy(v), "label": _label(v, scientific)} for v in ticks(y_low, y_high)],
    }


def stacked_bars(
    days: Sequence[str], kinds: Sequence[str], amounts: dict[tuple[str, str], float], *, width: int = WIDTH
) -> dict[str, Any] | None:
    """Geometry of a stacked bar chart: one bar per day, one segment per kind; ``None`` when nothing was spent."""
    totals = {day: sum(amounts.get((day, kind), 0.0) for kind in kinds) for day in days}
    top_total = max(totals.values(), default=0.0)
    if top_total <= 0:
        return None
    height = HEIGHT
    left, right, top, bottom = PAD_LEFT, width - PAD_RIGHT, PAD_TOP, height - PAD_BOTTOM
    step = _nice(top_total / 4)
    y_high = math.ceil(top_total / step - 1e-9) * step  # the top tick is at or above the tallest bar
    y_ticks = ticks(0.0, y_high)
    slot = (right - left) / len(days)
    bar = max(slot * 0.75, 1.0)

    def sy(value: float) -> float:
        return round(bottom - value / y_high * (bottom - top), 1)

    bars = []
    label_every = max(1, math.ceil(len(days) / 8))
    for index, day in enumerate(days):
        x = round(left + index * slot + (slot - bar) / 2, 1)
        base = 0.0
        segments = []
        for kind in kinds:
            amount = amounts.get((day, kind), 0.0)
            if amount > 0:
                y0, y1 = sy(base), sy(base + amount)
                segments.append({"kind": kind, "amount": amount, "y": y1, "h": round(max(y0 - y1, 0.5), 1)})
                base += amount
        bars.append(
            {
                "day": day,
                "x": x,
                "w": round(bar, 1),
                "segments": segments,
                "total": totals[day],
                "label": day[5:] if index % label_every == 0 else "",
                "label_x": round(x + bar / 2, 1),
            }
        )
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "top": top,
        "bottom": bottom,
        "bars": bars,
        "y_ticks": [{"y": sy(v), "label": f"${v:,.2f}"} for v in y_ticks],
    }
