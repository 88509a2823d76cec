"""Run keel's test suite once per database (``sqlite``, ``postgres``, ``mysql``).

A database whose server does not answer is skipped loudly, or fails the run when ``CI=true``.
Extra arguments after ``--`` go to pytest. Exit status: 0 only if every run passed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

SERVERS = {
    "sqlite": None,
    "postgres": (os.environ.get("KEEL_TEST_PG_HOST", "127.0.0.1"), 5432),
    "mysql": (os.environ.get("KEEL_TEST_MYSQL_HOST", "127.0.0.1"), 3306),
}
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def reachable(address: tuple[str, int] | None) -> bool:
    if address is None:
        return True
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    if "--" in argv:
        index = argv.index("--")
        databases, pytest_args = argv[:index], argv[index + 1 :]
    else:
        databases, pytest_args = argv, []
    results: dict[str, str] = {}
    for db in databases or list(SERVERS):
        if db not in SERVERS:
            print(f"unknown database {db!r}; choose from {', '.join(SERVERS)}", file=sys.stderr)
            return 2
        if not reachable(SERVERS[db]):
            host, port = SERVERS[db]  # type: ignore[misc]
            results[db] = "MISSING" if IN_CI else "SKIPPED"
            print(f"\n*** {db}: no server at {host}:{port}: {results[db]} ***\n", flush=True)
            continue
        print(f"\n=== keel test suite on {db} ===", flush=True)
        env = {**os.environ, "KEEL_TEST_DB": db}
        code = subprocess.call([sys.executable, "-m", "pytest", *pytest_args], env=env)
        results[db] = "passed" if code == 0 else f"FAILED (exit {code})"
    print("\n=== summary ===")
    for db, outcome in results.items():
        print(f"{db:10} {outcome}")
    ok = all(outcome in {"passed", "SKIPPED"} for outcome in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
