"""Site settings: the cost of one read (get the settings, read ten fields) per contender,
round trips counted on the wire and with ``CaptureQueriesContext``."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import harness
from cases import SITE_VALUES, make_model, read_fields, site_fields
from harness import Report

DB_NAME = "keel_bench_site"


def main() -> None:
    args = harness.options(__doc__, reads=2000, repeats=7)
    prefix = harness.key_prefix()
    counting = harness.counting_connection()
    harness.setup_django(
        {"default": harness.database("postgres", DB_NAME, args.pg_host, fresh=True)},
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
        CONSTANCE_CONFIG={name: (value, name) for name, value in SITE_VALUES.items()},
        KEEL={
            "REDIS_URL": args.redis_url,
            "KEY_PREFIX": prefix,
            "REDIS_OPTIONS": {"connection_class": counting},
        },
    )

    from constance import config
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings
    from solo.models import SingletonModel

    from keel.models import SiteVersion
    from keel.site.cache import clear_local_copies, request_scope
    from keel.site.models import AbstractSiteSettings
    from keel.site.tracking import get_listener

    with connection.schema_editor() as editor:
        editor.create_model(SiteVersion)  # the versions keel's read path checks
    keel_model = make_model("BenchKeelSettings", (AbstractSiteSettings,), site_fields())
    per_language = make_model(
        "BenchKeelSettingsPerLanguage",
        (AbstractSiteSettings,),
        site_fields(),
        cache_per_language=True,
    )
    # Registered under installed apps: django-solo's cache unpickles through the registry.
    solo_model = make_model("BenchSoloSettings", (SingletonModel,), site_fields(), "solo")
    for model in (keel_model, per_language, solo_model):
        model.objects.create(pk=1, **SITE_VALUES)
    for name, value in SITE_VALUES.items():
        setattr(config, name, value)

    def keel_read() -> tuple[Any, ...]:
        return read_fields(keel_model.load())

    # keel's layers, each the KEEL settings that select it.
    untracked = {**settings.KEEL, "SITE_SETTINGS_TRACKING": False}
    no_redis = {k: v for k, v in settings.KEEL.items() if k != "REDIS_URL"}
    layers = {
        name: override_settings(KEEL=keel | {"SITE_SETTINGS_LOCAL_TTL": ttl})
        for name, keel, ttl in (
            ("keel, Redis client tracking", settings.KEEL, 0),
            ("keel, local window", untracked, 3600),
            ("keel, Redis", untracked, 0),
            ("keel, no Redis (LocMem cache)", no_redis, 0),
        )
    }
    keel_window, keel_redis = layers["keel, local window"], layers["keel, Redis"]

    def warm_up(read: Callable[[], Any]) -> None:
        listener = get_listener()
        if listener is not None:
            assert listener.wait_live(5), listener.refused
        read()  # warm the layer being measured
        read()  # (the first copy may predate the invalidation its own refill caused)
        time.sleep(0.01)
        read()

    def under(
        override: Any, read: Callable[[], Any], warm: Any = warm_up
    ) -> Callable[[int], float]:
        def run(reads: int) -> float:
            with override:
                warm(read)
                return harness.timed(read, reads)

        return run

    def memo(reads: int) -> float:
        with keel_window, request_scope():
            keel_read()
            return harness.timed(keel_read, reads)

    contenders: dict[str, Callable[[int], float]] = {
        "keel, Redis client tracking": under(layers["keel, Redis client tracking"], keel_read),
        "keel, local window": under(keel_window, keel_read),
        "keel, local window, cache_per_language=True": under(
            keel_window, lambda: read_fields(per_language.load()), lambda read: read()
        ),
        "keel, request memo": memo,
        "keel, Redis": under(keel_redis, keel_read),
        "keel, no Redis (LocMem cache)": under(layers["keel, no Redis (LocMem cache)"], keel_read),
    }
    # The peers: each one's read of the settings object and its round trips per read.
    peers: dict[str, tuple[Callable[[], Any], str]] = {
        "plain objects.get(pk=1)": (lambda: solo_model.objects.get(pk=1), "1 SQL"),
        "django-solo, Redis cache": (solo_model.get_solo, "1 Redis GET"),
        "django-constance, RedisBackend": (lambda: config, f"{len(SITE_VALUES)} Redis GET"),
    }

    def peer(get: Callable[[], Any]) -> Callable[[int], float]:
        return lambda reads: harness.timed(lambda: read_fields(get()), reads)

    contenders |= {name: peer(get) for name, (get, _) in peers.items()}
    slow = {"plain objects.get(pk=1)", "django-constance, RedisBackend"}

    # Correctness first: every contender reads the same values.
    for run in contenders.values():
        run(1)
    values = tuple(SITE_VALUES.values())
    assert all(read_fields(get()) == values for get, _ in peers.values())
    with keel_redis:
        assert keel_read() == values

    # Round trips per read.
    trips = {"keel, request memo": "0 (after the request's first read)"}
    trips |= {name: said for name, (_, said) in peers.items()}
    for name, override in layers.items():
        with override:
            warm_up(keel_read)
            counting.sent = 0
            with CaptureQueriesContext(connection) as queries:
                for _ in range(100):
                    keel_read()
            trips[name] = f"{counting.sent / 100:g} Redis, {len(queries) / 100:g} SQL"
    trips["keel, local window, cache_per_language=True"] = trips["keel, local window"]

    per = {name: max(args.reads // 10, 50) if name in slow else args.reads for name in contenders}
    runs = {name: partial(run, per[name]) for name, run in contenders.items()}
    timings = harness.interleave(runs, args.repeats, before=clear_local_copies, self_timed=True)
    medians = {name: timings.median(name) * 1e6 for name in contenders}
    speed = {name: medians["django-solo, Redis cache"] / us for name, us in medians.items()}
    report = Report("site_settings.py")
    report.table(
        "contender; µs per read (10 fields)|{:.2f}; speed vs django-solo cached|{:.1f}x; "
        "round trips per read",
        [[name, medians[name], speed[name], trips[name]] for name in contenders],
        caption=f"{harness.versions()} · PostgreSQL and Redis on loopback · "
        f"{args.repeats} rounds, median",
    )
    tracking, redis_speed = speed["keel, Redis client tracking"], speed["keel, Redis"]
    report.goal(
        "keel with Redis client tracking ≥ 100x faster than django-solo's cached read, "
        f"no network I/O ({trips['keel, Redis client tracking']})",
        f"{tracking:.0f}x",
        tracking >= 100,
    )
    report.goal(
        "keel with Redis ≥ 3x faster than django-solo's cached read",
        f"{redis_speed:.1f}x",
        redis_speed >= 3,
    )
    window = speed["keel, local window"]
    report.goal("keel with a local window ≥ 100x faster", f"{window:.0f}x", window >= 100)
    redis_trips = float(trips["keel, Redis"].split()[0])
    report.goal(
        "at most 1 network round trip per read",
        trips["keel, Redis"],
        redis_trips <= 1,
        show="summary",
    )
    report.data["site_settings"] = medians
    harness.clean_redis(args.redis_url, prefix)
    connection.close()
    harness.drop("postgres", DB_NAME, args.pg_host)
    report.emit(args.json)


if __name__ == "__main__":
    main()
