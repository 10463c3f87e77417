"""The training configure page and its live estimate (SPEC §10.1–§10.2, §13.2).

One form serves three requests: the page (GET, defaults plus ``?dataset=``), the estimate fragment polled by
HTMX on every change (GET ``training:estimate``), and the POST that either recalculates (no JavaScript) or
creates the job. The services decide every rule; an ``ApplicationError`` lands on the form's fields and the
page comes back with a 400, never a 500.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from brightrun.errors import ApplicationError
from datasets.models import Dataset
from training.forms import INTEGER_FIELDS, PRESET_FIELDS, RUN_FIELDS, TrainingConfigureForm, initial_hyperparameters
from training.models import BaseModel, GpuType, HyperparameterPreset
from training.services.estimate import training_estimate
from training.services.hyperparameters import RANGES, TARGET_MODULES, hyperparameters_resolve, preset_suggest
from training.services.jobs import training_job_create
from training.services.remote import remote_configured

#: ``ApplicationError`` codes without per-field ``errors`` and the field they belong to.
CODE_FIELDS = {
    "dataset_not_ready": "dataset",
    "invalid_gpu_count": "gpu_count",
    "remote_not_configured": "backend",
}
LABELS: dict[str, tuple[str, str]] = {
    "rank": ("LoRA rank (r)", "Adapter capacity: higher learns more and needs more memory."),
    "alpha": ("LoRA alpha", "Scales the adapter's update; commonly twice the rank."),
    "dropout": ("LoRA dropout", "Regularisation on the adapter's input."),
    "learning_rate": ("Learning rate", "Peak of the cosine schedule."),
    "epochs": ("Epochs", "Passes over the training split."),
    "batch_size": ("Batch size", "Examples per GPU step."),
    "grad_accum": ("Gradient accumulation", "Steps per optimizer update; effective batch = batch × this × GPUs."),
    "warmup_ratio": ("Warmup ratio", "Share of the steps spent warming the learning rate up."),
    "max_seq_length": ("Max sequence length", "Tokens; longer examples are truncated. Always applied."),
    "seed": ("Seed", "Makes a run repeatable. Always applied."),
}
#: Slider bounds where they differ from ``RANGES`` (learning rate on a log10 scale; no slider for the seed).
SLIDERS: dict[str, dict[str, Any] | None] = {
    "learning_rate": {"min": math.log10(RANGES["learning_rate"][1]), "max": -3, "step": 0.01, "scale": "log"},
    "max_seq_length": {"step": 256},
    "dropout": {"step": 0.01},
    "warmup_ratio": {"step": 0.005},
    "seed": None,
}
FIELD_LABELS = {"dataset": "Dataset", "base_model": "Base model", "preset": "Preset", "gpu_type": "GPU type",
                "gpu_count": "GPU count", "backend": "Backend", "name": "Name", "customise": "Hyperparameters",
                "target_modules": "Target modules"}  # fmt: skip


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _default_data(request: HttpRequest) -> QueryDict:
    """The page's starting values: the chosen (or newest) ready dataset, its suggested preset, the query string."""
    datasets = Dataset.objects.for_user(request.user).ready().order_by("-created_at")
    wanted = request.GET.get("dataset")
    dataset = datasets.filter(pk=wanted).first() if _is_uuid(wanted) else None
    dataset = dataset or datasets.first()
    models = BaseModel.objects.active()
    base_model = models.filter(is_test_model=False).first() or models.first()
    preset = preset_suggest(conversation_count=dataset.example_count) if dataset else None
    preset = preset or HyperparameterPreset.objects.active().filter(is_default=True).first()
    preset = preset or HyperparameterPreset.objects.active().first()
    gpu_type = GpuType.objects.active().first()
    data = QueryDict(mutable=True)
    for name, obj in (("dataset", dataset), ("base_model", base_model), ("preset", preset), ("gpu_type", gpu_type)):
        data[name] = str(obj.pk) if obj else ""
    data["gpu_count"] = "1"
    data["backend"] = "local"
    for name, value in initial_hyperparameters(preset).items():
        if name == "target_modules":
            data.setlist(name, value)
        else:
            data[name] = str(value)
    for name in request.GET:
        if name != "dataset":
            data.setlist(name, request.GET.getlist(name))
    return data


