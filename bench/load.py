"""Load test: the example project's home page under gunicorn, with and without Redis; then
the time a change takes to reach every worker, and a round in which Redis is SIGKILLed."""

from __future__ import annotations

import http.client
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import ROOT, Report, interleave, options, percentile

sys.path.insert(0, str(ROOT))
from tests.reliability.servers import Processes, free_port, wait_for

# gunicorn beside the interpreter running this script (its virtual environment's bin/).
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT / "example", env=env, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def example_env(workdir: Path) -> dict[str, str]:
    """The environment of the example project on a new SQLite file in ``workdir``, migrated
    and filled with the project's content."""
    env = {
        **os.environ,
        "EXAMPLE_DB": str(workdir / "db.sqlite3"),
        "DJANGO_DEBUG": "0",
        "EXAMPLE_ADMIN_PASSWORD_FILE": str(workdir / "admin-password"),
        "PYTHONPATH": f"{ROOT / 'example'}:{ROOT}",
    }
    for command in (("migrate", "--noinput"), ("createcachetable",), ("update_all_content",)):
        manage(env, *command)
    return env


def start_gunicorn(
    env: dict[str, str], port: int, log: Path, app: str = "bench.load_app:application"
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [GUNICORN, "--workers", "4", "--bind", f"127.0.0.1:{port}",
         "--chdir", str(ROOT / "example"), "--pythonpath", f"{ROOT / 'example'},{ROOT}",
         "--access-logfile", "-", "--log-level", "warning", app],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for(lambda: get(port)[0] == 200, 30, f"gunicorn on {port}")
    return process


def get(port: int) -> tuple[int, bytes, Any, float]:
    """(status, body, response, seconds) of one request of the home page on a new connection;
    status 0 when the connection failed."""
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
        conn.close()
    except OSError:
        return 0, b"", None, time.perf_counter() - started
    return response.status, body, response, time.perf_counter() - started


def in_processes(
    target: Callable[..., Any], clients: int, *args: Any, during: Callable[[], Any] = list
) -> list[Any]:
    """What each of ``clients`` processes running ``target(*args, queue)`` put in the queue,
    ``during`` run meanwhile in this process."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=target, args=(*args, queue)) for _ in range(clients)]
    for worker in workers:
        worker.start()
    during()
    results = [queue.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return results


def client(port: int, seconds: float, out: Any) -> None:
    deadline = time.monotonic() + seconds
    latencies, queries, bad = [], 0, 0
    while time.monotonic() < deadline:
        status, body, response, elapsed = get(port)
        latencies.append(elapsed)
        queries += max(int(response.getheader("X-Keel-Queries") or -1) if response else 0, 0)
        bad += status != 200 or b"<title>" not in body
    out.put((latencies, queries, bad))


def load(port: int, seconds: float, clients: int) -> dict[str, float]:
    results = in_processes(client, clients, port, seconds)
    latencies = [x for r in results for x in r[0]]
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        **{f"p{q}": percentile(latencies, q / 100) * 1000 for q in (50, 95, 99)},
        "queries": sum(r[1] for r in results),
        "bad": sum(r[2] for r in results),
    }


def propagation(env: dict[str, str], port: int, new_name: str) -> float:
    """Seconds from the save of a new site name until 200 pages in a row show it."""
    code = (
        "from system.models import SiteSettings; s = SiteSettings.load(); "
        f"s.site_name = {new_name!r}; s.save()"
    )
    manage(env, "shell", "-c", code)
    saved, streak = time.monotonic(), 0
    while streak < 200:
        streak = streak + 1 if new_name.encode() in get(port)[1] else 0
        if time.monotonic() - saved > 60:
            raise RuntimeError(f"{new_name!r} not served by every worker after 60 s")
    return time.monotonic() - saved


def redis_commands(probe: Any) -> int:
    stats = probe.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if not k.startswith("cmdstat_info"))


def main() -> None:
    args = options(__doc__, seconds=5.0, rounds=3, clients=8)
    report = Report("load.py")
    workdir = Path(tempfile.mkdtemp(prefix="keel-load-"))
    servers = Processes()
    gunicorns: list[subprocess.Popen[bytes]] = []
    try:
        redis_server = servers.start()
        env = example_env(workdir)
        envs = {"without Redis": env}
        envs["with Redis"] = {**env, "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0"}
        ports = {name: free_port() for name in envs}
        for name, port in ports.items():
            gunicorns.append(start_gunicorn(envs[name], port, workdir / f"{port}.log"))
            load(port, 1.0, args.clients)  # warm: every worker has its copies
        probe = redis_server.client()
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in ports}
        redis_calls = 0

        def server(name: str) -> None:
            nonlocal redis_calls
            before = redis_commands(probe)
            rounds[name].append(load(ports[name], args.seconds, args.clients))
            if name == "with Redis":
                redis_calls += redis_commands(probe) - before

        interleave({name: lambda name=name: server(name) for name in ports}, args.rounds)
        rows = []
        for name, results in rounds.items():
            requests = sum(r["requests"] for r in results)
            medians = [
                statistics.median(r[k] for r in results) for k in ("rps", "p50", "p95", "p99")
            ]
            calls = f"{redis_calls / requests:.4f}" if name == "with Redis" else "-"
            queries = sum(r["queries"] for r in results) / requests
            failed = f"{sum(r['bad'] for r in results)} of {requests}"
            rows.append([name, *medians, queries, calls, failed])
        report.table(
            "server; requests/s|{:,.0f}; p50 ms|{:.2f}; p95 ms|{:.2f}; p99 ms|{:.2f}; "
            "SQL/request|{:.4f}; Redis/request|{}; failed|{}",
            rows,
            caption=f"gunicorn 4 sync workers, {args.clients} client processes, {args.rounds} "
            f"rounds of {args.seconds:g} s, GET / of the example project",
        )
        # Propagation: a change saved by another process reaches every worker of both
        # servers within SITE_SETTINGS_LOCAL_TTL (5 s by default).
        for name, port in ports.items():
            waited = propagation(envs[name], port, f"Renamed {name}")
            report.text(
                f"{name}: a site settings change saved by another process was served by "
                f"every worker after {waited:.2f} s (200 pages in a row)"
            )
        # Fault round: SIGKILL Redis a second into the load; pages must keep coming.
        killer = threading.Timer(1.0, os.kill, (redis_server.process.pid, signal.SIGKILL))
        killer.start()
        outage = load(ports["with Redis"], args.seconds, args.clients)
        killer.join()
        report.text(
            f"Redis SIGKILLed 1 s into a {args.seconds:g} s round: {outage['requests']:.0f} "
            f"requests, {outage['bad']:.0f} failed, {outage['rps']:,.0f} requests/s, "
            f"p99 {outage['p99']:.2f} ms, SQL/request {outage['queries'] / outage['requests']:.3f}"
        )
    finally:
        stop(gunicorns)
        servers.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report.emit(args.json)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
