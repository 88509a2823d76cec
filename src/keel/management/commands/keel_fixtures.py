"""``manage.py keel_fixtures``: every fixture command, its stored and current hash.

``keel_fixtures export KEY…`` writes the database's rows back to the files of the commands
with those fixture keys; ``keel_fixtures check [KEY…]`` prints every difference between the
database and the files, row by row and field by field, and exits with status 1 if there is any.
"""

from __future__ import annotations

from typing import Any

from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext, ngettext

from keel.fixtures import BaseHashProtectedCommand, FixtureError, JsonFixtureUpsertCommand
from keel.fixtures.state import get_stored_hash


class Command(BaseCommand):
    help = (
        "List every fixture import command with the content hash stored in the database and "
        "the hash of its files now: 'stale' commands would import on their next run. "
        "'export KEY…' writes the database's rows back to those commands' files; 'check "
        "[KEY…]' prints every difference between the database and the files and exits 1 if "
        "there is any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action", nargs="?", choices=["list", "export", "check"], default="list"
        )
        parser.add_argument("keys", nargs="*", metavar="KEY", help="Fixture keys (or names).")
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

    def upsert_commands(self, keys: list[str]) -> list[tuple[str, JsonFixtureUpsertCommand]]:
        """The upsert commands with these fixture keys or names (all of them for none)."""
        found = [
            (name, command)
            for name, command in self.fixture_commands()
            if isinstance(command, JsonFixtureUpsertCommand)
        ]
        if not keys:
            return found
        chosen = [
            (name, command)
            for name, command in found
            if name in keys or command.get_fixture_key() in keys
        ]
        known = {name for name, _ in chosen} | {c.get_fixture_key() for _, c in chosen}
        unknown = [key for key in keys if key not in known]
        if unknown:
            raise CommandError(
                gettext("No fixture upsert command with key or name %(keys)s; known: %(known)s")
                % {
                    "keys": ", ".join(map(repr, unknown)),
                    "known": ", ".join(sorted(c.get_fixture_key() for _, c in found)),
                }
            )
        return chosen

    def handle(self, *args: Any, **options: Any) -> None:
        using: str = options["database"]
        if options["action"] == "export":
            if not options["keys"]:
                raise CommandError(gettext("export takes the fixture keys to export"))
            self.export(options["keys"], using)
            return
        if options["action"] == "check":
            self.check_drift(options["keys"], using)
            return
        if options["keys"]:
            raise CommandError(gettext("the listing takes no keys; use 'check KEY…'"))
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
            self.stdout.write(gettext("No fixture commands."))
            return
        # The table stays in English whatever the language: scripts read its columns and
        # state words.
        header = ("command", "key", "stored", "current", "state")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[4]]))
        stale = [row[0] for row in rows if row[4] != "current"]
        if options["check"] and stale:
            raise CommandError(
                gettext("Fixture commands not current: %(commands)s")
                % {"commands": ", ".join(stale)}
            )

    def export(self, keys: list[str], using: str) -> None:
        for _, command in self.upsert_commands(keys):
            key = command.get_fixture_key()
            written = command.export(using=using)
            if not written:
                self.stdout.write(
                    gettext("%(key)s: files already hold the database's rows.") % {"key": key}
                )
            for path in written:
                self.stdout.write(
                    self.style.SUCCESS(
                        gettext("%(key)s: wrote %(path)s") % {"key": key, "path": path}
                    )
                )

    def check_drift(self, keys: list[str], using: str) -> None:
        drifted = []
        for _, command in self.upsert_commands(keys):
            key = command.get_fixture_key()
            differences = command.find_drift(using=using)
            if not differences:
                self.stdout.write(gettext("%(key)s: database and files agree.") % {"key": key})
                continue
            drifted.append(key)
            self.stdout.write(
                self.style.WARNING(
                    ngettext(
                        "%(key)s: %(count)d difference",
                        "%(key)s: %(count)d differences",
                        len(differences),
                    )
                    % {"key": key, "count": len(differences)}
                )
            )
            for difference in differences:
                self.stdout.write(f"  {difference}")
        if drifted:
            raise CommandError(
                gettext(
                    "The database differs from the fixture files of: %(keys)s (keel_fixtures "
                    "export KEY writes the database's rows to the files)"
                )
                % {"keys": ", ".join(drifted)},
                returncode=1,
            )
