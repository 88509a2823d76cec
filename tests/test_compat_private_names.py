"""Django's private API is used in ``keel/compat.py`` only.

Every module under ``src/keel`` except ``compat.py`` is parsed, and the test fails when one:

1. imports from a Django module that is not part of Django's documented API
   (``PRIVATE_MODULES``), imports a name of ``PRIVATE_NAMES``, or imports any Django name
   that starts with an underscore. An import under ``if TYPE_CHECKING:`` is allowed: it
   names a type for the checker and runs nothing;
2. reads an underscore attribute that Django's own code defines or uses (collected from
   Django's installed source) unless keel defines an attribute of that name itself or it is
   one of the documented ones (``PUBLIC_UNDERSCORE``: ``_meta``, ``_state``,
   ``_default_manager``, ``_base_manager``);
3. reads a part of ``_meta`` that is not documented (``DOCUMENTED_META``: the Model ``_meta``
   API and the ``Meta`` options), a part of ``_state`` other than ``adding`` and ``db``, or
   an undocumented attribute without an underscore (``PRIVATE_ATTRIBUTES``: the router's
   list, the transaction bookkeeping of a connection, the backend operations and feature
   flags, ``transaction.get_connection()``).

Each such use belongs in ``keel/compat.py``, with the reason and the Django versions it was
checked against. The scanner is tested on small snippets that break each rule.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import django
import pytest

import keel

SRC = Path(keel.__file__).parent

#: Django modules whose contents are not in Django's documentation (a prefix covers its
#: submodules). Modules whose classes the docs name (``django.db.models.options.Options``,
#: ``django.db.models.fields.files.FieldFile``, ``django.core.management.base``...) are
#: public.
PRIVATE_MODULES: dict[str, str] = {
    "django.db.models.base": "ModelBase, ModelState: the model class machinery",
    "django.db.models.query_utils": "DeferredAttribute, Q's helpers",
    "django.db.models.fields.related_descriptors": "the descriptors behind relations",
    "django.db.models.sql": "the query compiler",
    "django.db.models.deletion": "the Collector behind delete()",
    "django.db.backends": "the database wrappers (connection objects are documented, "
    "their classes are not)",
    "django.core.handlers": "the request handlers",
    "django.utils.duration": "not among the documented utilities",
}

#: Undocumented names of modules that are otherwise public.
PRIVATE_NAMES: dict[tuple[str, str], str] = {
    ("django.test.utils", "TestContextDecorator"): "the base of override_settings",
    ("django.core.cache.backends.db", "BaseDatabaseCache"): "the base of DatabaseCache",
}

PUBLIC_UNDERSCORE = frozenset({"_meta", "_state", "_default_manager", "_base_manager"})

#: The documented ``_meta`` API (``get_field``, ``get_fields``), the ``Meta`` options and the
#: read-only attributes the docs name (``label``, ``label_lower``), and the common
#: attributes every Django guide uses (``pk``, ``model_name``, ``object_name``,
#: ``concrete_fields``, ``fields``).
DOCUMENTED_META = frozenset(
    {
        "get_field",
        "get_fields",
        "abstract",
        "app_label",
        "base_manager_name",
        "db_table",
        "db_table_comment",
        "db_tablespace",
        "default_manager_name",
        "default_related_name",
        "get_latest_by",
        "managed",
        "order_with_respect_to",
        "ordering",
        "permissions",
        "default_permissions",
        "proxy",
        "required_db_features",
        "required_db_vendor",
        "select_on_save",
        "indexes",
        "unique_together",
        "constraints",
        "verbose_name",
        "verbose_name_plural",
        "label",
        "label_lower",
        "pk",
        "model_name",
        "object_name",
        "concrete_fields",
        "fields",
    }
)

DOCUMENTED_STATE = frozenset({"adding", "db"})

#: Undocumented attributes without a leading underscore, by the name of the attribute.
PRIVATE_ATTRIBUTES: dict[str, str] = {
    "routers": "django.db.router's list of routers",
    "run_on_commit": "a connection's pending on_commit callbacks",
    "savepoint_ids": "a connection's savepoint bookkeeping",
    "needs_rollback": "use transaction.get_rollback()",
    "in_atomic_block": "a connection's transaction state",
    "features": "the backend feature flags (connection.features)",
    "ops": "the backend operations (connection.ops)",
    "get_connection": "transaction.get_connection() says it is private: use connections[alias]",
}


@functools.cache
def django_private_attributes() -> frozenset[str]:
    """Every underscore name Django's own source defines or reads as an attribute."""
    names: set[str] = set()
    for path in Path(django.__file__).parent.rglob("*.py"):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):  # templates of project skeletons
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
    return frozenset(n for n in names if _private(n))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_names(tree: ast.AST) -> set[str]:
    """Underscore names a module defines on its own objects: methods, class attributes and
    attributes it assigns (``self._x = ...``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(item.name)
                targets = (
                    item.targets
                    if isinstance(item, ast.Assign)
                    else [item.target]
                    if isinstance(item, ast.AnnAssign)
                    else []
                )
                names.update(t.id for t in targets if isinstance(t, ast.Name))
                if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in targets):
                    value = getattr(item, "value", None)
                    names.update(
                        c.value
                        for c in ast.walk(value)
                        if value is not None
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)
                    )
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.attr for t in targets if isinstance(t, ast.Attribute))
    return {n for n in names if _private(n)}


def _type_checking_imports(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        }:
            for child in node.body:
                for inner in ast.walk(child):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        lines.add(inner.lineno)
    return lines


def _module_is_private(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in PRIVATE_MODULES)


def find_private_uses(source: str, own_names: frozenset[str] = frozenset()) -> Iterator[str]:
    """Describe each use of Django's private API in ``source`` (see the module docstring).

    ``own_names``: underscore attribute names keel defines anywhere (not Django's).
    """
    tree = ast.parse(source)
    typing_only = _type_checking_imports(tree)
    django_private = django_private_attributes() - own_names - PUBLIC_UNDERSCORE
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.lineno not in typing_only:
            module = node.module
            if module != "django" and not module.startswith("django."):
                continue
            for alias in node.names:
                if _module_is_private(module):
                    yield f"line {node.lineno}: imports {alias.name} from private {module}"
                elif (module, alias.name) in PRIVATE_NAMES or _private(alias.name):
                    yield f"line {node.lineno}: imports private {module}.{alias.name}"
        elif isinstance(node, ast.Import) and node.lineno not in typing_only:
            for alias in node.names:
                if _module_is_private(alias.name):
                    yield f"line {node.lineno}: imports private {alias.name}"
        elif isinstance(node, ast.Attribute):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id == "compat":
                continue  # keel's own hooks, named after what they wrap
            owner_attr = owner.attr if isinstance(owner, ast.Attribute) else None
            if owner_attr == "_meta" and node.attr not in DOCUMENTED_META:
                yield f"line {node.lineno}: reads undocumented _meta.{node.attr}"
            elif owner_attr == "_state" and node.attr not in DOCUMENTED_STATE:
                yield f"line {node.lineno}: reads undocumented _state.{node.attr}"
            elif node.attr in django_private:
                yield f"line {node.lineno}: reads Django's private attribute {node.attr}"
            elif node.attr in PRIVATE_ATTRIBUTES:
                yield f"line {node.lineno}: reads {node.attr} ({PRIVATE_ATTRIBUTES[node.attr]})"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in django_private
        ):
            yield f"line {node.lineno}: reads Django's private attribute {node.args[1].value}"


def _modules() -> list[Path]:
    return sorted(
        p for p in SRC.rglob("*.py") if p.name != "compat.py" and "migrations" not in p.parts
    )


@functools.cache
def _keel_own_names() -> frozenset[str]:
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path.name == "compat.py":
            continue
        names |= _defined_names(ast.parse(path.read_text(encoding="utf-8")))
    return frozenset(names)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_uses_no_private_django_name(path: Path) -> None:
    found = list(find_private_uses(path.read_text(encoding="utf-8"), _keel_own_names()))
    assert not found, f"{path.relative_to(SRC)}: route through keel.compat: {found}"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("from django.db.models.base import ModelState", "private django.db.models.base"),
        ("import django.db.models.sql.compiler", "private django.db.models.sql.compiler"),
        ("from django.db.backends.base.base import BaseDatabaseWrapper", "private django.db"),
        ("from django.test.utils import TestContextDecorator", "TestContextDecorator"),
        ("from django.db.models import _something", "private django.db.models._something"),
        ("model._meta.all_parents", "undocumented _meta.all_parents"),
        ("model._meta.pk_fields", "undocumented _meta.pk_fields"),
        ("obj._state.fields_cache", "undocumented _state.fields_cache"),
        ("obj._prefetched_objects_cache", "private attribute _prefetched_objects_cache"),
        ("queryset._result_cache", "private attribute _result_cache"),
        ("instance._do_update(qs, 'default', 1, [], None, False)", "private attribute _do_upd"),
        ("getattr(value, '_committed', True)", "private attribute _committed"),
        ("router.routers", "routers"),
        ("connections['default'].run_on_commit", "run_on_commit"),
        ("connection.features.has_select_for_update", "features"),
        ("connection.ops.quote_name('t')", "connection.ops"),
        ("transaction.get_connection('default')", "get_connection"),
        ("connections['default'].in_atomic_block", "in_atomic_block"),
    ],
)
def test_scanner_reports_each_kind_of_private_use(snippet: str, expected: str) -> None:
    found = list(find_private_uses(snippet))
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    "snippet",
    [
        "if TYPE_CHECKING:\n    from django.db.backends.base.base import BaseDatabaseWrapper",
        "from django.db import models, router, transaction",
        "from django.db.models.fields.files import FieldFile",
        "model._meta.get_field('name'); model._meta.concrete_fields; obj._state.adding",
        "Model._default_manager.all(); Model._base_manager.all()",
        "self._own_cache",
    ],
)
def test_scanner_accepts_public_api(snippet: str) -> None:
    assert list(find_private_uses(snippet)) == []


def test_own_names_of_keel_are_not_reported_as_django_s() -> None:
    assert list(find_private_uses("self._result_cache", frozenset({"_result_cache"}))) == []
