"""keel's application configuration."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed


class KeelConfig(AppConfig):
    """Registers keel's system checks and signal receivers; does no I/O."""

    name = "keel"
    verbose_name = "keel"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from keel import checks  # noqa: F401  (registers the checks)
        from keel.conf import reload_on_setting_changed
        from keel.redis import reset_on_setting_changed

        setting_changed.connect(reload_on_setting_changed, dispatch_uid="keel.conf")
        setting_changed.connect(reset_on_setting_changed, dispatch_uid="keel.redis")

        from keel.site.receivers import connect_receivers

        connect_receivers()
