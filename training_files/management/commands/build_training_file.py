"""``manage.py build_training_file --file ID [--version N]``: build a version in this process (same service)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training_files.models import TrainingFile, TrainingFileVersion
from training_files.services import training_file_build, training_file_build_retry


class Command(BaseCommand):
    help = "Build a training-file version now (the latest unless --version), printing counts, sizes and SHA-256."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # ``--version N`` names a training-file version here, replacing Django's ``--version`` flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser) -> None:
        parser.add_argument("--file", required=True, help="Training file id (UUID).")
        parser.add_argument("--version", type=int, help="Version number (default: the latest).")

    def handle(self, *args, **options) -> None:
        training_file = TrainingFile.objects.filter(pk=options["file"]).first() if _uuid(options["file"]) else None
        if training_file is None:
            raise CommandError(f"No training file {options['file']}.")
        versions = training_file.versions.all()
        version = (
            versions.filter(number=options["version"]).first()
            if options["version"]
            else versions.order_by("-number").first()
        )
        if version is None:
            raise CommandError("No such version.")
        if version.status == TrainingFileVersion.Status.FAILED:
            version = training_file_build_retry(version=version, enqueue=False)
        if version.status == TrainingFileVersion.Status.BUILDING:
            version = training_file_build(version=version)
        self.stdout.write(f"{training_file.name} v{version.number}: {version.status}")
        if version.status != TrainingFileVersion.Status.READY:
            raise CommandError(f"Build failed: {version.error or 'claimed by another worker'}")
        self.stdout.write(f"conversations: {version.conversation_count}  training pairs: {version.training_pair_count}")
        for fmt, entry in sorted(version.files.items()):
            self.stdout.write(f"{fmt:<11} {entry['size']:>12} bytes  sha256 {entry['sha256']}  {entry['key']}")


def _uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
