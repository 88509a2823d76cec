"""Every pair of the uniqueness, validation, meta and files mixins, in both orders.

Each generated model (``tests.testapp.models.mixins_misc.PAIR_MODELS``) goes through the same
scenario; every mixin it contains must keep its promise whatever its position in the MRO.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, models, transaction

from tests.testapp.models.mixins_misc import PAIR_MODELS, MiscOwner

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def test_every_ordered_pair_is_generated() -> None:
    # 7 mixins, both orders, minus the Valid/Faster pair (one is a subclass of the other).
    assert len(PAIR_MODELS) == 7 * 6 - 2


@pytest.mark.parametrize("pair", sorted(PAIR_MODELS), ids="-".join)
def test_each_mixin_keeps_its_promise_in_this_order(pair: tuple[str, str]) -> None:
    model: Any = PAIR_MODELS[pair]
    names = set(pair)
    validates = bool(names & {"Valid", "Faster"})
    owner = MiscOwner.objects.create(name="o")

    first = model(title="first", owner=owner, attachment=ContentFile(b"x", name="a.txt"))
    first.save()
    expected_dir = f"pairs/{first.pk}/" if "Files" in names else "pairs/None/"
    assert first.attachment.name == f"{expected_dir}a.txt"

    # Uniqueness: a form error from ValidateOnSave (before the INSERT) or from the converted
    # IntegrityError; otherwise the IntegrityError itself.
    duplicate = model(title="first")
    if "Uniq" in names or "Valid" in names:
        with pytest.raises(ValidationError) as excinfo:
            duplicate.save()
        assert list(excinfo.value.message_dict) == ["title"]
    else:
        with pytest.raises(IntegrityError), transaction.atomic():
            duplicate.save()
    assert duplicate.pk is None

    # Validation and the validate option, also through asave().
    invalid = model(title="invalid", rating=9)
    if validates:
        with pytest.raises(ValidationError) as excinfo:
            invalid.save()
        assert list(excinfo.value.message_dict) == ["rating"]
        invalid.save(validate=False)
        async_to_sync(model(title="async", rating=9).asave)(validate=False)
    else:
        invalid.save()
        async_to_sync(model(title="async", rating=9).asave)()
    assert model.objects.filter(title__in=["invalid", "async"], rating=9).count() == 2

    # An option nobody takes reaches Django's save(), which names it.
    with pytest.raises(TypeError, match="bogus"):
        model(title="bogus").save(bogus=True)
    with pytest.raises(TypeError, match="bogus"):
        async_to_sync(model(title="bogus").asave)(bogus=True)
    assert not model.objects.filter(title="bogus").exists()

    if "Meta" in names:
        assert model.meta() is model._meta
    if "Related" in names:
        assert model.get_related_model("owner") is MiscOwner
    if "Reload" in names:
        model.objects.filter(pk=first.pk).update(rating=4)
        fresh = first.reload()
        assert (fresh.pk, fresh.rating, first.rating) == (first.pk, 4, 0)


@pytest.mark.parametrize("pair", sorted(PAIR_MODELS), ids="-".join)
def test_update_with_update_fields_in_this_order(pair: tuple[str, str]) -> None:
    model: Any = PAIR_MODELS[pair]
    instance: models.Model = model.objects.create(title="t")
    instance.rating = 3  # type: ignore[attr-defined]
    instance.save(update_fields=["rating"])
    assert model.objects.get(pk=instance.pk).rating == 3
