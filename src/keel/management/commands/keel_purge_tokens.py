"""``manage.py keel_purge_tokens``: delete expired action tokens (and the expired counters of
one-time codes) from the database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext, ngettext

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
            raise CommandError(
                gettext("--batch-size must be a positive integer, got %(size)s.")
                % {"size": batch_size}
            )
        store = DatabaseTokenStore(using=options["database"])
        dry_run = options["dry_run"]
        count = store.purge_expired(batch_size=batch_size, dry_run=dry_run)
        counters = store.purge_expired_counters(batch_size=batch_size, dry_run=dry_run)
        tokens = ngettext(
            "%(count)d expired action token", "%(count)d expired action tokens", count
        ) % {"count": count}
        what = tokens
        if counters:
            what = gettext("%(tokens)s and %(counters)s") % {
                "tokens": tokens,
                "counters": ngettext("%(count)d code counter", "%(count)d code counters", counters)
                % {"count": counters},
            }
        if dry_run:
            self.stdout.write(gettext("%(what)s would be deleted (dry run).") % {"what": what})
        else:
            self.stdout.write(self.style.SUCCESS(gettext("Deleted %(what)s.") % {"what": what}))
