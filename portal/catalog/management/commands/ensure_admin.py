import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the superuser 'admin' once, with a random password kept in a file (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", required=True)

    def handle(self, *args, username, password_file, **options):
        path = Path(password_file)
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user and path.exists():
            return
        password = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
        if user is None:
            User.objects.create_superuser(username, "", password)
        else:
            user.set_password(password)
            user.save()
        self.stdout.write(f"superuser {username!r} ready; password written to {path}")
