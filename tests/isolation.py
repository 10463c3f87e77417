"""The isolation contract: every route that names an owned object, and every list.

Each app adds its routes here when it adds them to the URL configuration. The contract
(``tests/test_isolation.py``) then checks for every entry that:

* the owner gets the expected 2xx/3xx;
* another user gets 404 (never 403: they must not learn the object exists);
* an anonymous caller gets 401/403 (API) or a redirect to the login page (UI);

and for every list that the other user's list does not contain the owner's rows.
``test_every_object_route_is_covered`` walks the URL configuration and fails for any route
with a path parameter that is neither here nor in ``EXEMPT`` (with a reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.factories import (
    ConversationFactory,
    DatasetFactory,
    DatasetValidationFactory,
    FailedGenerationFactory,
    GenerationBatchFactory,
    GenerationLogFactory,
    NotificationFactory,
    TrainingFileFactory,
    TrainingFileMemberFactory,
    TrainingFileVersionFactory,
    TurnFactory,
)


@dataclass(frozen=True)
class ObjectRoute:
    name: str  # URL name, namespaced for the UI ("notifications:mark_read") or the router's ("notification-detail")
    kind: str  # "api" | "ui"
    method: str  # "get" | "post" | "patch" | "put" | "delete"
    make: Callable[[Any], Any]  # builds the owner's object
    owner_status: tuple[int, ...] = (200,)
    data: dict[str, Any] | None = None
    url_kwargs: Callable[[Any], dict[str, Any]] = field(default=lambda obj: {"pk": obj.pk})

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.name}"


@dataclass(frozen=True)
class ListRoute:
    name: str
    kind: str
    make: Callable[[Any], Any]

    def __str__(self) -> str:
        return f"list {self.name}"


def _token(owner):
    from brightrun.services import api_token_create

    return api_token_create(owner=owner, name="isolation").token


def _batch(owner):
    return GenerationBatchFactory(owner=owner, status="running")


def _paused_batch(owner):
    return GenerationBatchFactory(owner=owner, status="paused")


def _reviewable(owner, status="pending_review"):
    conversation = ConversationFactory(owner=owner, status=status)
    TurnFactory(conversation=conversation, index=1, role="user", content="Where do I start with my 401k?")
    TurnFactory(conversation=conversation, index=2, role="assistant", content="Let us look at it together.")
    return conversation


def _enriched(owner):
    from conversations.services.enrichment import enriched_v4_store

    conversation = ConversationFactory(owner=owner)
    conversation.enriched_key = enriched_v4_store(conversation=conversation, doc={"ok": True})
    conversation.save(update_fields=["enriched_key"])
    return conversation


MEMBER_ID = "6f1c2b1e-0a53-4c57-9d1e-2f7a4c1b9e01"  # removed by the owner in the members route


def _training_file(owner):
    training_file = TrainingFileFactory(owner=owner)
    version = TrainingFileVersionFactory(training_file=training_file, number=1)
    training_file.current_version = version
    training_file.save(update_fields=["current_version"])
    TrainingFileMemberFactory(training_file=training_file, conversation__id=MEMBER_ID)
    TrainingFileMemberFactory(training_file=training_file)
    return training_file


def _failed_version(owner):
    return TrainingFileVersionFactory(training_file=TrainingFileFactory(owner=owner), number=1, status="failed")


def _export(owner):
    from training_files.models import Export

    return Export.objects.create(owner=owner, scope="all_approved", format="csv")


def _reported_dataset(owner):
    return DatasetValidationFactory(dataset=DatasetFactory(owner=owner)).dataset


OBJECT_ROUTES: list[ObjectRoute] = [
    # brightrun: notifications and API tokens
    ObjectRoute("notification-detail", "api", "get", lambda u: NotificationFactory(owner=u)),
    ObjectRoute("notification-mark-read", "api", "post", lambda u: NotificationFactory(owner=u)),
    ObjectRoute("notification-detail", "api", "patch", lambda u: NotificationFactory(owner=u), data={"is_read": True}),
    ObjectRoute("notifications:mark_read", "ui", "post", lambda u: NotificationFactory(owner=u), (302,)),
    ObjectRoute("accounts:token_revoke", "ui", "post", _token, (302,)),
    # conversations: generation batches, conversations, logs, failures
    ObjectRoute("generation-batch-detail", "api", "get", _batch),
    ObjectRoute("generation-batch-items", "api", "get", _batch),
    ObjectRoute("generation-batch-cancel", "api", "post", _batch),
    ObjectRoute("generation-batch-pause", "api", "post", _batch),
    ObjectRoute("generation-batch-resume", "api", "post", _paused_batch),
    ObjectRoute("conversation-detail", "api", "get", lambda u: ConversationFactory(owner=u)),
    ObjectRoute("generation-log-detail", "api", "get", lambda u: GenerationLogFactory(owner=u)),
    ObjectRoute("failed-generation-detail", "api", "get", lambda u: FailedGenerationFactory(owner=u)),
    ObjectRoute("failed-generation-report", "api", "get", lambda u: FailedGenerationFactory(owner=u)),
    ObjectRoute("failed-generation-raw", "api", "get", lambda u: FailedGenerationFactory(owner=u)),
    ObjectRoute("conversations:batch_detail", "ui", "get", _batch),
    ObjectRoute("conversations:batch_progress", "ui", "get", _batch),
    ObjectRoute("conversations:batch_cancel", "ui", "post", _batch, (302,)),
    ObjectRoute("conversations:batch_pause", "ui", "post", _batch, (302,)),
    ObjectRoute("conversations:batch_resume", "ui", "post", _paused_batch, (302,)),
    ObjectRoute("conversations:failed_detail", "ui", "get", lambda u: FailedGenerationFactory(owner=u)),
    ObjectRoute("conversations:failed_report", "ui", "get", lambda u: FailedGenerationFactory(owner=u)),
    ObjectRoute("conversations:conversation_detail", "ui", "get", lambda u: ConversationFactory(owner=u)),
    # conversations: review, edit, regenerate, enrichment (API)
    ObjectRoute(
        "conversation-review", "api", "post", lambda u: _reviewable(u, "needs_revision"), data={"action": "resubmit"}
    ),
    ObjectRoute(
        "conversation-turns",
        "api",
        "patch",
        _reviewable,
        data={"content": "An edited turn."},
        url_kwargs=lambda c: {"pk": c.pk, "index": 1},
    ),
    ObjectRoute("conversation-regenerate", "api", "post", _reviewable, (202,), data={"from_turn": 2}),
    ObjectRoute("conversation-enrich", "api", "post", _reviewable, (202,)),
    ObjectRoute("conversation-enriched", "api", "get", _enriched),
    ObjectRoute("conversation-review-history", "api", "get", _reviewable),
    # the same in the UI; the review pages use the reviewer scope, which for a non-reviewer is their own rows
    ObjectRoute(
        "conversations:conversation_review",
        "ui",
        "post",
        lambda u: ConversationFactory(owner=u, status="needs_revision"),
        (302,),
        data={"action": "resubmit"},
    ),
    ObjectRoute("conversations:conversation_regenerate", "ui", "post", _reviewable, (302,), data={"from_turn": "2"}),
    ObjectRoute("conversations:conversation_enrich", "ui", "post", lambda u: ConversationFactory(owner=u), (302,)),
    ObjectRoute("conversations:conversation_enriched", "ui", "get", lambda u: ConversationFactory(owner=u), (302,)),
    ObjectRoute(
        "conversations:turn_edit",
        "ui",
        "post",
        lambda u: TurnFactory(conversation__owner=u),
        (302,),
        data={"content": "Edited."},
        url_kwargs=lambda obj: {"pk": obj.conversation.pk, "index": obj.index},
    ),
    ObjectRoute("conversations:review_detail", "ui", "get", lambda u: ConversationFactory(owner=u), (302,)),
    ObjectRoute(
        "conversations:review_action",
        "ui",
        "post",
        lambda u: ConversationFactory(owner=u),
        (302,),
        data={"action": "approve"},
    ),
    # training files
    ObjectRoute("training-file-detail", "api", "get", _training_file),
    ObjectRoute("training-file-versions", "api", "get", _training_file),
    ObjectRoute("training-file-download", "api", "get", _training_file, data={"format": "chat-jsonl"}),
    ObjectRoute("training-file-members", "api", "post", _training_file, (201,), data={"remove": [MEMBER_ID]}),
    ObjectRoute(
        "training-file-version-retry",
        "api",
        "post",
        _failed_version,
        (202,),
        url_kwargs=lambda v: {"pk": v.training_file.pk, "number": v.number},
    ),
    ObjectRoute("training_files:detail", "ui", "get", _training_file),
    ObjectRoute("training_files:members_remove", "ui", "post", _training_file, (302,), data={"remove": [MEMBER_ID]}),
    ObjectRoute(
        "training_files:version_retry",
        "ui",
        "post",
        _failed_version,
        (302,),
        url_kwargs=lambda v: {"pk": v.training_file.pk, "number": v.number},
    ),
    ObjectRoute(
        "training_files:download",
        "ui",
        "get",
        _training_file,
        (302,),
        url_kwargs=lambda f: {"pk": f.pk, "number": 1, "fmt": "chat-jsonl"},
    ),
    ObjectRoute("export-detail", "api", "get", _export),
    ObjectRoute("export-download", "api", "get", _export, (400,)),  # queued → export_not_ready; others get 404
    ObjectRoute("training_files:export_download", "ui", "get", _export, (302,)),
    # datasets
    ObjectRoute("dataset-detail", "api", "get", lambda u: DatasetFactory(owner=u)),
    ObjectRoute("dataset-detail", "api", "delete", lambda u: DatasetFactory(owner=u), (204,)),
    ObjectRoute("dataset-confirm", "api", "post", lambda u: DatasetFactory(owner=u)),  # already past uploading
    ObjectRoute("dataset-upload", "api", "post", lambda u: DatasetFactory(owner=u, status="uploading")),
    ObjectRoute("dataset-validation-report", "api", "get", _reported_dataset),
    ObjectRoute("dataset-revalidate", "api", "post", lambda u: DatasetFactory(owner=u), (202,), data={}),
    ObjectRoute("dataset-download", "api", "get", lambda u: DatasetFactory(owner=u)),
    ObjectRoute("datasets:detail", "ui", "get", _reported_dataset),
    ObjectRoute("datasets:status", "ui", "get", lambda u: DatasetFactory(owner=u, status="validating")),
    ObjectRoute("datasets:delete", "ui", "post", lambda u: DatasetFactory(owner=u), (302,)),
    ObjectRoute("datasets:revalidate", "ui", "post", lambda u: DatasetFactory(owner=u), (302,)),
    ObjectRoute("datasets:download", "ui", "get", lambda u: DatasetFactory(owner=u), (302,)),
]

LIST_ROUTES: list[ListRoute] = [
    ListRoute("notification-list", "api", lambda u: NotificationFactory(owner=u)),
    ListRoute("notifications:list", "ui", lambda u: NotificationFactory(owner=u)),
    ListRoute("accounts:tokens", "ui", _token),
    ListRoute("generation-batch-list", "api", _batch),
    ListRoute("conversation-list", "api", lambda u: ConversationFactory(owner=u)),
    ListRoute("generation-log-list", "api", lambda u: GenerationLogFactory(owner=u)),
    ListRoute("failed-generation-list", "api", lambda u: FailedGenerationFactory(owner=u)),
    ListRoute("conversations:batch_list", "ui", _batch),
    ListRoute("conversations:failed_list", "ui", lambda u: FailedGenerationFactory(owner=u)),
    ListRoute("conversations:generation_logs", "ui", lambda u: GenerationLogFactory(owner=u)),
    ListRoute("conversations:conversation_list", "ui", lambda u: ConversationFactory(owner=u)),
    ListRoute("training-file-list", "api", lambda u: TrainingFileFactory(owner=u)),
    ListRoute("training_files:list", "ui", lambda u: TrainingFileFactory(owner=u)),
    ListRoute("export-list", "api", _export),
    ListRoute("training_files:exports", "ui", _export),
    ListRoute("dataset-list", "api", lambda u: DatasetFactory(owner=u)),
    ListRoute("datasets:list", "ui", lambda u: DatasetFactory(owner=u)),
]

# Routes with a path parameter that do not name an owned object, and why.
EXEMPT: dict[str, str] = {
    "files:download": "the path carries a signed token for one storage key; tested in test_storage.py",
    "files:upload": "the path carries a signed token for one storage key; tested in test_storage.py",
    "files:put": "the path carries a signed token for one storage key; tested in tests/training/test_remote.py",
    "training-job-callback": "authenticated by the job's HMAC signature, not a user; "
    "tested in tests/training/test_remote.py",
    "admin:*": "the Django admin is staff-only and deliberately unscoped (SPEC §2)",
    "django.views.static.serve": "static files in DEBUG",
    "review-queue-detail": "reviewer-only queue across owners (SPEC §2); non-reviewers get 404; "
    "tested in tests/conversations/test_review_api.py",
    **dict.fromkeys(
        [
            "persona-detail",
            "emotional-arc-detail",
            "training-topic-detail",
            "prompt-template-detail",
            "prompt-template-versions",
            "prompt-template-preview",
            "conversations:scaffolding_template",
        ],
        "shared scaffolding addressed by key, not owned (SPEC §3); tested in tests/conversations/test_scaffolding_*",
    ),
}

EXEMPT.update(
    dict.fromkeys(
        ["base-model-detail", "preset-detail", "gpu-type-detail"],
        "shared catalogue, the same for every user (SPEC §10.1)",
    )
)

# List routes of shared, unowned data (nothing to isolate), and why.
EXEMPT_LISTS: dict[str, str] = dict.fromkeys(
    [
        "persona-list",
        "emotional-arc-list",
        "training-topic-list",
        "prompt-template-list",
        "compatibility-list",
        "vertical-profile-list",
    ],
    "shared scaffolding, the same for every user (SPEC §3)",
)
EXEMPT_LISTS.update(
    dict.fromkeys(
        ["base-model-list", "preset-list", "gpu-type-list"],
        "shared catalogue, the same for every user (SPEC §10.1)",
    )
)
EXEMPT_LISTS["review-queue-list"] = (
    "reviewer-only queue across owners (SPEC §2); non-reviewers get 403 not_a_reviewer; "
    "tested in tests/conversations/test_review_api.py"
)


# --- training: jobs and trained models (helper CORE) ---------------------------------------
from tests.factories import ModelArtifactFactory, TrainingJobFactory  # noqa: E402

OBJECT_ROUTES += [
    ObjectRoute("training-job-detail", "api", "get", lambda u: TrainingJobFactory(owner=u)),
    ObjectRoute("training-job-metrics", "api", "get", lambda u: TrainingJobFactory(owner=u)),
    ObjectRoute("training-job-events", "api", "get", lambda u: TrainingJobFactory(owner=u)),
    ObjectRoute("training-job-cancel", "api", "post", lambda u: TrainingJobFactory(owner=u)),  # queued → cancelled
    ObjectRoute("model-detail", "api", "get", lambda u: ModelArtifactFactory(job__owner=u)),
    ObjectRoute("model-download", "api", "post", lambda u: ModelArtifactFactory(job__owner=u)),
]
LIST_ROUTES += [
    ListRoute("training-job-list", "api", lambda u: TrainingJobFactory(owner=u)),
    ListRoute("model-list", "api", lambda u: ModelArtifactFactory(job__owner=u)),
]


# --- training: web pages (helper UI) ---------------------------------------------------------
def _artifact_file_kwargs(artifact):
    return {"pk": artifact.pk, "name": "adapter_config.json"}


OBJECT_ROUTES += [
    ObjectRoute("training:job_detail", "ui", "get", lambda u: TrainingJobFactory(owner=u)),
    ObjectRoute("training:job_live", "ui", "get", lambda u: TrainingJobFactory(owner=u, status="running")),
    ObjectRoute("training:job_cancel", "ui", "post", lambda u: TrainingJobFactory(owner=u), (302,)),
    ObjectRoute("training:model_detail", "ui", "get", lambda u: ModelArtifactFactory(job__owner=u)),
    ObjectRoute(
        "training:model_file_download",
        "ui",
        "get",
        lambda u: ModelArtifactFactory(job__owner=u),
        (302,),
        url_kwargs=_artifact_file_kwargs,
    ),
]
LIST_ROUTES += [
    ListRoute("training:job_list", "ui", lambda u: TrainingJobFactory(owner=u)),
    ListRoute("training:model_list", "ui", lambda u: ModelArtifactFactory(job__owner=u)),
]
