"""``manage.py seed_scaffolding``: the vertical, personas, arcs, topics and templates of SPEC §3."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from conversations.seed import scaffolding_seed


class Command(BaseCommand):
    help = (
        "Create or update the seeded scaffolding (vertical, 3 personas, 10 arcs, 20 topics, 10 templates). "
        "Idempotent: a second run changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--keep-existing",
            action="store_true",
            help="Only create missing rows; leave rows that already exist exactly as they are.",
        )

    def handle(self, *args, keep_existing: bool = False, **options) -> None:
        report = scaffolding_seed(keep_existing=keep_existing)
        self.stdout.write(report.summary())
