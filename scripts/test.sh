#!/usr/bin/env bash
# The whole test suite: unit tests, SQL paths on SQLite and PostgreSQL, the DAGs end to end.
#   bash scripts/test.sh [pytest args]
set -euo pipefail
source "$(dirname "$0")/env.sh"
# PostgreSQL, MariaDB, chromium and the compose client: started or installed when missing.
bash "$(dirname "$0")/services.sh"
# Tests get an Airflow home and lifecycle home of their own, never the demo's.
LIFECYCLE_TEST_TMP="$(mktemp -d)"
trap 'rm -rf "$LIFECYCLE_TEST_TMP"' EXIT
export AIRFLOW_HOME="$LIFECYCLE_TEST_TMP/airflow" LIFECYCLE_HOME="$LIFECYCLE_TEST_TMP/lifecycle"
export LIFECYCLE_HASH_SECRET="test-secret-not-for-production-0123456789"
cd "$ROOT"
python -m pytest "$@"
