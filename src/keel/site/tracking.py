"""Redis server-assisted client-side caching: tell a process, without asking Redis, whether a
copy it keeps of a key under keel's prefix is still the one in the store.

One ``InvalidationListener`` per process (``get_listener``) owns a daemon thread and
one dedicated connection per Redis master, on which it runs, in RESP3::

    HELLO 3
    CLIENT TRACKING ON BCAST PREFIX <KEY_PREFIX>:site:
    PING                                  (every heartbeat / 4)

Redis then pushes ``invalidate`` messages naming every key under the prefix that any client
modifies, expires or evicts, and a null list on ``FLUSHDB``/``FLUSHALL``. A reader does::

    stamp = listener.stamp()        # before reading the store; None: not live, no local copy
    value = read_the_store(key)
    ...
    if stamp is not None and listener.is_current(key, stamp):
        use the local copy           # no I/O at all

``is_current`` is True only while tracking has stayed live since the stamp: any connection
failure, reconnect, or a heartbeat left unanswered for ``SITE_SETTINGS_TRACKING_HEARTBEAT``
seconds makes every stamp taken before it stale at once. The listener speaks the wire protocol
itself (a few lines) rather than through redis-py's push-message internals, which change
between the redis-py versions keel supports.

Topologies: one server; Sentinel (the master a Sentinel names, checked with ``ROLE``; the
listener asks that Sentinel again at every heartbeat and reconnects when it names another);
Cluster (one connection per master found with ``CLUSTER SLOTS``, re-read at every heartbeat:
when the set of masters changes, or any master's connection fails, the listener is not live
until it has reconnected to all of them). TLS (``rediss://``) is not supported yet: the
listener stays not live and ``keel.W005`` says why.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import math
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import setting_changed

from keel.conf import keel_settings
from keel.exceptions import KeelError
from keel.redis import RedisTopology, is_configured, make_key, redis_errors, topology
from keel.site.verdicts import invalidate as invalidate_verdicts

logger = logging.getLogger("keel.site.tracking")

#: More distinct invalidated keys than this and the listener forgets them all by treating the
#: next stamp as a new start (every older stamp becomes stale): memory stays bounded.
MAX_REMEMBERED_KEYS = 10_000
#: Seconds between two attempts on a server that refused tracking.
REFUSED_RETRY = 30.0
_DOWN = math.inf
#: Stamps one listener may hand out; each listener of the process starts at the next multiple.
STAMPS_PER_LISTENER = 2**62
_generations = itertools.count(1)
_monotonic = time.monotonic  # one global lookup instead of two on the readers' path


class TrackingRefused(KeelError):
    """The server (or a proxy in front of it) cannot do RESP3 client tracking."""


class _LinkError(Exception):
    """A tracking connection failed; the listener reconnects."""


class _Incomplete(Exception):
    pass


class _Push(list[Any]):
    """A RESP3 out-of-band push message (``>``)."""


@dataclass(frozen=True)
class _ErrorReply:
    message: str


def _failures() -> tuple[type[BaseException], ...]:
    """What a lost, refused-by-network or misbehaving connection raises."""
    return (OSError, _LinkError, *redis_errors())


def tracked_prefix() -> str:
    """The key prefix the listener tracks: ``<KEY_PREFIX>:site:``, where every key of the site
    caches lives. Tokens and other keys are left out: each write of one would be pushed to
    every process."""
    return make_key("site", "")


# -- RESP3 on a socket -------------------------------------------------------------------------


def _encode(*args: str | bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _parse(buffer: bytes | bytearray, pos: int) -> tuple[Any, int]:
    """One RESP2/RESP3 value of ``buffer`` at ``pos``, and the position after it."""
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = buffer[pos : pos + 1], bytes(buffer[pos + 1 : end]), end + 2
    if kind == b"+":
        return line.decode(errors="replace"), pos
    if kind == b"-":
        return _ErrorReply(line.decode(errors="replace")), pos
    if kind in (b":", b"("):
        return int(line), pos
    if kind == b",":
        return float(line), pos
    if kind == b"#":
        return line == b"t", pos
    if kind == b"_":
        return None, pos
    if kind in (b"$", b"!", b"="):
        size = int(line)
        if size < 0:
            return None, pos
        if len(buffer) < pos + size + 2:
            raise _Incomplete
        data = bytes(buffer[pos : pos + size])
        if kind == b"!":
            return _ErrorReply(data.decode(errors="replace")), pos + size + 2
        return data, pos + size + 2
    if kind in (b"*", b"~", b">", b"%", b"|"):
        count = int(line)
        if count < 0:
            return None, pos
        if kind in (b"%", b"|"):
            count *= 2
        items = []
        for _ in range(count):
            item, pos = _parse(buffer, pos)
            items.append(item)
        if kind == b">":
            return _Push(items), pos
        if kind == b"%":
            return dict(zip(items[::2], items[1::2], strict=True)), pos
        if kind == b"|":  # attributes annotate the value that follows: skip them
            return _parse(buffer, pos)
        return items, pos
    raise _LinkError(f"unexpected RESP type byte {kind!r}")


@dataclass
class _Link:
    """One tracking connection to one master, or (``watcher``) to a Sentinel."""

    address: tuple[str, int] | str
    sock: socket.socket
    watcher: bool = False
    buffer: bytearray = field(default_factory=bytearray)
    #: (what was asked, monotonic time it was sent) of every command not answered yet.
    waiting: deque[tuple[str, float]] = field(default_factory=deque)
    #: When the newest answered PING was sent: everything Redis pushed before it is known.
    confirmed: float = -math.inf

    def send(self, kind: str, *args: str) -> None:
        self.sock.sendall(_encode(*args))
        self.waiting.append((kind, time.monotonic()))

    def feed(self) -> list[Any]:
        """Read what the socket holds; return every complete message."""
        data = self.sock.recv(65536)
        if not data:
            raise _LinkError(f"{self.address}: the server closed the tracking connection")
        self.buffer += data
        messages, pos = [], 0
        while pos < len(self.buffer):
            try:
                message, pos_after = _parse(self.buffer, pos)
            except _Incomplete:
                break
            messages.append(message)
            pos = pos_after
        del self.buffer[:pos]
        return messages

    def call(self, *args: str) -> Any:
        """Send one command and wait for its reply (during the handshake only)."""
        self.send("call", *args)
        while True:
            for message in self.feed():
                if isinstance(message, _Push):
                    continue  # going live makes every stamp taken before stale anyway
                self.waiting.popleft()
                return message

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# -- connecting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Credentials:
    username: str | None
    password: str | None
    connect_timeout: float
    timeout: float

    @classmethod
    def of(cls, options: dict[str, Any], fallback: dict[str, Any]) -> _Credentials:
        def seconds(name: str) -> float:
            return float(options.get(name) or fallback.get(name) or 1.0)

        return cls(
            options.get("username"),
            options.get("password"),
            seconds("socket_connect_timeout"),
            seconds("socket_timeout"),
        )


@dataclass(frozen=True)
class _Endpoints:
    kind: str
    #: One server: its address; Cluster: the startup nodes; Sentinel: the Sentinels. An
    #: address is a (host, port) pair or a unix socket path.
    nodes: tuple[tuple[str, int] | str, ...]
    data: _Credentials
    sentinel: _Credentials
    service_name: str | None = None


def _endpoints(described: RedisTopology) -> _Endpoints:
    """Where to connect, from the parsed ``KEEL["REDIS_URL"]`` (no I/O)."""
    options = dict(described.connection)
    if described.url.startswith("rediss") or options.get("ssl"):
        raise TrackingRefused("the listener does not speak TLS (rediss://) yet")
    nodes: tuple[tuple[str, int] | str, ...] = described.nodes
    if described.kind == "single":
        # redis-py's own URL parser, so that the listener reaches what the client reaches.
        parsed = importlib.import_module("redis.connection").parse_url(described.url)
        options.update((k, parsed[k]) for k in ("username", "password") if k in parsed)
        path = parsed.get("path")
        nodes = (path,) if path else ((parsed.get("host", "localhost"), int(parsed["port"])),)
    return _Endpoints(
        kind=described.kind,
        nodes=nodes,
        data=_Credentials.of(options, options),
        sentinel=_Credentials.of(described.sentinel_kwargs or {}, options),
        service_name=described.service_name,
    )


def _open(address: tuple[str, int] | str, credentials: _Credentials) -> _Link:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(credentials.connect_timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
    else:
        sock = socket.create_connection(address, timeout=credentials.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(credentials.timeout)
    link = _Link(address, sock)
    try:
        hello = ["HELLO", "3"]
        if credentials.password is not None:
            hello += ["AUTH", credentials.username or "default", credentials.password]
        reply = link.call(*hello, "SETNAME", "keel-tracking")
        if isinstance(reply, _ErrorReply):
            if "unknown command" in reply.message.lower() or "noproto" in reply.message.lower():
                raise TrackingRefused(
                    f"{address}: the server does not speak RESP3 (Redis 6 or later is "
                    f"needed): {reply.message}"
                )
            raise _LinkError(f"{address}: HELLO failed: {reply.message}")
    except BaseException:
        link.close()
        raise
    return link


def _first(
    addresses: Iterable[tuple[str, int] | str], credentials: _Credentials, *command: str
) -> tuple[_Link, Any]:
    """A connection to the first of ``addresses`` that answers ``command``, and the answer."""
    last: BaseException | str | None = None
    for address in addresses:
        try:
            link = _open(address, credentials)
        except _failures() as exc:
            last = exc
            continue
        try:
            reply = link.call(*command)
        except _failures() as exc:
            link.close()
            last = exc
            continue
        if not isinstance(reply, _ErrorReply):
            return link, reply
        link.close()
        last = reply.message
    raise _LinkError(f"no node answered {' '.join(command)}: {last}")


def _track(link: _Link, prefix: str) -> None:
    reply = link.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix)
    if isinstance(reply, _ErrorReply):
        message = f"{link.address}: the server refused CLIENT TRACKING: {reply.message}"
        raise TrackingRefused(message)


def _check_role(link: _Link, reply: Any) -> None:
    role = reply[0] if isinstance(reply, list) and reply else reply
    if role != b"master":
        raise _LinkError(f"{link.address} is not a master ({role!r})")


def _masters(reply: Any) -> frozenset[tuple[str, int]]:
    """The masters named by a ``CLUSTER SLOTS`` reply."""
    if isinstance(reply, _ErrorReply) or not isinstance(reply, list):
        raise _LinkError(f"CLUSTER SLOTS failed: {reply}")
    return frozenset((row[2][0].decode(), int(row[2][1])) for row in reply)


def _named_master(reply: Any) -> tuple[str, int]:
    """The master named by a ``SENTINEL GET-MASTER-ADDR-BY-NAME`` reply."""
    if not isinstance(reply, list) or len(reply) != 2:
        raise _LinkError(f"the Sentinel names no master: {reply}")
    return reply[0].decode(), int(reply[1])


def _connect(prefix: str, described: RedisTopology) -> tuple[list[_Link], _Endpoints]:
    """Open, authenticate and start tracking one connection per master (plus, with Sentinel,
    one to a Sentinel that the listener asks for the master at every heartbeat)."""
    endpoints = _endpoints(described)
    addresses: Iterable[tuple[str, int] | str] = endpoints.nodes
    links: list[_Link] = []
    try:
        if endpoints.kind == "cluster":
            seed, reply = _first(addresses, endpoints.data, "CLUSTER", "SLOTS")
            seed.close()
            addresses = sorted(_masters(reply))
        elif endpoints.kind == "sentinel":
            watcher, reply = _first(
                addresses,
                endpoints.sentinel,
                "SENTINEL",
                "GET-MASTER-ADDR-BY-NAME",
                str(endpoints.service_name),
            )
            watcher.watcher = True
            links.append(watcher)
            addresses = (_named_master(reply),)
        for address in addresses:
            link = _open(address, endpoints.data)
            links.append(link)
            if endpoints.kind != "single":
                _check_role(link, link.call("ROLE"))
            _track(link, prefix)
        for link in links:
            started = time.monotonic()
            link.call("PING")
            link.confirmed = started
    except BaseException:
        for link in links:
            link.close()
        raise
    return links, endpoints


def probe() -> str | None:
    """Why the configured Redis refuses client tracking, or ``None`` (also when unreachable).

    Opens and closes one tracking connection per master; for ``keel.W005``.
    """
    try:
        links, _endpoints_used = _connect(tracked_prefix(), topology())
    except TrackingRefused as exc:
        return str(exc)
    except _failures():
        return None
    for link in links:
        link.close()
    return None


# -- the listener ------------------------------------------------------------------------------


class InvalidationListener:
    """Knows, without I/O, whether a key under ``tracked_prefix`` changed since a stamp.

    Thread-safe: the listener thread alone writes its state; ``stamp`` and
    ``is_current`` read it without locks (each read is one attribute or dict lookup, and
    the writer orders its updates so that no interleaving makes a stale stamp look current).
    """

    def __init__(self, prefix: str, heartbeat: float, described: RedisTopology) -> None:
        self.prefix = prefix
        # Parsed once, in the caller's thread: the listener thread never reads settings.
        self._described = described
        #: Seconds: an unanswered heartbeat older than this makes the listener not live.
        self.heartbeat = heartbeat
        #: Why the server refused tracking at the last attempt, or ``None``.
        self.refused: str | None = None
        # Each listener counts from its own range: a stamp of an earlier listener of this
        # process is below every floor of this one, so it is never current here.
        self._seq = next(_generations) * STAMPS_PER_LISTENER
        self._floor: float = _DOWN  # stamps below it are stale; _DOWN while not live
        self._invalidated: dict[str, int] = {}
        self._links: list[_Link] = []
        self._confirmed = -math.inf  # the oldest `confirmed` of the links
        self._stopped = threading.Event()
        self._state_lock = threading.Lock()  # orders going live against close()
        self._up_event = threading.Event()
        # close() writes a byte here to wake the thread from its select().
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="keel-tracking", daemon=True)

    # readers -----------------------------------------------------------------------------

    def _fresh(self) -> bool:
        return time.monotonic() - self._confirmed <= self.heartbeat

    @property
    def live(self) -> bool:
        """Tracking is on, on every master, and answered a heartbeat in time."""
        return self._floor != _DOWN and self._fresh()

    def stamp(self) -> int | None:
        """An opaque stamp to take BEFORE reading the store; ``None`` when not live."""
        seq = self._seq
        if self._floor > seq or not self._fresh():
            return None
        return seq

    def is_current(self, key: str, stamp: int) -> bool:
        """True iff tracking stayed live since ``stamp`` and no invalidation of ``key``, flush
        or reconnect arrived since. Keys outside the tracked prefix are never current. No I/O."""
        # Order matters: the dict first, then the floor. The listener raises the floor before
        # it forgets keys, so a key forgotten in between is caught by the floor.
        return (
            self._invalidated.get(key, 0) <= stamp
            and self._floor <= stamp
            and _monotonic() - self._confirmed <= self.heartbeat
            and key.startswith(self.prefix)
        )

    def current_until(self, key: str, stamp: int) -> float:
        """The monotonic time until which ``is_current(key, stamp)`` stays true unless the
        listener's state changes (every change calls
        [`keel.site.verdicts.invalidate`][keel.site.verdicts.invalidate]): the heartbeat deadline;
        ``-inf`` when it is not current now."""
        confirmed = self._confirmed  # read first: a later answer only moves it forward
        if self.is_current(key, stamp):
            return confirmed + self.heartbeat
        return -math.inf

    def wait_live(self, timeout: float) -> bool:
        """Block until the listener is live (for tests and warm-up); return whether it is."""
        deadline = time.monotonic() + timeout
        while not self.live:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._up_event.wait(min(remaining, 0.01))
        return True

    # writer (the listener thread) --------------------------------------------------------------

    def _forget_all(self, live: bool) -> None:
        seq = self._seq + 1
        self._floor = seq if live and not self._stopped.is_set() else _DOWN
        self._invalidated.clear()
        self._seq = seq
        invalidate_verdicts()

    def _invalidate(self, keys: Iterable[bytes]) -> None:
        seq = self._seq + 1
        for raw in keys:
            self._invalidated[raw.decode(errors="surrogateescape")] = seq
        self._seq = seq
        invalidate_verdicts()
        if len(self._invalidated) > MAX_REMEMBERED_KEYS:
            self._forget_all(live=True)

    def _up(self, links: list[_Link]) -> bool:
        with self._state_lock:
            if self._stopped.is_set():
                return False
            self._links = links
            self._confirmed = min(link.confirmed for link in links)
            self.refused = None
            self._forget_all(live=True)
            self._up_event.set()
            return True

    def _down(self) -> None:
        self._up_event.clear()
        self._forget_all(live=False)
        links, self._links = self._links, []
        for link in links:
            link.close()

    def _handle(self, link: _Link, message: Any) -> None:
        if isinstance(message, _Push):
            if message and message[0] == b"invalidate":
                keys = message[1] if len(message) > 1 else None
                if keys is None:  # FLUSHDB / FLUSHALL
                    self._forget_all(live=True)
                else:
                    self._invalidate(keys)
            return
        if not link.waiting:
            raise _LinkError(f"{link.address}: a reply nobody asked for: {message!r}")
        kind, sent = link.waiting.popleft()
        if isinstance(message, _ErrorReply):
            raise _LinkError(f"{link.address}: {kind} failed: {message.message}")
        if kind == "ping":
            if time.monotonic() - self._confirmed > self.heartbeat:
                # Readers saw the listener not live since the last answer: their stamps from
                # before must stay stale ("live continuously since the stamp").
                self._forget_all(live=True)
            link.confirmed = sent
            self._confirmed = min(each.confirmed for each in self._links)
        elif kind == "slots":
            masters = _masters(message)
            if masters != {each.address for each in self._links}:
                raise _LinkError(f"the cluster's masters changed to {sorted(masters)}")
        elif kind == "master":
            named = _named_master(message)
            if named not in {each.address for each in self._links if not each.watcher}:
                raise _LinkError(f"the Sentinels now name {named} as the master")

    def _serve(self, links: list[_Link], endpoints: _Endpoints) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_reader, selectors.EVENT_READ, None)
        for link in links:
            selector.register(link.sock, selectors.EVENT_READ, link)
        next_beat = time.monotonic()
        try:
            while not self._stopped.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    for link in links:
                        if link.waiting and now - link.waiting[0][1] > self.heartbeat:
                            raise _LinkError(f"{link.address}: no reply to the heartbeat")
                        link.send("ping", "PING")
                    # Topology changes that cut no connection: a resharding gives slots to a
                    # new master; after a Sentinel failover the old master keeps its clients
                    # (and takes writes) until the Sentinels reconfigure it, seconds later.
                    if endpoints.kind == "cluster":
                        links[0].send("slots", "CLUSTER", "SLOTS")
                    elif endpoints.kind == "sentinel":
                        service = str(endpoints.service_name)
                        links[0].send("master", "SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
                    next_beat = now + self.heartbeat / 4
                for selected, _events in selector.select(max(0.0, next_beat - now)):
                    link = selected.data
                    if link is None:
                        return  # woken by close()
                    for message in link.feed():
                        self._handle(link, message)
        finally:
            selector.close()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._down()
            self._wake_reader.close()
            self._wake_writer.close()

    def _loop(self) -> None:
        pause = min(self.heartbeat / 4, 0.1)
        while not self._stopped.is_set():
            try:
                links, endpoints = _connect(self.prefix, self._described)
            except TrackingRefused as exc:
                if self.refused != str(exc):
                    logger.warning("Redis client tracking unavailable (keel.W005): %s", exc)
                self.refused = str(exc)
                self._stopped.wait(REFUSED_RETRY)
                continue
            except _failures() as exc:
                logger.debug("tracking connection failed: %s", exc)
                self._stopped.wait(pause)
                continue
            if not self._up(links):
                for link in links:
                    link.close()
                return
            try:
                self._serve(links, endpoints)
            except _failures() as exc:
                logger.info("Redis client tracking interrupted: %s", exc)
            finally:
                self._down()
            self._stopped.wait(pause)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Make the listener not live for good, at once, and wait (a second at most) for its
        thread to close the connections and end."""
        with self._state_lock:
            self._stopped.set()
            self._up_event.clear()
            self._floor = _DOWN
        invalidate_verdicts()
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


