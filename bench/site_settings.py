"""Site settings: the cost of one read (get the settings, read ten fields) per contender.

    .venv/bin/python bench/site_settings.py [--reads 2000] [--repeats 7]

Contenders, each timed over ``--reads`` reads per round, rounds interleaved (the order rotates
every repeat) so that drift in the machine's load hits all alike. Every contender reads the
same ten fields of the same values from a model of the same ten fields:

- ``keel, Redis client tracking``: ``load()`` while the process's tracking listener says the
  copy is current (a private copy of the process copy; no network, checked by counting);
- ``keel, local window``: ``load()`` inside ``SITE_SETTINGS_LOCAL_TTL``, tracking off (a
  private copy of the process copy; no network);
- ``keel, local window, cache_per_language=True``: the same for a singleton cached per
  language, as one with translated fields is (a lookup of the active language per read);
- ``keel, request memo``: ``load()`` again within one request (``request_scope``);
- ``keel, Redis``: local window and tracking off, so every read is one ``EVALSHA`` (the
  store's version; the document only when the copy is out of date);
- ``keel, no Redis (LocMem cache)``: local window off, the Django cache as the shared store;
- ``plain objects.get(pk=1)``: one query per read on PostgreSQL;
- ``django-solo, Redis cache``: ``get_solo()`` with ``SOLO_CACHE`` on Django's ``RedisCache``
  (one ``GET`` of a pickled instance);
- ``django-constance, RedisBackend``: ``config.X`` for each field (one ``GET`` per field).

Round trips per read are counted for keel with a redis-py connection class that counts
commands, and for the database contenders with ``CaptureQueriesContext``.
Needs Redis (``--redis-url``) and PostgreSQL (``--pg-host``, user postgres, trust auth).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import redis

from cases import SITE_VALUES as VALUES
from cases import make_model, site_fields
from harness import (
    Report,
    clean_redis,
    database,
    drop_postgres,
    interleave,
    key_prefix,
    parser,
    setup_django,
    timed,
    versions,
)

DB_NAME = "keel_bench_site"
FIELDS = list(VALUES)


class CountingConnection(redis.Connection):
    commands: ClassVar[int] = 0

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        CountingConnection.commands += 1
        super().send_command(*args, **kwargs)


def build_models() -> tuple[type[Any], type[Any], type[Any]]:
    from django.db import connection
    from solo.models import SingletonModel

    from keel.models import SiteVersion
    from keel.site.models import AbstractSiteSettings

    with connection.schema_editor() as editor:
        editor.create_model(SiteVersion)  # the versions keel's read path checks
    # Registered under installed apps: django-solo's cache unpickles through the registry.
    models = (
        make_model("BenchKeelSettings", (AbstractSiteSettings,), site_fields()),
        make_model(
            "BenchKeelSettingsPerLanguage",
            (AbstractSiteSettings,),
            site_fields(),
            cache_per_language=True,
        ),
        make_model("BenchSoloSettings", (SingletonModel,), site_fields(), "solo"),
    )
    for model in models:
        model.objects.create(pk=1, **VALUES)
    return models


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--reads", type=int, default=2000)
    options.add_argument("--repeats", type=int, default=7)
    args = options.parse_args()
    prefix = key_prefix()
    setup_django(
        {"default": database("postgres", DB_NAME, args.pg_host, fresh=True)},
        ("solo", "constance"),
        USE_I18N=True,
        LANGUAGE_CODE="en",
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "solo": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": args.redis_url,
                "KEY_PREFIX": f"{prefix}:solo",
            },
        },
        SOLO_CACHE="solo",
        SOLO_CACHE_TIMEOUT=300,
        CONSTANCE_BACKEND="constance.backends.redisd.RedisBackend",
        CONSTANCE_REDIS_CONNECTION=args.redis_url,
        CONSTANCE_REDIS_PREFIX=f"{prefix}:constance:",
        CONSTANCE_CONFIG={name: (value, name) for name, value in VALUES.items()},
        KEEL={
            "REDIS_URL": args.redis_url,
            "KEY_PREFIX": prefix,
            "REDIS_OPTIONS": {"connection_class": CountingConnection},
        },
    )

    from constance import config
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from keel.site.cache import clear_local_copies, request_scope
    from keel.site.tracking import get_listener

    keel_model, translated_keel_model, solo_model = build_models()
    values = tuple(VALUES.values())
    for name, value in VALUES.items():
        setattr(config, name, value)

    def read_fields(obj: Any) -> tuple[Any, ...]:
        return tuple(getattr(obj, name) for name in FIELDS)

    def keel_read() -> tuple[Any, ...]:
        return read_fields(keel_model.load())

    def keel_per_language_read() -> tuple[Any, ...]:
        return read_fields(translated_keel_model.load())

    untracked = {**settings.KEEL, "SITE_SETTINGS_TRACKING": False}
    keel_window = override_settings(KEEL={**untracked, "SITE_SETTINGS_LOCAL_TTL": 3600})
    keel_redis = override_settings(KEEL={**untracked, "SITE_SETTINGS_LOCAL_TTL": 0})
    keel_tracking = override_settings(KEEL={**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0})
    keel_locmem = override_settings(
        KEEL={k: v for k, v in settings.KEEL.items() if k != "REDIS_URL"}
        | {"SITE_SETTINGS_LOCAL_TTL": 0}
    )

    def with_settings(override: Any, read: Callable[[], Any]) -> Callable[[int], float]:
        def run(reads: int) -> float:
            with override:
                warm_up(read)
                return timed(read, reads)

        return run

    def warm_up(read: Callable[[], Any]) -> None:
        listener = get_listener()
        if listener is not None:
            assert listener.wait_live(5), listener.refused
        read()  # warm the layer being measured
        read()  # (the first copy may predate the invalidation its own refill caused)
        time.sleep(0.01)
        read()

    def memo(reads: int) -> float:
        with keel_window, request_scope():
            keel_read()
            return timed(keel_read, reads)

    def per_language_window(reads: int) -> float:
        with keel_window:
            keel_per_language_read()
            return timed(keel_per_language_read, reads)

    contenders: dict[str, Callable[[int], float]] = {
        "keel, Redis client tracking": with_settings(keel_tracking, keel_read),
        "keel, local window": with_settings(keel_window, keel_read),
        "keel, local window, cache_per_language=True": per_language_window,
        "keel, request memo": memo,
        "keel, Redis": with_settings(keel_redis, keel_read),
        "keel, no Redis (LocMem cache)": with_settings(keel_locmem, keel_read),
        "plain objects.get(pk=1)": lambda n: timed(
            lambda: read_fields(solo_model.objects.get(pk=1)), n
        ),
        "django-solo, Redis cache": lambda n: timed(lambda: read_fields(solo_model.get_solo()), n),
        "django-constance, RedisBackend": lambda n: timed(lambda: read_fields(config), n),
    }
    slow = {"plain objects.get(pk=1)", "django-constance, RedisBackend"}

    # Correctness first: every contender reads the same values.
    for run in contenders.values():
        run(1)
    assert read_fields(solo_model.get_solo()) == values
    assert read_fields(config) == values
    with keel_redis:
        assert keel_read() == values

    # Round trips per read.
    trips: dict[str, str] = {}
    for name, override in (
        ("keel, Redis client tracking", keel_tracking),
        ("keel, local window", keel_window),
        ("keel, Redis", keel_redis),
        ("keel, no Redis (LocMem cache)", keel_locmem),
    ):
        with override:
            warm_up(keel_read)
            CountingConnection.commands = 0
            with CaptureQueriesContext(connection) as queries:
                for _ in range(100):
                    keel_read()
            trips[name] = f"{CountingConnection.commands / 100:g} Redis, {len(queries) / 100:g} SQL"
    trips["keel, request memo"] = "0 (after the request's first read)"
    trips["keel, local window, cache_per_language=True"] = trips["keel, local window"]
    trips["plain objects.get(pk=1)"] = "1 SQL"
    trips["django-solo, Redis cache"] = "1 Redis GET"
    trips["django-constance, RedisBackend"] = f"{len(FIELDS)} Redis GET"

    per = {name: max(args.reads // 10, 50) if name in slow else args.reads for name in contenders}
    runs = {name: partial(run, per[name]) for name, run in contenders.items()}
    timings = interleave(runs, args.repeats, before=clear_local_copies, self_timed=True)
    medians = {name: timings.median(name) * 1e6 for name in contenders}
    solo = medians["django-solo, Redis cache"]
    report = Report("site_settings.py")
    report.table(
        [
            "contender",
            "µs per read (10 fields)|{:.2f}",
            "speed vs django-solo cached|{:.1f}x",
            "round trips per read",
        ],
        [[name, medians[name], solo / medians[name], trips[name]] for name in contenders],
        caption=f"{versions()} · PostgreSQL and Redis on loopback · {args.repeats} rounds, median",
    )
    redis_ratio = solo / medians["keel, Redis"]
    window_ratio = solo / medians["keel, local window"]
    tracking_ratio = solo / medians["keel, Redis client tracking"]
    report.goal(
        "keel with Redis client tracking ≥ 100x faster than django-solo's cached read, "
        f"no network I/O ({trips['keel, Redis client tracking']})",
        f"{tracking_ratio:.0f}x",
        tracking_ratio >= 100,
    )
    report.goal(
        "keel with Redis ≥ 3x faster than django-solo's cached read",
        f"{redis_ratio:.1f}x",
        redis_ratio >= 3,
    )
    report.goal(
        "keel with a local window ≥ 100x faster", f"{window_ratio:.0f}x", window_ratio >= 100
    )
    redis_trips = float(trips["keel, Redis"].split()[0])
    report.goal(
        "at most 1 network round trip per read",
        trips["keel, Redis"],
        redis_trips <= 1,
        show="summary",
    )
    report.data["site_settings"] = medians
    clean_redis(args.redis_url, prefix)
    connection.close()
    drop_postgres(DB_NAME, args.pg_host)
    report.emit(args.json)


if __name__ == "__main__":
    main()
