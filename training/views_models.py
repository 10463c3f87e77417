"""Model pages (SPEC §10.3, §13.2): trained adapters with their files, quality summary, lineage and loading help.

Artifacts are reached through ``ModelArtifact.objects.for_user`` / ``get_owned_or_404``; a file download is a
redirect to a short-lived signed URL made by ``artifact_download`` at that moment, never a stored URL.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from brightrun.errors import ApplicationError
from brightrun.htmx import render_page
from brightrun.ownership import get_owned_or_404
from training.models import ModelArtifact
from training.services.artifacts import artifact_download

PAGE_SIZE = 25


@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    """The user's adapters, newest first."""
    rows = (
        ModelArtifact.objects.for_user(request.user)
        .select_related("base_model", "dataset")
        .defer("hyperparameters", "files", "dataset__statistics")
        .order_by("-created_at")
    )
    context = {"page": Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))}
    return render_page(request, "training/model_list.html", "training/_model_results.html", context)


def _load_snippet(artifact: ModelArtifact, folder: str) -> str:
    """PEFT loading code for the downloaded folder (the test model loads from its local build folder)."""
    base = artifact.base_model
    source = base.local_path if base.is_test_model and base.local_path else base.hf_id
    return (
        "from peft import PeftModel\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'base = AutoModelForCausalLM.from_pretrained("{source}", torch_dtype="auto", device_map="auto")\n'
        f'model = PeftModel.from_pretrained(base, "{folder}")\n'
        f'tokenizer = AutoTokenizer.from_pretrained("{folder}")\n'
    )


def _quality(artifact: ModelArtifact) -> dict[str, Any] | None:
    quality = artifact.quality if isinstance(artifact.quality, dict) else None
    if not quality or quality.get("score") is None:
        return None
    return quality


@require_GET
def model_detail(request: HttpRequest, pk) -> HttpResponse:
    """Files with size and SHA-256, the quality summary (or "not enough data"), lineage and how to load it."""
    artifact = get_owned_or_404(ModelArtifact, request.user, pk=pk)
    folder = slugify(artifact.name) or f"adapter-{artifact.pk}"
    hyperparameters = artifact.hyperparameters if isinstance(artifact.hyperparameters, dict) else {}
    context = {
        "artifact": artifact,
        "job": artifact.job,
        "files": [f for f in artifact.files or [] if isinstance(f, dict)],
        "quality": _quality(artifact),
        "hyperparameters": sorted(hyperparameters.items()),
        "version": artifact.training_file_version,
        "folder": folder,
        "snippet": _load_snippet(artifact, folder),
    }
    return render(request, "training/model_detail.html", context)


@require_GET
def model_file_download(request: HttpRequest, pk, name: str) -> HttpResponse:
    """Redirect to a signed URL of one file of the adapter; an unknown file name is a 404."""
    artifact = get_owned_or_404(ModelArtifact, request.user, pk=pk)
    if not any(isinstance(f, dict) and f.get("name") == name for f in artifact.files or []):
        raise Http404("No such file in this model.")
    try:
        links = artifact_download(artifact=artifact)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("training:model_detail", pk=artifact.pk)
    url = next((link["url"] for link in links if link["name"] == name), None)
    if url is None:
        raise Http404("No such file in this model.")
    return HttpResponseRedirect(url)
