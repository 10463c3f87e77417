"""Template hygiene that Django does not check itself."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def test_no_multi_line_short_comments():
    """`{# … #}` is single-line only: a multi-line one is rendered as text on the page."""
    broken = [
        f"{path.relative_to(TEMPLATES)}:{number}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.count("{#") > line.count("#}")
    ]
    assert not broken, f"use {{% comment %}} for multi-line comments: {broken}"
