from django.core.management.base import BaseCommand

from brightrun.schedules import periodic_tasks_upsert


class Command(BaseCommand):
    help = "Create or update the periodic tasks declared in code (by name; nothing is deleted)."

    def handle(self, *args, **options):
        for name, created in periodic_tasks_upsert():
            self.stdout.write(f"{'created' if created else 'updated'}: {name}")
