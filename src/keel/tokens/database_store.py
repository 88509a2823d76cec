"""The database token store: the [`keel.models.ActionToken`][keel.models.ActionToken] table.

The embedded default, used when Redis is not configured. Rows are keyed by the token's digest.
Consuming is one ``DELETE … WHERE digest = %s AND purpose = %s AND expires_at > %s RETURNING
payload`` where the backend can return rows from a ``DELETE`` (PostgreSQL, SQLite 3.35+, MariaDB
10.5+); elsewhere (MySQL) it reads the row and accepts it only if its own ``DELETE`` removed it.
Either way, one caller gets the payload however many race for it; under ``REPEATABLE READ`` or
``SERIALIZABLE`` the losers' serialization failures are answered ``None``, like any token already
used. A write that loses a deadlock or a serialization failure runs again when it ran in keel's
own transaction; in the caller's transaction, and whenever SQLite's write lock refuses it, it
raises [`TokenStoreBusy`][keel.tokens.TokenStoreBusy] (nothing was written): no raw database
error reaches the caller, and ``None`` always means the token is gone.
Expired rows are never returned; they stay until ``manage.py keel_purge_tokens`` (or
[`DatabaseTokenStore.purge_expired`][keel.tokens.database_store.DatabaseTokenStore.purge_expired])
removes them.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import random
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from keel import clock, compat
from keel.models import ActionCounter, ActionToken
from keel.tokens.base import NewToken, TokenStore
from keel.tokens.exceptions import TokenError, TokenStoreBusy

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["DatabaseTokenStore"]

_T = TypeVar("_T")

#: How often a write in keel's own transaction (a create, a revoke, a counted attempt) runs
#: again after losing a deadlock or a serialization failure to a racing call.
DEADLOCK_RETRIES = 10

#: Vendors whose ``DELETE … RETURNING`` syntax matches the one written here.
RETURNING_VENDORS = frozenset({"postgresql", "sqlite", "mysql"})


def supports_delete_returning(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``connection`` can run ``DELETE … RETURNING``.

    Django's ``can_return_columns_from_insert`` is true exactly for PostgreSQL, SQLite 3.35+
    and MariaDB 10.5+, each of which also returns rows from ``DELETE`` (SQLite added both in
    3.35; MariaDB has had ``DELETE … RETURNING`` since 10.0). It is false on MySQL, which has
    neither.
    """
    return connection.vendor in RETURNING_VENDORS and compat.can_return_rows_from_insert(connection)


#: SQLSTATEs of a transaction that lost a race: serialization failure, deadlock.
SERIALIZATION_SQLSTATES = frozenset({"40001", "40P01"})
#: MySQL/MariaDB error codes of the same: deadlock (1213), and "record has changed since
#: last read" (1020, MariaDB's snapshot isolation).
SERIALIZATION_MYSQL_CODES = frozenset({1213, 1020})


def is_serialization_failure(exc: DatabaseError) -> bool:
    """Whether ``exc`` says that a concurrent transaction changed the row first."""
    cause = exc.__cause__
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in SERIALIZATION_SQLSTATES:
        return True
    args: tuple[object, ...] = getattr(cause, "args", ())
    return bool(args) and args[0] in SERIALIZATION_MYSQL_CODES


def _sqlite_locked(connection: BaseDatabaseWrapper, exc: DatabaseError) -> bool:
    # SQLite transactions are serializable: one that read before another wrote cannot write
    # (SQLITE_BUSY at once, "database is locked", since waiting could deadlock), and any
    # write waits at most the connection's timeout for the write lock. Either way the
    # statement did nothing; whether a token is used is unknown, so this is no "used" answer.
    return connection.vendor == "sqlite" and "database is locked" in str(exc)


def _busy(alias: str, action: str) -> TokenStoreBusy:
    return TokenStoreBusy(
        f"The token store could not {action} on database {alias!r} now: a concurrent write "
        "holds what it needs (a deadlock, a serialization failure, or SQLite's write lock), so "
        "the database rolled back the enclosing transaction or refused the write. Nothing of "
        "it was written: retry (in a new transaction if it ran in yours)."
    )


#: Reads the database server's clock, in UTC, per vendor.
_CLOCK_SQL = {
    "postgresql": "SELECT CLOCK_TIMESTAMP()",
    "mysql": "SELECT UTC_TIMESTAMP(6)",
    "sqlite": "SELECT STRFTIME('%Y-%m-%d %H:%M:%f', 'now')",
}