_lock = threading.Lock()
_listener: InvalidationListener | None = None
#: Tracking is off (no ``REDIS_URL``, or ``SITE_SETTINGS_TRACKING`` false) until the next
#: ``reset_listener``, which a change of ``KEEL`` calls.
_off = False


def get_listener() -> InvalidationListener | None:
    """The process's listener, started on first call; ``None`` without ``KEEL["REDIS_URL"]``
    or with ``KEEL["SITE_SETTINGS_TRACKING"] = False``. A forked child starts its own."""
    global _listener, _off
    listener = _listener
    if listener is not None or _off:
        return listener  # every read asks: no settings read here
    with _lock:
        if _listener is None and not _off:
            if not is_configured() or not keel_settings.SITE_SETTINGS_TRACKING:
                _off = True  # until reset_listener(), which a change of KEEL calls
                return None
            _listener = InvalidationListener(
                tracked_prefix(),
                float(keel_settings.SITE_SETTINGS_TRACKING_HEARTBEAT),
                topology(),
            )
            _listener.start()
        return _listener


def reset_listener() -> None:
    """Stop the process's listener; the next ``get_listener`` starts a new one."""
    global _listener, _off
    with _lock:
        listener, _listener = _listener, None
        _off = False
    if listener is not None:
        listener.close()


def _forget_in_child() -> None:
    # The parent's thread does not exist in the child: its state would never change again.
    # Closing the child's copies of the sockets leaves the parent's connections up, and
    # keeps Redis from pushing into a socket that nobody would ever read.
    global _listener, _lock
    if _listener is not None:
        for link in _listener._links:
            link.close()
        _listener._wake_reader.close()
        _listener._wake_writer.close()
    _listener = None
    _lock = threading.Lock()


def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "KEEL":
        reset_listener()


os.register_at_fork(after_in_child=_forget_in_child)
setting_changed.connect(_reset_on_setting_changed, dispatch_uid="keel.site.tracking")
