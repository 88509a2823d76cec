#!/usr/bin/env bash
# Run the suite on the other supported Django versions, each in its own virtual environment
# with a Python it supports. A Python the machine lacks is skipped loudly (the matrix tests
# what the machine has; the main run already covers Django 5.2).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  local version=$1 candidate
  # pyenv puts shims on PATH that exist but fail to run: try each candidate for real.
  for candidate in "$HOME"/.pyenv/versions/"$version".*/bin/python"$version" "python$version"; do
    if "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$version'.split('.')))" >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

status=0
summary=()
while read -r python_version django_spec label; do
  [ -n "$python_version" ] || continue
  if ! python=$(find_python "$python_version"); then
    echo "*** Django $label: no Python $python_version on this machine: SKIPPED ***"
    summary+=("django $label: SKIPPED (no Python $python_version)")
    continue
  fi
  venv=".venv-django$label"
  if [ ! -f "$venv/.installed-$django_spec" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q -U pip
    "$venv/bin/python" -m pip install -q -e . --group test "django$django_spec"
    touch "$venv/.installed-$django_spec"
  fi
  echo "=== Django $("$venv/bin/python" -m django --version) on $("$venv/bin/python" --version) ==="
  if "$venv/bin/python" scripts/test_databases.py ${KEEL_MATRIX_DATABASES:-sqlite postgres mysql} -- -q -p no:cacheprovider; then
    summary+=("django $label: passed")
  else
    summary+=("django $label: FAILED")
    status=1
  fi
done <<'MATRIX'
3.12 ~=6.0.0 60
3.13 ~=6.1.0 61
MATRIX

printf '%s\n' "=== Django version matrix ===" "${summary[@]}"
exit $status
