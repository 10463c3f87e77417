"""Dataset pages: list, detail report, status poll, no-JS upload, import, revalidate, delete, download, isolation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from brightrun.storage import file_storage
from datasets.models import Dataset
from datasets.validation.codes import CODES
from tests.datasets.conftest import chat_jsonl
from tests.factories import DatasetFactory, DatasetValidationFactory

pytestmark = pytest.mark.django_db

LIST = reverse("datasets:list")
UPLOAD = reverse("datasets:upload")
IMPORT = reverse("datasets:import")


def _url(name: str, dataset) -> str:
    return reverse(f"datasets:{name}", kwargs={"pk": dataset.pk})


def _statistics() -> dict:
    """A validator report's statistics for a small, realistic chat dataset."""
    planner = "You are Elena Morales, CFP, a warm and precise financial planner."
    return {
        "examples": 12,
        "trainable_pairs": 30,
        "duplicates": 1,
        "messages_per_example": {"min": 3, "mean": 6.25, "p50": 7, "p95": 9, "max": 11},
        "estimated_tokens": {
            "estimator": "utf8_chars_div_4",
            "label": "estimated",
            "total": 48210,
            "assistant": 20113,
            "per_example": {"p50": 3900, "p95": 7120, "max": 8450},
        },
        "role_counts": {"system": 12, "user": 33, "assistant": 30},
        "samples": [
            {
                "line": n,
                "messages": [
                    {"role": "system", "content": planner},
                    {"role": "user", "content": f"Sample question {n}: should I pay off my card first?"},
                    {"role": "assistant", "content": f"Sample answer {n}: yes, the 24% card comes first."},
                ],
            }
            for n in (1, 2, 3)
        ],
        "split": {
            "validation_percent": 10,
            "train": {"examples": 11, "trainable_pairs": 27, "tokens": 43800, "assistant_tokens": 18200},
            "validation": {"examples": 1, "trainable_pairs": 3, "tokens": 4410, "assistant_tokens": 1913},
        },
        # The validator's fixed buckets (doubling); the page leaves out the empty ones at either end.
        "length_histogram": [
            {"min": 0, "max": 127, "count": 0},
            {"min": 128, "max": 255, "count": 0},
            {"min": 256, "max": 511, "count": 2},
            {"min": 512, "max": 1023, "count": 6},
            {"min": 1024, "max": 2047, "count": 0},
            {"min": 2048, "max": 4095, "count": 3},
            {"min": 4096, "max": 8191, "count": 1},
            {"min": 8192, "max": 16383, "count": 0},
            {"min": 16384, "max": 1048576, "count": 0},
        ],
    }


def _issue(line: int, code: str, message: str, path: str = "") -> dict:
    return {
        "line": line,
        "code": code,
        "severity": str(CODES[code]),
        "path": path,
        "message": message,
        "suggestion": f"Fix {code.lower()} on line {line}.",
    }


def _checked(owner, *, status="ready", issues=(), counts=None, truncated=False, **fields) -> Dataset:
    """A dataset whose validation finished, with its latest run (issues, counts, statistics)."""
    counts = counts if counts is not None else dict(Counter(issue["code"] for issue in issues))
    errors = sum(n for code, n in counts.items() if CODES[code] == "error")
    statistics = _statistics()
    dataset = DatasetFactory(
        owner=owner,
        status=status,
        statistics=statistics,
        issue_counts=counts,
        error_count=errors,
        warning_count=sum(counts.values()) - errors,
        example_count=statistics["examples"],
        trainable_pairs=statistics["trainable_pairs"],
        validated_at=timezone.now(),
        **fields,
    )
    DatasetValidationFactory(
        dataset=dataset,
        result="valid" if status == "ready" else "invalid",
        issues=list(issues),
        issues_truncated=truncated,
        counts=counts,
        error_count=dataset.error_count,
        warning_count=dataset.warning_count,
        statistics=statistics,
        duration_seconds=0.8,
        lines=13,
        finished_at=timezone.now(),
    )
    return dataset


