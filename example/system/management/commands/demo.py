"""The example project's main job: set up, import content, walk the newsletter flow, report.

Every fact printed is observed, not assumed: row counters come from keel's import summary,
the read path from the queries a ``load()`` made, the token's fate from the HTTP answers.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import django
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks, mail
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

import keel
from keel.conf import keel_settings
from keel.models import SiteVersion
from keel.redis import health_check
from keel.site.cache import reset_process_state
from newsletter.models import Subscription
from newsletter.tokens import confirmation_tokens
from system.models import SiteSettings

DEMO_EMAIL = "ada@example.com"
DEMO_SECRET = "crm-demo-key-1234"


class Command(BaseCommand):
    help = "Migrate, import the content twice, confirm a subscription, and report."

    def handle(self, *args: Any, **options: Any) -> None:
        self.line(self.style.SUCCESS("keel demo: the example project"))
        self.setup_database()
        self.import_content()
        self.read_site_settings()
        self.confirm_subscription()
        self.admin_user()

    def line(self, text: str = "", indent: int = 0) -> None:
        self.stdout.write(" " * indent + text)

    def heading(self, text: str) -> None:
        self.line()
        self.line(self.style.MIGRATE_HEADING(text))

    # -- 1 ---------------------------------------------------------------------------------

    def setup_database(self) -> None:
        # The shared store of the site settings must exist before migrate creates their row.
        call_command("createcachetable", verbosity=0)
        call_command("migrate", interactive=False, verbosity=0)
        errors = [m for m in checks.run_checks() if m.is_serious()]
        if errors:
            raise CommandError("system check failed:\n" + "\n".join(map(str, errors)))
        name = settings.DATABASES["default"]["NAME"]
        self.line(f"keel {keel.__version__}, Django {django.get_version()}", 2)
        self.line(f"database: {connection.vendor} {name} (migrated)", 2)
        redis = health_check()
        if redis.configured and not redis.ok:
            raise CommandError(f"REDIS_URL is set but Redis does not answer: {redis.error}")
        if redis.ok:
            store = f"Redis (key prefix {keel_settings.KEY_PREFIX!r})"
        else:
            store = f'Django cache "{keel_settings.SITE_SETTINGS_CACHE_ALIAS}" (no REDIS_URL)'
        self.line(f"shared store: {store}", 2)
        self.line(f"token store: {confirmation_tokens.get_store().name}", 2)

    # -- 2 ---------------------------------------------------------------------------------

    def import_content(self) -> None:
        self.heading("Content fixtures: update_all_content, twice")
        for run in (1, 2):
            out = io.StringIO()
            call_command("update_all_content", stdout=out, stderr=out, no_color=True)
            rows = _summary_rows(out.getvalue())
            self.line(f"run {run}:", 2)
            for label, status, detail in rows:
                text = detail if status == "imported" else "skipped: content hash unchanged"
                self.line(f"{label:<22} {text}", 4)

    # -- 3 ---------------------------------------------------------------------------------

    def read_site_settings(self) -> None:
        self.heading("Site settings read path")
        site = SiteSettings.load()
        if not site.crm_api_key:
            site.crm_api_key = DEMO_SECRET
            site.save(update_fields=["crm_api_key"])
        # Forget this process's copies, as a freshly started web process would have none.
        reset_process_state()
        first = _observe_load("the shared store (one Redis round trip, no SQL)")
        second = _observe_load("the process copy (no SQL, no network)")
        self.line(f"1st load(): {first}", 2)
        self.line(f"2nd load(): {second}", 2)
        site = SiteSettings.load()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT crm_api_key FROM {SiteSettings._meta.db_table}")
            stored = cursor.fetchone()[0]
        if DEMO_SECRET in stored or site.crm_api_key != DEMO_SECRET:
            raise CommandError("the CRM key is not stored encrypted")
        if DEMO_SECRET in str(site.to_dict()):
            raise CommandError("the CRM key reached the published document")
        self.line(
            f"secret crm_api_key: encrypted in the table ({stored[:10]}…), "
            "not among the published fields",
            2,
        )

    # -- 4 ---------------------------------------------------------------------------------

    def confirm_subscription(self) -> None:
        self.heading("Newsletter confirmation (Django test client)")
        Subscription.objects.filter(email=DEMO_EMAIL).delete()
        client = Client()
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            mail.outbox = []
            response = client.post("/newsletter/", {"email": DEMO_EMAIL})
            self.expect(response.status_code == 302, "sign-up did not redirect", response)
            self.line(f"POST /newsletter/                 {response.status_code}, 1 email sent", 2)
            match = re.search(r"https?://\S+/newsletter/confirm/\S+/", mail.outbox[-1].body)
        self.expect(match is not None, "no confirmation link in the email")
        assert match is not None
        path = urlsplit(match.group(0)).path
        token = path.rstrip("/").rsplit("/", 1)[-1]
        shown = f"/newsletter/confirm/{token[:6]}…/"

        response = client.get(path)
        self.expect(response.status_code == 200, "the confirm page did not open", response)
        self.expect(DEMO_EMAIL in response.content.decode(), "the confirm page lacks the email")
        live = confirmation_tokens.get_token_data(token) is not None
        self.expect(live, "GET used the token up")
        self.line(f"GET  {shown}  200, token still live (peek)", 2)

        before = Subscription.objects.get(email=DEMO_EMAIL).state
        response = client.post(path)
        self.expect(response.status_code == 302, "confirming did not redirect", response)
        after = Subscription.objects.get(email=DEMO_EMAIL).state
        self.line(f"POST {shown}  302 → {response['Location']}, {before} → {after}", 2)
        thanks = client.get(response["Location"])
        self.expect(DEMO_EMAIL in thanks.content.decode(), "the thank-you page lacks the email")

        # Django logs every 4xx answer; this one is expected.
        request_log = logging.getLogger("django.request")
        level = request_log.level
        request_log.setLevel(logging.ERROR)
        try:
            response = client.post(path)
        finally:
            request_log.setLevel(level)
        self.expect(response.status_code == 410, "a used token was accepted", response)
        self.line(f"POST {shown}  410, the token was consumed once", 2)

    def expect(self, condition: bool, message: str, response: Any = None) -> None:
        if not condition:
            status = f" (HTTP {response.status_code})" if response is not None else ""
            raise CommandError(f"demo failed: {message}{status}")

    # -- 5 ---------------------------------------------------------------------------------

    def admin_user(self) -> None:
        self.heading("Admin")
        path = settings.ADMIN_PASSWORD_FILE
        user_model = get_user_model()
        user = user_model.objects.filter(username="admin").first()
        known = path.read_text().strip() if path.exists() else ""
        if user is None or not known or not user.check_password(known):
            known = secrets.token_urlsafe(12)
            if user is None:
                user_model.objects.create_superuser("admin", "admin@example.com", known)
            else:
                user.set_password(known)
                user.save(update_fields=["password"])
            path.write_text(known + "\n")
            path.chmod(0o600)
        self.line(f"user admin, password {known} (kept in {path})", 2)
        self.line()
        self.line("Open the site: make serve, then http://127.0.0.1:8000/ and /admin/")


def _summary_rows(output: str) -> list[tuple[str, str, str]]:
    """``(command, status, details)`` of the summary table update_all_content printed."""
    lines = output.splitlines()
    if "Summary" not in lines:
        raise CommandError(f"update_all_content printed no summary:\n{output}")
    rows = []
    for line in lines[lines.index("Summary") + 2 :]:
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=3)
        if len(parts) >= 2:
            rows.append((parts[0], parts[1], parts[3] if len(parts) > 3 else ""))
    return rows


def _observe_load(without_sql: str) -> str:
    """Which layer answered ``SiteSettings.load()``, told by the queries it made
    (``without_sql`` when it made none but the version check)."""
    table = SiteSettings._meta.db_table
    versions = SiteVersion._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        SiteSettings.load()
    sql = [q["sql"] for q in queries.captured_queries]
    # A process reads the versions of the cached models at most every few seconds.
    checked = ", after reading the versions (1 query)" if any(versions in s for s in sql) else ""
    sql = [s for s in sql if versions not in s]
    if any(table in s for s in sql):
        return f"the database ({len(sql)} queries){checked}, then written to the shared store"
    if sql:
        return f"the shared store ({len(sql)} query on the cache table, none on {table}){checked}"
    return without_sql + checked
