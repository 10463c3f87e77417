"""Seed data for the scaffolding (SPEC §3) and the idempotent loader behind ``manage.py seed_scaffolding``.

The data are plain Python (``vertical``, ``personas``, ``arcs``, ``topics``) and text files
(``templates/*.txt``), so the project seeds itself without any external file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from conversations.models import EmotionalArc, Persona, PromptTemplate, TrainingTopic, VerticalProfile
from conversations.seed.arcs import ARCS
from conversations.seed.personas import PERSONAS
from conversations.seed.templates import TEMPLATES, template_body
from conversations.seed.topics import TOPICS
from conversations.seed.vertical import VERTICAL
from conversations.services.scaffolding import template_version_create

SEED_CHANGE_NOTE = "Seeded by manage.py seed_scaffolding."


@dataclass
class SeedCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class SeedReport:
    """What ``scaffolding_seed`` did, per kind of row."""

    counts: dict[str, SeedCounts] = field(default_factory=dict)

    def count(self, kind: str) -> SeedCounts:
        return self.counts.setdefault(kind, SeedCounts())

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated for c in self.counts.values())

    def summary(self) -> str:
        parts = [
            f"{kind} {c.created} created/{c.updated} updated/{c.unchanged} unchanged" for kind, c in self.counts.items()
        ]
        return "Scaffolding seeded: " + "; ".join(parts) + "."


def _upsert(
    model: type[models.Model], *, key: str, values: dict[str, Any], counts: SeedCounts, keep_existing: bool
) -> models.Model:
    """``update_or_create`` by key that writes nothing when the row already matches."""
    row = model.objects.filter(key=key).first()
    if row is None:
        counts.created += 1
        return model.objects.create(key=key, **values)
    if keep_existing:
        counts.unchanged += 1
        return row
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    if not changed:
        counts.unchanged += 1
        return row
    for name in changed:
        setattr(row, name, values[name])
    row.save(update_fields=[*changed, *(["updated_at"] if hasattr(row, "updated_at") else [])])
    counts.updated += 1
    return row


def _without_key(data: dict) -> dict:
    return {name: value for name, value in data.items() if name != "key"}


@transaction.atomic
def scaffolding_seed(*, keep_existing: bool = False) -> SeedReport:
    """Create or update the seeded vertical, personas, arcs, topics and templates.

    Idempotent: rows are matched by ``key``; a second run writes nothing. Called by
    ``manage.py seed_scaffolding`` (staff/ops, never by request handlers). With
    ``keep_existing`` rows that already exist are left exactly as they are (only missing
    ones are created). The seeded vertical is created active only if no other vertical
    is active, and an existing vertical's ``is_active`` is never changed (the admin's
    choice). A template gets a new version only when its seeded body differs from the
    current version's and was never one of its versions, so re-seeding does not revert a
    body an admin edited after seeding.
    """
    report = SeedReport()

    vertical_values = _without_key(VERTICAL)
    if not VerticalProfile.objects.filter(key=VERTICAL["key"]).exists():
        vertical_values["is_active"] = not VerticalProfile.objects.active().exists()
    _upsert(
        VerticalProfile,
        key=VERTICAL["key"],
        values=vertical_values,
        counts=report.count("vertical"),
        keep_existing=keep_existing,
    )

    for persona in PERSONAS:
        _upsert(
            Persona,
            key=persona["key"],
            values=_without_key(persona),
            counts=report.count("personas"),
            keep_existing=keep_existing,
        )

    arcs: dict[str, EmotionalArc] = {}
    for arc in ARCS:
        arcs[arc["key"]] = _upsert(
            EmotionalArc,
            key=arc["key"],
            values=_without_key(arc),
            counts=report.count("arcs"),
            keep_existing=keep_existing,
        )

    for topic in TOPICS:
        _upsert(
            TrainingTopic,
            key=topic["key"],
            values=_without_key(topic),
            counts=report.count("topics"),
            keep_existing=keep_existing,
        )

    report.count("templates")
    versions = report.count("template versions")
    for spec in TEMPLATES:
        values = {
            "name": spec["name"],
            "emotional_arc": arcs[spec["emotional_arc"]],
            "tier": spec["tier"],
            "suitable_personas": spec["suitable_personas"],
            "suitable_topics": spec["suitable_topics"],
            "is_active": spec["is_active"],
        }
        template = _upsert(
            PromptTemplate,
            key=spec["key"],
            values=values,
            counts=report.count("templates"),
            keep_existing=keep_existing,
        )
        body = template_body(spec["emotional_arc"])
        if template.current_version is not None and (keep_existing or template.versions.filter(body=body).exists()):
            versions.unchanged += 1
            continue
        template_version_create(template=template, body=body, change_note=SEED_CHANGE_NOTE)
        versions.created += 1
    return report
