"""Throwaway Redis topologies started from the system's ``redis-server`` binary.

Every server listens on a free loopback port, keeps its files in a temporary directory and
never persists anything. :class:`Processes` kills whatever it started, also when the test
fails; an ``atexit`` hook catches an interpreter that exits without running the fixtures'
finalizers.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
SERVICE_NAME = "keelmaster"
CREATE_FLAGS = ("--cluster-replicas", "0", "--cluster-yes")
CLUSTER_NODE = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")

_live: set[subprocess.Popen[bytes]] = set()


def binaries_problem() -> str | None:
    """Why topologies cannot be started here, or ``None``."""
    for path in (REDIS_SERVER, REDIS_CLI):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (Debian packages redis-server and redis-tools)"
    return None


def _kill_all_at_exit() -> None:
    for process in list(_live):
        with contextlib.suppress(ProcessLookupError):
            process.kill()


atexit.register(_kill_all_at_exit)


def terminate(process: subprocess.Popen[Any], timeout: float) -> None:
    """Ask ``process`` to exit (SIGTERM); kill it if it has not within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port(*, with_bus: bool = False) -> int:
    """A loopback port nobody listens on (and, ``with_bus``, port + 10000 too)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not with_bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as bus, contextlib.suppress(OSError):
                bus.bind(("127.0.0.1", port + 10000))
                return port
    raise RuntimeError("no free loopback port")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


@dataclass
class Server:
    """One ``redis-server`` (data node or Sentinel) that this test run started."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    sentinel: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **options: object) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=1, **options
        )

    def answers(self) -> bool:
        """The server accepts connections and commands (or asks for a password)."""
        try:
            # RESP2: also answered by a server whose HELLO is renamed away (as before Redis 6).
            return bool(self.client(protocol=2).ping())
        except redis.AuthenticationError:
            return True

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save, connections cut as by a crash."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        _live.discard(self.process)

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Processes:
    """Starts servers in one temporary directory; :meth:`stop` kills them all."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="keel-redis-")))
    servers: list[Server] = field(default_factory=list)

    def start(
        self,
        *args: str,
        port: int | None = None,
        sentinel_conf: str | None = None,
        data_from: Path | None = None,
    ) -> Server:
        port = port or free_port()
        directory = self.root / str(port)
        if data_from is not None:
            shutil.copytree(data_from, directory)
        else:
            directory.mkdir()
        command = [REDIS_SERVER]
        if sentinel_conf is not None:
            conf = directory / "sentinel.conf"
            conf.write_text(sentinel_conf)
            command += [str(conf), "--sentinel"]
        command += [
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(directory),
            "--logfile", str(directory / "server.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        if sentinel_conf is None:
            command += ["--save", ""]
            if "--appendonly" not in args:
                command += ["--appendonly", "no"]
        command += list(args)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _live.add(process)
        server = Server(port, directory, process, sentinel=sentinel_conf is not None)
        self.servers.append(server)
        try:
            wait_for(server.answers, 10, f"redis-server on {port}")
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{server.log()}") from exc
        return server

    def restart(self, server: Server, *args: str, keep_files: bool = False) -> Server:
        """Start a new server on the port of a killed one: empty, or, ``keep_files``, from
        the files the killed one left (its append-only file)."""
        server.kill()
        self.servers.remove(server)
        if keep_files:
            kept = server.directory.with_name(f"{server.port}-previous")
            server.directory.rename(kept)
            restarted = self.start(*args, port=server.port, data_from=kept)
            shutil.rmtree(kept)
            return restarted
        shutil.rmtree(server.directory)
        return self.start(*args, port=server.port)

    def stop(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.kill()
        shutil.rmtree(self.root, ignore_errors=True)


# -- topologies --------------------------------------------------------------------------------


@dataclass
class Cluster:
    masters: list[Server]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(s.address for s in self.masters)


def start_cluster(processes: Processes, masters: int = 3) -> Cluster:
    """``masters`` cluster nodes, the 16384 slots split between them, no replicas."""
    servers = [
        processes.start(
            *CLUSTER_NODE, "--cluster-node-timeout", "2000", port=free_port(with_bus=True)
        )
        for _ in range(masters)
    ]
    subprocess.run(
        [REDIS_CLI, "--cluster", "create", *(s.address for s in servers), *CREATE_FLAGS],
        check=True,
        capture_output=True,
        timeout=30,
    )

    def ready() -> bool:
        for server in servers:
            info = server.client().cluster("INFO")
            if info.get("cluster_state") != "ok" or int(info["cluster_known_nodes"]) != masters:
                return False
        return True

    wait_for(ready, 20, "cluster_state:ok on every node")
    return Cluster(servers)


@dataclass
class SentinelGroup:
    master: Server
    replica: Server
    sentinels: list[Server]

    def url(self, db: int = 9) -> str:
        hosts = ",".join(s.address for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE_NAME}/{db}"

    def master_port(self) -> int:
        _host, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(SERVICE_NAME)
        return int(port)


def start_sentinel_group(processes: Processes, sentinels: int = 3) -> SentinelGroup:
    """One master, one replica of it, and ``sentinels`` Sentinels watching them (quorum 2)."""
    master = processes.start()
    replica = processes.start("--replicaof", "127.0.0.1", str(master.port))
    conf = (
        f"sentinel monitor {SERVICE_NAME} 127.0.0.1 {master.port} 2\n"
        f"sentinel down-after-milliseconds {SERVICE_NAME} 1000\n"
        f"sentinel failover-timeout {SERVICE_NAME} 5000\n"
        f"sentinel parallel-syncs {SERVICE_NAME} 1\n"
    )
    watchers = [processes.start(sentinel_conf=conf) for _ in range(sentinels)]

    def replica_synced() -> bool:
        info = replica.client().info("replication")
        return bool(info.get("master_link_status") == "up")

    def sentinels_see_everything() -> bool:
        for sentinel in watchers:
            client = sentinel.client()
            if not client.sentinel_slaves(SERVICE_NAME):
                return False
            if len(client.sentinel_sentinels(SERVICE_NAME)) < sentinels - 1:
                return False
        return True

    wait_for(replica_synced, 20, "the replica's link to its master")
    wait_for(sentinels_see_everything, 30, "every Sentinel to know the replica and the others")
    return SentinelGroup(master, replica, watchers)


@contextlib.contextmanager
def processes() -> Iterator[Processes]:
    started = Processes()
    try:
        yield started
    finally:
        started.stop()
