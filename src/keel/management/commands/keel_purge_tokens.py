"""``manage.py keel_purge_tokens``: delete expired action tokens (and the expired counters of
one-time codes) from the database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from keel.tokens.database_store import DatabaseTokenStore


class Command(BaseCommand):
    help = (
        "Delete expired action tokens and one-time-code counters from the database store. "
        "Expired tokens are never accepted; this only reclaims space. Redis expires its "
        "tokens by itself."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help='Database to purge. Defaults to the "default" database.',
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows deleted per statement (default 1000).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the expired tokens without deleting them.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError(f"--batch-size must be a positive integer, got {batch_size}.")
        store = DatabaseTokenStore(using=options["database"])
        dry_run = options["dry_run"]
        count = store.purge_expired(batch_size=batch_size, dry_run=dry_run)
        counters = store.purge_expired_counters(batch_size=batch_size, dry_run=dry_run)
        what = f"{count} expired action {'token' if count == 1 else 'tokens'}"
        if counters:
            what += f" and {counters} code {'counter' if counters == 1 else 'counters'}"
        if dry_run:
            self.stdout.write(f"{what} would be deleted (dry run).")
        else:
            self.stdout.write(self.style.SUCCESS(f"Deleted {what}."))
