"""``manage.py keel_fixtures``: every fixture command, its stored and current hash."""

from __future__ import annotations

from typing import Any

from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from keel.fixtures import BaseHashProtectedCommand, FixtureError
from keel.fixtures.state import get_stored_hash


class Command(BaseCommand):
    help = (
        "List every fixture import command with the content hash stored in the database and "
        "the hash of its files now: 'stale' commands would import on their next run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database to inspect.")
        parser.add_argument(
            "--check", action="store_true", help="Exit with status 1 if any command is stale."
        )

    def fixture_commands(self) -> list[tuple[str, BaseHashProtectedCommand]]:
        found = []
        for name, app in sorted(get_commands().items()):
            command = app if isinstance(app, BaseCommand) else load_command_class(app, name)
            if isinstance(command, BaseHashProtectedCommand):
                found.append((name, command))
        return found

    def handle(self, *args: Any, **options: Any) -> None:
        using: str = options["database"]
        rows: list[tuple[str, str, str, str, str]] = []
        for name, command in self.fixture_commands():
            try:
                key = command.get_fixture_key()
                paths = command.get_fixture_paths()
                missing = [p for p in paths if not p.is_file()]
                current = "" if missing else command.compute_hash(paths)
            except (CommandError, FixtureError) as exc:
                rows.append((name, "?", "", "", f"error: {exc}"))
                continue
            stored = get_stored_hash(key, using) or ""
            if missing:
                state = f"missing file {missing[0]}"
            elif not stored:
                state = "never imported"
            elif stored == current:
                state = "current"
            else:
                state = "stale"
            rows.append((name, key, stored[:12], current[:12], state))
        if not rows:
            self.stdout.write("No fixture commands.")
            return
        header = ("command", "key", "stored", "current", "state")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[4]]))
        stale = [row[0] for row in rows if row[4] != "current"]
        if options["check"] and stale:
            raise CommandError(f"Fixture commands not current: {', '.join(stale)}")
