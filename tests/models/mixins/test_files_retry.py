"""SaveInstanceFilesMixin with change tracking: the retry of an insert rolled back by the
caller's transaction stores its files under the new primary key."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.db import models, transaction

from tests.testapp.models.mixins_misc import MiscFilesThenTracking, MiscTrackingThenFiles

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


@pytest.mark.parametrize("model", [MiscFilesThenTracking, MiscTrackingThenFiles])
def test_retry_of_a_rolled_back_insert_stores_its_file_under_the_new_pk(
    model: type[models.Model],
) -> None:
    model._default_manager.create(attachment=ContentFile(b"x", name="first.txt"))
    upload = model(attachment=ContentFile(b"%PDF", name="report.pdf"))

    def save_then_fail() -> None:
        with transaction.atomic():
            upload.save()
            raise Boom

    with pytest.raises(Boom):
        save_then_fail()
    rolled_back = upload.attachment.name
    upload.save()  # the retry
    stored = model._default_manager.get(pk=upload.pk).attachment
    try:
        assert stored.name.startswith(f"documents/{upload.pk}/")
        assert stored.read() == b"%PDF"
        assert rolled_back == stored.name or not stored.storage.exists(rolled_back)
    finally:
        stored.storage.delete(stored.name)
