"""Training file pages: create/add from a selection, list, detail, remove, retry, download, isolation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from training_files.models import TrainingFile, TrainingFileVersion

pytestmark = pytest.mark.django_db

LIST = reverse("training_files:list")
CREATE = reverse("training_files:create_from_selection")
ADD = reverse("training_files:add_from_selection")


def _detail(f) -> str:
    return reverse("training_files:detail", kwargs={"pk": f.pk})


def _download(f, number=1, fmt="chat-jsonl") -> str:
    return reverse("training_files:download", kwargs={"pk": f.pk, "number": number, "fmt": fmt})


def test_create_from_selection_explains_the_gate_per_conversation(
    owner_user, web_client_for, make_trainable, django_capture_on_commit_callbacks
):
    good = make_trainable(owner_user, title="Good one")
    pending = make_trainable(owner_user, status="pending_review", title="Still pending")
    raw = make_trainable(owner_user, enrichment_status="pending", title="Not enriched yet")
    with django_capture_on_commit_callbacks(execute=False):
        response = web_client_for(owner_user).post(
            CREATE, {"ids": [good.pk, pending.pk, raw.pk], "tf_name": "Mine", "tf_description": "d"}
        )
    assert response.status_code == 200
    body = response.content.decode()
    training_file = TrainingFile.objects.get(owner=owner_user, name="Mine")
    assert _detail(training_file) in body
    assert "Good one" in body
    assert "Still pending" in body and "not approved yet" in body
    assert "Not enriched yet" in body and "enrichment not completed" in body
    assert training_file.versions.get().number == 1


def test_create_errors_show_the_form_again(owner_user, web_client_for, make_trainable, built):
    client = web_client_for(owner_user)
    pending = make_trainable(owner_user, status="pending_review", title="Pending")
    response = client.post(CREATE, {"ids": [pending.pk], "tf_name": "Other"})
    assert response.status_code == 400
    assert "not approved yet" in response.content.decode()
    response = client.post(CREATE, {"ids": [make_trainable(owner_user).pk], "tf_name": "First file"})
    assert response.status_code == 400
    assert "already have a training file" in response.content.decode()
    assert client.post(CREATE, {"ids": [pending.pk], "tf_name": ""}).status_code == 400


def test_add_to_an_existing_file_creates_a_new_version(
    owner_user, web_client_for, make_trainable, built, django_capture_on_commit_callbacks
):
    training_file, members = built
    client = web_client_for(owner_user)
    new = make_trainable(owner_user, title="Newcomer")
    chooser = client.post(ADD, {"ids": [new.pk]})
    assert chooser.status_code == 200 and "First file" in chooser.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(ADD, {"ids": [new.pk, members[0].pk], "training_file": training_file.pk})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Newcomer" in body and "already in the file" in body
    assert list(training_file.versions.values_list("number", flat=True).order_by("number")) == [1, 2]
    # nothing to add: the form again with the reasons
    response = client.post(ADD, {"ids": [members[0].pk], "training_file": training_file.pk})
    assert response.status_code == 400 and "already in the file" in response.content.decode()


def test_list_and_detail_render_with_flat_queries(
    owner_user, web_client_for, make_trainable, built, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    from training_files.services import training_file_create

    training_file, _ = built
    with django_capture_on_commit_callbacks(execute=False):
        training_file_create(owner=owner_user, name="Second file", conversation_ids=[make_trainable(owner_user).pk])
    client = web_client_for(owner_user)
    with django_assert_max_num_queries(8):
        response = client.get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert "First file" in body and "Second file" in body and "building" in body
    with django_assert_max_num_queries(10):
        response = client.get(_detail(training_file))
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("datasets:import") in body and "Import as dataset" in body
    assert _download(training_file, 1, "v4-json") in body
    assert "Human-reviewed" in body and 'class="bar"' in body
    assert len(response.context["members"]) == 3


def test_list_empty_state(owner_user, web_client_for):
    response = web_client_for(owner_user).get(LIST)
    assert response.status_code == 200 and "No training files yet" in response.content.decode()


def test_detail_unscored_and_building_poll(owner_user, web_client_for, built, django_capture_on_commit_callbacks):
    training_file, members = built
    client = web_client_for(owner_user)
    assert "unscored" in client.get(_detail(training_file)).content.decode()
    # HTMX poll: nothing building → full refresh
    assert client.get(_detail(training_file), HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            reverse("training_files:members_remove", kwargs={"pk": training_file.pk}), {"remove": [members[0].pk]}
        )
    page = client.get(_detail(training_file)).content.decode()
    assert 'hx-trigger="every 3s"' in page
    fragment = client.get(_detail(training_file), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and 'id="versions"' in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


def test_remove_members_builds_a_new_version(owner_user, web_client_for, built, django_capture_on_commit_callbacks):
    training_file, members = built
    url = reverse("training_files:members_remove", kwargs={"pk": training_file.pk})
    with django_capture_on_commit_callbacks(execute=False):
        response = web_client_for(owner_user).post(url, {"remove": [members[0].pk]})
    assert response.status_code == 302 and response.url == _detail(training_file)
    assert training_file.members.count() == 2
    assert training_file.versions.get(number=2).status == "building"
    assert str(members[0].pk) not in training_file.versions.get(number=2).member_ids


def test_retry_a_failed_version(owner_user, web_client_for, built, django_capture_on_commit_callbacks):
    training_file, _ = built
    TrainingFileVersion.objects.filter(training_file=training_file).update(status="failed", error="boom")
    client = web_client_for(owner_user)
    assert "boom" in client.get(_detail(training_file)).content.decode()
    url = reverse("training_files:version_retry", kwargs={"pk": training_file.pk, "number": 1})
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(url).status_code == 302
    assert training_file.versions.get().status == "building"
    response = client.post(url, follow=True)  # no longer failed: a message, not a 500
    assert "Only a failed version" in response.content.decode()


def test_download_redirects_to_a_signed_url_or_explains(
    owner_user, web_client_for, built, django_capture_on_commit_callbacks
):
    training_file, members = built
    client = web_client_for(owner_user)
    response = client.get(_download(training_file, 1, "v4-jsonl"))
    assert response.status_code == 302 and "/files/download/" in response.url
    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            reverse("training_files:members_remove", kwargs={"pk": training_file.pk}), {"remove": [members[0].pk]}
        )
    response = client.get(_download(training_file, 2), follow=True)
    assert response.redirect_chain[0] == (_detail(training_file), 302)
    assert "not ready" in response.content.decode()
    response = client.get(_download(training_file, 1, "xlsx"), follow=True)
    assert "Unknown format" in response.content.decode()
    assert client.get(_download(training_file, 9)).status_code == 404


def test_another_user_gets_404_everywhere(owner_user, other_user, web_client_for, built, make_trainable):
    training_file, members = built
    client = web_client_for(other_user)
    assert client.get(_detail(training_file)).status_code == 404
    assert client.get(_download(training_file)).status_code == 404
    kwargs = {"pk": training_file.pk}
    assert (
        client.post(reverse("training_files:members_remove", kwargs=kwargs), {"remove": [members[0].pk]}).status_code
        == 404
    )
    retry = reverse("training_files:version_retry", kwargs={**kwargs, "number": 1})
    assert client.post(retry).status_code == 404
    mine = make_trainable(other_user)
    assert client.post(ADD, {"ids": [mine.pk], "training_file": training_file.pk}).status_code == 404
    assert "First file" not in client.get(LIST).content.decode()
    # someone else's conversations are "not found" for the gate
    response = client.post(CREATE, {"ids": [members[0].pk], "tf_name": "Stolen"})
    assert response.status_code == 400 and "not found" in response.content.decode()
    assert training_file.members.count() == 3


def test_anonymous_is_sent_to_login(web_client_for, built):
    training_file, _ = built
    client = web_client_for(None)
    for url in (LIST, _detail(training_file), _download(training_file)):
        response = client.get(url)
        assert response.status_code == 302 and reverse("login") in response.url
    response = client.post(CREATE, {"ids": ["x"], "tf_name": "n"})
    assert response.status_code == 302 and reverse("login") in response.url


def test_list_refreshes_itself_while_a_version_builds(owner_user, web_client_for):
    from tests.factories import TrainingFileFactory, TrainingFileVersionFactory

    training_file = TrainingFileFactory(owner=owner_user, name="Voice")
    version = TrainingFileVersionFactory(training_file=training_file, number=1, status="building")
    client = web_client_for(owner_user)
    page = client.get(LIST).content.decode()
    assert f'hx-get="{LIST}" hx-trigger="every 3s"' in page and 'aria-label="Building v1 of Voice"' in page
    fragment = client.get(LIST, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "Voice" in fragment
    TrainingFileVersion.objects.filter(pk=version.pk).update(status="ready")
    assert "hx-trigger" not in client.get(LIST, HTTP_HX_REQUEST="true").content.decode()


def test_exports_page_lists_history_and_refreshes_while_one_renders(owner_user, other_user, web_client_for):
    from training_files.models import Export

    exports = reverse("training_files:exports")
    client = web_client_for(owner_user)
    empty = client.get(exports).content.decode()
    assert "No exports yet." in empty and "hx-trigger" not in empty.split("<main")[1]
    assert '<label for="export-format">Format</label>' in empty and "Review history" in empty
    running = Export.objects.create(owner=owner_user, scope="all_approved", format="csv", status="running")
    Export.objects.create(owner=other_user, scope="all_approved", format="csv", status="running", error="theirs")
    page = client.get(exports).content.decode()
    assert f'hx-get="{exports}" hx-trigger="every 3s"' in page and f'id="export-{running.pk}"' in page
    assert 'aria-label="Export running"' in page and "theirs" not in page
    Export.objects.filter(pk=running.pk).update(status="completed", size=10, storage_key="k", filename="e.csv")
    fragment = client.get(exports, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "hx-trigger" not in fragment
    assert reverse("training_files:export_download", args=[running.pk]) in fragment


def test_removing_members_asks_first(owner_user, web_client_for):
    from tests.factories import TrainingFileFactory, TrainingFileMemberFactory

    member = TrainingFileMemberFactory(training_file=TrainingFileFactory(owner=owner_user))
    page = web_client_for(owner_user).get(_detail(member.training_file)).content.decode()
    form = page.split(f'action="{reverse("training_files:members_remove", args=[member.training_file.pk])}"')[1]
    assert form.lstrip().startswith('data-confirm="Remove the selected conversations?')
