"""Faults injected into real processes: a Redis server SIGKILLed during reads and during
token consumes, a database error in the middle of a fixture import, an import process
SIGKILLed in the middle of its writes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection
from django.db.models import CheckConstraint, Q
from django.test import Client

from keel.fixtures import FixtureImportResult
from keel.fixtures.state import get_stored_hash
from keel.redis import reset_clients
from keel.site.cache import reset_process_state
from keel.tokens import JsonActionTokenManager, TokenStoreUnavailable
from tests.conftest import ROOT, Consumed, subprocess_env, use_server
from tests.reliability import servers
from tests.testapp.management.commands.fixtures_import_entries import Command as ImportEntries
from tests.testapp.models.fixtures import FixtureEntry
from tests.testapp.models.site import SiteSettings, StaticContent

# -- Redis killed during reads -----------------------------------------------------------------


def killed_while_running(
    server: servers.Server,
    threads: list[threading.Thread],
    *,
    after: float,
    then: Callable[[], None] = lambda: None,
    timeout: float,
) -> None:
    """Start ``threads``, kill ``server`` ``after`` seconds later, call ``then``, and wait for
    the threads to end (``timeout`` seconds each at most)."""
    for thread in threads:
        thread.start()
    time.sleep(after)
    server.kill()
    then()
    for thread in threads:
        thread.join(timeout=timeout)


@pytest.mark.django_db(transaction=True)
def test_pages_keep_serving_from_the_database_when_redis_is_killed_mid_traffic(
    started: servers.Processes, settings: Any, clock: ModuleType
) -> None:
    server = started.start()
    use_server(settings, server, SITE_SETTINGS_LOCAL_TTL=0)
    reset_process_state()
    row = SiteSettings.load()
    row.site_name = "Durable"
    row.save()
    StaticContent.objects.create(key="greeting", content="Hello")
    client = Client()
    expected = b"Hello||Durable"
    assert client.get("/site/page/content/").content.strip() == expected
    assert server.client().dbsize() > 0  # the documents are in this Redis

    answers: Counter[bytes] = Counter()
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        page = Client()
        while not stop.is_set():
            try:
                response = page.get("/site/page/content/")
                answers[response.content.strip() if response.status_code == 200 else b"?"] += 1
                assert SiteSettings.load().site_name == "Durable"
                assert StaticContent.get_content_map()["greeting"] == "Hello"
            except BaseException as exc:
                failures.append(exc)
            finally:
                connection.close()

    def stop_after_the_kill() -> None:
        time.sleep(1.5)
        stop.set()

    threads = [threading.Thread(target=reader) for _ in range(4)]
    killed_while_running(server, threads, after=0.3, then=stop_after_the_kill, timeout=30)
    assert failures == []
    assert set(answers) == {expected}
    assert sum(answers.values()) > 20
    # Redis comes back (empty): reads fill it again.
    server = started.restart(server)
    reset_process_state()
    for _ in range(3):
        assert client.get("/site/page/content/").content.strip() == expected
        clock.advance(1.1)  # past the one-second pause after a failure
    assert server.client().dbsize() > 0
    reset_clients()


# -- Redis killed during token consumes --------------------------------------------------------


def test_tokens_are_consumed_at_most_once_across_a_redis_crash_and_restart(
    started: servers.Processes, settings: Any
) -> None:
    # Every write is on disk before Redis answers it: the restarted server knows every token
    # that was created, and every consume it acknowledged.
    persistent = ("--appendonly", "yes", "--appendfsync", "always")
    server = started.start(*persistent)
    use_server(settings, server, TOKEN_STORE="redis")
    manager = JsonActionTokenManager(prefix="reliab:crash")
    tokens = {manager.create_token({"n": n}): n for n in range(300)}
    consumed = Consumed(tokens)
    unanswered: list[str] = []
    in_flight: list[str] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def consumer(share: list[str]) -> None:
        for token in share:
            try:
                payload = manager.consume_token(token)
            except TokenStoreUnavailable:
                with lock:
                    if not any(t in share for t in unanswered):
                        in_flight.append(token)  # this thread's consume cut by the crash
                    unanswered.append(token)
                continue
            except BaseException as exc:
                unexpected.append(exc)
                continue
            consumed.record(token, payload)
            time.sleep(0.002)

    order = list(tokens)
    threads = [threading.Thread(target=consumer, args=(order[i::3],)) for i in range(3)]
    killed_while_running(server, threads, after=0.15, timeout=60)
    assert unexpected == []
    assert unanswered, "the crash happened after every consume: nothing was tested"
    assert 0 < len(consumed) < len(tokens)

    server = started.restart(server, *persistent, keep_files=True)
    reset_clients()
    for token in tokens:
        consumed.record(token, manager.consume_token(token))
    # Never twice: a consume that answered is not undone by the crash.
    assert set(consumed.values()) == {1}
    # Never lost, but for the consume each thread had in flight when Redis died: Redis may
    # have run it (and written it to disk) without its answer reaching the client. That token
    # was consumed exactly once, by a request that got TokenStoreUnavailable.
    used_up_unseen = set(tokens) - set(consumed)
    assert used_up_unseen <= set(in_flight)
    assert len(in_flight) <= 3
    for token in set(unanswered) - set(in_flight):
        assert consumed[token] == 1  # refused before reaching Redis: consumable after restart
    reset_clients()


# -- database error in the middle of a fixture import ------------------------------------------


def entry_rows(count: int, label: str = "Entry", bad: int | None = None) -> list[dict[str, Any]]:
    return [
        {
            "model": "testapp.fixtureentry",
            "fields": {
                "key": f"e-{n}",
                "label": "boom" if n == bad else f"{label} {n}",
                "amount": f"{n}.25",
            },
        }
        for n in range(count)
    ]


def run_entries(path: Path, **options: Any) -> FixtureImportResult:
    command = ImportEntries()
    command.fixture_path = path  # type: ignore[misc]
    call_command(command, stdout=io.StringIO(), stderr=io.StringIO(), **options)
    assert command.import_result is not None
    return command.import_result


@pytest.fixture
def label_check_constraint() -> Iterator[None]:
    """A CHECK constraint in the database only: model validation does not know it."""
    constraint = CheckConstraint(condition=~Q(label="boom"), name="reliab_entry_label_not_boom")
    declared = FixtureEntry._meta.constraints
    # SQLite adds a constraint by rebuilding the table from the model's declared ones.
    FixtureEntry._meta.constraints = [*declared, constraint]
    try:
        with connection.schema_editor() as editor:
            editor.add_constraint(FixtureEntry, constraint)
    finally:
        FixtureEntry._meta.constraints = declared
    yield
    with connection.schema_editor() as editor:
        editor.remove_constraint(FixtureEntry, constraint)


@pytest.mark.django_db(transaction=True)
def test_a_database_error_mid_import_writes_nothing_and_keeps_the_old_hash(
    tmp_path: Path, label_check_constraint: None, settings: Any
) -> None:
    settings.KEEL = {**settings.KEEL, "FIXTURE_BATCH_SIZE": 100}
    path = tmp_path / "entries.json"
    path.write_text(json.dumps(entry_rows(1000)))
    assert run_entries(path).created == 1000
    old_hash = get_stored_hash("testapp.entries", "default")
    assert old_hash
    # Row 700 passes validation but the database refuses it, after 7 batches were written.
    path.write_text(json.dumps(entry_rows(1000, label="Changed", bad=700)))
    with pytest.raises((CommandError, DatabaseError)) as raised:
        run_entries(path)
    assert "reliab_entry_label_not_boom" in str(raised.value) or "CHECK" in str(raised.value)
    labels = set(FixtureEntry.objects.values_list("label", flat=True))
    assert labels == {f"Entry {n}" for n in range(1000)}
    assert get_stored_hash("testapp.entries", "default") == old_hash
    # Fixed file: the import runs again, completely.
    path.write_text(json.dumps(entry_rows(1000, label="Changed")))
    result = run_entries(path)
    assert (result.created, result.updated) == (0, 1000)
    assert get_stored_hash("testapp.entries", "default") != old_hash


# -- SIGKILL of an import process --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_import_killed_mid_write_leaves_nothing_and_the_next_run_imports_all(
    tmp_path: Path, settings: Any
) -> None:
    rows = 20_000
    path = tmp_path / "big.json"
    path.write_text(json.dumps(entry_rows(rows)))
    marker = tmp_path / "first-batch-written"
    env = subprocess_env()
    runner = [sys.executable, "-m", "tests.reliability.import_runner"]
    process = subprocess.Popen(
        [*runner, str(connection.settings_dict["NAME"]), str(path), str(marker)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        servers.wait_for(lambda: marker.exists() or process.poll() is not None, 120, "a batch")
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    assert not Path(str(marker) + ".done").exists()
    connection.close()  # a fresh connection sees what the dead process left
    assert FixtureEntry.objects.count() == 0
    assert get_stored_hash("testapp.entries", "default") is None

    result = run_entries(path)
    assert (result.created, result.updated, result.unchanged) == (rows, 0, 0)
    assert FixtureEntry.objects.count() == rows
    assert run_entries(path).status == "unchanged"