def _invalid(owner, **fields) -> Dataset:
    issues = [
        _issue(4, "INVALID_JSON", "Line 4 is not valid JSON: Expecting ',' delimiter (column 57)."),
        _issue(5, "ROLES_NOT_ALTERNATING", "Message 3 is 'user' after 'user'.", "messages[2].role"),
        _issue(6, "ROLES_NOT_ALTERNATING", "Message 2 is 'assistant' after 'system'.", "messages[1].role"),
        _issue(9, "DUPLICATE_EXAMPLE", "Same content as line 2."),
    ]
    counts = {"INVALID_JSON": 1, "ROLES_NOT_ALTERNATING": 250, "DUPLICATE_EXAMPLE": 1}
    return _checked(owner, status="invalid", issues=issues, counts=counts, truncated=True, **fields)


# --- list ---------------------------------------------------------------------------------


def test_list_filters_searches_and_keeps_queries_flat(owner_user, web_client_for, django_assert_max_num_queries):
    ready = _checked(owner_user, name="Planner conversations", file_name="planner.jsonl")
    _invalid(owner_user, name="Broken set", file_name="broken-export.jsonl")
    DatasetFactory(owner=owner_user, status="validating", name="Fresh one")
    DatasetFactory(owner=owner_user, status="deleted", name="Gone set", deleted_at=timezone.now())
    client = web_client_for(owner_user)

    with django_assert_max_num_queries(8):
        response = client.get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Planner conversations" in body and "Broken set" in body and "Fresh one" in body
    assert "Gone set" not in body
    assert _url("detail", ready) in body
    assert 'class="status status-invalid"' in body and 'class="status status-validating"' in body
    assert "2.0\xa0KB" in body  # size

    def names(**params) -> set[str]:
        page = client.get(LIST, params).context["page"]
        return {d.name for d in page.object_list}

    assert names(status="invalid") == {"Broken set"}
    assert names(status="deleted") == {"Planner conversations", "Broken set", "Fresh one"}  # never listed
    assert names(q="PLANNER") == {"Planner conversations"}
    assert names(q="export") == {"Broken set"}  # the file name
    assert names(q="set", status="ready") == set()

    fragment = client.get(LIST, {"q": "broken"}, HTTP_HX_REQUEST="true")
    assert "HX-Request" in fragment["Vary"]
    assert "<html" not in fragment.content.decode() and "Broken set" in fragment.content.decode()
    assert "HX-Request" in client.get(LIST)["Vary"]


def test_list_paginates_and_keeps_the_filters(owner_user, web_client_for):
    DatasetFactory.create_batch(27, owner=owner_user, status="ready")
    client = web_client_for(owner_user)
    first = client.get(LIST, {"status": "ready"})
    assert len(first.context["page"].object_list) == 25
    assert "?status=ready&amp;page=2" in first.content.decode()
    second = client.get(LIST, {"status": "ready", "page": 2})
    assert len(second.context["page"].object_list) == 2
    assert "Page 2 of 2" in second.content.decode()


def test_list_empty_states(owner_user, web_client_for):
    client = web_client_for(owner_user)
    assert "No datasets yet" in client.get(LIST).content.decode()
    DatasetFactory(owner=owner_user, name="Only one")
    assert "No dataset matches these filters" in client.get(LIST, {"q": "nothing"}).content.decode()


# --- detail and status --------------------------------------------------------------------


def test_detail_of_a_ready_dataset_shows_the_report(owner_user, web_client_for, django_assert_max_num_queries):
    issues = [
        _issue(7, "DUPLICATE_EXAMPLE", "Same content as line 3."),
        _issue(2, "UNKNOWN_KEY", "Unknown key 'metadata' is ignored.", "metadata"),
    ]
    dataset = _checked(owner_user, issues=issues, name="Planner set", context_tokens=8192)
    client = web_client_for(owner_user)
    with django_assert_max_num_queries(10):
        response = client.get(_url("detail", dataset))
    assert response.status_code == 200
    body = response.content.decode()
    # statistics
    assert "48,210" in body and "20,113" in body and "8,450" in body  # tokens: total, assistant, max per example
    assert "estimated (characters ÷ 4)" in body
    assert "6.2" in body or "6.3" in body  # mean messages per example
    assert "43,800" in body and "4,410" in body  # split
    assert "10% held out for validation" in body
    assert "8,192 tokens" in body
    # histogram as CSS bars, tallest = 100%
    assert body.count('class="hist-bar"') == 5
    assert "--pct: 100%" in body and "--pct: 33%" in body and "--pct: 17%" in body and "--pct: 0%" in body
    assert "512–1,023" in body and "4,096–8,191" in body
    assert "0–127" not in body and "16,384" not in body
    # issues grouped by code with line, path, message, suggestion
    assert "DUPLICATE_EXAMPLE" in body and "UNKNOWN_KEY" in body
    assert '<td class="num">7</td>' in body and "<code>metadata</code>" in body
    assert "Unknown key &#x27;metadata&#x27; is ignored." in body and "Fix unknown_key on line 2." in body
    # samples, collapsible
    assert body.count('<details class="sample"') == 3
    assert "Sample answer 3: yes, the 24% card comes first." in body
    # actions
    assert _url("download", dataset) in body and _url("revalidate", dataset) in body and _url("delete", dataset) in body
    assert f'href="{reverse("training:configure")}?dataset={dataset.pk}">Start training</a>' in body
    assert 'value="8192"' in body
    # nothing to poll
    assert 'hx-trigger="every 2s"' not in body


