"""SaveInstanceFilesMixin: upload_to sees the primary key of a new instance."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, connections, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from PIL import Image

from tests.testapp.models.mixins_misc import (
    MiscDocument,
    MiscFilesThenTracking,
    MiscTrackingThenFiles,
    MiscUUIDDocument,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def post_saves() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
        calls.append({"created": created, "attachment": instance.attachment.name})

    post_save.connect(receiver, sender=MiscDocument)
    yield calls
    post_save.disconnect(receiver, sender=MiscDocument)


def writes(queries: CaptureQueriesContext) -> list[str]:
    sqls = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    return [sql for sql in sqls if sql in {"INSERT", "UPDATE", "DELETE"}]


def png(width: int, height: int) -> ContentFile[bytes]:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="picture.png")


def test_upload_to_sees_the_pk_of_a_new_instance() -> None:
    # Stored before the pk existed, the file used to land in "documents/None/".
    document = MiscDocument(title="t", attachment=ContentFile(b"hello", name="a.txt"))
    document.save()
    assert document.pk is not None
    assert document.attachment.name == f"documents/{document.pk}/a.txt"
    assert MiscDocument.objects.get(pk=document.pk).attachment.name == document.attachment.name
    assert default_storage.open(document.attachment.name).read() == b"hello"


def test_one_insert_and_one_update_in_one_transaction(post_saves: list[dict[str, Any]]) -> None:
    document = MiscDocument(title="t", attachment=ContentFile(b"x", name="a.txt"))
    with CaptureQueriesContext(connection) as queries:
        document.save()
    assert writes(queries) == ["INSERT", "UPDATE"]
    # One save(): the signals run once, not twice as with a second full save().
    assert post_saves == [{"created": True, "attachment": "a.txt"}]


def test_several_file_fields_and_image_dimensions() -> None:
    document = MiscDocument(
        title="t",
        attachment=ContentFile(b"a", name="a.txt"),
        extra=ContentFile(b"b", name="b.txt"),
        picture=png(3, 2),
    )
    document.save()
    stored = MiscDocument.objects.get(pk=document.pk)
    assert stored.attachment.name == f"documents/{document.pk}/a.txt"
    assert stored.extra.name == f"documents/{document.pk}/b.txt"
    assert stored.picture.name == f"documents/{document.pk}/picture.png"
    assert (stored.picture_width, stored.picture_height) == (3, 2)


def test_failure_rolls_back_the_row_deletes_stored_files_and_keeps_the_input(
    media_root: Path,
) -> None:
    document = MiscDocument(
        title="t",
        attachment=ContentFile(b"kept", name="a.txt"),
        extra=ContentFile(b"no", name="reject.txt"),
    )
    with pytest.raises(ValueError, match=r"refusing to store reject\.txt"):
        document.save()
    assert not MiscDocument.objects.exists()
    assert [p for p in media_root.rglob("*") if p.is_file()] == []
    assert document.pk is None and document._state.adding
    # The input is intact: fix the bad file and save again.
    document.extra = ContentFile(b"ok", name="b.txt")
    document.save()
    stored = MiscDocument.objects.get(pk=document.pk)
    assert stored.attachment.name == f"documents/{document.pk}/a.txt"
    assert stored.attachment.read() == b"kept"


def test_failure_does_not_poison_the_callers_transaction() -> None:
    with transaction.atomic():
        document = MiscDocument(title="t", attachment=ContentFile(b"x", name="reject.txt"))
        with pytest.raises(ValueError, match="refusing"):
            document.save()
        MiscDocument.objects.create(title="after", attachment="documents/x/y.txt")
    assert list(MiscDocument.objects.values_list("title", flat=True)) == ["after"]


def test_existing_instance_gets_its_new_file_in_one_update() -> None:
    document = MiscDocument.objects.create(title="t", attachment="documents/old.txt")
    document.attachment = ContentFile(b"new", name="new.txt")
    with CaptureQueriesContext(connection) as queries:
        document.save()
    assert writes(queries) == ["UPDATE"]
    assert document.attachment.name == f"documents/{document.pk}/new.txt"


def test_pk_with_a_default_is_saved_in_one_insert() -> None:
    document = MiscUUIDDocument(attachment=ContentFile(b"x", name="a.txt"))
    with CaptureQueriesContext(connection) as queries:
        document.save()
    assert writes(queries) == ["INSERT"]
    assert document.attachment.name == f"documents/{document.pk}/a.txt"


def test_instance_without_pending_files_is_saved_in_one_insert() -> None:
    with CaptureQueriesContext(connection) as queries:
        MiscDocument(title="t", attachment="documents/stored.txt").save()
    assert writes(queries) == ["INSERT"]


def test_copy_of_a_saved_instance_keeps_the_stored_file() -> None:
    original = MiscDocument(title="t", attachment=ContentFile(b"x", name="a.txt"))
    original.save()
    name = original.attachment.name
    original.pk = None
    original._state.adding = True
    with CaptureQueriesContext(connection) as queries:
        original.save()
    assert writes(queries) == ["INSERT"]
    assert MiscDocument.objects.get(pk=original.pk).attachment.name == name


def test_asave_stores_the_files_with_the_pk() -> None:
    document = MiscDocument(title="t", attachment=ContentFile(b"x", name="a.txt"))
    async_to_sync(document.asave)()
    assert document.attachment.name == f"documents/{document.pk}/a.txt"


def test_unknown_save_option_is_a_type_error_and_stores_nothing(media_root: Path) -> None:
    document = MiscDocument(title="t", attachment=ContentFile(b"x", name="a.txt"))
    with pytest.raises(TypeError, match="bogus"):
        document.save(bogus=1)
    assert document.pk is None
    assert not MiscDocument.objects.exists()
    assert [p for p in media_root.rglob("*") if p.is_file()] == []


@pytest.mark.django_db(databases=["default", "other"])
def test_save_using_another_database() -> None:
    document = MiscDocument(title="t", attachment=ContentFile(b"x", name="a.txt"))
    with CaptureQueriesContext(connections["other"]) as queries:
        document.save(using="other")
    assert writes(queries) == ["INSERT", "UPDATE"]
    stored = MiscDocument.objects.using("other").get(pk=document.pk)
    assert stored.attachment.name == f"documents/{document.pk}/a.txt"
    assert not MiscDocument.objects.using("default").exists()


@pytest.mark.parametrize("model", [MiscFilesThenTracking, MiscTrackingThenFiles])
def test_change_tracking_sees_no_leftover_change_after_the_files_are_stored(model: Any) -> None:
    document = model(attachment=ContentFile(b"x", name="a.txt"))
    document.save()
    assert document.attachment.name == f"documents/{document.pk}/a.txt"
    assert document.get_dirty_fields() == {}
    document.title = "renamed"
    with CaptureQueriesContext(connection) as queries:
        document.save()
    assert writes(queries) == ["UPDATE"]
    assert "attachment" not in queries.captured_queries[-1]["sql"]
    stored = model.objects.get(pk=document.pk)
    assert (stored.title, stored.attachment.name) == ("renamed", document.attachment.name)
