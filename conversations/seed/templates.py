"""The ten seeded prompt templates: one active template per arc, tier = the arc's tier.

Bodies live in ``templates/<arc key>.txt`` next to this module so that they read as what
they are: the exact text stored as a template version.
"""

from __future__ import annotations

from pathlib import Path

from conversations.seed.arcs import ARCS

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def template_body(arc_key: str) -> str:
    """The seeded body for ``arc_key``."""
    return (TEMPLATE_DIR / f"{arc_key}.txt").read_text(encoding="utf-8")


TEMPLATES: list[dict] = [
    {
        "key": f"{arc['key']}_default",
        "name": f"{arc['name']} (default)",
        "emotional_arc": arc["key"],
        "tier": arc["tier"],
        "suitable_personas": [],
        "suitable_topics": [],
        "is_active": True,
        "body_file": f"{arc['key']}.txt",
    }
    for arc in ARCS
]