def database_now(alias: str) -> datetime.datetime:
    """The current time by the clock of database ``alias`` (one query).

    Limits shared by several app servers (the rolling window of codes issued, the life of
    attempt counters) are measured on one clock, the database's: a server whose clock is
    ahead would otherwise see a slot expire early and take it again. SQLite's clock is that of
    the machine holding its file. ``keel.clock.advance`` moves it as it moves keel's own
    clock, so that a test does not wait for a window to pass.
    """
    connection = connections[alias]
    sql = _CLOCK_SQL.get(connection.vendor)
    if sql is None or not settings.USE_TZ:
        return clock.now()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        (value,) = cursor.fetchone()
    if isinstance(value, str):  # SQLite
        value = datetime.datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value + clock.offset()  # type: ignore[no-any-return]


#: The payload of an alias row: a token's place in the index of one of its subject's other
#: digests (under a key of ``SECRET_KEY_FALLBACKS``), followed by the token's digest. No
#: document keel writes starts so ("{", or the hex of a fingerprint or of a counter).
ALIAS_MARK = "keel-alias:"


def _alias_digest(digest: str, subject: str) -> str:
    # Not a keyed digest of any token: no lookup of a token ever reaches an alias row.
    return hashlib.sha256(f"alias\0{digest}\0{subject}".encode()).hexdigest()


_sql_by_vendor: dict[str, str] = {}


def _delete_returning_sql(connection: BaseDatabaseWrapper) -> str:
    sql = _sql_by_vendor.get(connection.vendor)
    if sql is None:
        meta = ActionToken._meta
        quote = compat.quoter(connection)
        column = {field.name: quote(str(field.column)) for field in meta.concrete_fields}
        sql = _sql_by_vendor[connection.vendor] = (
            f"DELETE FROM {quote(meta.db_table)} "
            f"WHERE {column['digest']} = %s AND {column['purpose']} = %s "
            f"AND {column['expires_at']} > %s RETURNING {column['payload']}"
        )
    return sql


