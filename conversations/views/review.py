"""Pages for browsing, reviewing and measuring conversations (SPEC §5.3, §6, §13.2).

The owner's pages (list, detail, quality) go through ``for_user``; the review pages (queue,
review detail, review actions) go through ``unscoped_review_scope``, which is every
conversation for a reviewer and only their own for anyone else, so another user's
conversation stays a 404 for non-reviewers. Services are imported inside the views that
call them: the review, regeneration, enrichment and duplicate services are separate modules.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Avg, Count, Exists, OuterRef, Prefetch, Q, Value
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from brightrun.errors import ApplicationError
from brightrun.htmx import is_htmx, render_page
from brightrun.ownership import get_owned_or_404
from conversations.models import Conversation, EmotionalArc, Persona, ReviewAction, Tier, TrainingTopic, Turn

PAGE_SIZE = 25
BULK_LIMIT = 500
REVIEW_ACTIONS = ("approve", "reject", "needs_revision")
REVIEWED = (Conversation.Status.APPROVED, Conversation.Status.REJECTED, Conversation.Status.NEEDS_REVISION)
#: Review refusals that belong to one field of the review form (shown beside it).
REVIEW_FIELD_ERRORS = {
    "invalid_score": "reviewer_score",
    "reason_required": "reason_codes",
    "invalid_reason": "reason_codes",
}


def _is_reviewer(user) -> bool:
    from conversations.services.review import is_reviewer

    return is_reviewer(user)


def _reject_reasons() -> list[str]:
    from conversations.services.review import REJECT_REASONS

    return list(REJECT_REASONS)


def _next_url(request: HttpRequest, default: str) -> str:
    """The ``next`` field of a form if it points back into this site, else ``default``."""
    candidate = request.POST.get("next", "")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def _reason_codes(request: HttpRequest) -> list[str]:
    return [code for code in request.POST.getlist("reason_codes") if code]


def _report(request: HttpRequest, call, success: str) -> None:
    """Run a service call; a broken rule becomes an error message, never a 500."""
    try:
        call()
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)


# --- conversations list -------------------------------------------------------------------


def _scaffolding_choices() -> dict[str, list[tuple[str, str]]]:
    """Persona, arc and topic choices in one query (a UNION), to keep the list page's query count flat."""
    columns = ("kind", "key", "name")
    # Each side drops its model's default ordering: SQLite refuses ORDER BY inside a compound statement.
    rows = (
        Persona.objects.annotate(kind=Value("persona"))
        .order_by()
        .values_list(*columns)
        .union(
            EmotionalArc.objects.annotate(kind=Value("arc")).order_by().values_list(*columns),
            TrainingTopic.objects.annotate(kind=Value("topic")).order_by().values_list(*columns),
            all=True,
        )
    )
    choices: dict[str, list[tuple[str, str]]] = {"persona": [], "arc": [], "topic": []}
    for kind, key, name in sorted(rows, key=lambda row: row[2]):
        choices[kind].append((key, name))
    return choices


class ConversationFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Conversation.Status.choices])
    tier = forms.ChoiceField(required=False, choices=[("", "Any tier"), *Tier.choices])
    persona = forms.ChoiceField(required=False)
    arc = forms.ChoiceField(required=False)
    topic = forms.ChoiceField(required=False)
    quality_min = forms.FloatField(required=False, min_value=0, max_value=5, label="Quality from")
    quality_max = forms.FloatField(required=False, min_value=0, max_value=5, label="Quality to")
    quality_tier = forms.ChoiceField(
        required=False, choices=[("", "Any quality tier"), *Conversation.QualityTier.choices]
    )
    flagged = forms.ChoiceField(
        required=False, choices=[("", "Flagged or not"), ("1", "Flagged"), ("0", "Not flagged")]
    )

    def __init__(self, *args, scaffolding: dict[str, list[tuple[str, str]]], **kwargs):
        super().__init__(*args, **kwargs)
        for name, empty in (("persona", "Any persona"), ("arc", "Any arc"), ("topic", "Any topic")):
            self.fields[name].choices = [("", empty), *scaffolding[name]]

    def filter(self, rows):
        """Apply the valid filters; an invalid field is reported on the form and ignored."""
        self.is_valid()  # runs the cleaning: invalid fields are left out of cleaned_data
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        lookups = {
            "status": "status",
            "tier": "tier",
            "persona": "persona__key",
            "arc": "emotional_arc__key",
            "topic": "training_topic__key",
            "quality_min": "quality_score__gte",
            "quality_max": "quality_score__lte",
            "quality_tier": "quality_tier",
        }
        rows = rows.filter(**{lookup: data[name] for name, lookup in lookups.items() if name in data})
        if "flagged" in data:
            rows = rows.filter(is_flagged=data["flagged"] == "1")
        if q := data.get("q"):
            # EXISTS instead of a join keeps one row per conversation without DISTINCT.
            in_turns = Turn.objects.filter(conversation=OuterRef("pk"), content__icontains=q)
            rows = rows.filter(Q(title__icontains=q) | Q(Exists(in_turns)))
        return rows


