#!/usr/bin/env bash
# Sets up and runs the product on the embedded default (SQLite, no extra server):
# venv + pinned install, migrations, the offline default model, demo data, then the
# background-job worker and the web server (uvicorn via config.serve: HTTP + websockets) on http://127.0.0.1:8000.
# Environment variables (DATABASE_URL, REDIS_URL, PORT, ...) are passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
PY=.venv/bin/python
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput --verbosity 0
$PY manage.py prepare_default_model
$PY manage.py seed_demo

$PY manage.py db_worker --queue-name default,gpu --no-reload &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
echo "rlchf is running on http://127.0.0.1:${PORT:-8000}/ (Ctrl+C stops it)"
# One web worker on SQLite (its writers serialise anyway); WEB_WORKERS=N for more.
.venv/bin/python -m config.serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --workers "${WEB_WORKERS:-1}"
