"""The example project served by ``runserver`` and a headless Chromium driving it.

Browser tests need Debian's ``chromium`` and ``chromium-driver`` (``scripts/system_deps.sh``
installs them): without them they skip loudly, or fail when ``CI=true``. Nothing is
downloaded: the driver's path is given explicitly.
"""

from __future__ import annotations

import email
import email.policy
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.reliability import servers

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE_DIR = REPO / "example"
# Written under build/ so that a test run leaves the working tree clean; `make screenshots`
# copies them to docs/img/ when the documentation should show them.
SCREENSHOTS = REPO / "build" / "screenshots"
CHROMIUM = Path(os.environ.get("KEEL_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("KEEL_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
ADMIN_PASSWORD = f"browser-{uuid.uuid4().hex[:12]}"


@dataclass
class ExampleServer:
    url: str
    email_dir: Path
    admin_username: str
    admin_password: str

    def emails_to(self, address: str) -> list[str]:
        """Decoded bodies of the emails written for ``address``, oldest first.

        Parsed, not read raw: Django 6 may write a body quoted-printable, with soft line breaks
        inside long links.
        """
        files = sorted(self.email_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
        bodies = []
        for path in files:
            # The file backend separates messages with a line of 79 dashes.
            for chunk in path.read_text().split("-" * 79):
                if not chunk.strip():
                    continue
                message = email.message_from_string(chunk.strip(), policy=email.policy.default)
                if address in str(message["To"]):
                    body = message.get_body(("plain",))
                    assert body is not None
                    bodies.append(body.get_content())  # type: ignore[attr-defined]
        return bodies


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"runserver exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    pytest.fail(f"runserver did not answer {url} within 60 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    """The example project on a free loopback port, with its own database, content and admin."""
    tmp = tmp_path_factory.mktemp("example-server")
    email_dir = tmp / "emails"
    email_dir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "KEEL_KEY_PREFIX"}
    }
    env.update(
        EXAMPLE_DB=str(tmp / "example.sqlite3"),
        EXAMPLE_EMAIL_DIR=str(email_dir),
        EXAMPLE_ADMIN_PASSWORD_FILE=str(tmp / "admin-password"),
        KEEL_KEY_PREFIX=f"example-browser-{uuid.uuid4().hex[:8]}",
        DJANGO_SUPERUSER_USERNAME="admin",
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
    )
    for args in (
        ["createcachetable"],
        ["migrate", "-v0"],
        ["update_all_content", "-v0"],
        ["createsuperuser", "--noinput"],
    ):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}{done.stderr}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "runserver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=EXAMPLE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(url + "/admin/login/", process, log)
        yield ExampleServer(url, email_dir, "admin", ADMIN_PASSWORD)
    finally:
        servers.terminate(process, timeout=10)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium through Selenium, with a throwaway profile."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        require_service("chromium", f"{', '.join(missing)} not found (run scripts/system_deps.sh)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        require_service("selenium", "the selenium package is not installed (test group)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
