#!/usr/bin/env bash
# Debian packages the test environment needs, installed only when missing and only where
# apt-get can run as root: the MariaDB client headers mysqlclient compiles against, and
# Chromium with its driver for the browser tests, and Redis binaries for topology tests.
set -euo pipefail
missing=()
pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null \
  || missing+=(libmariadb-dev pkg-config)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# The reliability tests start their own Redis servers, Sentinels and Clusters.
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ -x /usr/bin/redis-cli ] || missing+=(redis-tools)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "Missing Debian packages: sudo apt-get install ${missing[*]}" >&2
  echo "(without libmariadb-dev mysqlclient cannot build; without chromium the browser tests skip)" >&2
  pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null
fi
