"""PublicMetaMixin, RelatedModelMixin and ReloadMixin."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.template import Context, Template

from tests.testapp.models.mixins_misc import (
    MiscMetaAuthor,
    MiscMetaBook,
    MiscMetaSpecialBook,
)


def test_meta_is_the_models_options() -> None:
    assert MiscMetaBook.meta() is MiscMetaBook._meta
    assert MiscMetaAuthor(name="a").meta() is MiscMetaAuthor._meta


def test_meta_is_readable_from_templates() -> None:
    template = Template("{{ author.meta.verbose_name }}/{{ author.meta.verbose_name_plural }}")
    assert template.render(Context({"author": MiscMetaAuthor(name="a")})) == "writer/writers"


def test_related_model_of_forward_and_reverse_relations() -> None:
    assert MiscMetaBook.get_related_model("author") is MiscMetaAuthor
    assert MiscMetaBook.get_related_model("author_id") is MiscMetaAuthor
    assert MiscMetaAuthor.get_related_model("books") is MiscMetaBook


def test_related_model_of_pk_is_the_parent_of_a_child_model() -> None:
    assert MiscMetaSpecialBook.get_related_model("pk") is MiscMetaBook


def test_related_model_of_a_plain_pk_is_a_clear_error() -> None:
    # The old helper stripped the characters "_", "i" and "d" from "id", and looked up "".
    with pytest.raises(ValueError, match=r"MiscMetaBook\.pk is not a relation"):
        MiscMetaBook.get_related_model("pk")


def test_related_model_of_a_field_ending_in_id_that_is_not_a_relation() -> None:
    with pytest.raises(ValueError, match=r"MiscMetaBook\.paid_id is not a relation"):
        MiscMetaBook.get_related_model("paid_id")


def test_related_model_of_an_unknown_name() -> None:
    with pytest.raises(FieldDoesNotExist):
        MiscMetaBook.get_related_model("nope")


def test_related_manager_is_the_default_manager_of_the_related_model() -> None:
    assert MiscMetaBook.get_related_manager("author") is MiscMetaAuthor._default_manager
    assert MiscMetaAuthor.get_related_manager("books") is MiscMetaBook.objects


@pytest.mark.django_db
def test_reload_returns_a_new_instance_and_leaves_the_old_one_alone() -> None:
    author = MiscMetaAuthor.objects.create(name="before")
    MiscMetaAuthor.objects.filter(pk=author.pk).update(name="after")
    fresh = author.reload()
    assert fresh is not author
    assert (fresh.pk, fresh.name) == (author.pk, "after")
    assert author.name == "before"


@pytest.mark.django_db
def test_reload_finds_rows_the_default_manager_hides() -> None:
    author = MiscMetaAuthor.objects.create(name="a")
    book = MiscMetaBook.all_objects.create(author=author, title="draft", published=False)
    assert not MiscMetaBook.objects.filter(pk=book.pk).exists()
    assert book.reload().title == "draft"


@pytest.mark.django_db(databases=["default", "other"])
def test_reload_reads_the_database_the_instance_came_from() -> None:
    # Same pk on both databases, different content: the old reload() read "default".
    MiscMetaAuthor.objects.using("default").create(pk=7, name="on default")
    author = MiscMetaAuthor.objects.using("other").create(pk=7, name="on other")
    MiscMetaAuthor.objects.using("other").filter(pk=7).update(name="on other, changed")
    fresh = author.reload()
    assert fresh.name == "on other, changed"
    assert fresh._state.db == "other"
    assert author.reload(using="default").name == "on default"


@pytest.mark.django_db(databases=["default", "other"])
def test_reload_of_an_instance_loaded_from_other() -> None:
    MiscMetaAuthor.objects.using("other").create(pk=3, name="only on other")
    author = MiscMetaAuthor.objects.using("other").get(pk=3)
    assert author.reload().name == "only on other"


@pytest.mark.django_db
def test_reload_of_a_deleted_row_raises_does_not_exist() -> None:
    author = MiscMetaAuthor.objects.create(name="a")
    MiscMetaAuthor.objects.filter(pk=author.pk).delete()
    with pytest.raises(MiscMetaAuthor.DoesNotExist):
        author.reload()


def test_reload_of_an_unsaved_instance_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Cannot reload an unsaved MiscMetaAuthor"):
        MiscMetaAuthor(name="a").reload()


@pytest.mark.django_db
def test_reload_from_a_queryset() -> None:
    author = MiscMetaAuthor.objects.create(name="a")
    book = MiscMetaBook.objects.create(author=author, title="t")
    partial = book.reload(from_queryset=MiscMetaBook.all_objects.only("title"))
    assert partial.get_deferred_fields() == {"author_id", "published", "paid_id"}
    with transaction.atomic():
        locked = book.reload(from_queryset=MiscMetaBook.all_objects.select_for_update())
        assert locked.title == "t"


@pytest.mark.django_db
def test_reload_of_a_multi_table_child() -> None:
    author = MiscMetaAuthor.objects.create(name="a")
    special = MiscMetaSpecialBook.objects.create(author=author, title="t", edition=2)
    MiscMetaSpecialBook.objects.filter(pk=special.pk).update(edition=3)
    assert special.reload().edition == 3


@pytest.mark.django_db
def test_areload() -> None:
    author = MiscMetaAuthor.objects.create(name="a")
    MiscMetaAuthor.objects.filter(pk=author.pk).update(name="b")

    async def main() -> str:
        fresh = await author.areload()
        return fresh.name

    assert async_to_sync(main)() == "b"