def apply_error(form: TrainingConfigureForm, exc: ApplicationError) -> None:
    """Put a service's error on the fields it names (``errors``) or, by its code, on the field it concerns."""
    errors = exc.errors if isinstance(exc.errors, dict) else {}
    placed = False
    for field, message in errors.items():
        text = message if isinstance(message, str) else "; ".join(str(m) for m in message or [])
        if field in form.fields:
            form.add_error(field, text)
            placed = True
    if not placed:
        field = CODE_FIELDS.get(exc.code)
        form.add_error(field if field in form.fields else None, exc.message)


def evaluate(form: TrainingConfigureForm) -> dict[str, Any]:
    """Resolve the hyperparameters and estimate the job; every problem becomes a form error and ``error``."""
    result: dict[str, Any] = {"hyperparameters": None, "estimate": None, "error": "", "suggested": None}
    if not form.is_valid():
        result["error"] = "Fix the fields below to see an estimate."
        return result
    data = form.cleaned_data
    result["suggested"] = preset_suggest(conversation_count=data["dataset"].example_count)
    try:
        hyperparameters = hyperparameters_resolve(preset=data["preset"], overrides=form.overrides())
        result["hyperparameters"] = hyperparameters
        result["estimate"] = training_estimate(
            dataset=data["dataset"],
            base_model=data["base_model"],
            hyperparameters=hyperparameters,
            gpu_type=data["gpu_type"],
            gpu_count=data["gpu_count"],
        )
    except ApplicationError as exc:
        apply_error(form, exc)
        result["error"] = exc.message
    return result


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def hp_fields(values: dict[str, Any], form: TrainingConfigureForm | None = None) -> list[dict[str, Any]]:
    """The advanced fields: label, value, HTML bounds and an optional slider (without a name: the number wins)."""
    fields = []
    for name in PRESET_FIELDS + RUN_FIELDS:
        _, low, high = RANGES[name]
        label, help_text = LABELS[name]
        value = values.get(name)
        value = "" if value is None else str(value)
        spec = SLIDERS.get(name, {})
        slider = None
        if spec is not None:
            slider = {"min": low, "max": high, "step": 1 if name in INTEGER_FIELDS else "any", **spec}
            number = _number(value)
            if spec.get("scale") == "log":
                slider["value"] = round(math.log10(number), 3) if number and number > 0 else slider["min"]
            else:
                slider["value"] = value if number is not None else low
        fields.append(
            {
                "name": name,
                "label": label,
                "help": help_text,
                "value": value,
                "min": low,
                "max": high,
                "step": 1 if name in INTEGER_FIELDS else "any",
                "slider": slider,
                "preset_field": name in PRESET_FIELDS,
                "errors": form.errors.get(name, []) if form is not None else [],
            }
        )
    return fields


def _modules(selected: list[str], form: TrainingConfigureForm | None = None) -> dict[str, Any]:
    return {
        "choices": [(m, m in selected) for m in TARGET_MODULES],
        "errors": form.errors.get("target_modules", []) if form is not None else [],
    }


def _error_list(form: TrainingConfigureForm) -> list[str]:
    return [
        f"{FIELD_LABELS.get(field, LABELS.get(field, (field,))[0])}: {' '.join(errors)}"
        if field != "__all__"
        else " ".join(errors)
        for field, errors in form.errors.items()
    ]


def fragment_context(form: TrainingConfigureForm, result: dict[str, Any]) -> dict[str, Any]:
    """What ``_estimate.html`` needs, with the preset-synchronising out-of-band blocks for HTMX."""
    customise = bool(form.is_bound and form.data.get("customise"))
    hyperparameters = result["hyperparameters"]
    presets = HyperparameterPreset.objects.active()
    return {
        "result": result,
        "estimate": result["estimate"],
        "errors": _error_list(form) if result["error"] else [],
        "sync_fields": hyperparameters is not None and not customise,
        "hp": hp_fields(hyperparameters or {}),
        "modules": _modules((hyperparameters or {}).get("target_modules") or []),
        "suggested_pk": result["suggested"].pk if result["suggested"] else None,
        "presets": [{"obj": p} for p in presets],
    }


