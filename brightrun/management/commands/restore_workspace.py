"""``manage.py restore_workspace ARCHIVE --owner USERNAME``: import a workspace archive (idempotent)."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from brightrun.errors import ApplicationError
from brightrun.workspace import workspace_restore


class Command(BaseCommand):
    help = "Restore a workspace archive for a user, keeping ids; running it again changes nothing."

    def add_arguments(self, parser):
        parser.add_argument("archive", help="Path of the zip archive written by export_workspace.")
        parser.add_argument("--owner", required=True, help="Username who will own the restored rows.")

    def handle(self, *args, archive, owner, **options):
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user named {owner!r}.")
        try:
            summary = workspace_restore(path=archive, owner=user)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(json.dumps(summary, indent=2, sort_keys=True))
