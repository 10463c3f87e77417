"""Strict template rendering: the variable registry, save-time and render-time errors, and every seeded template."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from brightrun.errors import ApplicationError
from conversations.models import EmotionalArc, Persona, PromptTemplate, PromptTemplateVersion, TrainingTopic
from conversations.services.scaffolding import (
    SHARED_PREFIX_TEMPLATE,
    TEMPLATE_VARIABLES,
    compatibility_check,
    template_body_validate,
    template_context,
    template_render,
    template_version_create,
    vertical_active,
)
from tests.factories import EmotionalArcFactory, PersonaFactory, TrainingTopicFactory


def _context(**extra):
    return {"persona.name": "Marcus Chen", "target_turns": 4, **extra}


# --- Pure rendering ----------------------------------------------------------------------------------


def test_render_substitutes_and_formats_values():
    body = (
        "Hi {{persona.name}} / {{ persona.name }}: {{target_turns}} exchanges, start {{arc.start_intensity_min}}, "
        "specialist {{topic.requires_specialist}}.\nQuestions:\n{{persona.typical_questions}}"
    )
    context = _context(
        **{
            "arc.start_intensity_min": 0.7,
            "topic.requires_specialist": False,
            "persona.typical_questions": ["Where do I start?", "Is it bad?"],
        }
    )
    assert template_render(body=body, context=context) == (
        "Hi Marcus Chen / Marcus Chen: 4 exchanges, start 0.70, specialist no.\nQuestions:\n"
        "- Where do I start?\n- Is it bad?"
    )


def test_unknown_variable_is_an_error_naming_every_offender():
    with pytest.raises(ApplicationError) as exc:
        template_render(body="{{persona.name}} {{persona.nickname}} {{client_name}}", context=_context())
    assert exc.value.code == "template_unknown_variable"
    assert exc.value.errors == {"variables": ["client_name", "persona.nickname"]}
    assert "{{persona.nickname}}" in exc.value.message


@pytest.mark.parametrize("body", ["", "   \n", "Hello {{persona.name", "{{ {{persona.name}}"])
def test_empty_or_malformed_bodies_are_refused(body):
    with pytest.raises(ApplicationError) as exc:
        template_body_validate(body=body)
    assert exc.value.code in ("template_empty", "template_malformed_placeholder")


@pytest.mark.parametrize("value", [None, "", "   ", [], ["", "  "]])
def test_missing_value_at_render_is_an_error(value):
    context = _context(**{"persona.archetype": value})
    with pytest.raises(ApplicationError) as exc:
        template_render(body="{{persona.name}} ({{persona.archetype}})", context=context)
    assert exc.value.code == "template_missing_value"
    assert exc.value.errors == {"variables": ["persona.archetype"]}


def test_absent_value_at_render_is_an_error():
    with pytest.raises(ApplicationError) as exc:
        template_render(body="{{persona.name}} in {{persona.location}}", context=_context())
    assert exc.value.code == "template_missing_value"
    assert exc.value.errors == {"variables": ["persona.location"]}


def test_a_value_holding_a_placeholder_never_reaches_the_output():
    context = _context(**{"persona.name": "{{vertical.name}}"})
    with pytest.raises(ApplicationError) as exc:
        template_render(body="Client: {{persona.name}}", context=context)
    assert exc.value.code == "template_unresolved_placeholder"


def test_zero_and_false_are_values_not_missing():
    context = _context(**{"arc.complexity": 0, "topic.requires_specialist": False})
    assert template_render(body="{{arc.complexity}} {{topic.requires_specialist}}", context=context) == "0 no"


def test_registry_is_documented_and_complete(scaffold_rows):
    persona, arc, topic, vertical = scaffold_rows
    context = template_context(persona=persona, arc=arc, topic=topic, vertical=vertical, target_turns=3)
    assert set(context) == set(TEMPLATE_VARIABLES)
    assert all(description.strip() for description in TEMPLATE_VARIABLES.values())
    for model, prefix, skipped in [
        (Persona, "persona", {"id", "is_active", "usage_count"}),
        (EmotionalArc, "arc", {"id", "is_active"}),
        (TrainingTopic, "topic", {"id", "is_active"}),
    ]:
        fields = {f.name for f in model._meta.concrete_fields} - skipped
        assert {f"{prefix}.{name}" for name in fields} <= set(TEMPLATE_VARIABLES), model
    for name in ("vertical.core_philosophy", "vertical.communication_style.tone", "target_turns"):
        assert name in TEMPLATE_VARIABLES
    # A body using every variable renders with nothing left over.
    body = "\n".join("{{" + name + "}}" for name in TEMPLATE_VARIABLES)
    assert "{{" not in template_render(body=body, context=context)


def test_empty_suitability_lists_render_as_any(scaffold_rows):
    persona, arc, topic, vertical = scaffold_rows
    context = template_context(persona=persona, arc=arc, topic=topic, vertical=vertical, target_turns=3)
    assert template_render(body="{{arc.suitable_topics}} / {{topic.suitable_arcs}}", context=context) == (
        "any topic / any arc"
    )


# --- Save time ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_variable_is_refused_at_save_time():
    template = PromptTemplate.objects.create(key="t", name="T")
    with pytest.raises(ApplicationError) as exc:
        template_version_create(template=template, body="Hello {{persona.first_name}}")
    assert exc.value.code == "template_unknown_variable"
    assert exc.value.errors == {"variables": ["persona.first_name"]}
    assert PromptTemplateVersion.objects.count() == 0
    version = template_version_create(template=template, body="Hello {{persona.name}}, {{ target_turns }} turns")
    assert version.variables == ["persona.name", "target_turns"]


# --- Seeded templates ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_seeded_template_renders_for_every_compatible_persona_and_topic():
    call_command("seed_scaffolding", verbosity=0)
    vertical = vertical_active()
    personas = list(Persona.objects.active())
    topics = list(TrainingTopic.objects.active())
    templates = list(PromptTemplate.objects.active().select_related("emotional_arc", "current_version"))
    assert len(templates) == 10 and len(personas) == 3 and len(topics) == 20
    rendered = skipped = 0
    for template in templates:
        arc = template.emotional_arc
        for persona in personas:
            for topic in topics:
                if not compatibility_check(persona=persona, arc=arc, topic=topic).compatible:
                    skipped += 1
                    continue
                for turns in {arc.typical_turns_min, arc.typical_turns_max}:
                    context = template_context(
                        persona=persona, arc=arc, topic=topic, vertical=vertical, target_turns=turns
                    )
                    text = template_render(body=template.current_version.body, context=context)
                    assert "{{" not in text and "}}" not in text
                    assert persona.name in text and topic.name in text and f"exactly {turns} exchanges" in text
                    rendered += 1
    assert rendered > 500
    assert skipped >= 1  # the seed has at least one deliberately incompatible combination
    shared = template_render(
        body=SHARED_PREFIX_TEMPLATE,
        context=template_context(
            persona=personas[0],
            arc=templates[0].emotional_arc,
            topic=topics[0],
            vertical=vertical,
            target_turns=3,
        ),
    )
    assert "{{" not in shared and vertical.name in shared


@pytest.mark.django_db
def test_seeded_templates_follow_the_required_shape():
    call_command("seed_scaffolding", verbosity=0)
    sections = [
        "## Configuration",
        "## Quality bar",
        "## Turn-by-turn arc pattern",
        "## Consultant voice",
        "## Client background",
        "## Topic context",
        "## Safety",
        "## Output",
    ]
    for template in PromptTemplate.objects.select_related("emotional_arc", "current_version"):
        body = template.current_version.body
        positions = [body.index(heading) for heading in sections]
        assert positions == sorted(positions), template.key
        assert template.tier == template.emotional_arc.tier
        assert "schema" in body.split("## Output")[1]
    crisis = PromptTemplate.objects.get(emotional_arc__key="crisis_to_referral").current_version.body
    assert "988" in crisis and "No financial advice" in crisis
    hostility = PromptTemplate.objects.get(emotional_arc__key="hostility_to_boundary").current_version.body
    assert "boundary" in hostility.lower()
    triage = PromptTemplate.objects.get(emotional_arc__key="overwhelm_to_triage").current_version.body
    assert "exactly one next step" in triage.lower()


@pytest.fixture
def scaffold_rows(db):
    from conversations.models import VerticalProfile
    from conversations.seed.vertical import VERTICAL

    vertical = VerticalProfile.objects.create(**VERTICAL)
    persona = PersonaFactory(
        typical_questions=["Where do I start?"], common_concerns=["Fees"], language_patterns=["Honestly…"]
    )
    arc = EmotionalArcFactory(
        key_principles=["Go slow"],
        characteristic_phrases=["Let's see"],
        response_techniques=["Reflect"],
        avoid_tactics=["Jargon"],
    )
    topic = TrainingTopicFactory(example_questions=["Is it worth it?"], key_concepts=["Compounding"])
    return persona, arc, topic, vertical
