"""Scaffolding browser pages and the scaffolding admin."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from conversations.models import EmotionalArc, Persona, PromptTemplate, PromptTemplateVersion, TrainingTopic
from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    call_command("seed_scaffolding", verbosity=0)


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def test_pages_require_login(seeded, web_client_for):
    detail = reverse("conversations:scaffolding_template", kwargs={"key": "fear_to_confidence_default"})
    for url in [reverse("conversations:scaffolding"), detail]:
        response = web_client_for(None).get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_browse_page_lists_everything(seeded, owner_user, web_client_for, django_assert_max_num_queries):
    template = PromptTemplate.objects.get(key="fear_to_confidence_default")
    common = {
        "owner": owner_user,
        "persona": Persona.objects.first(),
        "emotional_arc": template.emotional_arc,
        "training_topic": TrainingTopic.objects.first(),
        "template_version": template.current_version,
    }
    ConversationFactory(status="approved", cost_usd="0.0400", **common)
    ConversationFactory(status="rejected", cost_usd="0.0200", **common)
    client = web_client_for(owner_user)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("conversations:scaffolding"))
    assert response.status_code == 200
    body = response.content.decode()
    for text in [
        "Marcus Chen",
        "Jennifer Martinez",
        "David Chen",
        "Confusion → Clarity",
        "Crisis → Referral",
        "0.80\u20131.00",
        "4\u20136",
        "Edge Case",
        "Tax-Loss Harvesting Strategy",
        "Cash Flow",
        "Elena Morales, CFP",
        "not scored yet",
        "50%",
        "$0.0300",
    ]:
        assert text in body, text
    for template in PromptTemplate.objects.all():
        assert reverse("conversations:scaffolding_template", kwargs={"key": template.key}) in body
    assert "Edit in the admin" not in body  # not staff


def test_browse_page_query_count_does_not_grow(seeded, owner_user, web_client_for, django_assert_max_num_queries):
    for n in range(5):
        Persona.objects.create(**{**Persona.objects.values().first(), "id": None, "key": f"extra_{n}"})
        EmotionalArc.objects.create(**{**EmotionalArc.objects.values().first(), "id": None, "key": f"extra_{n}"})
    client = web_client_for(owner_user)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("conversations:scaffolding")).status_code == 200


def test_browse_page_without_scaffolding(db, owner_user, web_client_for):
    body = web_client_for(owner_user).get(reverse("conversations:scaffolding")).content.decode()
    assert "seed_scaffolding" in body and "No personas yet." in body


def test_template_page_shows_versions_and_previews(seeded, owner_user, web_client_for):
    url = reverse("conversations:scaffolding_template", kwargs={"key": "crisis_to_referral_default"})
    client = web_client_for(owner_user)
    page = client.get(url)
    assert page.status_code == 200
    assert "v1" in page.content.decode() and "Preview" in page.content.decode()

    response = client.get(url, {"persona": "anxious_planner", "training_topic": "student_loan_payoff"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Jennifer Martinez" in body and "988" in body and "No warnings." in body
    assert "{{" not in response.context["preview"].system_prompt

    warned = client.get(url, {"persona": "pragmatic_optimist", "training_topic": "tax_loss_harvesting"})
    assert warned.status_code == 200
    assert "not compatible" in warned.content.decode()
    assert len(warned.context["compatibility"].warnings) == 4


def test_template_page_preview_errors(seeded, owner_user, web_client_for):
    url = reverse("conversations:scaffolding_template", kwargs={"key": "fear_to_confidence_default"})
    client = web_client_for(owner_user)
    response = client.get(url, {"persona": "anxious_planner", "training_topic": "esg_investing", "target_turns": 20})
    assert response.status_code == 400
    assert "target_turns_out_of_range" in response.content.decode()
    response = client.get(url, {"persona": "nobody", "training_topic": "esg_investing"})
    assert response.status_code == 400 and response.context["form"].errors["persona"]
    assert client.get(reverse("conversations:scaffolding_template", kwargs={"key": "nope"})).status_code == 404


def test_any_arc_template_preview_needs_an_arc(seeded, owner_user, web_client_for):
    from conversations.services.scaffolding import template_version_create

    template = PromptTemplate.objects.create(key="any", name="Any arc")
    template_version_create(template=template, body="{{persona.name}} / {{arc.name}} / {{target_turns}}")
    url = reverse("conversations:scaffolding_template", kwargs={"key": "any"})
    client = web_client_for(owner_user)
    missing = client.get(url, {"persona": "anxious_planner", "training_topic": "esg_investing"})
    assert missing.status_code == 400 and missing.context["form"].errors["emotional_arc"]
    ok = client.get(
        url, {"persona": "anxious_planner", "training_topic": "esg_investing", "emotional_arc": "guilt_to_permission"}
    )
    assert ok.status_code == 200 and "Jennifer Martinez / Guilt → Permission" in ok.content.decode()


# --- Admin -------------------------------------------------------------------------------------------------------


def test_admin_pages_load_for_a_superuser(seeded, superuser, web_client_for):
    client = web_client_for(superuser)
    template = PromptTemplate.objects.first()
    urls = [
        reverse(f"admin:conversations_{model}_changelist")
        for model in [
            "verticalprofile",
            "persona",
            "emotionalarc",
            "trainingtopic",
            "prompttemplate",
            "prompttemplateversion",
        ]
    ]
    urls += [
        reverse("admin:conversations_prompttemplate_change", args=[template.pk]),
        reverse("admin:conversations_prompttemplate_add"),
        reverse("admin:conversations_prompttemplateversion_change", args=[template.current_version.pk]),
        reverse("admin:conversations_persona_change", args=[Persona.objects.first().pk]),
        reverse("admin:conversations_emotionalarc_change", args=[EmotionalArc.objects.first().pk]),
        reverse("admin:conversations_trainingtopic_change", args=[TrainingTopic.objects.first().pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
    assert client.get(reverse("admin:conversations_prompttemplateversion_add")).status_code == 403
    version_url = reverse("admin:conversations_prompttemplateversion_delete", args=[template.current_version.pk])
    assert client.get(version_url).status_code == 403


def _admin_form(template: PromptTemplate, **changes) -> dict:
    data = {
        "key": template.key,
        "name": template.name,
        "emotional_arc": template.emotional_arc_id or "",
        "tier": template.tier,
        "suitable_personas": "[]",
        "suitable_topics": "[]",
        "is_active": "on",
        "new_body": template.current_version.body,
        "change_note": "",
        "versions-TOTAL_FORMS": "1",
        "versions-INITIAL_FORMS": "1",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "0",
        "versions-0-id": template.current_version.pk,
        "versions-0-template": template.pk,
    }
    data.update(changes)
    return data


def test_admin_body_edit_creates_a_version(seeded, superuser, web_client_for):
    client = web_client_for(superuser)
    template = PromptTemplate.objects.get(key="fear_to_confidence_default")
    url = reverse("admin:conversations_prompttemplate_change", args=[template.pk])

    unchanged = client.post(url, _admin_form(template, name="Renamed"))
    assert unchanged.status_code == 302
    template.refresh_from_db()
    assert template.name == "Renamed" and template.versions.count() == 1

    body = template.current_version.body + "\nBe brief, {{persona.name}}."
    changed = client.post(url, _admin_form(template, new_body=body, change_note="brevity"))
    assert changed.status_code == 302
    template.refresh_from_db()
    assert template.current_version.number == 2 and template.current_version.change_note == "brevity"
    assert template.current_version.created_by == superuser

    invalid = client.post(url, _admin_form(template, new_body="Hi {{persona.nickname}}"))
    assert invalid.status_code == 200
    assert "persona.nickname" in str(invalid.context["adminform"].form.errors["new_body"])
    assert template.versions.count() == 2


def test_admin_add_template_creates_version_one(seeded, superuser, web_client_for):
    client = web_client_for(superuser)
    data = {
        "key": "new_one",
        "name": "New one",
        "emotional_arc": "",
        "tier": "scenario",
        "suitable_personas": "[]",
        "suitable_topics": "[]",
        "is_active": "on",
        "new_body": "{{persona.name}} and {{topic.name}}",
        "change_note": "first",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "0",
    }
    response = client.post(reverse("admin:conversations_prompttemplate_add"), data)
    assert response.status_code == 302, response.content[:2000]
    template = PromptTemplate.objects.get(key="new_one")
    assert template.current_version.number == 1
    assert PromptTemplateVersion.objects.filter(template=template).count() == 1
    no_body = client.post(reverse("admin:conversations_prompttemplate_add"), {**data, "key": "x", "new_body": ""})
    assert no_body.status_code == 200 and not PromptTemplate.objects.filter(key="x").exists()


def test_preview_form_refuses_values_that_cannot_be_keys(seeded, owner_user, web_client_for):
    url = reverse("conversations:scaffolding_template", kwargs={"key": "fear_to_confidence_default"})
    response = web_client_for(owner_user).get(url, {"persona": "a\x00b", "training_topic": "esg_investing"})
    assert response.status_code == 400 and response.context["form"].errors["persona"]
