from django.core.management.base import BaseCommand

from brightrun.storage import storage_check, storage_ensure_bucket, storage_ensure_cors


class Command(BaseCommand):
    help = (
        "Create the S3 bucket if missing and set its CORS rules for browser uploads from SITE_URL (S3 backend); "
        "check that storage is reachable."
    )

    def handle(self, *args, **options):
        if storage_ensure_bucket():
            self.stdout.write("created the storage bucket")
        if storage_ensure_cors():
            self.stdout.write("set the bucket's CORS rules for browser uploads")
        storage_check()
        self.stdout.write("storage ok")
