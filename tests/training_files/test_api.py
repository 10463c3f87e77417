"""The training-files API."""

from __future__ import annotations

from django.urls import reverse

from training_files.models import TrainingFile
from training_files.services import training_file_build


def test_create_list_members_versions_download(
    owner_user, api_client_for, make_trainable, local_storage, django_capture_on_commit_callbacks
):
    client = api_client_for(owner_user)
    good = [make_trainable(owner_user) for _ in range(2)]
    pending = make_trainable(owner_user, status="pending_review")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("training-file-list"),
            {"name": "API file", "conversations": [str(c.pk) for c in (*good, pending)]},
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"]["number"] == 1 and body["version"]["status"] == "building"
    assert body["rejected"] == [{"conversation_id": str(pending.pk), "reasons": ["not_approved"]}]
    assert len(callbacks) == 1
    training_file = TrainingFile.objects.get(pk=body["id"])
    training_file_build(version=training_file.versions.get())

    url = reverse("training-file-download", kwargs={"pk": training_file.pk})
    response = client.get(url, {"format": "chat-jsonl"})
    assert response.status_code == 200, response.content
    assert set(response.json()) >= {"url", "expires_at", "sha256", "size"}
    assert client.get(url, {"format": "csv"}).json()["code"] == "unknown_format"
    assert client.get(url, {"format": "v4-json", "version": "x"}).status_code == 400

    members = reverse("training-file-members", kwargs={"pk": training_file.pk})
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(members, {"remove": [str(good[0].pk)]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["version"]["number"] == 2
    assert client.post(members, {}, format="json").status_code == 400

    versions = client.get(reverse("training-file-versions", kwargs={"pk": training_file.pk})).json()
    assert [v["number"] for v in versions["results"]] == [2, 1]
    assert client.get(url, {"format": "v4-json", "version": 2}).json()["code"] == "version_not_ready"
    assert client.get(url, {"format": "v4-json", "version": 1}).status_code == 200


def test_bad_input_is_400(owner_user, api_client_for, make_trainable):
    client = api_client_for(owner_user)
    url = reverse("training-file-list")
    assert client.post(url, {"name": "x", "conversations": ["nope"]}, format="json").status_code == 400
    assert client.post(url, {"name": "x", "conversations": []}, format="json").status_code == 400
    response = client.post(
        url, {"name": "x", "conversations": [str(make_trainable(owner_user, status="rejected").pk)]}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "no_eligible_conversations"


def test_list_query_ceiling(
    owner_user, api_client_for, built, make_trainable, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    from training_files.services import training_file_create

    with django_capture_on_commit_callbacks(execute=False):
        training_file_create(owner=owner_user, name="Second", conversation_ids=[make_trainable(owner_user).pk])
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("training-file-list"))
    assert response.status_code == 200 and response.json()["count"] == 2
