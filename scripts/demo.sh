#!/usr/bin/env bash
# One command: set up, load the demo company's data into SQLite, run the nightly lifecycle
# DAG once through Airflow, print the summary and where the report is.
#   bash scripts/demo.sh [--rows N] [--date YYYY-MM-DD] [--dry-run]
set -euo pipefail
source "$(dirname "$0")/env.sh"

ROWS=500
RUN_DATE="$(date +%F)"
CONF='{}'
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --date) RUN_DATE="$2"; shift 2 ;;
    --dry-run) CONF='{"dry_run": true}'; shift ;;
    *) echo "unknown option $1 (use --rows N, --date YYYY-MM-DD, --dry-run)" >&2; exit 2 ;;
  esac
done

DEMO_DB="$LIFECYCLE_HOME/demo.db"
export AIRFLOW_CONN_LIFECYCLE_DEMO="{\"conn_type\": \"sqlite\", \"host\": \"$DEMO_DB\"}"
export AIRFLOW_CONN_LIFECYCLE_TAGSTORE="{\"conn_type\": \"sqlite\", \"host\": \"$LIFECYCLE_HOME/tagstore.db\"}"
rm -f "$LIFECYCLE_HOME/tagstore.db"*

echo "==> generating the demo company's data ($ROWS rows per main table) into $DEMO_DB"
python -m demo.company --url "sqlite:///$DEMO_DB" --rows "$ROWS" --as-of "$RUN_DATE" --progress

echo "==> preparing Airflow's metadata database in $AIRFLOW_HOME"
airflow db migrate > "$LIFECYCLE_HOME/airflow-db-migrate.log" 2>&1 || { cat "$LIFECYCLE_HOME/airflow-db-migrate.log"; exit 1; }

echo "==> running the nightly DAG for $RUN_DATE (log: $LIFECYCLE_HOME/dag-run.log)"
set +e
airflow dags test lifecycle_nightly "$RUN_DATE" --conf "$CONF" > "$LIFECYCLE_HOME/dag-run.log" 2>&1
status=$?
set -e
python -m lifecycle.reporting.report --latest "${LIFECYCLE_REPORT_DIR:-$LIFECYCLE_HOME/reports}" || true
if [ $status -ne 0 ] || grep -q "state=failed\|DagRunState.FAILED" "$LIFECYCLE_HOME/dag-run.log"; then
  echo "the DAG run failed; the end of its log:" >&2
  tail -40 "$LIFECYCLE_HOME/dag-run.log" >&2
  exit 1
fi
