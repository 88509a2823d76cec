"""The example project's main job (``make demo``), run as a user runs it: a subprocess.

Each test gets its own SQLite file, admin password file and key prefix, so nothing touches the
checkout's ``example/db.sqlite3`` or another run's Redis keys.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "example"
DATABASE = os.environ.get("KEEL_TEST_DB", "sqlite")

# The example runs on its own SQLite file whatever KEEL_TEST_DB says: once per `make test`.
pytestmark = pytest.mark.skipif(
    DATABASE != "sqlite",
    reason=f"the example's tests run once per `make test`, on the sqlite run (this is {DATABASE})",
)


@dataclass
class DemoRun:
    db: Path
    password_file: Path
    prefix: str
    redis_url: str | None = None

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "KEEL_KEY_PREFIX"}
        }
        env.update(
            EXAMPLE_DB=str(self.db),
            EXAMPLE_ADMIN_PASSWORD_FILE=str(self.password_file),
            KEEL_KEY_PREFIX=self.prefix,
        )
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE_DIR,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def demo(self) -> str:
        result = self.manage("demo", "--no-color")
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def demo_run(tmp_path: Path) -> DemoRun:
    return DemoRun(
        db=tmp_path / "example.sqlite3",
        password_file=tmp_path / "admin-password",
        prefix=f"example-test-{uuid.uuid4().hex[:10]}",
    )


@pytest.fixture
def redis_demo_run(demo_run: DemoRun, redis_url: str) -> Iterator[DemoRun]:
    demo_run.redis_url = redis_url
    yield demo_run
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{demo_run.prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def section(output: str, title: str) -> str:
    """The lines of one section of the demo's report."""
    start = output.index(title)
    end = output.find("\n\n", start)
    return output[start : end if end != -1 else None]


def import_lines(output: str, run: int) -> dict[str, str]:
    block = section(output, "Content fixtures").split(f"run {run}:")[1].split("run ")[0]
    lines = [line.split(None, 1) for line in block.strip().splitlines()]
    return {name: detail for name, detail in lines}  # noqa: C416 (pairs from split())


def assert_confirmation_walked(output: str) -> None:
    flow = section(output, "Newsletter confirmation")
    assert re.search(r"POST /newsletter/ +302, 1 email sent", flow)
    assert re.search(r"GET  /newsletter/confirm/\S+ +200, token still live \(peek\)", flow)
    assert "302 → /newsletter/thanks/, pending → confirmed" in flow
    assert re.search(r"POST /newsletter/confirm/\S+ +410, the token was consumed once", flow)


def test_demo_imports_twice_confirms_once_and_prints_the_admin_password(demo_run: DemoRun):
    output = demo_run.demo()

    assert 'shared store: Django cache "default" (no REDIS_URL)' in output
    assert "token store: database" in output
    assert import_lines(output, 1) == {
        # post_migrate created the singleton row: the fixture updates it.
        "update_site_settings": "0 created, 1 updated, 0 unchanged, 0 skipped, 0 deleted",
        "update_static_content": "6 created, 0 updated, 0 unchanged, 0 skipped, 0 deleted",
        "update_seo": "4 created, 0 updated, 0 unchanged, 0 skipped, 0 deleted",
    }
    assert set(import_lines(output, 2).values()) == {"skipped: content hash unchanged"}

    read_path = section(output, "Site settings read path")
    assert "1st load(): the shared store (1 query on the cache table" in read_path
    assert "2nd load(): the process copy (no SQL, no network)" in read_path
    assert "secret crm_api_key: encrypted in the table (gAAAAA" in read_path
    assert_confirmation_walked(output)

    password = demo_run.password_file.read_text().strip()
    assert f"user admin, password {password} (kept in {demo_run.password_file})" in output
    assert oct(demo_run.password_file.stat().st_mode & 0o777) == "0o600"
    assert "make serve" in output

    assert demo_run.query("SELECT email, state FROM newsletter_subscription") == [
        ("ada@example.com", "confirmed")
    ]
    assert demo_run.query("SELECT COUNT(*) FROM keel_actiontoken") == [(0,)]
    assert demo_run.query("SELECT site_name FROM system_sitesettings") == [("Harbour Notes",)]
    assert demo_run.query("SELECT COUNT(*) FROM system_staticcontent") == [(6,)]
    assert demo_run.query("SELECT key FROM keel_fixturestate ORDER BY key") == [
        ("system.seo",),
        ("system.site_settings",),
        ("system.static_content",),
    ]


def test_demo_runs_again_on_the_same_database(demo_run: DemoRun):
    demo_run.demo()
    password = demo_run.password_file.read_text()

    output = demo_run.demo()

    for run in (1, 2):
        assert set(import_lines(output, run).values()) == {"skipped: content hash unchanged"}
    assert_confirmation_walked(output)
    assert demo_run.password_file.read_text() == password
    assert demo_run.query("SELECT COUNT(*) FROM auth_user") == [(1,)]
    assert demo_run.query("SELECT COUNT(*) FROM newsletter_subscription") == [(1,)]


def test_demo_gives_a_new_password_when_the_password_file_is_lost(demo_run: DemoRun):
    demo_run.demo()
    first = demo_run.password_file.read_text().strip()
    demo_run.password_file.unlink()

    output = demo_run.demo()

    second = demo_run.password_file.read_text().strip()
    assert second != first
    assert f"password {second} " in output


