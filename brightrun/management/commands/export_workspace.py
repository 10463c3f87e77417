"""``manage.py export_workspace --owner USERNAME --out PATH``: write a user's workspace archive."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from brightrun.errors import ApplicationError
from brightrun.workspace import workspace_export


class Command(BaseCommand):
    help = "Export a user's scaffolding, conversations and training files into one zip archive."

    def add_arguments(self, parser):
        parser.add_argument("--owner", required=True, help="Username whose workspace is exported.")
        parser.add_argument("--out", required=True, help="Path of the zip archive to write.")

    def handle(self, *args, owner, out, **options):
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user named {owner!r}.")
        try:
            manifest = workspace_export(owner=user, path=out)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(json.dumps(manifest, indent=2, sort_keys=True))