def test_detail_of_an_invalid_dataset_lists_errors_first(owner_user, web_client_for):
    dataset = _invalid(owner_user)
    body = web_client_for(owner_user).get(_url("detail", dataset)).content.decode()
    assert 'class="status status-invalid"' in body
    assert "available once the dataset is ready" in body and reverse("training:configure") not in body
    assert body.index("INVALID_JSON") < body.index("DUPLICATE_EXAMPLE")
    assert body.index("ROLES_NOT_ALTERNATING") < body.index("DUPLICATE_EXAMPLE")
    assert "252" in body  # every issue counted
    assert "248 more ROLES_NOT_ALTERNATING issues not listed." in body
    assert "Only the first 4 issues of the file are stored" in body
    for line in (4, 5, 6, 9):
        assert f'<td class="num">{line}</td>' in body
    assert "<code>messages[2].role</code>" in body


def test_detail_of_a_dataset_that_could_not_be_checked(owner_user, web_client_for):
    dataset = DatasetFactory(
        owner=owner_user,
        status="invalid",
        error="Validation did not finish after 3 attempts.",
        statistics={},
        validated_at=timezone.now(),
    )
    response = web_client_for(owner_user).get(_url("detail", dataset))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Validation did not finish after 3 attempts." in body
    assert "No issues found." in body and "No example lengths to show." in body