@pytest.mark.redis
def test_demo_with_redis_reports_the_same_facts_from_redis(redis_demo_run: DemoRun):
    output = redis_demo_run.demo()

    assert f"shared store: Redis (key prefix '{redis_demo_run.prefix}')" in output
    assert "token store: redis" in output
    assert import_lines(output, 1)["update_static_content"].startswith("6 created")
    assert set(import_lines(output, 2).values()) == {"skipped: content hash unchanged"}
    assert "1st load(): the shared store (one Redis round trip, no SQL)" in output
    assert "2nd load(): the process copy (no SQL, no network)" in output
    assert_confirmation_walked(output)
    # Tokens lived in Redis: the table was never used.
    assert redis_demo_run.query("SELECT COUNT(*) FROM keel_actiontoken") == [(0,)]
    assert redis_demo_run.query("SELECT state FROM newsletter_subscription") == [("confirmed",)]
    client = redis.Redis.from_url(str(redis_demo_run.redis_url))
    try:
        keys = [k.decode() for k in client.scan_iter(match=f"{redis_demo_run.prefix}:*")]
    finally:
        client.close()
    assert any(":site:{system.sitesettings}:" in key for key in keys)


def test_demo_stops_with_a_clear_error_when_redis_is_set_but_down(demo_run: DemoRun):
    demo_run.redis_url = "redis://127.0.0.1:1/0"

    result = demo_run.manage("demo", "--no-color")

    assert result.returncode == 1
    assert "REDIS_URL is set but Redis does not answer" in result.stderr
    assert "Traceback" not in result.stderr


def test_example_migrations_match_its_models(demo_run: DemoRun):
    result = demo_run.manage("makemigrations", "--check", "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_force_reimports_one_fixture_and_update_all_still_skips_the_rest(
    demo_run: DemoRun, tmp_path: Path
):
    assert demo_run.manage("createcachetable").returncode == 0
    assert demo_run.manage("migrate", "-v0").returncode == 0
    first = demo_run.manage("update_all_content", "--no-color")
    assert first.returncode == 0, first.stderr

    forced = demo_run.manage("update_static_content", "--force", "--no-color")
    again = demo_run.manage("update_all_content", "--no-color")

    assert "0 created, 0 updated, 6 unchanged" in forced.stdout
    summary = again.stdout.split("Summary", 1)[1]
    assert re.search(r"update_static_content\s+unchanged", summary)
    assert re.search(r"update_seo\s+unchanged", summary)


SUBSCRIPTION_SCRIPT = """
from keel.exceptions import DatabaseUpdatePreconditionsError, TransitionNotAllowedError
from newsletter.models import Subscription

sub = Subscription.objects.create(email="lin@example.com")
print("created", sub.state)
sub.confirm()
print("confirmed", Subscription.objects.get(pk=sub.pk).state)
stale = Subscription.objects.get(pk=sub.pk)
sub.unsubscribe()
print("unsubscribed", Subscription.objects.get(pk=sub.pk).state)
sub.state = "confirmed"
try:
    sub.save()
except TransitionNotAllowedError:
    print("refused unsubscribed -> confirmed")
try:
    stale.unsubscribe()  # loaded while confirmed; the row moved on meanwhile
except DatabaseUpdatePreconditionsError:
    print("refused a stale copy")
"""


def test_subscription_refuses_undeclared_and_stale_transitions(demo_run: DemoRun):
    assert demo_run.manage("createcachetable").returncode == 0
    assert demo_run.manage("migrate", "-v0").returncode == 0

    result = demo_run.manage("shell", "-v0", "-c", SUBSCRIPTION_SCRIPT)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "created pending",
        "confirmed confirmed",
        "unsubscribed unsubscribed",
        "refused unsubscribed -> confirmed",
        "refused a stale copy",
    ]
    assert demo_run.query("SELECT state FROM newsletter_subscription") == [("unsubscribed",)]


def test_the_examples_own_tests_pass_with_keel_test(demo_run: DemoRun) -> None:
    # example/system/tests.py: override_site_settings, and save() then load() in a TestCase.
    result = demo_run.manage("test", "system", "--noinput")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 4 tests" in result.stderr
    assert "OK" in result.stderr


def test_static_content_edited_in_the_admin_survives_a_forced_import(demo_run: DemoRun):
    demo_run.demo()
    [(key, language)] = demo_run.query(
        "SELECT key, language FROM system_staticcontent ORDER BY key, language LIMIT 1"
    )
    demo_run.query(
        f"UPDATE system_staticcontent SET content = 'Edited in the admin' "
        f"WHERE key = '{key}' AND language = '{language}'"
    )

    forced = demo_run.manage("update_static_content", "--force", "--no-color")
    check = demo_run.manage("keel_fixtures", "check", "system.static_content", "--no-color")

    assert "0 created, 0 updated, 6 unchanged" in forced.stdout, forced.stderr
    assert demo_run.query(
        f"SELECT content FROM system_staticcontent WHERE key = '{key}' AND language = '{language}'"
    ) == [("Edited in the admin",)]
    assert check.returncode == 1
    assert "field 'content': database 'Edited in the admin'" in check.stdout
