"""Load test: the example project's home page under gunicorn (4 sync workers) on loopback.

    .venv/bin/python bench/load.py [--seconds 5] [--rounds 3] [--clients 8]

The home page reads the site settings (maintenance middleware, header), the static content
(footer) and the page SEO (title). Two servers run side by side on one SQLite file: one with
``REDIS_URL`` (a throwaway ``redis-server`` of this script) and one without (site settings
shared through the project's database cache). Rounds alternate between them. Printed per
server: requests/s, p50/p95/p99 latency (median over rounds), SQL queries per request (the
``X-Keel-Queries`` header of ``bench/load_app.py``) and Redis commands per request (the Redis
server's ``INFO commandstats`` delta over the measured rounds).

Then the fault round: the Redis server is SIGKILLed while the load runs, and the share of
answers that were not ``200`` with the expected page is reported (expected: 0).
"""

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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import Report, interleave, parser, percentile
from tests.reliability.servers import Processes, free_port, wait_for

PYTHON = sys.executable
# gunicorn beside the interpreter running this script (its virtual environment's bin/).
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
PAGE = "/"
MARKER = b"<title>"


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT / "example", env=env, check=True,
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
    manage(env, "migrate", "--noinput")
    manage(env, "createcachetable")
    manage(env, "update_all_content")
    return env


def start_gunicorn(
    env: dict[str, str], port: int, log: Path, app: str = "bench.load_app:application"
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [GUNICORN, "--workers", "4", "--bind", f"127.0.0.1:{port}",
         "--chdir", str(ROOT / "example"), "--pythonpath", f"{ROOT / 'example'},{ROOT}",
         "--access-logfile", "-",
         "--log-level", "warning", app],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip

    def up() -> bool:
        return get(port)[0] == 200

    wait_for(up, 30, f"gunicorn on {port}")
    return process


def get(port: int) -> tuple[int, int, bool, float]:
    """(status, SQL queries, page complete, seconds) of one request on a new connection."""
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", PAGE)
        response = conn.getresponse()
        body = response.read()
        conn.close()
    except OSError:
        return 0, 0, False, time.perf_counter() - started
    queries = int(response.getheader("X-Keel-Queries") or -1)
    return response.status, queries, MARKER in body, time.perf_counter() - started


def client(port: int, seconds: float, out: Any) -> None:
    deadline = time.monotonic() + seconds
    latencies, queries, bad = [], 0, 0
    while time.monotonic() < deadline:
        status, q, complete, elapsed = get(port)
        latencies.append(elapsed)
        queries += max(q, 0)
        bad += status != 200 or not complete
    out.put((latencies, queries, bad))


def load(port: int, seconds: float, clients: int) -> dict[str, float]:
    queue: Any = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=client, args=(port, seconds, queue)) for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
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
    saved = time.monotonic()
    streak = 0
    expected = new_name.encode()
    while streak < 200:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", PAGE)
        body = conn.getresponse().read()
        conn.close()
        streak = streak + 1 if expected in body else 0
        if time.monotonic() - saved > 60:
            raise RuntimeError(f"{new_name!r} not served by every worker after 60 s")
    return time.monotonic() - saved


def redis_commands(probe: Any) -> int:
    stats = probe.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if not k.startswith("cmdstat_info"))


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--seconds", type=float, default=5.0)
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--clients", type=int, default=8)
    args = options.parse_args()
    report = Report("load.py")

    workdir = Path(tempfile.mkdtemp(prefix="keel-load-"))
    servers = Processes()
    gunicorns: list[subprocess.Popen[bytes]] = []
    try:
        redis_server = servers.start()
        env = example_env(workdir)
        with_redis = {**env, "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0"}
        ports = {"without Redis": free_port(), "with Redis": free_port()}
        envs = {"without Redis": env, "with Redis": with_redis}
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
                statistics.median(r[key] for r in results) for key in ("rps", "p50", "p95", "p99")
            ]
            rows.append(
                [
                    name,
                    *medians,
                    sum(r["queries"] for r in results) / requests,
                    f"{redis_calls / requests:.4f}" if name == "with Redis" else "-",
                    f"{sum(r['bad'] for r in results)} of {requests}",
                ]
            )
        report.table(
            [
                "server",
                "requests/s|{:,.0f}",
                *(f"p{q} ms|{{:.2f}}" for q in (50, 95, 99)),
                "SQL/request|{:.4f}",
                "Redis/request|{}",
                "failed|{}",
            ],
            rows,
            caption=f"gunicorn 4 sync workers, {args.clients} client processes, {args.rounds} "
            f"rounds of {args.seconds:g} s, GET {PAGE} of the example project",
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
        port = ports["with Redis"]
        killer = multiprocessing.Process(target=_kill_later, args=(redis_server.process.pid, 1.0))
        killer.start()
        outage = load(port, args.seconds, args.clients)
        killer.join()
        report.text(
            f"Redis SIGKILLed 1 s into a {args.seconds:g} s round: {outage['requests']:.0f} "
            f"requests, {outage['bad']:.0f} failed, {outage['rps']:,.0f} requests/s, "
            f"p99 {outage['p99']:.2f} ms, SQL/request {outage['queries'] / outage['requests']:.3f}"
        )
    finally:
        for process in gunicorns:
            process.send_signal(signal.SIGTERM)
        for process in gunicorns:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        servers.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report.emit(args.json)


def _kill_later(pid: int, delay: float) -> None:
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