def _page(request: HttpRequest, form: TrainingConfigureForm, result: dict[str, Any], *, status: int = 200):
    data = form.data
    selected_preset = str(data.get("preset", ""))
    suggested = result["suggested"]
    gpu_types = list(GpuType.objects.active())
    customise = bool(data.get("customise"))
    if result["hyperparameters"] is not None and not customise:
        shown = dict(result["hyperparameters"])  # the preset's values: what the job will use
    else:
        shown = {name: data.get(name) for name in PRESET_FIELDS + RUN_FIELDS}
        shown["target_modules"] = data.getlist("target_modules")
    modules = list(shown.get("target_modules") or [])
    context = {
        "form": form,
        "datasets": list(form.fields["dataset"].queryset.only("pk", "name", "example_count")),
        "base_models": list(BaseModel.objects.active()),
        "gpu_types": gpu_types,
        "max_gpu_count": max((g.max_count for g in gpu_types), default=1),
        "gpu_counts": range(1, max((g.max_count for g in gpu_types), default=1) + 1),
        "presets": [
            {"obj": p, "checked": str(p.pk) == selected_preset, "suggested": suggested is not None and p == suggested}
            for p in HyperparameterPreset.objects.active()
        ],
        "remote_available": remote_configured(),
        "customise": customise,
        "values": data,
        "hp": hp_fields(shown, form),
        "modules": _modules(modules, form),
        "result": result,
        "estimate": result["estimate"],
        "errors": _error_list(form) if result["error"] or status >= 400 else [],
        "suggested_pk": suggested.pk if suggested else None,
        "sync_fields": False,
    }
    return render(request, "training/configure.html", context, status=status)


def _missing(request: HttpRequest) -> HttpResponse | None:
    """The empty state when there is nothing to train on or with."""
    has_dataset = Dataset.objects.for_user(request.user).ready().exists()
    catalogue = (
        BaseModel.objects.active().exists()
        and HyperparameterPreset.objects.active().exists()
        and GpuType.objects.active().exists()
    )
    if has_dataset and catalogue:
        return None
    return render(request, "training/configure_missing.html", {"has_dataset": has_dataset, "catalogue": catalogue})


@require_http_methods(["GET", "POST"])
def job_configure(request: HttpRequest) -> HttpResponse:
    """GET: the form with a first estimate. POST: "Recalculate estimate" (no JavaScript) or create the job."""
    if request.method == "GET":
        missing = _missing(request)
        if missing is not None:
            return missing
        form = TrainingConfigureForm(_default_data(request), user=request.user)
        return _page(request, form, evaluate(form))
    form = TrainingConfigureForm(request.POST, user=request.user)
    result = evaluate(form)
    if request.POST.get("action") == "estimate":
        return _page(request, form, result)
    if not form.is_valid():
        result["error"] = result["error"] or "The job could not be created; fix the fields below."
        return _page(request, form, result, status=400)
    data = form.cleaned_data
    try:
        job = training_job_create(
            owner=request.user,
            dataset=data["dataset"],
            base_model=data["base_model"],
            gpu_type=data["gpu_type"],
            gpu_count=data["gpu_count"],
            backend=data["backend"],
            preset=data["preset"],
            hyperparameters=form.overrides(),
            name=data["name"].strip(),
        )
    except ApplicationError as exc:
        apply_error(form, exc)
        result["error"] = exc.message
        return _page(request, form, result, status=400)
    messages.success(request, f"Training job “{job}” is queued.")
    return redirect("training:job_detail", pk=job.pk)


@require_GET
def job_estimate(request: HttpRequest) -> HttpResponse:
    """The estimate fragment for the form's current values (HTMX ``hx-get`` on every change); never a 4xx/5xx,
    so HTMX always swaps the explanation in."""
    form = TrainingConfigureForm(request.GET, user=request.user)
    result = evaluate(form)
    response = render(request, "training/_estimate.html", {**fragment_context(form, result), "oob": True})
    response["Cache-Control"] = "no-store"
    return response
