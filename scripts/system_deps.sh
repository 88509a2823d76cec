#!/usr/bin/env bash
# Debian packages the test environment needs: the MariaDB client headers that mysqlclient
# compiles against. Installed only when missing, and only where apt-get can run as root.
set -euo pipefail
if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages: libmariadb-dev pkg-config"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config >/dev/null
else
  echo "mysqlclient needs the MariaDB/MySQL client headers: sudo apt-get install libmariadb-dev pkg-config" >&2
  exit 1
fi
