from __future__ import annotations

from keel.fixtures import BaseUpdateAllContentCommand


class Command(BaseUpdateAllContentCommand):
    help = "Import every content fixture (each one skipped while its files are unchanged)."
    commands_to_run = ["update_site_settings", "update_static_content", "update_seo"]