class DatabaseTokenStore(TokenStore):
    """Tokens as rows of [`keel.models.ActionToken`][keel.models.ActionToken].

    ``using`` names the database; by default the router's write database for ``ActionToken``
    (reads go there too: a token just created must be readable at once, replicas may lag).
    ``delete_returning`` forces (``True``/``False``) the consume strategy; ``None`` picks it
    from the backend. Database errors propagate as Django raises them.

    When a token is created for a subject, the subject's other tokens are deleted in the same
    transaction, and creates for one subject take turns on a lock row: however they
    interleave, one token of the subject stays valid. A token is also indexed, by an alias row,
    under its subject's digest for each key of ``SECRET_KEY_FALLBACKS``: a worker that knows
    only an older key (during a rolling rotation) finds it and revokes it.
    """

    name = "database"

    def __init__(self, using: str | None = None, *, delete_returning: bool | None = None) -> None:
        self.using = using
        self.delete_returning = delete_returning

    def db_for_write(self) -> str:
        """The alias of the database holding the tokens."""
        return self.using or router.db_for_write(ActionToken)

    def _rows(self, alias: str) -> QuerySet[ActionToken]:
        return ActionToken._default_manager.using(alias)

    def put(self, entry: NewToken) -> bool:
        alias = self.db_for_write()
        now = clock.now()
        row = ActionToken(
            digest=entry.digest,
            purpose=entry.purpose,
            subject=entry.subject or "",
            payload=entry.value,
            created_at=now,
            expires_at=now + datetime.timedelta(seconds=entry.ttl),
        )
        if entry.subject is None:
            # One INSERT, no savepoint: a digest is 256 random bits, a clash does not happen
            # (it would raise IntegrityError rather than overwrite).
            insert = partial(row.save, using=alias, force_insert=True)
            self._retrying(alias, insert, "create a token", atomic=False)
            return True
        subjects = [entry.subject, *entry.aliases]
        aliases = [
            ActionToken(
                digest=_alias_digest(entry.digest, subject),
                purpose=entry.purpose,
                subject=subject,
                payload=ALIAS_MARK + entry.digest,
                created_at=now,
                expires_at=row.expires_at,
            )
            for subject in entry.aliases
        ]

        def replace() -> None:
            self._lock_subjects(alias, entry.purpose, subjects, row.expires_at)
            self._revoke(alias, entry.purpose, subjects)
            row.save(using=alias, force_insert=True)
            if aliases:
                self._rows(alias).bulk_create(aliases)

        try:
            self._retrying(alias, replace, "create a token")
        except IntegrityError:
            return False
        return True

    def _retrying(
        self,
        alias: str,
        job: Callable[[], _T],
        action: str,
        *,
        durable: bool = False,
        retry_integrity: bool = False,
        atomic: bool = True,
    ) -> _T:
        """Run ``job`` in a transaction of ``alias``; run it again if it loses a race.

        A create and a revoke for one subject can lock the same rows in different orders
        (InnoDB locks a secondary index entry before its row, a delete by key the row first),
        and racing counters serialize: the database then rolls one of them back whole. In
        keel's own transaction the loser runs again after a short random pause (also after an
        ``IntegrityError`` with ``retry_integrity``: a row created concurrently, which a new
        transaction sees). In the caller's transaction nothing can run again (MariaDB has
        rolled all of it back, PostgreSQL has aborted it or keeps its snapshot), nor when
        SQLite refuses its write lock: [`TokenStoreBusy`][keel.tokens.TokenStoreBusy].
        A lone read (``atomic=False``) can lose too, under ``SERIALIZABLE``: it runs again the
        same way.
        """
        connection = connections[alias]
        owned = not compat.in_atomic_block(connection)
        for attempt in range(DEADLOCK_RETRIES):
            try:
                if not atomic:
                    return job()
                with transaction.atomic(using=alias, durable=durable):
                    return job()
            except IntegrityError:
                if not retry_integrity:
                    raise
            except DatabaseError as exc:
                if _sqlite_locked(connection, exc) or (not owned and is_serialization_failure(exc)):
                    raise _busy(alias, action) from exc
                if not is_serialization_failure(exc):
                    raise
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise _busy(alias, action)

    def _revoke(self, alias: str, purpose: str, subjects: list[str]) -> int:
        """Delete the tokens indexed under ``subjects`` (also through an alias row); how many.

        Each statement stands alone (no transaction needed, none taken): an alias row is
        deleted only after the token it stands for, so whatever step fails, every live token
        stays findable under each of its subject's digests.
        """
        rows = self._rows(alias).filter(purpose=purpose)
        tokens = rows.exclude(payload__startswith=ALIAS_MARK)
        gone: int = tokens.filter(subject__in=subjects).delete()[0]
        marks = rows.filter(subject__in=subjects, payload__startswith=ALIAS_MARK)
        found = list(marks.values_list("digest", "payload"))
        if found:
            # An alias row names the token it stands for: that token goes first, then the row.
            gone += tokens.filter(digest__in=[p[len(ALIAS_MARK) :] for _, p in found]).delete()[0]
            rows.filter(digest__in=[digest for digest, _ in found]).delete()
        return gone

    def _lock_subjects(
        self, alias: str, purpose: str, subjects: list[str], expires_at: datetime.datetime
    ) -> None:
        # Two puts for one subject would each delete what they see (nothing, under READ
        # COMMITTED or a snapshot) and both insert: two live tokens. Upserting the subject's
        # lock row locks it until commit: puts and revokes of one subject run one after the
        # other, and the second put deletes the first's token. Every caller takes its rows in
        # one order, so that two of them never wait for each other's lock rows.
        counters = ActionCounter._default_manager.using(alias)
        # MySQL's ON DUPLICATE KEY names no conflict target; the others require one.
        targeted = compat.supports_conflict_target(connections[alias])
        for subject in sorted(subjects):
            lock = hashlib.sha256(f"put\0{purpose}\0{subject}".encode()).hexdigest()
            counters.bulk_create(
                [ActionCounter(key=lock, purpose=purpose, count=1, expires_at=expires_at)],
                update_conflicts=True,
                unique_fields=["key"] if targeted else None,
                update_fields=["expires_at"],
            )

    def get(self, purpose: str, digest: str) -> str | None:
        alias = self.db_for_write()
        return self._retrying(
            alias, lambda: self._get(alias, purpose, digest), "read a token", atomic=False
        )

    def _get(self, alias: str, purpose: str, digest: str) -> str | None:
        payloads = list(
            self._rows(alias)
            .filter(digest=digest, purpose=purpose, expires_at__gt=clock.now())
            .values_list("payload", flat=True)[:1]
        )
        return payloads[0] if payloads else None

    def pop(self, purpose: str, digest: str) -> str | None:
        alias = self.db_for_write()
        connection = connections[alias]
        returning = self.delete_returning
        if returning is None:
            returning = supports_delete_returning(connection)
        # A PostgreSQL transaction is unusable after a failed statement: inside one, a
        # savepoint keeps it usable when the DELETE loses a race. In autocommit the statement
        # is its own transaction; MySQL and SQLite keep the transaction after such an error.
        savepoint = compat.in_atomic_block(connection) and connection.vendor == "postgresql"
        guard = transaction.atomic(using=alias) if savepoint else None
        try:
            with guard or contextlib.nullcontext():
                if returning:
                    return self._delete_returning(connection, purpose, digest)
                return self._read_then_delete(alias, purpose, digest)
        except DatabaseError as exc:
            # REPEATABLE READ/SERIALIZABLE: another consumer deleted the row after this
            # statement's snapshot was taken. The token is used: answer as for one.
            if is_serialization_failure(exc):
                return None
            if _sqlite_locked(connection, exc):
                raise _busy(alias, "consume a token") from exc
            raise

    def _read_then_delete(self, alias: str, purpose: str, digest: str) -> str | None:
        payload = self._get(alias, purpose, digest)
        if payload is None:
            return None
        # Only the caller whose DELETE removed the row may use it: a concurrent consumer that
        # read the same row gets a count of 0 and nothing.
        deleted, _ = self._rows(alias).filter(digest=digest, purpose=purpose).delete()
        return payload if deleted else None

    def _delete_returning(
        self, connection: BaseDatabaseWrapper, purpose: str, digest: str
    ) -> str | None:
        now = compat.adapt_datetime(connection, clock.now())
        with connection.cursor() as cursor:
            cursor.execute(_delete_returning_sql(connection), [digest, purpose, now])
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    def delete(self, purpose: str, digest: str) -> bool:
        alias = self.db_for_write()
        rows = self._rows(alias).filter(digest=digest, purpose=purpose)
        return bool(self._retrying(alias, lambda: rows.delete()[0], "delete a token", atomic=False))

    def revoke_subject(self, purpose: str, subject: str) -> int:
        alias = self.db_for_write()

        def revoke() -> int:
            # The puts' lock row: a revoke waits for a create in flight, then deletes its
            # token, instead of deadlocking with it on the token rows.
            self._lock_subjects(alias, purpose, [subject], clock.now())
            return self._revoke(alias, purpose, [subject])

        return self._retrying(alias, revoke, "revoke a subject's tokens")

    def purge_expired(self, *, batch_size: int = 1000, dry_run: bool = False) -> int:
        """Delete the expired tokens, ``batch_size`` per statement; return how many.

        Batches keep each ``DELETE`` short so that a large backlog never locks the table for
        long. With ``dry_run``, only count them.
        """
        return self._purge(ActionToken, batch_size, dry_run)

    def purge_expired_counters(self, *, batch_size: int = 1000, dry_run: bool = False) -> int:
        """The same as
        [`purge_expired`][keel.tokens.database_store.DatabaseTokenStore.purge_expired] for the
        expired counters of one-time codes."""
        return self._purge(ActionCounter, batch_size, dry_run)

    def _purge(self, model: type[ActionToken | ActionCounter], batch_size: int, dry: bool) -> int:
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        rows = model._default_manager.using(self.db_for_write())
        now = clock.now()
        expired = rows.filter(expires_at__lte=now)
        if dry:
            count: int = expired.count()
            return count
        total = 0
        while keys := list(expired.values_list("pk", flat=True)[:batch_size]):
            total += rows.filter(pk__in=keys, expires_at__lte=now).delete()[0]
        return total

    def incr(self, purpose: str, key: str, ttl: float) -> int:
        alias = self.db_for_write()
        return self._retrying(
            alias, lambda: self._count(alias, purpose, key, ttl), "count", retry_integrity=True
        )

    def _count(self, alias: str, purpose: str, key: str, ttl: float) -> int:
        # In a transaction: the UPDATE locks the row until commit, so the count read back is
        # this call's. A counter created concurrently since the UPDATE makes the INSERT fail:
        # the caller runs this again, in a new transaction, and counts on it.
        counters = ActionCounter._default_manager.using(alias)
        now = database_now(alias)
        live = counters.filter(key=key, expires_at__gt=now)
        if live.update(count=F("count") + 1):
            count: int = live.values_list("count", flat=True).get()
            return count
        counters.filter(key=key, expires_at__lte=now).delete()
        expires_at = now + datetime.timedelta(seconds=ttl)
        counters.create(key=key, purpose=purpose, count=1, expires_at=expires_at)
        return 1

    def admit(self, purpose: str, key: str, limit: int, window: float) -> bool:
        # A rolling window of ``limit`` slots, each a counter row: an event takes a slot that
        # is free (no row) or expired, and holds it for ``window`` seconds. Taking a slot is
        # one conditional UPDATE or one INSERT, so two callers never take the same one.
        alias = self.db_for_write()
        connection = connections[alias]
        owned = not compat.in_atomic_block(connection)
        counters = ActionCounter._default_manager.using(alias)
        now = database_now(alias)
        expires_at = now + datetime.timedelta(seconds=window)
        for slot in range(limit):
            slot_key = hashlib.sha256(f"window\0{key}\0{slot}".encode()).hexdigest()
            try:
                with transaction.atomic(using=alias):
                    expired = counters.filter(key=slot_key, expires_at__lte=now)
                    if not expired.update(count=1, expires_at=expires_at):
                        counters.create(
                            key=slot_key, purpose=purpose, count=1, expires_at=expires_at
                        )
                return True
            except IntegrityError:
                continue  # the slot is held (or was taken by a racing caller)
            except DatabaseError as exc:
                if _sqlite_locked(connection, exc) or (not owned and is_serialization_failure(exc)):
                    # The caller's transaction is rolled back (MariaDB) or keeps its snapshot
                    # (PostgreSQL): no other slot can be tried in it.
                    raise _busy(alias, "record a code") from exc
                if not is_serialization_failure(exc):
                    raise
                # Keel's own transaction under REPEATABLE READ: a racing caller took the slot
                # after this snapshot; try the next one.
        return False

    async def aadmit(self, purpose: str, key: str, limit: int, window: float) -> bool:
        return await sync_to_async(self.admit)(purpose, key, limit, window)

    def count_attempt(self, purpose: str, key: str, ttl: float) -> int:
        # A guess counted inside the caller's transaction would be forgotten when it rolls
        # back (ATOMIC_REQUESTS rolls back on errors): guessing would be unlimited. A durable
        # block refuses to nest in one, and lets the count commit at once. Racing guesses can
        # deadlock on the counter's row and its gap (InnoDB): the loser counts again.
        alias = self.db_for_write()
        try:
            return self._retrying(
                alias,
                lambda: self._count(alias, purpose, key, ttl),
                "count an attempt",
                durable=True,
                retry_integrity=True,
            )
        except RuntimeError as exc:  # the durable block's refusal to nest
            raise TokenError(
                f"A one-time code cannot be verified inside a transaction of "
                f"database {alias!r}: a rollback would forget the attempt. Verify "
                "it outside transaction.atomic() (for a view under ATOMIC_REQUESTS, "
                "decorate it with transaction.non_atomic_requests)."
            ) from exc

    async def acount_attempt(self, purpose: str, key: str, ttl: float) -> int:
        return await sync_to_async(self.count_attempt)(purpose, key, ttl)

    def count(self, purpose: str, key: str) -> int:
        alias = self.db_for_write()

        def read() -> int:
            counts = list(
                ActionCounter._default_manager.using(alias)
                .filter(key=key, expires_at__gt=database_now(alias))
                .values_list("count", flat=True)
            )
            return counts[0] if counts else 0

        return self._retrying(alias, read, "read a counter", atomic=False)

    async def acount(self, purpose: str, key: str) -> int:
        return await sync_to_async(self.count)(purpose, key)

    def reset(self, purpose: str, key: str) -> None:
        ActionCounter._default_manager.using(self.db_for_write()).filter(key=key).delete()

    async def aincr(self, purpose: str, key: str, ttl: float) -> int:
        return await sync_to_async(self.incr)(purpose, key, ttl)

    async def areset(self, purpose: str, key: str) -> None:
        await sync_to_async(self.reset)(purpose, key)

    async def aput(self, entry: NewToken) -> bool:
        return await sync_to_async(self.put)(entry)

    async def aget(self, purpose: str, digest: str) -> str | None:
        return await sync_to_async(self.get)(purpose, digest)

    async def apop(self, purpose: str, digest: str) -> str | None:
        return await sync_to_async(self.pop)(purpose, digest)

    async def adelete(self, purpose: str, digest: str) -> bool:
        return await sync_to_async(self.delete)(purpose, digest)

    async def arevoke_subject(self, purpose: str, subject: str) -> int:
        return await sync_to_async(self.revoke_subject)(purpose, subject)
