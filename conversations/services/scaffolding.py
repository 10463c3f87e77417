"""Scaffolding services: template versions, selection, compatibility, analytics, generation prompts.

Scaffolding rows are installation data shared by every user (not owned), so these services
take no owner. The strict renderer and its variable registry live in
``conversations.services.rendering`` and are re-exported here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Avg, Count, Max, Q, QuerySet

from brightrun.errors import ApplicationError
from conversations.models import (
    Conversation,
    EmotionalArc,
    Persona,
    PromptTemplate,
    PromptTemplateVersion,
    Tier,
    TrainingTopic,
    VerticalProfile,
)
from conversations.services.rendering import (
    SHARED_PREFIX_TEMPLATE,
    TEMPLATE_VARIABLES,
    shared_prefix_render,
    template_body_validate,
    template_context,
    template_render,
    vertical_context,
)

__all__ = [
    "SHARED_PREFIX_TEMPLATE",
    "TEMPLATE_VARIABLES",
    "Compatibility",
    "GenerationPrompt",
    "compatibility_check",
    "generation_prompt_build",
    "shared_prefix_render",
    "target_turns_choose",
    "template_body_validate",
    "template_context",
    "template_create",
    "template_render",
    "template_select",
    "template_version_analytics",
    "template_version_create",
    "vertical_active",
    "vertical_context",
]

QUALITY_NOT_SCORED = "not scored yet"


# --- Versions -----------------------------------------------------------------------------


@transaction.atomic
def template_version_create(
    *,
    template: PromptTemplate,
    body: str,
    actor: AbstractBaseUser | None = None,
    change_note: str = "",
) -> PromptTemplateVersion:
    """Save ``body`` as the next immutable version of ``template`` and make it current.

    Any caller (admin form, API, seed command); staff-only is the callers' rule. The body is
    checked against ``TEMPLATE_VARIABLES`` first (``template_unknown_variable`` …), and a
    body equal to the current version's is refused (``template_unchanged``) because an
    unchanged text is not an edit. The template row is locked (``select_for_update``) so
    concurrent saves get consecutive numbers.
    """
    variables = template_body_validate(body=body)
    locked = PromptTemplate.objects.select_for_update().get(pk=template.pk)
    current = locked.current_version
    if current is not None and current.body == body:
        raise ApplicationError(
            f"The body is the same as version {current.number}; no new version was created.",
            code="template_unchanged",
        )
    last = locked.versions.aggregate(last=Max("number"))["last"] or 0
    version = PromptTemplateVersion.objects.create(
        template=locked,
        number=last + 1,
        body=body,
        variables=variables,
        change_note=change_note[:300],
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    PromptTemplate.objects.filter(pk=locked.pk).update(current_version=version)
    template.current_version = version
    return version


@transaction.atomic
def template_create(
    *,
    key: str,
    name: str,
    body: str,
    emotional_arc: EmotionalArc | None = None,
    tier: str = Tier.TEMPLATE,
    suitable_personas: list[str] | None = None,
    suitable_topics: list[str] | None = None,
    is_active: bool = True,
    actor: AbstractBaseUser | None = None,
    change_note: str = "",
) -> PromptTemplate:
    """Create a prompt template with its first version (both or neither: one transaction).

    Used by the API; the admin saves the row itself and then calls ``template_version_create``.
    """
    if tier not in Tier.values:
        raise ApplicationError(f"Unknown tier '{tier}'.", code="invalid_tier")
    if PromptTemplate.objects.filter(key=key).exists():
        raise ApplicationError(f"A template with key '{key}' already exists.", code="template_key_taken")
    template_body_validate(body=body)
    template = PromptTemplate.objects.create(
        key=key,
        name=name,
        emotional_arc=emotional_arc,
        tier=tier,
        suitable_personas=list(suitable_personas or []),
        suitable_topics=list(suitable_topics or []),
        is_active=is_active,
    )
    template_version_create(template=template, body=body, actor=actor, change_note=change_note or "First version.")
    return template


# --- Turns, selection, compatibility ------------------------------------------------------------


def target_turns_choose(*, arc: EmotionalArc, rng: random.Random | None = None) -> int:
    """A number of exchanges in ``arc.typical_turns_min..typical_turns_max`` (inclusive).

    Pure; pass a seeded ``rng`` for reproducible choices. Raises ``arc_turn_range_invalid``
    when the arc's range is empty or starts below 1.
    """
    low, high = arc.typical_turns_min, arc.typical_turns_max
    if low < 1 or high < low:
        raise ApplicationError(
            f"Arc '{arc.key}' has an invalid turn range {low}-{high}.", code="arc_turn_range_invalid"
        )
    return (rng or random.Random()).randint(low, high)


def _unscoped_template_approval_rates(template_ids: list[int]) -> dict[int, float]:
    """Approved / all conversations per template, across every owner.

    Deliberately unscoped: template selection is an installation-wide decision and only
    the resulting order is used, never the numbers or the rows. Templates without
    conversations are absent from the result.
    """
    rows = (
        Conversation.objects.filter(template_version__template_id__in=template_ids)
        .values("template_version__template_id")
        .annotate(total=Count("id"), approved=Count("id", filter=Q(status=Conversation.Status.APPROVED)))
    )
    return {row["template_version__template_id"]: row["approved"] / row["total"] for row in rows if row["total"]}


def template_select(*, arc: EmotionalArc, tier: str, persona: Persona, topic: TrainingTopic) -> PromptTemplateVersion:
    """The current version of the best active template for ``arc`` and ``tier`` (SPEC §3.5).

    Candidates: active templates of this arc or of any arc (no arc) with this tier and a
    current version. Score 1.0, x0.5 when the persona is outside a non-empty
    ``suitable_personas``, x0.5 when the topic is outside a non-empty ``suitable_topics``.
    Order: best score, then highest approval rate of the template's past conversations
    (approved / all; none yet counts as 0), then arc-specific before any-arc, then key.
    Raises ``no_template`` naming the arc and tier when there is no candidate. Read-only.
    """
    if tier not in Tier.values:
        raise ApplicationError(f"Unknown tier '{tier}'.", code="invalid_tier")
    candidates = list(
        PromptTemplate.objects.active()
        .filter(Q(emotional_arc=arc) | Q(emotional_arc__isnull=True), tier=tier, current_version__isnull=False)
        .select_related("current_version__template")
    )
    if not candidates:
        raise ApplicationError(
            f"No active prompt template for arc '{arc.name}' ({arc.key}) and tier '{tier}'. "
            "Add one in the admin or activate an existing one.",
            code="no_template",
            errors={"emotional_arc": arc.key, "tier": tier},
        )
    rates = _unscoped_template_approval_rates([t.pk for t in candidates])

    def score(template: PromptTemplate) -> float:
        value = 1.0
        if template.suitable_personas and persona.key not in template.suitable_personas:
            value *= 0.5
        if template.suitable_topics and topic.key not in template.suitable_topics:
            value *= 0.5
        return value

    best = min(
        candidates,
        key=lambda t: (-score(t), -rates.get(t.pk, 0.0), t.emotional_arc_id is None, t.key),
    )
    return best.current_version


@dataclass(frozen=True)
class Compatibility:
    """The result of ``compatibility_check``: a warning, never a block."""

    score: float
    compatible: bool
    warnings: list[str] = field(default_factory=list)


def compatibility_check(*, persona: Persona, arc: EmotionalArc, topic: TrainingTopic) -> Compatibility:
    """How well persona, arc and topic fit together (SPEC §3.5). Pure; never raises.

    Start at 1.0; -0.20 if the arc lists personas and not this one; -0.20 if the arc lists
    topics and not this one; -0.15 if the topic lists personas and not this one; -0.15 if
    the topic lists arcs and not this one. Compatible when the score is above 0.3. The
    arithmetic is done in hundredths so that all four penalties give exactly 0.30.
    """
    hundredths = 100
    warnings: list[str] = []
    if arc.suitable_personas and persona.key not in arc.suitable_personas:
        hundredths -= 20
        warnings.append(f"Arc '{arc.name}' is not meant for persona '{persona.name}' ({persona.key}).")
    if arc.suitable_topics and topic.key not in arc.suitable_topics:
        hundredths -= 20
        warnings.append(f"Arc '{arc.name}' is not meant for topic '{topic.name}' ({topic.key}).")
    if topic.suitable_personas and persona.key not in topic.suitable_personas:
        hundredths -= 15
        warnings.append(f"Topic '{topic.name}' is not meant for persona '{persona.name}' ({persona.key}).")
    if topic.suitable_arcs and arc.key not in topic.suitable_arcs:
        hundredths -= 15
        warnings.append(f"Topic '{topic.name}' is not meant for arc '{arc.name}' ({arc.key}).")
    return Compatibility(score=hundredths / 100, compatible=hundredths > 30, warnings=warnings)


# --- Analytics ---------------------------------------------------------------------------------


def template_version_analytics(
    *,
    versions: QuerySet[PromptTemplateVersion] | list[PromptTemplateVersion] | None = None,
    conversations: QuerySet[Conversation] | None = None,
) -> list[dict[str, Any]]:
    """Per version: conversations generated, approval rate, mean quality, mean cost (SPEC §3.5).

    ``versions``: all versions when None. ``conversations``: the rows to count; callers
    acting for a user pass ``Conversation.objects.for_user(user)`` so each expert sees their
    own numbers; None counts every owner's (admin and staff use). One aggregate query plus
    one for the versions when they are not given.

    Each dict: ``version``, ``template_key``, ``number``, ``conversations``, ``approved``,
    ``reviewed`` (any status but pending_review), ``approval_rate`` (approved / reviewed, None
    when nothing is reviewed: pending conversations are not decided yet), ``mean_quality``
    (None with ``quality_note`` "not scored yet": conversations carry no quality score
    yet, and none is invented) and ``mean_cost_usd`` (Decimal, None without conversations).
    """
    if versions is None:
        versions = PromptTemplateVersion.objects.select_related("template").order_by("template__key", "-number")
    versions = list(versions)
    base = conversations if conversations is not None else Conversation.objects.all()
    rows = (
        base.filter(template_version__in=[v.pk for v in versions])
        .values("template_version_id")
        .annotate(
            total=Count("id"),
            approved=Count("id", filter=Q(status=Conversation.Status.APPROVED)),
            reviewed=Count("id", filter=~Q(status=Conversation.Status.PENDING_REVIEW)),
            mean_cost=Avg("cost_usd"),
        )
        .order_by()
    )
    stats = {row["template_version_id"]: row for row in rows}
    result = []
    for version in versions:
        row = stats.get(version.pk, {})
        reviewed = row.get("reviewed", 0)
        mean_cost = row.get("mean_cost")
        result.append(
            {
                "version": version,
                "template_key": version.template.key,
                "number": version.number,
                "conversations": row.get("total", 0),
                "approved": row.get("approved", 0),
                "reviewed": reviewed,
                "approval_rate": row.get("approved", 0) / reviewed if reviewed else None,
                "mean_quality": None,
                "quality_note": QUALITY_NOT_SCORED,
                "mean_cost_usd": Decimal(mean_cost).quantize(Decimal("0.000001")) if mean_cost is not None else None,
            }
        )
    return result


# --- Generation prompt -------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationPrompt:
    """Everything a generation call sends, built by ``generation_prompt_build``.

    ``shared_prefix`` depends only on the vertical (identical for every call: send it as the
    cacheable system block); ``rendered_template`` is the template version rendered for this
    persona/arc/topic/target_turns; ``system_prompt`` is both joined by a blank line (store it
    on the conversation as the prompt actually sent); ``user_message`` asks for the conversation.
    """

    shared_prefix: str
    rendered_template: str
    system_prompt: str
    user_message: str
    template_version: PromptTemplateVersion
    target_turns: int


def vertical_active() -> VerticalProfile:
    """The installation's active vertical profile; ``no_vertical`` when there is none."""
    vertical = VerticalProfile.objects.active().first()
    if vertical is None:
        raise ApplicationError(
            "No active vertical profile. Run `manage.py seed_scaffolding` or activate one in the admin.",
            code="no_vertical",
        )
    return vertical


