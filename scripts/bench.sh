#!/usr/bin/env bash
# `make bench`: build .venv-bench (Python >= 3.12 where the machine has one), install keel, its
# peers and the systems it replaces, run every benchmark (each writes its results as JSON, gathered
# in build/bench/results.json) and render docs/performance.md and docs/img/bench-*.png from that
# JSON. Needs PostgreSQL (127.0.0.1:5432, user postgres), MariaDB (127.0.0.1:3306, root) and Redis
# (127.0.0.1:6379, database 9); mysqlclient builds against the headers scripts/system_deps.sh installs first.
# Extra arguments go to bench/run_all.py (e.g. --quick, or --smoke: every script at its smallest
# sizes, to check that all of it runs).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BENCH_VENV:-.venv-bench}
started=$(date +%s)

runs() { "$1" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in "${BENCH_PYTHON:-}" python3.13 python3.12 \
        "$HOME"/.pyenv/versions/3.13.*/bin/python3.13 "$HOME"/.pyenv/versions/3.12.*/bin/python3.12 \
        /usr/local/bin/python3.13 /usr/local/bin/python3.12 /usr/bin/python3.13 /usr/bin/python3.12 \
        python3; do
        [ -n "$candidate" ] || continue
        # pyenv shims may exist and fail: only an interpreter that runs counts.
        if runs "$candidate"; then echo "$candidate"; return 0; fi
    done
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    if python=$(find_python); then
        echo "bench: creating $VENV with $python ($("$python" -V 2>&1))"
    else
        python=${PYTHON:-python3}
        echo "bench: *** no Python >= 3.12 runs on this machine; using $python ($("$python" -V 2>&1))."
        echo "bench: *** codex-django and pytoolbox need Python >= 3.12: their comparisons will be SKIPPED."
    fi
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q -U pip
fi

stamp="$VENV/.bench-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ bench/requirements.txt -nt "$stamp" ]; then
    scripts/system_deps.sh
    "$VENV/bin/python" -m pip install -q -e '.[redis,postgres,mysql]' --group bench
    # The replaced systems install separately: where they cannot (an old Python), the rest runs
    # and bench/seeds.py says which comparison it skipped and why.
    if ! "$VENV/bin/python" -m pip install -q -r bench/requirements.txt; then
        echo "bench: *** codex-django / pytoolbox could not be installed: their comparisons will be SKIPPED."
    fi
    touch "$stamp"
fi

"$VENV/bin/python" bench/run_all.py "$@"
echo "bench: make bench took $(( $(date +%s) - started )) s in all (environment included)"
