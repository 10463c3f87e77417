"""Generation batches: creation from parameter sets or a selection, estimates, state changes.

A batch's status only moves along ``GenerationBatch.TRANSITIONS``, each move a conditional
update (compare-and-set). Item processing lives in :mod:`conversations.services.generation`.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, DecimalField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from brightrun import services as core
from brightrun.errors import ApplicationError
from brightrun.models import CostRecord, Notification
from conversations.models import (
    BatchItem,
    EmotionalArc,
    GenerationBatch,
    GenerationLog,
    Persona,
    PromptTemplateVersion,
    Tier,
    TrainingTopic,
)
from conversations.services.claude import cost_usd, price_for
from conversations.services.scaffolding import compatibility_check, template_select

# Used for estimates until this installation has its own history.
DEFAULT_OUTPUT_TOKENS_PER_EXCHANGE = 260
DEFAULT_INPUT_TOKENS = 3_000
DEFAULT_SECONDS_PER_ITEM = 45.0


@dataclass(frozen=True)
class ItemSpec:
    persona: Persona
    emotional_arc: EmotionalArc
    training_topic: TrainingTopic
    tier: str
    template_version: PromptTemplateVersion | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class Estimate:
    total_items: int
    cost_usd: Decimal
    seconds: float
    basis: str  # "history" or "heuristic"

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_items": self.total_items,
            "estimated_cost_usd": str(self.cost_usd.quantize(Decimal("0.01"))),
            "estimated_seconds": round(self.seconds),
            "basis": self.basis,
        }


def _by_key(model, keys: list[str], code: str, label: str) -> dict[str, Any]:
    keys = [str(k) for k in keys]
    found = {obj.key: obj for obj in model.objects.active().filter(key__in=keys)}
    missing = sorted(set(keys) - set(found))
    if missing:
        raise ApplicationError(
            f"Unknown or inactive {label}: {', '.join(missing)}.", code=code, errors={label: missing}
        )
    return found


def _check_temperature(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = -1.0
    if not 0.0 <= t <= 1.0:
        raise ApplicationError(f"Temperature must be between 0 and 1 ({where}).", code="invalid_temperature")
    return t


def item_specs_from_items(items: list[dict[str, Any]], *, allow_incompatible: bool = False) -> list[ItemSpec]:
    """Validate explicit parameter sets (keys of scaffolding rows) into item specs."""
    if not items:
        raise ApplicationError("Give at least one item.", code="empty_selection")
    if len(items) > settings.GENERATION_MAX_ITEMS:
        raise ApplicationError(f"A batch holds at most {settings.GENERATION_MAX_ITEMS} items.", code="too_many_items")
    personas = _by_key(Persona, [i.get("persona") for i in items], "unknown_persona", "personas")
    arcs = _by_key(EmotionalArc, [i.get("emotional_arc") for i in items], "unknown_emotional_arc", "emotional_arcs")
    topics = _by_key(
        TrainingTopic, [i.get("training_topic") for i in items], "unknown_training_topic", "training_topics"
    )
    version_ids = {i["template_version"] for i in items if i.get("template_version") is not None}
    versions = {v.pk: v for v in PromptTemplateVersion.objects.select_related("template").filter(pk__in=version_ids)}
    if missing := sorted(version_ids - set(versions)):
        raise ApplicationError(f"Unknown template versions: {missing}.", code="unknown_template_version")
    specs, incompatible = [], []
    for index, raw in enumerate(items):
        arc = arcs[raw["emotional_arc"]]
        tier = raw.get("tier") or arc.tier
        if tier not in Tier.values:
            raise ApplicationError(f"Unknown tier {tier!r} (item {index}).", code="invalid_tier")
        version = versions.get(raw.get("template_version"))
        if version is not None and version.template.emotional_arc_id not in (None, arc.pk):
            raise ApplicationError(
                f"Template version {version.pk} is for another arc (item {index}).", code="template_arc_mismatch"
            )
        spec = ItemSpec(
            personas[raw["persona"]],
            arc,
            topics[raw["training_topic"]],
            tier,
            version,
            _check_temperature(raw.get("temperature"), f"item {index}"),
        )
        if (
            not allow_incompatible
            and not compatibility_check(
                persona=spec.persona, arc=spec.emotional_arc, topic=spec.training_topic
            ).compatible
        ):
            incompatible.append(index)
        specs.append(spec)
    if incompatible:
        raise ApplicationError(
            f"Items {incompatible} combine a persona, arc and topic that are not compatible "
            "(see /api/v1/compatibility/). Pass allow_incompatible to generate them anyway.",
            code="incompatible_selection",
            errors={"items": incompatible},
        )
    return specs


@dataclass(frozen=True)
class SelectionResult:
    specs: list[ItemSpec]
    skipped_incompatible: int


def item_specs_from_selection(
    *,
    personas: list[str],
    emotional_arcs: list[str],
    training_topics: list[str],
    repeat: int = 1,
    tier: str | None = None,
    temperature: float | None = None,
    allow_incompatible: bool = False,
) -> SelectionResult:
    """The cartesian product personas × arcs × topics (× repeat). Incompatible combinations are skipped."""
    if not personas or not emotional_arcs or not training_topics:
        raise ApplicationError(
            "Select at least one persona, one emotional arc and one training topic.", code="empty_selection"
        )
    if not isinstance(repeat, int) or repeat < 1:
        raise ApplicationError("repeat must be a positive whole number.", code="invalid_repeat")
    total = len(personas) * len(emotional_arcs) * len(training_topics) * repeat
    if total > settings.GENERATION_MAX_ITEMS:
        raise ApplicationError(
            f"This selection makes {total} conversations; a batch holds at most {settings.GENERATION_MAX_ITEMS}.",
            code="too_many_items",
        )
    if tier is not None and tier not in Tier.values:
        raise ApplicationError(f"Unknown tier {tier!r}.", code="invalid_tier")
    t = _check_temperature(temperature, "selection")
    p = _by_key(Persona, personas, "unknown_persona", "personas")
    a = _by_key(EmotionalArc, emotional_arcs, "unknown_emotional_arc", "emotional_arcs")
    k = _by_key(TrainingTopic, training_topics, "unknown_training_topic", "training_topics")
    specs, skipped = [], 0
    for pk, ak, tk in itertools.product(
        dict.fromkeys(personas), dict.fromkeys(emotional_arcs), dict.fromkeys(training_topics)
    ):
        persona, arc, topic = p[pk], a[ak], k[tk]
        if not allow_incompatible and not compatibility_check(persona=persona, arc=arc, topic=topic).compatible:
            skipped += repeat
            continue
        specs.extend(ItemSpec(persona, arc, topic, tier or arc.tier, None, t) for _ in range(repeat))
    if not specs:
        raise ApplicationError("None of the selected combinations is compatible.", code="incompatible_selection")
    return SelectionResult(specs, skipped)


def _history(model: str) -> tuple[float | None, float | None, float | None]:
    """Mean input and output tokens and mean duration of recent successful calls of ``model``."""
    rows = list(
        GenerationLog.objects.filter(
            model=model, status=GenerationLog.Status.SUCCESS, purpose=GenerationLog.Purpose.GENERATION
        )
        .order_by("-created_at")
        .values_list("input_tokens", "output_tokens", "duration_ms")[:200]
    )
    if len(rows) < 5:
        return None, None, None
    return (
        statistics.fmean(r[0] for r in rows),
        statistics.fmean(r[1] for r in rows),
        statistics.fmean(r[2] for r in rows) / 1000,
    )


def generation_estimate(*, specs: list[ItemSpec], model: str, mode: str, concurrency: int) -> Estimate:
    """Expected cost and wall time of generating ``specs``, from this installation's history when it has
    enough (≥ 5 successful calls of the model), else from documented per-exchange defaults."""
    mean_in, mean_out, mean_seconds = _history(model)
    basis = "history" if mean_out is not None else "heuristic"
    cost = Decimal("0")
    price = price_for(model)
    for spec in specs:
        exchanges = (spec.emotional_arc.typical_turns_min + spec.emotional_arc.typical_turns_max) / 2
        output = mean_out if mean_out is not None else exchanges * 2 * DEFAULT_OUTPUT_TOKENS_PER_EXCHANGE
        usage = {"input_tokens": int(mean_in or DEFAULT_INPUT_TOKENS), "output_tokens": int(output)}
        cost += cost_usd(model=model, usage=usage, batch_api=mode == GenerationBatch.Mode.MESSAGE_BATCHES, price=price)
    per_item = mean_seconds or DEFAULT_SECONDS_PER_ITEM
    if mode == GenerationBatch.Mode.MESSAGE_BATCHES:
        seconds = max(per_item, 600.0)  # Message Batches usually end within the hour (at most 24 h)
    else:
        seconds = per_item * -(-len(specs) // max(1, concurrency))
    return Estimate(len(specs), cost, seconds, basis)


@transaction.atomic
def generation_batch_create(
    *,
    owner: AbstractBaseUser,
    specs: list[ItemSpec],
    name: str = "",
    mode: str = GenerationBatch.Mode.LIVE,
    priority: str = GenerationBatch.Priority.NORMAL,
    concurrency: int = 3,
    error_policy: str = GenerationBatch.ErrorPolicy.CONTINUE,
    model: str | None = None,
    max_tokens: int | None = None,
    start: bool = True,
) -> GenerationBatch:
    """Create a batch with one item per spec and (by default) start it after commit."""
    if not specs:
        raise ApplicationError("A batch needs at least one item.", code="empty_selection")
    if len(specs) > settings.GENERATION_MAX_ITEMS:
        raise ApplicationError(f"A batch holds at most {settings.GENERATION_MAX_ITEMS} items.", code="too_many_items")
    if mode not in GenerationBatch.Mode.values:
        raise ApplicationError(f"Unknown mode {mode!r}.", code="invalid_mode")
    if priority not in GenerationBatch.Priority.values:
        raise ApplicationError(f"Unknown priority {priority!r}.", code="invalid_priority")
    if error_policy not in GenerationBatch.ErrorPolicy.values:
        raise ApplicationError(f"Unknown error policy {error_policy!r}.", code="invalid_error_policy")
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 10:
        raise ApplicationError("Concurrency must be between 1 and 10.", code="invalid_concurrency")
    model = model or settings.ANTHROPIC_MODEL
    estimate = generation_estimate(specs=specs, model=model, mode=mode, concurrency=concurrency)
    first = specs[0]
    batch = GenerationBatch.objects.create(
        owner=owner,
        name=(name or "").strip()[:200]
        or (
            f"{first.persona.name} · {first.emotional_arc.name} · {first.training_topic.name}"
            if len(specs) == 1
            else f"{len(specs)} conversations"
        ),
        mode=mode,
        priority=priority,
        priority_rank=GenerationBatch.PRIORITY_RANK[priority],
        concurrency=concurrency,
        error_policy=error_policy,
        model=model,
        max_tokens=max_tokens or settings.GENERATION_MAX_TOKENS,
        total_items=len(specs),
        estimated_cost_usd=estimate.cost_usd,
    )
    versions = _pinned_versions(specs)
    BatchItem.objects.bulk_create(
        [
            BatchItem(
                owner=owner,
                batch=batch,
                position=i,
                persona=s.persona,
                emotional_arc=s.emotional_arc,
                training_topic=s.training_topic,
                tier=s.tier,
                template_version=s.template_version or versions[_combo(s)],
                temperature=s.temperature,
            )
            for i, s in enumerate(specs, start=1)
        ],
        batch_size=1000,
    )
    if start:
        generation_batch_start(batch=batch)
    return batch


def _combo(spec: ItemSpec) -> tuple:
    return (spec.emotional_arc.pk, spec.tier, spec.persona.pk, spec.training_topic.pk)


def _pinned_versions(specs: list[ItemSpec]) -> dict[tuple, PromptTemplateVersion]:
    """The template version each combination will use, chosen once when the batch is created,
    so every item of a batch (and a Message Batch re-read later) uses the same text. Raises
    ``no_template`` (naming the arc and tier) before anything is created."""
    chosen: dict[tuple, PromptTemplateVersion] = {}
    for spec in specs:
        if spec.template_version is None and _combo(spec) not in chosen:
            chosen[_combo(spec)] = template_select(
                arc=spec.emotional_arc, tier=spec.tier, persona=spec.persona, topic=spec.training_topic
            )
    return chosen


def _transition(batch: GenerationBatch, to: str, **fields: Any) -> bool:
    """Compare-and-set ``batch.status`` to ``to`` from any status allowed to reach it."""
    sources = [s for s, targets in GenerationBatch.TRANSITIONS.items() if to in targets]
    changed = GenerationBatch.objects.filter(pk=batch.pk, status__in=sources).update(
        status=to, updated_at=timezone.now(), **fields
    )
    batch.refresh_from_db()
    return bool(changed)


def _enqueue_after_commit(batch: GenerationBatch) -> None:
    """Live batches dispatch their first items right away (item tasks go out after commit);
    Message Batches batches are submitted by a task."""
    from conversations import tasks
    from conversations.services.generation import generation_dispatch

    if batch.mode == GenerationBatch.Mode.MESSAGE_BATCHES:
        transaction.on_commit(lambda: tasks.generation_batch_submit_task.delay(str(batch.pk)))
    else:
        generation_dispatch(batch_id=batch.pk)


@transaction.atomic
def generation_batch_start(*, batch: GenerationBatch) -> GenerationBatch:
    """queued → running, then items are dispatched (live) or submitted (Message Batches) after commit."""
    if not _transition(batch, GenerationBatch.Status.RUNNING, started_at=timezone.now()):
        raise ApplicationError(f"A {batch.status} batch cannot be started.", code="invalid_transition")
    _enqueue_after_commit(batch)
    return batch


def _owned(batch: GenerationBatch, actor: AbstractBaseUser | None) -> None:
    if actor is not None and batch.owner_id != actor.pk:
        raise ApplicationError("Batch not found.", code="not_found", status_code=404)


@transaction.atomic
def generation_batch_cancel(*, batch: GenerationBatch, actor: AbstractBaseUser | None = None) -> GenerationBatch:
    """Cancel: queued items are cancelled now; items already calling Claude finish and are kept."""
    _owned(batch, actor)
    if not _transition(batch, GenerationBatch.Status.CANCELLED, finished_at=timezone.now()):
        raise ApplicationError(f"A {batch.status} batch cannot be cancelled.", code="invalid_transition")
    now = timezone.now()
    batch.items.filter(status=BatchItem.Status.QUEUED).update(
        status=BatchItem.Status.CANCELLED, finished_at=now, error_code="cancelled", updated_at=now
    )
    generation_batch_refresh(batch=batch)
    return batch


@transaction.atomic
def generation_batch_pause(
    *, batch: GenerationBatch, actor: AbstractBaseUser | None = None, reason: str = ""
) -> GenerationBatch:
    """Pause: no new item starts until resumed; items already calling Claude finish."""
    _owned(batch, actor)
    if not _transition(batch, GenerationBatch.Status.PAUSED, status_message=reason[:500]):
        raise ApplicationError(f"A {batch.status} batch cannot be paused.", code="invalid_transition")
    return batch


@transaction.atomic
def generation_batch_resume(*, batch: GenerationBatch, actor: AbstractBaseUser | None = None) -> GenerationBatch:
    _owned(batch, actor)
    if batch.status != GenerationBatch.Status.PAUSED or not _transition(
        batch, GenerationBatch.Status.RUNNING, status_message=""
    ):
        raise ApplicationError(f"A {batch.status} batch cannot be resumed.", code="invalid_transition")
    _enqueue_after_commit(batch)
    return batch


def etr_seconds(batch: GenerationBatch, *, now=None) -> float | None:
    """Estimated time remaining: elapsed / done × remaining (None until an item is done)."""
    done = batch.done_items
    if not batch.started_at or not done or batch.is_terminal:
        return None if not batch.is_terminal else 0.0
    elapsed = ((now or timezone.now()) - batch.started_at).total_seconds()
    return round(elapsed / done * (batch.total_items - done), 1)


def _count(status: str):
    rows = (
        BatchItem.objects.filter(batch=OuterRef("pk"), status=status)
        .order_by()
        .values("batch")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


def generation_batch_recount(*, batch_id: Any) -> None:
    """Set the batch's counters and actual cost from its items and logs, in one UPDATE."""
    cost = (
        GenerationLog.objects.filter(batch=OuterRef("pk"))
        .order_by()
        .values("batch")
        .annotate(total=Sum("cost_usd"))
        .values("total")
    )
    GenerationBatch.objects.filter(pk=batch_id).update(
        succeeded_items=_count(BatchItem.Status.SUCCEEDED),
        failed_items=_count(BatchItem.Status.FAILED),
        cancelled_items=_count(BatchItem.Status.CANCELLED),
        actual_cost_usd=Coalesce(Subquery(cost), Decimal("0"), output_field=DecimalField()),
    )


