"""Scaffolding API: read for every user, write for staff, versions, preview, compatibility, vertical."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from conversations.models import Persona, PromptTemplate, PromptTemplateVersion
from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    call_command("seed_scaffolding", verbosity=0)


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True)


@pytest.mark.parametrize(
    "name, count",
    [("persona-list", 3), ("emotional-arc-list", 10), ("training-topic-list", 20), ("prompt-template-list", 10)],
)
def test_lists_are_readable_by_every_user(seeded, owner_user, api_client_for, name, count):
    response = api_client_for(owner_user).get(reverse(name))
    assert response.status_code == 200, response.content
    assert response.json()["count"] == count


def test_anonymous_is_refused(seeded, api_client_for):
    for url in [reverse("persona-list"), reverse("vertical-profile-list"), reverse("compatibility-list")]:
        assert api_client_for(None).get(url).status_code in (401, 403)


def test_detail_by_key_and_filters(seeded, owner_user, api_client_for):
    client = api_client_for(owner_user)
    persona = client.get(reverse("persona-detail", kwargs={"key": "anxious_planner"})).json()
    assert persona["name"] == "Jennifer Martinez" and persona["typical_questions"]
    arc = client.get(reverse("emotional-arc-detail", kwargs={"key": "crisis_to_referral"})).json()
    assert arc["tier"] == "edge_case" and arc["typical_turns_min"] == 4
    edge = client.get(reverse("emotional-arc-list"), {"tier": "edge_case"}).json()
    assert {a["key"] for a in edge["results"]} == {"crisis_to_referral", "hostility_to_boundary", "overwhelm_to_triage"}
    tax = client.get(reverse("training-topic-list"), {"category": "tax"}).json()
    assert [t["key"] for t in tax["results"]] == ["tax_loss_harvesting"]
    templates = client.get(reverse("prompt-template-list"), {"emotional_arc": "fear_to_confidence"}).json()
    assert [t["key"] for t in templates["results"]] == ["fear_to_confidence_default"]
    assert templates["results"][0]["current_version"]["number"] == 1
    assert client.get(reverse("persona-detail", kwargs={"key": "nobody"})).status_code == 404


def test_list_query_count(seeded, owner_user, api_client_for, django_assert_max_num_queries):
    client = api_client_for(owner_user)
    for name in ["persona-list", "emotional-arc-list", "training-topic-list", "prompt-template-list"]:
        with django_assert_max_num_queries(6):
            assert client.get(reverse(name)).status_code == 200


def test_writes_are_staff_only(seeded, owner_user, api_client_for):
    client = api_client_for(owner_user)
    url = reverse("persona-detail", kwargs={"key": "anxious_planner"})
    assert client.patch(url, {"name": "X"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    assert client.post(reverse("persona-list"), {"key": "x"}, format="json").status_code == 403
    versions = reverse("prompt-template-versions", kwargs={"key": "fear_to_confidence_default"})
    response = client.post(versions, {"body": "{{persona.name}}"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert PromptTemplateVersion.objects.count() == 10
    assert Persona.objects.get(key="anxious_planner").name == "Jennifer Martinez"


def test_staff_edit_persona_and_arc_validation(seeded, staff, api_client_for):
    client = api_client_for(staff)
    url = reverse("persona-detail", kwargs={"key": "anxious_planner"})
    response = client.patch(url, {"typical_questions": ["What if?"]}, format="json")
    assert response.status_code == 200 and response.json()["typical_questions"] == ["What if?"]
    response = client.patch(url, {"key": "renamed"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "key_immutable"
    arc_url = reverse("emotional-arc-detail", kwargs={"key": "fear_to_confidence"})
    response = client.patch(arc_url, {"typical_turns_min": 9}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_range"
    response = client.patch(arc_url, {"suitable_personas": ["nobody"]}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "does_not_exist"


def test_delete_in_use_is_a_400_not_a_500(seeded, staff, api_client_for):
    persona = Persona.objects.get(key="anxious_planner")
    ConversationFactory(persona=persona)
    response = api_client_for(staff).delete(reverse("persona-detail", kwargs={"key": "anxious_planner"}))
    assert response.status_code == 400 and response.json()["code"] == "in_use"
    arc_response = api_client_for(staff).delete(reverse("emotional-arc-detail", kwargs={"key": "fear_to_confidence"}))
    assert arc_response.status_code == 400 and arc_response.json()["code"] == "in_use"  # its template protects it


def test_staff_creates_a_version(seeded, staff, owner_user, api_client_for):
    url = reverse("prompt-template-versions", kwargs={"key": "fear_to_confidence_default"})
    template = PromptTemplate.objects.get(key="fear_to_confidence_default")
    body = template.current_version.body + "\nOne more rule for {{persona.name}}."
    response = api_client_for(staff).post(url, {"body": body, "change_note": "tighter"}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["number"] == 2 and data["created_by"] == "staff" and "persona.name" in data["variables"]
    template.refresh_from_db()
    assert template.current_version.number == 2

    listed = api_client_for(owner_user).get(url)
    assert listed.status_code == 200
    assert [v["number"] for v in listed.json()] == [2, 1]


@pytest.mark.parametrize(
    "body, code",
    [
        ("Hello {{persona.nickname}}", "template_unknown_variable"),
        ("Hello {{persona.name", "template_malformed_placeholder"),
        ("   ", "template_empty"),
    ],
)
def test_invalid_versions_are_400_with_a_code(seeded, staff, api_client_for, body, code):
    url = reverse("prompt-template-versions", kwargs={"key": "fear_to_confidence_default"})
    response = api_client_for(staff).post(url, {"body": body}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    if code == "template_unknown_variable":
        assert response.json()["errors"] == {"variables": ["persona.nickname"]}
    assert PromptTemplateVersion.objects.count() == 10


def test_staff_creates_a_template(seeded, staff, api_client_for):
    payload = {
        "key": "any_arc_short",
        "name": "Any arc, short",
        "emotional_arc": None,
        "tier": "scenario",
        "suitable_personas": ["anxious_planner"],
        "body": "{{persona.name}} talks about {{topic.name}} for {{target_turns}} exchanges.",
    }
    response = api_client_for(staff).post(reverse("prompt-template-list"), payload, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["current_version"]["number"] == 1 and response.json()["emotional_arc"] is None
    bad = api_client_for(staff).post(
        reverse("prompt-template-list"), {**payload, "key": "other", "body": "{{nope}}"}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["code"] == "template_unknown_variable"
    assert not PromptTemplate.objects.filter(key="other").exists()
    taken = api_client_for(staff).post(reverse("prompt-template-list"), payload, format="json")
    assert taken.status_code == 400 and taken.json()["code"] == "unique"


def test_preview_with_samples_and_given_keys(seeded, owner_user, api_client_for):
    client = api_client_for(owner_user)
    url = reverse("prompt-template-preview", kwargs={"key": "shame_to_acceptance_default"})
    response = client.post(url, {}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert {"system_prompt", "user_message", "target_turns", "template_version"} <= set(data)
    assert "{{" not in data["system_prompt"] and data["template_version"]["number"] == 1
    assert 4 <= data["target_turns"] <= 5

    given = client.post(
        url,
        {"persona": "pragmatic_optimist", "training_topic": "esg_investing", "target_turns": 5, "version": 1},
        format="json",
    ).json()
    assert "David Chen" in given["system_prompt"] and "ESG and Values-Based Investing" in given["system_prompt"]
    assert given["target_turns"] == 5 and "exactly 5 exchanges" in given["user_message"]
    assert given["compatibility"]["compatible"] is True
    # Stable: the same request renders the same prompt.
    again = client.post(url, {"persona": "pragmatic_optimist", "training_topic": "esg_investing"}, format="json")
    assert (
        again.json()
        == client.post(url, {"persona": "pragmatic_optimist", "training_topic": "esg_investing"}, format="json").json()
    )


def test_preview_shows_incompatibility_warnings(seeded, owner_user, api_client_for):
    url = reverse("prompt-template-preview", kwargs={"key": "crisis_to_referral_default"})
    data = (
        api_client_for(owner_user)
        .post(url, {"persona": "pragmatic_optimist", "training_topic": "tax_loss_harvesting"}, format="json")
        .json()
    )
    assert data["compatibility"] == {"score": 0.3, "compatible": False, "warnings": data["compatibility"]["warnings"]}
    assert len(data["compatibility"]["warnings"]) == 4


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"persona": "nobody"}, 400, "does_not_exist"),
        ({"version": 7}, 400, "unknown_version"),
        ({"target_turns": 50}, 400, "target_turns_out_of_range"),
        ({"emotional_arc": "fear_to_confidence"}, 400, "template_arc_mismatch"),
        ({"version": 10**12}, 400, "max_value"),
    ],
)
def test_preview_errors_are_400_with_codes(seeded, owner_user, api_client_for, payload, status, code):
    url = reverse("prompt-template-preview", kwargs={"key": "shame_to_acceptance_default"})
    response = api_client_for(owner_user).post(url, payload, format="json")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_preview_of_an_unknown_template_is_404(seeded, owner_user, api_client_for):
    response = api_client_for(owner_user).post(reverse("prompt-template-preview", kwargs={"key": "nope"}), {})
    assert response.status_code == 404


def test_compatibility_endpoint(seeded, owner_user, api_client_for):
    client = api_client_for(owner_user)
    url = reverse("compatibility-list")
    ok = client.get(
        url, {"persona": "anxious_planner", "emotional_arc": "fear_to_confidence", "training_topic": "long_term_care"}
    )
    assert ok.status_code == 200 and ok.json() == {"score": 1.0, "compatible": True, "warnings": []}
    bad = client.get(
        url,
        {
            "persona": "pragmatic_optimist",
            "emotional_arc": "crisis_to_referral",
            "training_topic": "tax_loss_harvesting",
        },
    )
    assert bad.json()["compatible"] is False and bad.json()["score"] == 0.3
    missing = client.get(url, {"persona": "anxious_planner"})
    assert missing.status_code == 400 and missing.json()["code"] == "required"
    unknown = client.get(url, {"persona": "x", "emotional_arc": "y", "training_topic": "z"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "does_not_exist"


def test_vertical_profile(seeded, owner_user, api_client_for):
    data = api_client_for(owner_user).get(reverse("vertical-profile-list")).json()
    assert data["name"] == "Elena Morales, CFP" and len(data["core_philosophy"]) == 5
    assert data["communication_style"]["tone"] == "warm, professional, never condescending"
    assert api_client_for(owner_user).post(reverse("vertical-profile-list"), {}).status_code == 405


def test_no_vertical_is_404_with_a_code(db, owner_user, api_client_for):
    response = api_client_for(owner_user).get(reverse("vertical-profile-list"))
    assert response.status_code == 404 and response.json()["code"] == "no_vertical"


def test_nul_bytes_in_keys_are_400_not_500(seeded, owner_user, api_client_for):
    client = api_client_for(owner_user)
    response = client.get(
        reverse("compatibility-list"),
        {"persona": "a\x00b", "emotional_arc": "fear_to_confidence", "training_topic": "esg_investing"},
    )
    assert response.status_code == 400 and response.json()["code"] == "does_not_exist"
    url = reverse("prompt-template-preview", kwargs={"key": "shame_to_acceptance_default"})
    assert client.post(url, {"training_topic": "\x00"}, format="json").status_code == 400
