#!/usr/bin/env bash
# What the test suite needs on this machine, started or installed when missing: PostgreSQL and
# MariaDB with their `test` databases, Redis (the Celery broker), Debian's chromium and
# chromium-driver (the browser test), and the docker-compose client (it validates
# docker-compose.yaml). Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "==> starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres test
fi

# MariaDB: the MySQL-family source database of tests/test_mariadb.py (root with an empty password
# over TCP, database `test`). Not fatal here: if it cannot start, those tests fail saying so.
mariadb_answers() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }
mariadb_sql() { mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root -e "$1"; }
if ! command -v mariadbd >/dev/null; then
  echo "==> installing mariadb-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q mariadb-server >/dev/null || { apt-get update -q && apt-get install -y -q mariadb-server >/dev/null; } || true
fi
if ! mariadb_answers; then
  echo "==> starting MariaDB"
  install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || service mariadb start || true
  for _ in $(seq 1 90); do mariadb_answers && break; sleep 1; done
  mariadb_answers || { echo "MariaDB did not answer on 127.0.0.1:3306 after 90 s" >&2; tail -n 20 /var/log/mysql/error.log >&2 || true; }
fi
if mariadb_answers && ! mariadb_sql "SELECT 1" >/dev/null 2>&1; then
  # A fresh Debian install lets root in through the Unix socket only; the tests come over TCP.
  mariadb -u root -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION" || true
fi
mariadb_sql "CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4" || echo "could not create MariaDB database test" >&2

# Redis on 127.0.0.1:6379: the Celery broker of tests/test_celery.py (and of docker-compose).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if ! command -v redis-server >/dev/null; then
    echo "==> installing redis-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q redis-server >/dev/null || { apt-get update -q && apt-get install -y -q redis-server >/dev/null; } || true
  fi
  echo "==> starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >/dev/null || true
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

# The browser test drives Debian's chromium through its chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "==> installing chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null || { apt-get update -q && apt-get install -y -q chromium chromium-driver >/dev/null; }
fi

# `docker compose config` checks the deployment file; Debian's docker-compose is the client here.
if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
  echo "==> installing docker-compose (the client only: it validates docker-compose.yaml)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q docker-compose >/dev/null || { apt-get update -q && apt-get install -y -q docker-compose >/dev/null; }
fi

