#!/usr/bin/env bash
# `make test`: make sure PostgreSQL, Redis (if present) and Chromium are available, lint,
# validate the OpenAPI document, then run the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
export DJANGO_SETTINGS_MODULE=brightrun.settings_test
export DJANGO_ALLOW_ASYNC_UNSAFE=true   # Playwright's sync API runs an event loop beside live_server

# Chromium for the browser tests (Debian's package; Playwright never downloads a browser here).
if [ -z "${BRIGHTRUN_CHROMIUM:-}" ]; then
  for candidate in /usr/lib/chromium/chromium /usr/bin/chromium; do
    [ -x "$candidate" ] && export BRIGHTRUN_CHROMIUM="$candidate" && break
  done
fi
if [ -z "${BRIGHTRUN_CHROMIUM:-}" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Chromium: installing Debian's chromium package"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    && export BRIGHTRUN_CHROMIUM=/usr/lib/chromium/chromium \
    || echo "Chromium: install failed; browser tests will be skipped with that reason"
fi

# axe-core for the accessibility tests (tests/browser/test_accessibility.py), installed once into var/node/.
if [ ! -f var/node/node_modules/axe-core/axe.min.js ]; then
  if command -v npm >/dev/null; then
    echo "axe-core: installing into var/node/ with npm"
    npm install --no-save --silent --prefix var/node axe-core@4 >/dev/null \
      || echo "axe-core: npm install failed; the accessibility tests will be skipped with that reason"
  else
    echo "axe-core: npm is not installed; the accessibility tests will be skipped with that reason"
  fi
fi

# shellcheck source=scripts/ensure_postgres.sh
source scripts/ensure_postgres.sh
trap brightrun_stop_postgres EXIT

# Redis for the real-worker test when one answers; otherwise the filesystem transport.
if [ -z "${CELERY_BROKER_URL:-}" ] && .venv/bin/python - <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", 6379), timeout=1)
    s.sendall(b"PING\r\n"); ok = s.recv(16).startswith(b"+PONG"); s.close()
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
then
  export CELERY_BROKER_URL="redis://127.0.0.1:6379/15"
  echo "Celery broker: Redis on 127.0.0.1:6379 (db 15)"
else
  echo "Celery broker: ${CELERY_BROKER_URL:-filesystem transport under var/}"
fi

echo "ruff check"
.venv/bin/ruff check .
echo "OpenAPI: spectacular --validate --fail-on-warn"
.venv/bin/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml
echo "pytest"
.venv/bin/python -m pytest "$@"
