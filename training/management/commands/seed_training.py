"""``manage.py seed_training``: the base models, presets and GPU types of SPEC §10.1."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from training.services import catalogue_seed


class Command(BaseCommand):
    help = (
        "Create the missing seeded training catalogue rows (5 base models incl. the tiny test model, 3 presets, "
        "5 GPU types). Existing rows are left exactly as they are, so admin edits survive; idempotent."
    )

    def handle(self, *args, **options) -> None:
        created = catalogue_seed()
        self.stdout.write(
            "Training catalogue: created {base_models} base models, {presets} presets, {gpu_types} GPU types "
            "(existing rows unchanged).".format(**created)
        )
