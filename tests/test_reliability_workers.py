"""Many processes: the test project under gunicorn with 4 workers sharing one Redis."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from keel.redis import reset_clients
from keel.site.cache import reset_process_state
from tests.conftest import ROOT, redis_processes, require_service, subprocess_env
from tests.reliability import servers
from tests.testapp.models.site import SiteSettings, StaticContent

GUNICORN = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
WORKERS = 4
LOCAL_TTL = 1.0


def page(port: int) -> tuple[str, bytes]:
    """(worker pid, page body) of one request on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/site/page/content/")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body[:500]
        return response.getheader("X-Worker-Pid") or "", body.strip()
    finally:
        conn.close()


def until_every_worker_serves(port: int, body: bytes, timeout: float) -> dict[str, float]:
    """Request until each worker's latest answer is ``body``; return, per worker, the
    seconds (from the call) of its last other answer."""
    started = time.monotonic()
    last_other: dict[str, float] = {}
    serving: set[str] = set()
    while len(serving) < WORKERS:
        pid, answer = page(port)
        now = time.monotonic() - started
        if answer == body:
            serving.add(pid)
        else:
            serving.discard(pid)
            last_other[pid] = now
        assert now < timeout, f"after {timeout} s only {len(serving)} workers serve {body!r}"
    return last_other


@pytest.fixture
def gunicorn(settings: Any) -> Iterator[tuple[int, servers.Server]]:
    if not os.access(GUNICORN, os.X_OK):
        require_service("gunicorn", "not installed in the virtualenv (test dependency group)")
    with redis_processes() as started:
        redis_server = started.start()
        keel = {
            "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
            "KEY_PREFIX": django_settings.TEST_KEY_PREFIX,
            "SITE_SETTINGS_LOCAL_TTL": LOCAL_TTL,
        }
        settings.KEEL = {**settings.KEEL, **keel}
        reset_process_state()
        port = servers.free_port()
        env = subprocess_env(
            KEEL_RELIAB_DB_NAME=str(connection.settings_dict["NAME"]),
            KEEL_RELIAB_KEEL=json.dumps(keel),
        )
        command = [GUNICORN, "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}"]
        command += ["--log-level", "error", "tests.reliability.wsgi:application"]
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            servers.wait_for(lambda: bool(page(port)[0]), 30, "gunicorn")
            yield port, redis_server
        finally:
            servers.terminate(process, timeout=15)
            reset_clients()
            reset_process_state()


@pytest.mark.django_db(transaction=True)
def test_a_settings_change_reaches_every_worker_within_the_local_window(
    gunicorn: tuple[int, servers.Server],
) -> None:
    port, redis_server = gunicorn
    StaticContent.objects.create(key="greeting", content="Hi")
    row = SiteSettings.load()
    row.site_name = "Before"
    row.save()
    until_every_worker_serves(port, b"Hi||Before", timeout=30)
    row.site_name = "After"
    row.save()  # published to Redis on commit; a worker keeps its copy at most LOCAL_TTL
    last_stale = until_every_worker_serves(port, b"Hi||After", timeout=LOCAL_TTL + 10)
    # No worker answered with the old name later than the window (plus one request's time).
    assert max(last_stale.values(), default=0.0) < LOCAL_TTL + 1, last_stale
    assert redis_server.client().dbsize() > 0
