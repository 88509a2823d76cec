from __future__ import annotations

from keel.fixtures import BaseUpdateAllContentCommand


class Command(BaseUpdateAllContentCommand):
    help = "Import every content fixture of the test project."
    commands_to_run = [
        "fixtures_import_categories",
        "fixtures_import_tags",
        "fixtures_import_articles",
        "fixtures_update_site_config",
        "fixtures_rebuild_index",
    ]

    def get_command_label(self, name: str) -> str:
        return name.removeprefix("fixtures_").replace("_", " ")
