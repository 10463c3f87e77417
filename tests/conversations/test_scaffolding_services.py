"""Scaffolding services: versions, seed, selection, compatibility, analytics, generation prompts."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.core.management import call_command

from brightrun.errors import ApplicationError
from conversations.models import (
    EmotionalArc,
    Persona,
    PromptTemplate,
    PromptTemplateVersion,
    TrainingTopic,
    VerticalProfile,
)
from conversations.services.scaffolding import (
    compatibility_check,
    generation_prompt_build,
    target_turns_choose,
    template_select,
    template_version_analytics,
    template_version_create,
)
from tests.factories import (
    ConversationFactory,
    EmotionalArcFactory,
    PersonaFactory,
    TrainingTopicFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

BODY = "{{persona.name}} / {{arc.name}} / {{topic.name}} / {{target_turns}}"


def _template(key: str, *, arc=None, tier="template", body=BODY, **fields) -> PromptTemplate:
    template = PromptTemplate.objects.create(key=key, name=key, emotional_arc=arc, tier=tier, **fields)
    template_version_create(template=template, body=body)
    return template


# --- Versions --------------------------------------------------------------------------------------------


def test_versions_are_numbered_immutable_and_current():
    user = UserFactory(username="editor", is_staff=True)
    template = PromptTemplate.objects.create(key="t", name="T")
    first = template_version_create(template=template, body="v1 {{persona.name}}", actor=user, change_note="first")
    second = template_version_create(template=template, body="v2 {{persona.name}}")
    template.refresh_from_db()
    assert (first.number, second.number) == (1, 2)
    assert template.current_version == second
    assert first.created_by == user and first.change_note == "first"
    first.refresh_from_db()
    assert first.body == "v1 {{persona.name}}"  # the earlier text is kept as it was
    with pytest.raises(ApplicationError) as exc:
        template_version_create(template=template, body="v2 {{persona.name}}")
    assert exc.value.code == "template_unchanged"
    assert template.versions.count() == 2


# --- Seed ------------------------------------------------------------------------------------------------


def _snapshot() -> dict:
    return {
        model.__name__: sorted(
            model.objects.values_list("pk", "updated_at")
            if hasattr(model, "updated_at")
            else model.objects.values_list("pk", flat=True)
        )
        for model in (VerticalProfile, Persona, EmotionalArc, TrainingTopic, PromptTemplate, PromptTemplateVersion)
    }


def test_seed_creates_the_spec_data(capsys):
    call_command("seed_scaffolding")
    out = capsys.readouterr().out.strip()
    assert out.startswith("Scaffolding seeded:") and "\n" not in out
    assert "personas 3 created" in out and "template versions 10 created" in out
    vertical = VerticalProfile.objects.get()
    assert vertical.is_active and vertical.name == "Elena Morales, CFP"
    assert vertical.business == "Pathways Financial Planning" and vertical.years_experience == 15
    assert len(vertical.core_philosophy) == 5
    assert len(vertical.communication_style["techniques"]) == 5 and len(vertical.communication_style["avoid"]) == 5
    assert "988" in vertical.inference_system_prompt
    assert set(Persona.objects.values_list("key", "name")) == {
        ("overwhelmed_avoider", "Marcus Chen"),
        ("anxious_planner", "Jennifer Martinez"),
        ("pragmatic_optimist", "David Chen"),
    }
    assert EmotionalArc.objects.count() == 10 and TrainingTopic.objects.active().count() == 20
    crisis = EmotionalArc.objects.get(key="crisis_to_referral")
    assert (crisis.start_intensity_min, crisis.start_intensity_max) == (0.8, 1.0)
    assert (crisis.typical_turns_min, crisis.typical_turns_max, crisis.complexity, crisis.tier) == (
        4,
        6,
        10,
        "edge_case",
    )
    relief = EmotionalArc.objects.get(key="frustration_to_relief")
    assert (relief.typical_turns_min, relief.typical_turns_max, relief.complexity, relief.tier) == (2, 4, 6, "template")
    for arc in EmotionalArc.objects.all():
        templates = PromptTemplate.objects.active().filter(emotional_arc=arc)
        assert templates.count() == 1 and templates.get().tier == arc.tier
        assert arc.key_principles and arc.characteristic_phrases and arc.response_techniques and arc.avoid_tactics
    for persona in Persona.objects.all():
        assert persona.typical_questions and persona.common_concerns and persona.language_patterns
    for topic in TrainingTopic.objects.all():
        assert topic.example_questions and topic.key_concepts and topic.complexity


def test_seed_is_idempotent(capsys):
    call_command("seed_scaffolding")
    before = _snapshot()
    capsys.readouterr()
    call_command("seed_scaffolding")
    out = capsys.readouterr().out
    assert " created" in out and "0 created/0 updated" in out
    assert "1 created" not in out and "1 updated" not in out
    assert _snapshot() == before  # no new rows, no new versions, nothing re-saved


def test_seed_repairs_drift_but_keeps_an_admins_newer_body():
    call_command("seed_scaffolding", verbosity=0)
    Persona.objects.filter(key="anxious_planner").update(name="Changed")
    template = PromptTemplate.objects.get(key="confusion_to_clarity_default")
    edited = template_version_create(template=template, body=template.current_version.body + "\nExtra {{persona.name}}")
    call_command("seed_scaffolding", verbosity=0)
    assert Persona.objects.get(key="anxious_planner").name == "Jennifer Martinez"
    template.refresh_from_db()
    assert template.current_version == edited and template.versions.count() == 2


def test_seed_keep_existing_leaves_rows_alone():
    call_command("seed_scaffolding", verbosity=0)
    Persona.objects.filter(key="anxious_planner").update(name="Changed")
    call_command("seed_scaffolding", "--keep-existing", verbosity=0)
    assert Persona.objects.get(key="anxious_planner").name == "Changed"


def test_seed_does_not_steal_the_active_vertical():
    from conversations.seed.vertical import VERTICAL

    other = VerticalProfile.objects.create(**{**VERTICAL, "key": "other_vertical", "name": "Other"})
    call_command("seed_scaffolding", verbosity=0)
    assert VerticalProfile.objects.active().get() == other


# --- Turns, selection ---------------------------------------------------------------------------------------


def test_target_turns_stay_in_the_arc_range():
    arc = EmotionalArcFactory(typical_turns_min=3, typical_turns_max=5)
    rng = random.Random(7)
    assert {target_turns_choose(arc=arc, rng=rng) for _ in range(200)} == {3, 4, 5}
    broken = EmotionalArcFactory(typical_turns_min=5, typical_turns_max=3)
    with pytest.raises(ApplicationError) as exc:
        target_turns_choose(arc=broken)
    assert exc.value.code == "arc_turn_range_invalid"


@pytest.fixture
def pat():
    return PersonaFactory(key="p1"), EmotionalArcFactory(key="a1", name="Worry → Calm"), TrainingTopicFactory(key="t1")


def test_selection_scores_suitability(pat):
    persona, arc, topic = pat
    both_wrong = _template("both_wrong", arc=arc, suitable_personas=["x"], suitable_topics=["y"])
    assert template_select(arc=arc, tier="template", persona=persona, topic=topic) == both_wrong.current_version
    persona_wrong = _template("persona_wrong", arc=arc, suitable_personas=["x"])
    assert template_select(arc=arc, tier="template", persona=persona, topic=topic) == persona_wrong.current_version
    fits = _template("fits", arc=None, suitable_personas=["p1"], suitable_topics=["t1"])  # any-arc, full score
    assert template_select(arc=arc, tier="template", persona=persona, topic=topic) == fits.current_version


def test_selection_ignores_other_arcs_tiers_and_inactive(pat):
    persona, arc, topic = pat
    _template("other_arc", arc=EmotionalArcFactory(key="a2"))
    _template("other_tier", arc=arc, tier="edge_case")
    _template("inactive", arc=arc, is_active=False)
    with pytest.raises(ApplicationError) as exc:
        template_select(arc=arc, tier="template", persona=persona, topic=topic)
    assert exc.value.code == "no_template"
    assert "Worry → Calm" in exc.value.message and "a1" in exc.value.message and "'template'" in exc.value.message
    assert template_select(arc=arc, tier="edge_case", persona=persona, topic=topic).template.key == "other_tier"
    with pytest.raises(ApplicationError) as exc:
        template_select(arc=arc, tier="nonsense", persona=persona, topic=topic)
    assert exc.value.code == "invalid_tier"


def test_selection_breaks_ties_by_approval_rate(pat):
    persona, arc, topic = pat
    worse = _template("aaa_worse", arc=arc)
    better = _template("zzz_better", arc=arc)
    common = {"persona": persona, "emotional_arc": arc, "training_topic": topic}
    ConversationFactory(template_version=worse.current_version, status="approved", **common)
    ConversationFactory(template_version=worse.current_version, status="rejected", **common)
    ConversationFactory(template_version=better.current_version, status="approved", **common)
    assert template_select(arc=arc, tier="template", persona=persona, topic=topic) == better.current_version


# --- Compatibility --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arc_personas, arc_topics, topic_personas, topic_arcs, score, compatible, warnings",
    [
        ([], [], [], [], 1.0, True, 0),
        (["p1"], ["t1"], ["p1"], ["a1"], 1.0, True, 0),
        (["x"], [], [], [], 0.8, True, 1),
        ([], ["x"], [], [], 0.8, True, 1),
        ([], [], ["x"], [], 0.85, True, 1),
        ([], [], [], ["x"], 0.85, True, 1),
        (["x"], ["x"], [], [], 0.6, True, 2),
        (["x"], ["x"], ["x"], [], 0.45, True, 3),
        (["x"], ["x"], ["x"], ["x"], 0.3, False, 4),  # exactly 0.30 is not > 0.3
    ],
)
def test_compatibility_arithmetic(arc_personas, arc_topics, topic_personas, topic_arcs, score, compatible, warnings):
    persona = PersonaFactory(key="p1")
    arc = EmotionalArcFactory(key="a1", suitable_personas=arc_personas, suitable_topics=arc_topics)
    topic = TrainingTopicFactory(key="t1", suitable_personas=topic_personas, suitable_arcs=topic_arcs)
    result = compatibility_check(persona=persona, arc=arc, topic=topic)
    assert result.score == score
    assert result.compatible is compatible
    assert len(result.warnings) == warnings


# --- Analytics ---------------------------------------------------------------------------------------------------


def test_analytics_per_version(pat, owner_user, other_user):
    persona, arc, topic = pat
    template = _template("t", arc=arc)
    v1 = template.current_version
    v2 = template_version_create(template=template, body=BODY + " v2")
    common = {"persona": persona, "emotional_arc": arc, "training_topic": topic, "template_version": v1}
    ConversationFactory(owner=owner_user, status="approved", cost_usd=Decimal("0.10"), **common)
    ConversationFactory(owner=owner_user, status="rejected", cost_usd=Decimal("0.20"), **common)
    ConversationFactory(owner=owner_user, status="pending_review", cost_usd=Decimal("0.30"), **common)
    ConversationFactory(owner=other_user, status="approved", cost_usd=Decimal("1.00"), **common)

    rows = {row["number"]: row for row in template_version_analytics(versions=[v1, v2])}
    assert rows[1]["conversations"] == 4 and rows[1]["approved"] == 2 and rows[1]["reviewed"] == 3
    assert rows[1]["approval_rate"] == pytest.approx(2 / 3)
    assert rows[1]["mean_cost_usd"] == Decimal("0.400000")
    assert rows[1]["mean_quality"] is None and rows[1]["quality_note"] == "not scored yet"
    assert rows[2]["conversations"] == 0 and rows[2]["approval_rate"] is None and rows[2]["mean_cost_usd"] is None

    from conversations.models import Conversation

    mine = template_version_analytics(versions=[v1], conversations=Conversation.objects.for_user(owner_user))[0]
    assert mine["conversations"] == 3 and mine["approval_rate"] == 0.5 and mine["mean_cost_usd"] == Decimal("0.2")
    assert {row["template_key"] for row in template_version_analytics()} == {"t"}


# --- Generation prompt ---------------------------------------------------------------------------------------------


@pytest.fixture
def seeded():
    call_command("seed_scaffolding", verbosity=0)
    return (
        Persona.objects.get(key="overwhelmed_avoider"),
        EmotionalArc.objects.get(key="confusion_to_clarity"),
        TrainingTopic.objects.get(key="ignored_401k"),
    )


def test_generation_prompt_build(seeded):
    persona, arc, topic = seeded
    prompt = generation_prompt_build(persona=persona, arc=arc, topic=topic, tier="template", rng=random.Random(1))
    assert arc.typical_turns_min <= prompt.target_turns <= arc.typical_turns_max
    assert prompt.template_version.template.key == "confusion_to_clarity_default"
    assert prompt.system_prompt == f"{prompt.shared_prefix}\n\n{prompt.rendered_template}"
    assert "{{" not in prompt.system_prompt and "{{" not in prompt.user_message
    assert "Elena Morales, CFP" in prompt.shared_prefix and "Marcus Chen" not in prompt.shared_prefix
    assert "Marcus Chen" in prompt.rendered_template and topic.name in prompt.rendered_template
    assert f"exactly {prompt.target_turns} exchanges" in prompt.user_message
    assert (
        "Marcus Chen" in prompt.user_message and arc.name in prompt.user_message and topic.name in prompt.user_message
    )
    assert "starts with Marcus Chen" in prompt.user_message and "ends with Elena Morales, CFP" in prompt.user_message
    assert len(prompt.shared_prefix) > 4500  # long enough to be worth caching (> 1024 tokens)
    with pytest.raises(AttributeError):
        prompt.target_turns = 99  # frozen

    other = generation_prompt_build(
        persona=Persona.objects.get(key="pragmatic_optimist"),
        arc=EmotionalArc.objects.get(key="crisis_to_referral"),
        topic=TrainingTopic.objects.get(key="student_loan_payoff"),
        tier="edge_case",
        target_turns=4,
    )
    assert other.shared_prefix == prompt.shared_prefix  # identical for every call: cacheable
    assert other.target_turns == 4 and "988" in other.rendered_template


def test_generation_prompt_build_errors(seeded):
    persona, arc, topic = seeded
    with pytest.raises(ApplicationError) as exc:
        generation_prompt_build(persona=persona, arc=arc, topic=topic, tier="template", target_turns=9)
    assert exc.value.code == "target_turns_out_of_range"
    crisis_version = PromptTemplate.objects.get(key="crisis_to_referral_default").current_version
    with pytest.raises(ApplicationError) as exc:
        generation_prompt_build(persona=persona, arc=arc, topic=topic, tier="template", template_version=crisis_version)
    assert exc.value.code == "template_arc_mismatch"
    with pytest.raises(ApplicationError) as exc:
        generation_prompt_build(persona=persona, arc=arc, topic=topic, tier="scenario")
    assert exc.value.code == "no_template"
    VerticalProfile.objects.update(is_active=False)
    with pytest.raises(ApplicationError) as exc:
        generation_prompt_build(persona=persona, arc=arc, topic=topic, tier="template")
    assert exc.value.code == "no_vertical"


def test_generation_prompt_build_refuses_a_missing_value(seeded):
    persona, arc, topic = seeded
    Persona.objects.filter(pk=persona.pk).update(language_patterns=[])
    persona.refresh_from_db()
    with pytest.raises(ApplicationError) as exc:
        generation_prompt_build(persona=persona, arc=arc, topic=topic, tier="template")
    assert exc.value.code == "template_missing_value"
    assert exc.value.errors == {"variables": ["persona.language_patterns"]}
