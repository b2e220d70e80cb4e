#!/usr/bin/env bash
# Sets up everything and runs the whole test suite: once on SQLite (every test, the slow
# model tests and the real-browser tests included), then again on PostgreSQL (every test that
# touches the database). Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
if [ ! -x /usr/bin/chromium ]; then
  (apt-get install -y -qq chromium >/dev/null 2>&1) || (apt-get update -qq && apt-get install -y -qq chromium)
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1

run_pytest() {
  # pytest exits 5 when a selection holds no test; that is not a failure of the suite.
  local rc=0
  .venv/bin/python -m pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then rc=0; fi
  return "$rc"
}

.venv/bin/ruff check .
echo "== SQLite: full suite"
run_pytest -p no:cacheprovider "$@"
echo "== PostgreSQL: database tests (server-side binding and prepared statements, as in production)"
export DATABASE_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/rlchf}
export DB_SERVER_SIDE_BINDING=1
run_pytest -p no:cacheprovider -m "not slow" --ignore=tests/socialchoice "$@"
