"""The publish path: writes increment the model's version in their transaction and publish on
commit.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.models import Model

from keel import compat
from keel.site import versions
from keel.site.copies import clear_local_copies, forget_memo
from keel.site.documents import CachedSource, current_language, encode_doc
from keel.site.stores import Write, doc_timeout, get_store, store_failed
from keel.site.verdicts import invalidate as invalidate_verdicts

logger = logging.getLogger("keel.site.publish")


@dataclass(eq=False)
class _Publication:
    sources: tuple[CachedSource[Any], ...]
    alias: str
    #: Registered under manual transaction management: nothing publishes it, it only tells
    #: reads that the connection's transaction wrote.
    manual: bool = field(default=False)
    started: bool = field(default=False)
    #: Ran after its transaction committed (not early, by a test capturing on-commit callbacks).
    committed: bool = field(default=False)

    def __call__(self) -> None:
        self.started = True
        if not versions.in_transaction(self.alias):
            self.committed = True
            key = (id(connections[self.alias]), self.sources[0].model)
            if scheduled.get(key) is self:
                del scheduled[key]
        try:
            publish_now(self.sources, self.alias)
        except Exception:
            # The write has committed: a failure to publish it (a value the document cannot
            # hold, a bug) must not reach the caller as if the write had failed. Readers
            # still see the write, since the store stays behind the database's version.
            logger.exception(
                "keel: publishing %s failed after its write committed; readers rebuild "
                "from the database",
                self.sources[0].model._meta.label,
            )


# Publications waiting for a commit, by (connection, model). Weak values: Django drops the
# callbacks of a rolled-back transaction (or savepoint), the entry then disappears and the
# next write increments the version again and schedules a new publication.
scheduled: weakref.WeakValueDictionary[tuple[int, type[Model]], _Publication] = (
    weakref.WeakValueDictionary()
)
#: The dictionary under ``scheduled``: empty when nothing is scheduled (it may still hold a dead
#: entry for a moment, which only sends a read down the general path). Every warm read asks;
#: its truth costs no Python-level ``__len__``.
pending = scheduled.data  # type: ignore[attr-defined]

#: The publications registered under manual transaction management, held by their connection
#: until it is back in autocommit (or gone): Django keeps no on-commit callback for them.
_manual: weakref.WeakKeyDictionary[Any, list[_Publication]] = weakref.WeakKeyDictionary()


def wrote_in_transaction(model: type[Model], alias: str) -> bool:
    """Whether the current transaction of ``alias`` wrote ``model``: it then reads its own
    writes from the database until it ends, even when a test ran its on-commit callbacks
    early. Under manual transaction management (``set_autocommit(False)``), until the
    connection is back in autocommit."""
    connection = connections[alias]
    if connection.get_autocommit():
        if _manual.get(connection):
            del _manual[connection]  # its publications leave ``scheduled`` with it
            invalidate_verdicts()
        return False
    pending = scheduled.get((id(connection), compat.concrete_model(model)))
    return pending is not None and (pending.manual or not pending.committed)


def schedule_publish(sources: tuple[CachedSource[Any], ...], using: str) -> None:
    """Record a write of the sources' model: increment its version in the current transaction of
    ``using`` and publish once when that transaction commits.

    Outside a transaction it publishes at once. Several writes in one transaction increment and
    publish once. A rolled-back transaction publishes nothing (its increment rolls back too).
    """
    connection = connections[using]
    model = sources[0].model
    key = (id(connection), model)
    forget_memo(model)
    if compat.in_atomic_block(connection):
        pending = scheduled.get(key)
        if pending is not None and not pending.started and not pending.manual:
            return
    versions.increment(model, using)
    if not compat.in_atomic_block(connection) and not connection.get_autocommit():
        # Manual transaction management: Django has no commit hook to publish on. The new version
        # commits with the data, the store is then behind the database's version and the
        # first reader after the commit rebuilds it; this process asks the database again.
        # Until the connection is back in autocommit, its reads build from the database.
        clear_local_copies(model)
        versions.reset_known(using)
        registered = scheduled.get(key)
        if registered is None or not registered.manual:
            manual = _Publication(sources, using, manual=True)
            _manual.setdefault(connection, []).append(manual)
            scheduled[key] = manual
            invalidate_verdicts()
        return
    publication = _Publication(sources, using)
    if compat.in_atomic_block(connection):
        scheduled[key] = publication
        invalidate_verdicts()  # warm reads now take the path that reads this transaction's writes
    transaction.on_commit(publication, using=using, robust=True)


def publish_now(sources: tuple[CachedSource[Any], ...], alias: str) -> None:
    """Move the store to the database's committed version of the sources' model (every
    document of the model becomes stale), then write the documents that should be; never
    back: a slow publication leaves a newer version another process published in place (a
    store ahead of the database is set back by readers, see ``keel.site.cache``).

    Never raises for a store failure: it is logged, and readers notice the store is behind.
    Inside a transaction (an on-commit callback run by a test) only this process's copies are
    dropped: what the transaction sees is not committed.
    """
    model = sources[0].model
    clear_local_copies(model)
    if versions.in_transaction(alias):
        return
    store = get_store()
    version = versions.known_version(model, alias, refresh=True)
    gen_key = sources[0].gen_key(alias)
    try:
        written = False
        for source in sources:
            if not source.rebuild_on_publish:
                continue
            language = current_language() if source.per_language else "any"
            built = source.build_for_publish(alias, language)
            if built is None:
                continue
            raw = encode_doc(source, version, built[0])
            doc_key = source.doc_key(alias, language, None)
            store.set(Write(doc_key, gen_key, version, raw, doc_timeout()))
            written = True
        if not written:
            # The version alone: every document of the model becomes stale.
            store.set(Write(gen_key, gen_key, version, "", 1))
    except store.errors() as exc:
        store_failed(store, "publish", exc)
    # A read of this process that started before the publication may have kept an old copy.
    clear_local_copies(model)
