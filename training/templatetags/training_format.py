"""Formatting filters for the training pages: durations, GPU-hours, learning rates."""

from __future__ import annotations

import math

from django import template

register = template.Library()


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@register.filter
def duration(seconds) -> str:
    """``5400`` → "1 h 30 min"; ``95`` → "1 min 35 s"; ``4.2`` → "4 s"; nothing for a missing value."""
    number = _number(seconds)
    if number is None:
        return "—"
    total = max(round(number), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    if number and total == 0:
        return "< 1 s"
    return f"{secs} s"


@register.filter
def sci(value) -> str:
    """A learning rate or other small number: ``0.0002`` → "2e-04"; plain for ordinary magnitudes."""
    number = _number(value)
    if number is None:
        return "—"
    if number == 0:
        return "0"
    if abs(number) < 1e-2 or abs(number) >= 1e6:
        return f"{number:.1e}".replace(".0e", "e")
    return f"{number:.4g}"


@register.filter
def get(mapping, key):
    """``mapping[key]`` in a template (``None`` when missing)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def usd(value) -> str:
    """Dollars with cents: ``Decimal("1.5")`` → "$1.50"; a positive amount under half a cent → "< $0.01"."""
    number = _number(value)
    if number is None:
        return "—"
    if 0 < number < 0.005:
        return "< $0.01"
    return f"${number:,.2f}"
