"""Run the example project's main job and report what keel did."""

from __future__ import annotations

from typing import Any

import django
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection

import keel
from keel.models import ActionToken, FixtureState
from keel.redis import health_check


class Command(BaseCommand):
    help = "Migrate the example database and report what keel holds."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        call_command("check", fail_level="ERROR")
        redis = health_check()
        lines = [
            f"keel {keel.__version__} on Django {django.get_version()}, "
            f"database {connection.vendor} ({connection.settings_dict['NAME']})",
            "Redis: "
            + (
                f"up ({redis.latency_ms:.1f} ms)"
                if redis.ok
                else (
                    "not configured (database and Django cache only)"
                    if not redis.configured
                    else f"DOWN: {redis.error}"
                )
            ),
            f"fixture states stored: {FixtureState.objects.count()}",
            f"action tokens stored: {ActionToken.objects.count()}",
        ]
        self.stdout.write(self.style.SUCCESS("keel demo"))
        for line in lines:
            self.stdout.write(f"  {line}")