@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    form = ConversationFilterForm(request.GET or None, scaffolding=_scaffolding_choices())
    rows = Conversation.objects.for_user(request.user).with_scaffolding()
    if form.is_bound:
        rows = form.filter(rows)
    page = Paginator(rows.order_by("-created_at"), PAGE_SIZE).get_page(request.GET.get("page"))
    reviewer = _is_reviewer(request.user)
    context = {
        "form": form,
        "page": page,
        "filtered": form.is_bound and any(v for k, v in request.GET.items() if k != "page"),
        # The filters past search and status stay folded unless one is set (or wrong).
        "more_filters": any(request.GET.get(name) for name in form.fields if name not in ("q", "status"))
        or any(name not in ("q", "status") for name in form.errors),
        "is_reviewer": reviewer,
        "reject_reasons": _reject_reasons() if reviewer else [],
    }
    return render_page(
        request, "conversations/conversation_list.html", "conversations/_conversation_results.html", context
    )


def _selected_ids(request: HttpRequest) -> list[uuid.UUID]:
    ids = []
    for raw in request.POST.getlist("ids")[:BULK_LIMIT]:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue
    return ids


@require_POST
def conversation_bulk(request: HttpRequest) -> HttpResponse:
    """Enrich (owner) or review (reviewer) the selected conversations, one message per failure."""
    back = _next_url(request, reverse("conversations:conversation_list"))
    action, ids = request.POST.get("action", ""), _selected_ids(request)
    if not ids:
        messages.error(request, "Select at least one conversation.")
        return HttpResponseRedirect(back)
    if action == "enrich":
        _bulk_enrich(request, Conversation.objects.for_user(request.user).filter(pk__in=ids))
    elif action in REVIEW_ACTIONS and _is_reviewer(request.user):
        _bulk_review(request, Conversation.objects.unscoped_review_scope(request.user).filter(pk__in=ids), action)
    else:
        messages.error(request, "Choose an action you may take.")
    return HttpResponseRedirect(back)


def _bulk_enrich(request: HttpRequest, conversations) -> None:
    from conversations.services.enrichment import conversation_enrich_enqueue

    done = 0
    for conversation in conversations:
        try:
            conversation_enrich_enqueue(conversation=conversation)
        except ApplicationError as exc:
            messages.error(request, f"{conversation.title}: {exc.message}")
        else:
            done += 1
    if done:
        messages.success(request, f"Enrichment queued for {done} conversation{'s' if done != 1 else ''}.")


def _bulk_review(request: HttpRequest, conversations, action: str) -> None:
    from conversations.services.review import conversations_bulk_review

    titles = {str(pk): title for pk, title in conversations.values_list("pk", "title")}
    results = conversations_bulk_review(
        conversations=conversations,
        actor=request.user,
        action=action,
        reason_codes=_reason_codes(request),
        comment=request.POST.get("comment", ""),
    )
    done = sum(1 for r in results if r.ok)
    for r in results:
        if not r.ok:
            messages.error(request, f"{titles.get(r.conversation_id, r.conversation_id)}: {r.message}")
    if done:
        label = action.replace("_", " ")
        messages.success(request, f"{label.capitalize()}: {done} conversation{'s' if done != 1 else ''}.")


