# Sourced by the other scripts: makes the virtual environment (once per change of the
# requirements) and sets the environment the pipeline and Airflow run with.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFECYCLE_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment in $VENV"
  "$PYTHON_BIN" -m venv "$VENV"
fi
want="$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.lifecycle-installed" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements (pinned by constraints.txt); the first time takes a few minutes"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt" -c "$ROOT/constraints.txt"
  echo "$want" > "$VENV/.lifecycle-installed"
fi

export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LIFECYCLE_HOME="${LIFECYCLE_HOME:-$ROOT/.lifecycle}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$LIFECYCLE_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
mkdir -p "$LIFECYCLE_HOME"

# The keyed-hash secret never lives in the repository. For local runs one is generated once
# into $LIFECYCLE_HOME (git-ignored); production sets LIFECYCLE_HASH_SECRET or the Airflow
# Variable lifecycle_hash_secret.
if [ -z "${LIFECYCLE_HASH_SECRET:-}" ]; then
  secret_file="$LIFECYCLE_HOME/hash_secret"
  if [ ! -s "$secret_file" ]; then
    (umask 077; python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$secret_file")
  fi
  LIFECYCLE_HASH_SECRET="$(cat "$secret_file")"
  export LIFECYCLE_HASH_SECRET
fi
