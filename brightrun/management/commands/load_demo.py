"""``manage.py load_demo``: the demo workspace of ``make demo`` (see ``brightrun.demo``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from brightrun.demo import DemoReport, demo_load
from brightrun.demo.workspace import REVIEWER_USERNAME
from brightrun.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Load the demo workspace into the demo user's account: ~30 hand-written conversations enriched and "
        "reviewed into every review state, two $0 batch records, a training file, a dataset and a finished LoRA "
        "job on the tiny test model. No Anthropic key needed. Idempotent: a second run creates nothing. Needs "
        "seed_scaffolding and seed_training; creates the demo user (create_demo_user) when it is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo", help="owner of the demo workspace (default: demo)")

    def handle(self, *args, username, **options):
        User = get_user_model()
        owner = User.objects.filter(username=username).first()
        if owner is None:
            call_command("create_demo_user", username=username, stdout=self.stdout)
            owner = User.objects.get(username=username)
        try:
            report = demo_load(owner=owner, log=self.stdout.write)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self._summary(report, username)

    def _summary(self, report: DemoReport, username: str) -> None:
        write, site = self.stdout.write, settings.SITE_URL
        statuses = report.count_by("status")
        tiers = report.count_by("quality_tier")
        version, dataset, job = report.version, report.dataset, report.job
        split = (dataset.statistics or {}).get("split", {})
        artifact = getattr(job, "artifact", None)
        write(self.style.SUCCESS(f"Demo workspace of '{username}' ready in {report.seconds:.1f} s."))
        write(
            f"  conversations: {len(report.conversations)} ("
            + ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
            + "); quality tiers: "
            + ", ".join(f"{tier} {n}" for tier, n in sorted(tiers.items()))
        )
        write(f"  generation batches: {len(report.batches)} records of the hand-written set ($0, no Claude call)")
        write(
            f"  training file '{version.training_file.name}' v{version.number}: {version.status}, "
            f"{version.conversation_count} conversations, {version.training_pair_count} training pairs"
        )
        write(
            f"  dataset '{dataset.name}': {dataset.status}, {dataset.example_count} examples "
            f"(train {split.get('train', {}).get('examples', '?')}, "
            f"validation {split.get('validation', {}).get('examples', '?')})"
        )
        write(
            f"  training job '{job.name}': {job.status} on {job.device or '?'}, {job.total_steps} steps, "
            f"artifact with {len(artifact.files) if artifact else 0} files"
        )
        created = ", ".join(f"{name} {n}" for name, n in sorted(report.created.items()) if n)
        write(f"  created by this run: {created}" if created else "  created by this run: nothing (already loaded)")
        saved = settings.VAR_DIR / "demo-reviewer-login.txt"
        if report.reviewer_password:
            write(
                self.style.SUCCESS(f"Reviewer login: username '{REVIEWER_USERNAME}', password ")
                + f"'{report.reviewer_password}' (also in {saved})"
            )
        else:
            write(f"  reviewer '{REVIEWER_USERNAME}' exists (its login is in {saved})")
        pages = [
            ("conversations", reverse("conversations:conversation_list")),
            ("review queue", reverse("conversations:review_queue")),
            ("generation batches", reverse("conversations:batch_list")),
            ("training file", reverse("training_files:detail", args=[version.training_file_id])),
            ("dataset", reverse("datasets:detail", args=[dataset.pk])),
            ("training job", reverse("training:job_detail", args=[job.pk])),
        ]
        if artifact:
            pages.append(("model", reverse("training:model_detail", args=[artifact.pk])))
        pages.append(("costs", reverse("training:costs")))
        write("  pages:")
        for label, path in pages:
            write(f"    {label:<19} {site}{path}")