# --- conversation detail (owner) and review detail (reviewer) ------------------------------


def _detail_context(conversation: Conversation) -> dict:
    turns = list(conversation.turns.select_related("edited_by").order_by("index"))
    if any(t.original_content is not None for t in turns):
        from conversations.services.review import turn_diff

        for turn in turns:
            turn.diff = turn_diff(turn) if turn.original_content is not None else None
    judge = sorted((conversation.judge_scores or {}).items())
    report = conversation.validation_report
    return {
        "conversation": conversation,
        "turns": turns,
        "judge_scores": [(name, v.get("score"), v.get("rationale", "")) for name, v in judge],
        "report": report,
        "history": conversation.review_actions.select_related("actor").order_by("-created_at"),
        "duplicates": _duplicate_columns(conversation, turns),
    }


def _duplicate_columns(conversation: Conversation, turns: list[Turn]) -> list[dict]:
    """This conversation and its near-duplicate group's members, each with its assistant turns."""
    if not conversation.duplicate_group_id:
        return []
    from conversations.services.duplicates import group_members

    others = group_members(conversation).exclude(pk=conversation.pk)
    members = list(
        others.prefetch_related(
            Prefetch("turns", queryset=Turn.objects.filter(role=Turn.Role.ASSISTANT).order_by("index"), to_attr="said")
        )
    )
    if not members:
        return []
    own = [t for t in turns if t.role == Turn.Role.ASSISTANT]
    return [{"conversation": conversation, "turns": own}] + [{"conversation": m, "turns": m.said} for m in members]


@require_GET
def conversation_detail(request: HttpRequest, pk) -> HttpResponse:
    from conversations.services.regenerate import regeneration_in_progress

    conversation = get_owned_or_404(Conversation, request.user, pk=pk)
    regenerating = regeneration_in_progress(conversation)
    if is_htmx(request) and request.GET.get("poll") == "regeneration":
        # The note polled every 2 s while a regeneration runs: nothing to swap; once it ends, reload the page.
        response = HttpResponse(status=204)
        if not regenerating:
            response["HX-Refresh"] = "true"
        response["Cache-Control"] = "no-store"
        return response
    conversation = Conversation.objects.with_scaffolding().get(pk=conversation.pk)
    return render_page(
        request,
        "conversations/conversation_detail.html",
        "conversations/_conversation_body.html",
        {**_detail_context(conversation), "owner_view": True, "regenerating": regenerating},
    )


def _in_review_scope(request: HttpRequest, pk) -> Conversation:
    return get_object_or_404(
        Conversation.objects.unscoped_review_scope(request.user).with_scaffolding().select_related("owner"), pk=pk
    )


@require_GET
def review_detail(request: HttpRequest, pk) -> HttpResponse:
    conversation = _in_review_scope(request, pk)
    if not _is_reviewer(request.user):
        # Outside the reviewer role the scope is the user's own rows: send them to their page.
        return redirect("conversations:conversation_detail", pk=conversation.pk)
    context = {**_detail_context(conversation), "owner_view": False, "reject_reasons": _reject_reasons()}
    return render_page(request, "conversations/review_detail.html", "conversations/_conversation_body.html", context)


# --- mutations on one conversation ---------------------------------------------------------


