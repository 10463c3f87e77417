from django.core.management.base import BaseCommand

from brightrun.storage import storage_check, storage_ensure_bucket


class Command(BaseCommand):
    help = "Create the S3 bucket if missing (S3 backend) and check that storage is reachable."

    def handle(self, *args, **options):
        if storage_ensure_bucket():
            self.stdout.write("created the storage bucket")
        storage_check()
        self.stdout.write("storage ok")
