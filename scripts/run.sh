#!/usr/bin/env bash
# `make run`: migrate, upsert schedules, create the demo user, start web + worker + beat.
# `make demo` (DEMO=1): the same, plus `manage.py load_demo` before the processes start.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBUG="${DEBUG:-1}"
export PORT="${PORT:-8000}"
mkdir -p var
PY=.venv/bin/python
$PY manage.py migrate --noinput
$PY manage.py storage_setup
$PY manage.py setup_periodic_tasks
$PY manage.py seed_scaffolding
$PY manage.py seed_training
$PY manage.py build_test_model  # the tiny model of the catalogue (seconds; skipped when present)
demo=$($PY manage.py create_demo_user)
echo "$demo"
# DEMO=1 (`make demo`): load the demo workspace of hand-written conversations, a training file, a dataset and a
# finished tiny-model job (idempotent; no Anthropic key needed).
if [ "${DEMO:-0}" = "1" ]; then
  $PY manage.py load_demo
fi
echo
echo "Bright Run is starting at http://localhost:${PORT}/  (API docs: http://localhost:${PORT}/api/docs/, health: http://localhost:${PORT}/healthz)"
if ! grep -q "Demo login" <<<"$demo" && [ -f var/demo-login.txt ]; then cat var/demo-login.txt; fi
echo "Press Ctrl-C to stop the web server, the worker and beat."
echo
exec .venv/bin/honcho -f Procfile.dev start
