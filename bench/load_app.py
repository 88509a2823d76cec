"""WSGI entry point of ``bench/load.py``: the example project, counting its SQL queries.

Each response carries ``X-Keel-Queries``, the number of SQL queries the request ran (through
Django's public ``connection.execute_wrapper``), so the load generator can prove a warm page
runs none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection

from config.wsgi import application as example_application

StartResponse = Callable[..., Any]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    queries = 0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    def counted_start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        return start_response(status, [*headers, ("X-Keel-Queries", str(queries))], *exc)

    with connection.execute_wrapper(count):
        body = b"".join(example_application(environ, counted_start))
    return [body]
