"""Run a fixture import in a process of its own, to be killed by a test.

    python -m tests.reliability.import_runner DATABASE_NAME FIXTURE_PATH MARKER_PATH

It imports ``FIXTURE_PATH`` with the test app's ``fixtures_import_entries`` command into the
test database named ``DATABASE_NAME`` (the one pytest-django created). After the first batch
are inserted into the model's table (uncommitted) it creates ``MARKER_PATH`` and waits, so
that the test's SIGKILL lands before the import's transaction commits.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def main(database_name: str, fixture_path: str, marker_path: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    from tests import settings as test_settings

    test_settings.DATABASES["default"]["NAME"] = database_name
    import django

    django.setup()
    from django.core.management import call_command

    from keel.fixtures.apply import StagedApply
    from tests.testapp.management.commands.fixtures_import_entries import Command

    original = StagedApply._insert
    marker = Path(marker_path)

    def insert(self: StagedApply) -> Any:
        written = original(self)
        marker.write_text(str(os.getpid()))
        time.sleep(60)
        return written

    StagedApply._insert = insert  # type: ignore[method-assign]
    command = Command()
    command.fixture_path = Path(fixture_path)  # type: ignore[misc]
    call_command(command, verbosity=0)
    Path(marker_path + ".done").write_text("finished")


if __name__ == "__main__":
    main(*sys.argv[1:4])