def generation_batch_refresh(*, batch: GenerationBatch) -> GenerationBatch:
    """Recount the batch from its items and finish it when no item is open. Idempotent.

    Finishing records the batch's cost (sum of its logged calls) and notifies the owner once.
    """
    generation_batch_recount(batch_id=batch.pk)
    batch.refresh_from_db()
    counts = {
        "succeeded": batch.succeeded_items,
        "failed": batch.failed_items,
        "open": batch.items.filter(status__in=[BatchItem.Status.QUEUED, BatchItem.Status.RUNNING]).count(),
    }
    cost = batch.actual_cost_usd
    if counts["open"] == 0 and batch.status in (GenerationBatch.Status.RUNNING, GenerationBatch.Status.CANCELLED):
        final = batch.status
        if batch.status == GenerationBatch.Status.RUNNING:
            final = (
                GenerationBatch.Status.FAILED
                if counts["succeeded"] == 0
                or (batch.error_policy == GenerationBatch.ErrorPolicy.STOP and counts["failed"])
                else GenerationBatch.Status.COMPLETED
            )
            if not _transition(batch, final, finished_at=timezone.now()):
                return batch
        _record_finish(batch, final, cost)
    return batch


def _record_finish(batch: GenerationBatch, final: str, cost: Decimal) -> None:
    created = not CostRecord.objects.filter(
        source_type="conversations.generationbatch", source_id=batch.pk, kind=CostRecord.Kind.GENERATION
    ).exists()
    core.cost_record_upsert(
        owner=batch.owner,
        kind=CostRecord.Kind.GENERATION,
        amount_usd=cost,
        source_type="conversations.generationbatch",
        source_id=batch.pk,
        description=f"Generation batch “{batch.name}”",
    )
    if not created or final == GenerationBatch.Status.CANCELLED:
        return
    ok = final == GenerationBatch.Status.COMPLETED
    core.notification_create(
        owner=batch.owner,
        type=Notification.Type.GENERATION_BATCH_COMPLETED if ok else Notification.Type.GENERATION_BATCH_FAILED,
        priority=Notification.Priority.MEDIUM if ok else Notification.Priority.HIGH,
        title=f"Batch “{batch.name}” {final}",
        message=f"{batch.succeeded_items} succeeded, {batch.failed_items} failed, "
        f"{batch.cancelled_items} cancelled · ${cost:.2f}",
        link=f"/generation/batches/{batch.pk}/",
    )
