from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    """A project command without --force: the update-all command must not pass it."""

    help = "Rebuild the search index."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("search index rebuilt")