def _reviewer_score(request: HttpRequest) -> float | None:
    raw = request.POST.get("reviewer_score", "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApplicationError("The reviewer score must be a number from 1 to 5.", code="invalid_score") from None


def _review(request: HttpRequest, conversation: Conversation, action: str) -> ApplicationError | None:
    """Record a decision; a broken rule becomes an error message and is returned (``None`` when recorded)."""
    from conversations.services.review import conversation_review

    try:
        conversation_review(
            conversation=conversation,
            actor=request.user,
            action=action,
            reason_codes=_reason_codes(request),
            comment=request.POST.get("comment", ""),
            reviewer_score=_reviewer_score(request),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return exc
    messages.success(request, f"{conversation.title}: {action.replace('_', ' ')} recorded.")
    return None


@require_POST
def review_action(request: HttpRequest, pk) -> HttpResponse:
    """A reviewer's decision on any conversation in their scope; the service enforces the rules.

    A refusal that belongs to one field (score, reason) comes back as the conversation's review page (400) with
    the input kept and the message beside that field; any other outcome goes back to ``next`` with a message.
    """
    conversation = _in_review_scope(request, pk)
    action = request.POST.get("action", "")
    back = _next_url(request, reverse("conversations:review_queue"))
    error = _review(request, conversation, action)
    field = REVIEW_FIELD_ERRORS.get(error.code) if error is not None else None
    if field is None or not _is_reviewer(request.user):
        return HttpResponseRedirect(back)
    context = {
        **_detail_context(Conversation.objects.with_scaffolding().select_related("owner").get(pk=conversation.pk)),
        "owner_view": False,
        "reject_reasons": _reject_reasons(),
        "review_next": back,
        "review_errors": {field: error.message},
        "review_values": {
            "action": action,
            "reviewer_score": request.POST.get("reviewer_score", ""),
            "reason_codes": _reason_codes(request),
            "comment": request.POST.get("comment", ""),
        },
    }
    return render_page(
        request, "conversations/review_detail.html", "conversations/_conversation_body.html", context, status=400
    )


@require_POST
def conversation_review(request: HttpRequest, pk) -> HttpResponse:
    """The owner's own transitions (resubmit after revision, retract, archive)."""
    conversation = get_owned_or_404(Conversation, request.user, pk=pk)
    _review(request, conversation, request.POST.get("action", ""))
    return redirect("conversations:conversation_detail", pk=conversation.pk)


@require_POST
def turn_edit(request: HttpRequest, pk, index: int) -> HttpResponse:
    from conversations.services.review import turn_edit as edit

    conversation = get_owned_or_404(Conversation, request.user, pk=pk)
    turn = get_object_or_404(Turn.objects.for_user(request.user), conversation=conversation, index=index)
    content = request.POST.get("content", "")
    _report(request, lambda: edit(turn=turn, actor=request.user, content=content), f"Turn {index} saved.")
    return redirect(f"{reverse('conversations:conversation_detail', args=[conversation.pk])}#turn-{index}")


@require_POST
def conversation_regenerate(request: HttpRequest, pk) -> HttpResponse:
    from conversations.services.regenerate import conversation_regenerate_request

    conversation = get_owned_or_404(Conversation, request.user, pk=pk)
    try:
        from_turn = int(request.POST.get("from_turn", ""))
    except ValueError:
        messages.error(request, "Choose the turn to regenerate from.")
    else:
        _report(
            request,
            lambda: conversation_regenerate_request(conversation=conversation, actor=request.user, from_turn=from_turn),
            f"Regeneration from turn {from_turn} started. The turns update when it finishes.",
        )
    return redirect("conversations:conversation_detail", pk=conversation.pk)


@require_POST
def conversation_enrich(request: HttpRequest, pk) -> HttpResponse:
    from conversations.services.enrichment import conversation_enrich_enqueue

    conversation = get_owned_or_404(Conversation, request.user, pk=pk)
    _report(request, lambda: conversation_enrich_enqueue(conversation=conversation), "Enrichment queued.")
    return redirect("conversations:conversation_detail", pk=conversation.pk)


@require_GET
def conversation_enriched(request: HttpRequest, pk) -> HttpResponse:
    """Redirect to a fresh signed URL of the enriched v4 JSON (never stored in a page)."""
    from conversations.services.enrichment import enriched_download_url

    conversation = get_owned_or_404(Conversation, request.user, pk=pk)
    try:
        return HttpResponseRedirect(enriched_download_url(conversation=conversation))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("conversations:conversation_detail", pk=conversation.pk)


# --- review queue --------------------------------------------------------------------------


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render_page(
        request,
        "conversations/review_forbidden.html",
        "conversations/review_forbidden.html",
        {},
        status=403,
    )


@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    if not _is_reviewer(request.user):
        return _forbidden(request)
    rows = (
        Conversation.objects.review_queue()
        .with_scaffolding()
        .prefetch_related(Prefetch("turns", queryset=Turn.objects.order_by("index")))
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "reject_reasons": _reject_reasons()}
    return render_page(request, "conversations/review_queue.html", "conversations/_review_entries.html", context)


# --- quality -------------------------------------------------------------------------------


def _breakdown(rows, *fields: str) -> list[dict]:
    """Count, approval rate (approved / reviewed) and mean quality grouped by ``fields``."""
    grouped = (
        rows.values(*fields)
        .annotate(
            total=Count("id"),
            reviewed=Count("id", filter=Q(status__in=REVIEWED)),
            approved=Count("id", filter=Q(status=Conversation.Status.APPROVED)),
            mean_quality=Avg("quality_score"),
        )
        .order_by(*fields)
    )
    result = []
    for row in grouped:
        row["label"] = " v".join(str(row[f]) for f in fields if row[f] is not None) or "—"
        row["approval_rate"] = row["approved"] / row["reviewed"] if row["reviewed"] else None
        result.append(row)
    return result


def _coverage(rows) -> dict:
    """Personas × arcs with the number of topics covered by approved conversations."""
    covered = {
        (r["persona_id"], r["emotional_arc_id"]): r["topics"]
        for r in rows.filter(status=Conversation.Status.APPROVED)
        .values("persona_id", "emotional_arc_id")
        .annotate(topics=Count("training_topic", distinct=True))
    }
    arcs = list(EmotionalArc.objects.active().order_by("name"))
    personas = list(Persona.objects.active().order_by("name"))
    return {
        "arcs": arcs,
        "topic_total": TrainingTopic.objects.active().count(),
        "rows": [(p, [covered.get((p.pk, a.pk), 0) for a in arcs]) for p in personas],
    }


@require_GET
def quality(request: HttpRequest) -> HttpResponse:
    rows = Conversation.objects.for_user(request.user)
    tiers = dict(rows.values_list("quality_tier").annotate(n=Count("id")).order_by())
    since = timezone.now() - timedelta(days=14)
    throughput = (
        ReviewAction.objects.for_user(request.user)
        .filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "actor__username")
        .annotate(n=Count("id"))
        .order_by("-day", "actor__username")
    )
    context = {
        "total": sum(tiers.values()),
        "tiers": [(value, label, tiers.get(value, 0)) for value, label in Conversation.QualityTier.choices],
        "breakdowns": [
            ("Template version", _breakdown(rows, "template_version__template__name", "template_version__number")),
            ("Persona", _breakdown(rows, "persona__name")),
            ("Emotional arc", _breakdown(rows, "emotional_arc__name")),
            ("Topic", _breakdown(rows, "training_topic__name")),
        ],
        "coverage": _coverage(rows),
        "throughput": throughput,
    }
    return render_page(request, "conversations/quality.html", "conversations/quality.html", context)


urlpatterns = [
    path("conversations/", conversation_list, name="conversation_list"),
    path("conversations/bulk/", conversation_bulk, name="conversation_bulk"),
    path("conversations/quality/", quality, name="quality"),
    path("conversations/<uuid:pk>/", conversation_detail, name="conversation_detail"),
    path("conversations/<uuid:pk>/review/", conversation_review, name="conversation_review"),
    path("conversations/<uuid:pk>/regenerate/", conversation_regenerate, name="conversation_regenerate"),
    path("conversations/<uuid:pk>/enrich/", conversation_enrich, name="conversation_enrich"),
    path("conversations/<uuid:pk>/enriched.json", conversation_enriched, name="conversation_enriched"),
    path("conversations/<uuid:pk>/turns/<int:index>/edit/", turn_edit, name="turn_edit"),
    path("review/", review_queue, name="review_queue"),
    path("review/<uuid:pk>/", review_detail, name="review_detail"),
    path("review/<uuid:pk>/action/", review_action, name="review_action"),
]
