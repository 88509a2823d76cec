#!/usr/bin/env bash
# The tests that start their own Redis servers (a 3-master Cluster, a master + replica +
# 3 Sentinels, throwaway servers killed with SIGKILL, gunicorn workers) and the fuzzing, on the databases
# given (default: all three). Needs Debian's redis-server and redis-tools packages.
# Usage: scripts/test_topologies.sh [sqlite|postgres|mysql ...]
set -euo pipefail
cd "$(dirname "$0")/.."
for binary in redis-server redis-cli; do
    command -v "$binary" >/dev/null || { echo "$binary is missing: apt-get install redis-server redis-tools" >&2; exit 1; }
done
export KEEL_TEST_DB_SUFFIX="${KEEL_TEST_DB_SUFFIX:-_topologies}"
for db in "${@:-sqlite postgres mysql}"; do
    for one in $db; do
        echo "== reliability tests on $one"
        KEEL_TEST_DB="$one" .venv/bin/python -m pytest -q -p no:cacheprovider \
            tests/test_redis.py tests/test_reliability_topologies.py \
            tests/test_reliability_faults.py tests/test_reliability_fuzz.py \
            tests/test_reliability_workers.py tests/test_reliability_docs.py
    done
done
