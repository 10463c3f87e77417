import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo user once and print its password (later runs print nothing new)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default=None, help="Default: a random password.")

    def handle(self, *args, username, password, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Demo user '{username}' exists (its login is in var/demo-login.txt).")
            return
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, password=password, email=f"{username}@example.com")
        line = f"Demo login: username '{username}', password '{password}'"
        saved = settings.VAR_DIR / "demo-login.txt"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(line + "\n", encoding="utf-8")
        saved.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(line) + f" (also in {saved})")
