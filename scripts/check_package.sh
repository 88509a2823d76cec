#!/usr/bin/env bash
# Build the sdist and the wheel into dist/, check their metadata (twine check --strict) and
# contents (scripts/check_dist.py), install the wheel (not editable) into a clean virtual
# environment and run the suite against that installed copy. Databases: $KEEL_WHEEL_DATABASES
# (default sqlite). Non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
WHEEL_VENV=.venv-wheel
PYTHON=${PYTHON:-python3}

rm -rf dist
"$BIN/python" -m build --outdir dist . >/dev/null
"$BIN/twine" check --strict dist/*
"$BIN/python" scripts/check_dist.py dist

rm -rf "$WHEEL_VENV"
"$PYTHON" -m venv "$WHEEL_VENV"
"$WHEEL_VENV/bin/python" -m pip install -q -U pip
wheel=$(ls dist/*.whl)
# The test dependency group comes from pyproject.toml; keel itself only from the wheel.
"$WHEEL_VENV/bin/python" -m pip install -q "${wheel}[redis]" --group test
# Outside the checkout, so that `keel` can only come from the installed wheel.
location=$(cd / && "$OLDPWD/$WHEEL_VENV/bin/python" -c 'import keel; print(keel.__file__)')
echo "package: testing the installed wheel at $location"
KEEL_TEST_INSTALLED_WHEEL=1 "$WHEEL_VENV/bin/python" scripts/test_databases.py \
  ${KEEL_WHEEL_DATABASES:-sqlite} -- -q -p no:cacheprovider