@pytest.mark.parametrize("status", ["validating", "uploading"])
def test_detail_polls_the_status_fragment_until_checked(status, owner_user, web_client_for):
    dataset = DatasetFactory(owner=owner_user, status=status, statistics={}, example_count=0)
    client = web_client_for(owner_user)
    body = client.get(_url("detail", dataset)).content.decode()
    assert f'hx-get="{_url("status", dataset)}"' in body
    assert 'hx-trigger="every 2s"' in body and 'hx-swap="outerHTML"' in body
    assert 'id="statistics"' not in body and 'id="issues"' not in body

    fragment = client.get(_url("status", dataset), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert "HX-Refresh" not in fragment
    assert 'hx-trigger="every 2s"' in fragment.content.decode() and "<html" not in fragment.content.decode()
    assert fragment["Cache-Control"] == "no-store"

    Dataset.objects.filter(pk=dataset.pk).update(status="ready", validated_at=timezone.now())
    fragment = client.get(_url("status", dataset), HTTP_HX_REQUEST="true")
    assert fragment["HX-Refresh"] == "true"
    assert "hx-get" not in fragment.content.decode()


def test_validating_shows_a_failed_attempt(owner_user, web_client_for):
    dataset = DatasetFactory(owner=owner_user, status="validating", error="The dataset file could not be read.")
    body = web_client_for(owner_user).get(_url("status", dataset)).content.decode()
    assert "The dataset file could not be read." in body and "retried automatically" in body


# --- upload without JavaScript ------------------------------------------------------------


class RefuseToParse(FileUploadHandler):
    """Fails the test if anything parses the multipart body."""

    def handle_raw_input(self, *args, **kwargs):
        raise AssertionError("the oversized body was parsed")

    def receive_data_chunk(self, raw_data, start):  # pragma: no cover - never reached
        raise AssertionError("the oversized body was parsed")

    def file_complete(self, file_size):  # pragma: no cover - never reached
        raise AssertionError("the oversized body was parsed")


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_page_carries_the_api_endpoints(owner_user, web_client_for, settings):
    response = web_client_for(owner_user).get(UPLOAD)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'enctype="multipart/form-data"' in body and 'name="csrfmiddlewaretoken"' in body
    assert f'data-create-url="{reverse("dataset-list")}"' in body
    assert 'data-confirm-url="/api/v1/datasets/{id}/confirm/"' in body
    assert 'data-upload-url="/api/v1/datasets/{id}/upload/"' in body
    assert 'data-detail-url="/datasets/{id}/"' in body
    assert f'data-max-bytes="{settings.DATASET_MAX_BYTES}"' in body
    assert "js/dataset_upload.js" in body
    for value in ("auto", "chat", "brightrun-v4", "turns"):
        assert f'<option value="{value}"' in body


def test_upload_without_javascript_stores_confirms_and_enqueues(
    local_storage, owner_user, web_client_for, django_capture_on_commit_callbacks
):
    from datasets.tasks import dataset_validate_task

    data = chat_jsonl(12)
    client = web_client_for(owner_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            UPLOAD,
            {
                "name": "Planner set",
                "format": "chat",
                "context_tokens": "4096",
                "file": SimpleUploadedFile("my train.jsonl", data, content_type="application/jsonl"),
            },
        )
    dataset = Dataset.objects.get(owner=owner_user)
    assert response.status_code == 302 and response.url == _url("detail", dataset)
    assert dataset.status == "validating" and dataset.source == "upload"
    assert dataset.size == len(data) and dataset.declared_size == len(data)
    assert dataset.requested_format == "chat" and dataset.context_tokens == 4096
    assert dataset.file_name == "my_train.jsonl"
    with file_storage().open(dataset.storage_key, "rb") as stored:
        assert stored.read() == data
    assert len(callbacks) == 1  # validation is enqueued after commit
    page = client.get(response.url).content.decode()
    assert "Uploaded “Planner set”; validation has started." in page and 'hx-trigger="every 2s"' in page

    dataset_validate_task(str(dataset.pk))  # what the worker runs
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.error
    page = client.get(response.url).content.decode()
    assert 'id="statistics"' in page and 'class="hist-bar"' in page and "Question 0: should I pay" in page


def test_upload_without_javascript_explains_bad_input(local_storage, owner_user, web_client_for):
    client = web_client_for(owner_user)
    response = client.post(UPLOAD, {"name": "No file"})
    assert response.status_code == 400 and "(file_missing)" in response.content.decode()
    response = client.post(
        UPLOAD, {"name": "  ", "file": SimpleUploadedFile("train.jsonl", chat_jsonl(12)), "context_tokens": "4096"}
    )
    assert response.status_code == 400 and "(invalid_name)" in response.content.decode()
    assert 'value="4096"' in response.content.decode()  # the form keeps what was typed
    response = client.post(
        UPLOAD,
        {"name": "Tiny context", "file": SimpleUploadedFile("train.jsonl", chat_jsonl(12)), "context_tokens": "12"},
    )
    assert response.status_code == 400 and "(invalid_context_tokens)" in response.content.decode()
    response = client.post(UPLOAD, {"name": "Empty", "file": SimpleUploadedFile("train.jsonl", b"")})
    assert response.status_code == 400 and "(empty_file)" in response.content.decode()
    for name, content_type in (("report.pdf", "application/pdf"), ("train.jsonl", "image/png")):
        upload = SimpleUploadedFile(name, chat_jsonl(12), content_type=content_type)
        response = client.post(UPLOAD, {"name": "Wrong kind", "file": upload})
        assert response.status_code == 400 and "(unsupported_file_type)" in response.content.decode()
    assert not Dataset.objects.exists()
    assert _stored_files(local_storage) == []


def test_oversized_upload_is_refused_before_the_body_is_read(local_storage, owner_user, web_client_for, settings):
    settings.DATASET_MAX_BYTES = 1024
    settings.FILE_UPLOAD_HANDLERS = ["tests.datasets.test_views.RefuseToParse"]
    response = web_client_for(owner_user).post(
        UPLOAD, {"name": "Too big", "file": SimpleUploadedFile("big.jsonl", b"x" * (64 * 1024))}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "(file_too_large)" in body and "the limit is 1,024 bytes" in body
    assert not Dataset.objects.exists()
    assert _stored_files(local_storage) == []


def test_upload_just_over_the_limit_is_refused_by_the_service(local_storage, owner_user, web_client_for, settings):
    settings.DATASET_MAX_BYTES = 1024  # 1 025 bytes fit the multipart allowance: the file is read, then refused
    response = web_client_for(owner_user).post(
        UPLOAD, {"name": "Slightly big", "file": SimpleUploadedFile("big.jsonl", b"x" * 1025)}
    )
    assert response.status_code == 400 and "(file_too_large)" in response.content.decode()
    assert not Dataset.objects.exists()
    assert _stored_files(local_storage) == []


def test_upload_without_javascript_still_checks_csrf(local_storage, owner_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner_user)
    response = client.post(UPLOAD, {"name": "Forged", "file": SimpleUploadedFile("train.jsonl", chat_jsonl(12))})
    assert response.status_code == 403
    assert not Dataset.objects.exists()


# --- import, revalidate, delete, download -------------------------------------------------


def test_import_a_training_file_version(built_version, owner_user, web_client_for, django_capture_on_commit_callbacks):
    training_file = built_version.training_file
    client = web_client_for(owner_user)
    tf_page = client.get(reverse("training_files:detail", kwargs={"pk": training_file.pk})).content.decode()
    assert f'action="{IMPORT}"' in tf_page and f'name="version" value="{built_version.number}"' in tf_page

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(IMPORT, {"training_file": training_file.pk, "version": built_version.number})
    dataset = Dataset.objects.get(owner=owner_user, source="import")
    assert response.status_code == 302 and response.url == _url("detail", dataset)
    assert dataset.status == "validating" and dataset.training_file_version == built_version
    assert dataset.name == f"Import me v{built_version.number}"
    assert len(callbacks) == 1
    page = client.get(response.url).content.decode()
    assert reverse("training_files:detail", kwargs={"pk": training_file.pk}) in page
    assert f"training file version v{built_version.number}" in page


def test_import_errors_go_back_to_the_training_file(built_version, owner_user, other_user, web_client_for):
    training_file = built_version.training_file
    back = reverse("training_files:detail", kwargs={"pk": training_file.pk})
    response = web_client_for(owner_user).post(IMPORT, {"training_file": training_file.pk, "version": 9}, follow=True)
    assert response.redirect_chain[0] == (back, 302)
    assert "That version does not exist." in response.content.decode()
    other = web_client_for(other_user)
    assert other.post(IMPORT, {"training_file": training_file.pk, "version": 1}).status_code == 404
    assert other.post(IMPORT, {"training_file": "not-a-uuid"}).status_code == 404
    assert not Dataset.objects.exists()


def test_revalidate_with_another_context_length(owner_user, web_client_for, django_capture_on_commit_callbacks):
    dataset = _checked(owner_user, context_tokens=4096)
    client = web_client_for(owner_user)
    url = _url("revalidate", dataset)
    response = client.post(url, {"context_tokens": "abc"}, follow=True)
    assert "whole number of tokens" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, {"context_tokens": "8192"})
    assert response.status_code == 302 and response.url == _url("detail", dataset)
    dataset.refresh_from_db()
    assert dataset.status == "validating" and dataset.context_tokens == 8192
    assert len(callbacks) == 1
    response = client.post(url, {"context_tokens": "8192"}, follow=True)  # still validating: explained
    assert "wait until it is checked" in response.content.decode()


def test_delete_hides_the_dataset(owner_user, web_client_for):
    dataset = _checked(owner_user, name="Short-lived")
    client = web_client_for(owner_user)
    response = client.post(_url("delete", dataset), follow=True)
    assert response.redirect_chain[0] == (LIST, 302)
    assert "Deleted “Short-lived”." in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.status == "deleted" and dataset.deleted_at is not None
    assert "Short-lived" not in client.get(LIST).content.decode().replace("Deleted “Short-lived”.", "")
    for name in ("detail", "status", "download"):
        assert client.get(_url(name, dataset)).status_code == 404
    assert client.post(_url("delete", dataset)).status_code == 404


def test_download_redirects_to_a_signed_url(local_storage, owner_user, web_client_for):
    dataset = DatasetFactory(owner=owner_user)
    file_storage().save(dataset.storage_key, SimpleUploadedFile("train.jsonl", chat_jsonl(12)))
    client = web_client_for(owner_user)
    response = client.get(_url("download", dataset))
    assert response.status_code == 302 and "/files/download/" in response.url
    uploading = DatasetFactory(owner=owner_user, status="uploading")
    response = client.get(_url("download", uploading), follow=True)
    assert response.redirect_chain[0] == (_url("detail", uploading), 302)
    assert "no file to download" in response.content.decode()


def test_mutations_are_post_only(owner_user, web_client_for):
    dataset = _checked(owner_user)
    client = web_client_for(owner_user)
    for name in ("delete", "revalidate"):
        assert client.get(_url(name, dataset)).status_code == 405
    assert client.get(IMPORT).status_code == 405
    assert client.put(UPLOAD).status_code == 405
    dataset.refresh_from_db()
    assert dataset.status == "ready"


# --- isolation ----------------------------------------------------------------------------


def test_another_user_gets_404_everywhere(owner_user, other_user, web_client_for):
    dataset = _checked(owner_user, name="Owner's private set")
    client = web_client_for(other_user)
    for name in ("detail", "status", "download"):
        assert client.get(_url(name, dataset)).status_code == 404, name
    for name in ("delete", "revalidate"):
        assert client.post(_url(name, dataset), {"context_tokens": "8192"}).status_code == 404, name
    DatasetFactory(owner=other_user, name="Their own set")
    body = client.get(LIST).content.decode()
    assert "Their own set" in body and "Owner's private set" not in body and str(dataset.pk) not in body
    dataset.refresh_from_db()
    assert dataset.status == "ready" and dataset.context_tokens is None


def test_anonymous_is_sent_to_login(owner_user, web_client_for):
    dataset = _checked(owner_user)
    client = web_client_for(None)
    login = reverse("login")
    for url in (LIST, UPLOAD, _url("detail", dataset), _url("status", dataset), _url("download", dataset)):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(login), url
    for url in (IMPORT, UPLOAD, _url("delete", dataset), _url("revalidate", dataset)):
        response = client.post(url)
        assert response.status_code == 302 and response.url.startswith(login), url
    dataset.refresh_from_db()
    assert dataset.status == "ready"


def test_list_refreshes_itself_while_a_dataset_is_checked(owner_user, web_client_for):
    checking = DatasetFactory(owner=owner_user, name="Checking", status="validating", statistics={})
    client = web_client_for(owner_user)
    page = client.get(LIST, {"q": "Check"}).content.decode()
    assert 'hx-get="/datasets/?q=Check" hx-trigger="every 3s" hx-swap="outerHTML"' in page
    assert 'aria-label="Validating Checking"' in page
    assert 'class="htmx-indicator loading"' in page  # the filter form's loading state
    Dataset.objects.filter(pk=checking.pk).update(status="ready")
    fragment = client.get(LIST, {"q": "Check"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "hx-trigger" not in fragment and "Checking" in fragment


def test_upload_errors_are_shown_beside_their_field(local_storage, owner_user, web_client_for):
    client = web_client_for(owner_user)
    body = client.post(UPLOAD, {"name": "No file", "context_tokens": "4096"}).content.decode()
    assert 'aria-invalid="true"' in body.split('id="id_file"')[1].split(">")[0]
    assert '<p class="error" id="file-error">Choose a file to upload.' in body
    assert 'value="No file"' in body and 'value="4096"' in body and 'href="#id_file"' in body
    body = client.post(
        UPLOAD, {"name": "Tiny", "file": SimpleUploadedFile("train.jsonl", chat_jsonl(12)), "context_tokens": "12"}
    ).content.decode()
    assert 'id="context-error"' in body and 'aria-describedby="context-error context-help"' in body


def test_deleting_a_dataset_asks_first(owner_user, web_client_for):
    dataset = DatasetFactory(owner=owner_user)
    page = web_client_for(owner_user).get(_url("detail", dataset)).content.decode()
    form = page.split(f'action="{_url("delete", dataset)}"')[1]
    assert form.lstrip().startswith('data-confirm="Delete this dataset?')