def _user_message(
    *, persona: Persona, arc: EmotionalArc, topic: TrainingTopic, vertical: VerticalProfile, turns: int
) -> str:
    return (
        f"Write the conversation between {persona.name} ({persona.archetype}) and {vertical.name} about "
        f'"{topic.name}", following the {arc.name} arc ({arc.starting_emotion} → {arc.ending_emotion}). '
        f"Write exactly {turns} exchanges ({turns * 2} turns): it starts with {persona.name}, the client (role "
        f'"user"), and ends with {vertical.name}, the consultant (role "assistant").'
    )


def generation_prompt_build(
    *,
    persona: Persona,
    arc: EmotionalArc,
    topic: TrainingTopic,
    tier: str,
    vertical: VerticalProfile | None = None,
    template_version: PromptTemplateVersion | None = None,
    target_turns: int | None = None,
    rng: random.Random | None = None,
) -> GenerationPrompt:
    """Build the system prompt and user message for one conversation. Read-only.

    ``vertical`` defaults to the active one (``no_vertical``); ``template_version`` to
    ``template_select`` (``no_template``); ``target_turns`` to ``target_turns_choose`` with
    ``rng``. A given version must belong to a template of this arc or of any arc
    (``template_arc_mismatch``); a given ``target_turns`` must lie in the arc's range
    (``target_turns_out_of_range``). Rendering is strict (see ``template_render``).
    """
    vertical = vertical or vertical_active()
    if template_version is None:
        template_version = template_select(arc=arc, tier=tier, persona=persona, topic=topic)
    template_arc_id = template_version.template.emotional_arc_id
    if template_arc_id is not None and template_arc_id != arc.pk:
        raise ApplicationError(
            f"Template '{template_version.template.key}' is written for another arc than '{arc.key}'.",
            code="template_arc_mismatch",
        )
    if target_turns is None:
        target_turns = target_turns_choose(arc=arc, rng=rng)
    elif not arc.typical_turns_min <= target_turns <= arc.typical_turns_max:
        raise ApplicationError(
            f"target_turns must be between {arc.typical_turns_min} and {arc.typical_turns_max} for arc '{arc.key}'.",
            code="target_turns_out_of_range",
        )
    shared_prefix = shared_prefix_render(vertical=vertical).strip()
    context = template_context(persona=persona, arc=arc, topic=topic, vertical=vertical, target_turns=target_turns)
    rendered = template_render(body=template_version.body, context=context).strip()
    return GenerationPrompt(
        shared_prefix=shared_prefix,
        rendered_template=rendered,
        system_prompt=f"{shared_prefix}\n\n{rendered}",
        user_message=_user_message(persona=persona, arc=arc, topic=topic, vertical=vertical, turns=target_turns),
        template_version=template_version,
        target_turns=target_turns,
    )
