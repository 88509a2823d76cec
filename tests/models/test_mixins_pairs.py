"""Every pair of the fifteen mixins, in both orders, and the full recommended stack.

Pair models are built here, in an isolated app registry, over one shared table
(``MixPairTable``). Each ordered pair proves that the save options of its two mixins work
whatever the order, that ``asave()`` forwards them, and that an option neither consumes
reaches ``Model.save()`` and raises ``TypeError`` naming it.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.apps.registry import Apps
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.test.utils import CaptureQueriesContext

from keel.exceptions import DatabaseUpdatePreconditionsError, TransitionNotAllowedError
from keel.models import mixins
from keel.signals import post_state_transition
from tests.testapp.models.mixins_core import (
    CoreAuthor,
    FullStackArticle,
    MixPairTable,
    TaskStates,
)

pytestmark = pytest.mark.django_db

MIXIN_NAMES = [
    "BetterUniquenessErrorsMixin",
    "AutoForceInsertMixin",
    "CallFieldsPreSaveMixin",
    "AutoUpdateFieldsMixin",
    "AlwaysUpdateFieldsMixin",
    "AutoRemovePKFromUpdateFieldsMixin",
    "ValidateOnSaveMixin",
    "FasterValidateOnSaveMixin",
    "UpdatePreconditionsMixin",
    "StateTransitionPreconditionMixin",
    "StateTransitionEventsMixin",
    "PublicMetaMixin",
    "RelatedModelMixin",
    "ReloadMixin",
    "SaveInstanceFilesMixin",
]
CONSUMES: dict[str, set[str]] = {
    "UpdatePreconditionsMixin": {"pre_filters", "pre_excludes"},
    "StateTransitionPreconditionMixin": {"pre_filters", "pre_excludes", "check_state"},
    "ValidateOnSaveMixin": {"validate"},
    "FasterValidateOnSaveMixin": {"validate"},
}
OPTION_VALUES: dict[str, Any] = {
    "pre_filters": {"version": 0},
    "pre_excludes": {"state": "done"},
    "check_state": True,
    "validate": True,
}
GUARDS = {"UpdatePreconditionsMixin", "StateTransitionPreconditionMixin"}

pair_apps = Apps()


def _fields() -> dict[str, models.Field[Any, Any]]:
    return {
        "name": models.CharField(max_length=100, unique=True),
        "state": models.CharField(max_length=20, default="new", choices=TaskStates.choices()),
        "version": models.IntegerField(default=0),
        "data": models.JSONField(default=dict, blank=True),
        "attachment": models.FileField(upload_to="pairs/", blank=True),
        "updated_at": models.DateTimeField(auto_now=True),
    }


def _build(first: str, second: str) -> type[models.Model]:
    meta = type(
        "Meta",
        (),
        {
            "app_label": "testapp",
            "apps": pair_apps,
            "db_table": "testapp_mixpair",
            "managed": False,
        },
    )
    attrs: dict[str, Any] = {
        "__module__": __name__,
        "Meta": meta,
        "states": TaskStates,
        "always_update_fields": ("updated_at",),
        **_fields(),
    }
    bases = (getattr(mixins, first), getattr(mixins, second))
    return type(f"Pair{first[:-5]}{second[:-5]}", bases, attrs)


PAIRS: dict[tuple[str, str], type[models.Model] | TypeError] = {}
for _first, _second in itertools.permutations(MIXIN_NAMES, 2):
    try:
        PAIRS[_first, _second] = _build(_first, _second)
    except TypeError as exc:  # a base listed before its own subclass: no consistent MRO
        PAIRS[_first, _second] = exc


def test_every_ordered_pair_was_considered() -> None:
    assert len(PAIRS) == 15 * 14
    impossible = sorted(k for k, v in PAIRS.items() if isinstance(v, TypeError))
    # Python itself refuses these two orders (the second mixin subclasses the first).
    assert impossible == [
        ("UpdatePreconditionsMixin", "StateTransitionPreconditionMixin"),
        ("ValidateOnSaveMixin", "FasterValidateOnSaveMixin"),
    ]


@pytest.mark.parametrize(("first", "second"), list(PAIRS), ids=[f"{a}-{b}" for a, b in PAIRS])
def test_pair_options_work_in_any_order(first: str, second: str) -> None:
    model = PAIRS[first, second]
    if isinstance(model, TypeError):
        assert "consistent method resolution" in str(model)
        return
    consumed = CONSUMES.get(first, set()) | CONSUMES.get(second, set())
    options = {name: OPTION_VALUES[name] for name in consumed}
    key = f"{first[:12]}-{second[:12]}"

    obj = model(name=key)
    obj.save(**options)
    obj = model._default_manager.get(pk=obj.pk)
    obj.name = f"{key}-2"
    obj.state = "running"
    obj.save(**options)
    row = MixPairTable.objects.get(pk=obj.pk)
    assert (row.name, row.state) == (f"{key}-2", "running")

    for name in sorted(set(OPTION_VALUES) - consumed):
        with pytest.raises(TypeError, match=name):
            obj.save(**{name: OPTION_VALUES[name]})
    with pytest.raises(TypeError, match="bogus_option"):
        obj.save(bogus_option=1, **options)

    obj.name = f"{key}-3"
    async_to_sync(obj.asave)(**options)
    assert MixPairTable.objects.get(pk=obj.pk).name == f"{key}-3"
    with pytest.raises(TypeError, match="bogus_option"):
        async_to_sync(obj.asave)(bogus_option=1, **options)

    if consumed & {"pre_filters"}:
        # The guard is never dropped on the way down, whatever sits in front of it.
        MixPairTable.objects.filter(pk=obj.pk).update(version=5)
        obj.name = f"{key}-4"
        with pytest.raises(DatabaseUpdatePreconditionsError):
            obj.save(**options)
        assert MixPairTable.objects.get(pk=obj.pk).name == f"{key}-3"


@pytest.mark.parametrize(
    ("first", "second"),
    [(a, b) for a, b in PAIRS if "StateTransitionPreconditionMixin" in (a, b)],
)
def test_state_guard_is_applied_in_any_order(first: str, second: str) -> None:
    model = PAIRS[first, second]
    if isinstance(model, TypeError):
        return
    obj = model(name=f"g-{first[:10]}-{second[:10]}")
    obj.save()
    obj.state = "done"
    with pytest.raises(TransitionNotAllowedError):
        obj.save()


# --- the full recommended stack --------------------------------------------------------------


def _set_clause(sql: str) -> str:
    return sql.split(" WHERE ")[0]


def test_full_stack_create_is_one_insert() -> None:
    with CaptureQueriesContext(connection) as ctx:
        FullStackArticle(slug="a", title="A").save(validate=False)
    assert [
        q["sql"].split()[0].upper() for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]
    ] == ["INSERT"]


def test_full_stack_auto_force_insert_fires_in_the_recommended_order() -> None:
    """Fixed: AutoForceInsertMixin never fired behind a mixin passing force_insert=False."""
    with CaptureQueriesContext(connection) as ctx:
        FullStackArticle(pk=100, slug="preset", title="Preset").save(validate=False)
    verbs = [q["sql"].split()[0].upper() for q in ctx.captured_queries]
    assert "UPDATE" not in verbs
    assert verbs.count("INSERT") == 1
    assert FullStackArticle.objects.get(pk=100).slug == "preset"


def test_full_stack_edit_writes_the_changed_column_and_the_always_updated_ones() -> None:
    article = FullStackArticle.objects.create(slug="a", title="A", body="long text")
    article = FullStackArticle.objects.get(pk=article.pk)
    article.title = "B"
    with CaptureQueriesContext(connection) as ctx:
        article.save(validate=False)
    updates = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith("UPDATE")]
    assert len(updates) == 1
    set_clause = _set_clause(updates[0])
    for column in ("title", "revision", "updated_at"):
        assert column in set_clause
    for column in ("body", "slug", "state", "created_at", "author_id", "attachment"):
        assert column not in set_clause
    assert FullStackArticle.objects.get(pk=article.pk).title == "B"


def test_full_stack_every_option_in_one_save() -> None:
    received: list[tuple[Any, Any]] = []

    def receiver(sender: type, previous_state: Any, state: Any, **kwargs: Any) -> None:
        received.append((previous_state, state))

    author = CoreAuthor.objects.create(name="ann")
    article = FullStackArticle.objects.create(slug="a", title="A")
    article = FullStackArticle.objects.get(pk=article.pk)
    post_state_transition.connect(receiver, sender=FullStackArticle)
    try:
        article.state = TaskStates.RUNNING
        article.author = author
        article.save(validate=True, check_state=True, pre_filters={"revision": 0})
        article.title = "untouched state"
        article.save(pre_excludes={"state": "done"})
    finally:
        post_state_transition.disconnect(receiver, sender=FullStackArticle)
    assert received == [("new", "running")]
    row = FullStackArticle.objects.get(pk=article.pk)
    assert (row.state, row.author_id, row.title) == ("running", author.pk, "untouched state")


def test_full_stack_validation_and_guards_write_nothing() -> None:
    article = FullStackArticle.objects.create(slug="a", title="A")
    article.title = ""
    with pytest.raises(ValidationError):
        article.save()
    article.title = "ok"
    FullStackArticle.objects.filter(pk=article.pk).update(revision=3)
    with pytest.raises(DatabaseUpdatePreconditionsError):
        article.save(pre_filters={"revision": 0})
    assert FullStackArticle.objects.get(pk=article.pk).title == "A"


def test_full_stack_duplicate_slug_is_a_validation_error_after_the_database_refuses() -> None:
    FullStackArticle.objects.create(slug="taken", title="A")
    with pytest.raises(ValidationError) as info:
        FullStackArticle(slug="taken", title="B").save(validate=False)
    assert "slug" in info.value.message_dict
