"""Writes through a multi-table child of a cached model reach the parent's readers."""

from __future__ import annotations

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps

from tests.testapp.models.site import StaticContent


@pytest.mark.django_db(transaction=True)
def test_a_row_saved_through_a_multi_table_child_reaches_readers(site_store: str) -> None:
    with isolate_apps("tests.testapp"):

        class NoticeContent(StaticContent):
            priority = models.IntegerField(default=0)

            class Meta:
                app_label = "testapp"

        with connection.schema_editor() as editor:
            editor.create_model(NoticeContent)
        try:
            assert StaticContent.get_text("notice", "none") == "none"  # warm, versioned
            NoticeContent.objects.create(key="notice", content="first")
            created = StaticContent.get_text("notice", "none")
            NoticeContent.objects.filter(key="notice").update(content="second")
            updated = StaticContent.get_text("notice", "none")
            NoticeContent.objects.get().delete()
            deleted = StaticContent.get_text("notice", "none")
            assert (created, updated, deleted) == ("first", "second", "none")
        finally:
            NoticeContent.objects.all().delete()
            with connection.schema_editor() as editor:
                editor.delete_model(NoticeContent)
