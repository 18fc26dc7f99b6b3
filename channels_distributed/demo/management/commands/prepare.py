"""``manage.py prepare [--admin-password PW]``: what the tests and the demo run before starting
the project's processes: migrate the shared SQLite file (in WAL mode, so that readers in one
process do not wait for a writer in another) and, with a password, make the ``admin`` user."""

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection


class Command(BaseCommand):  # type: ignore[misc]
    help = "Migrate the project's database and make the admin user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--admin-password", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
        if options["admin_password"]:
            from django.contrib.auth import get_user_model

            user, _ = get_user_model().objects.get_or_create(
                username="admin", defaults={"is_staff": True, "is_superuser": True})
            user.set_password(options["admin_password"])
            user.save()
