"""Delivering a trained adapter: short-lived signed URLs to each of its files (SPEC §10.3, §13.1).

Called by the API and the model page with an artifact they already scoped to the requesting user. URLs are made
on demand and never stored.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from brightrun.storage import download_url
from training.models import ModelArtifact


def artifact_download(*, artifact: ModelArtifact, ttl: int | None = None) -> list[dict[str, Any]]:
    """``[{name, url, size, sha256, expires_at}]`` for every file of ``artifact`` (in its stored order).

    Each URL is an S3 presigned GET or an app-signed local URL that expires after ``ttl`` seconds
    (``SIGNED_URL_TTL_SECONDS`` by default); keys are checked to lie under the owner's prefix.
    """
    seconds = settings.SIGNED_URL_TTL_SECONDS if ttl is None else int(ttl)
    expires_at = timezone.now() + timedelta(seconds=seconds)
    return [
        {
            "name": entry["name"],
            "url": download_url(owner_id=artifact.owner_id, key=entry["key"], ttl=seconds, filename=entry["name"]),
            "size": entry["size"],
            "sha256": entry["sha256"],
            "expires_at": expires_at,
        }
        for entry in artifact.files or []
    ]
