#!/usr/bin/env bash
# Bright Run container entrypoint: one image, one role per container.
#
#   web      migrate, create the bucket, upsert periodic tasks, then gunicorn on :8000
#   worker   Celery worker for WORKER_QUEUES (default: default,generation,validation)
#   beat     Celery beat (DatabaseScheduler); run exactly one per deployment
#   trainer  Celery worker for the `training` queue only, one job at a time (trainer image)
#   other    executed as given, e.g. `python manage.py createsuperuser`
#
# Extra arguments after a role are passed on to gunicorn / celery.
# Only the web role migrates; the other roles wait until the schema is up to date.
set -euo pipefail

cd "${APP_DIR:-/app}"

log() { printf '[entrypoint] %s\n' "$*" >&2; }

# Block until `manage.py migrate --check` passes (database reachable and no unapplied
# migrations), so beat and workers never start against missing tables while web migrates.
# MIGRATION_WAIT_SECONDS=0 skips the wait.
wait_for_migrations() {
  local timeout="${MIGRATION_WAIT_SECONDS:-300}" waited=0 out
  if [ "$timeout" -eq 0 ]; then
    return 0
  fi
  until out="$(python manage.py migrate --check 2>&1)"; do
    if [ "$waited" -ge "$timeout" ]; then
      log "database not reachable or not migrated after ${timeout}s (migrations run in the web role):"
      printf '%s\n' "${out:-unapplied migrations remain}" >&2
      exit 1
    fi
    if [ "$waited" -eq 0 ]; then
      log "waiting for the database schema to be migrated by the web role..."
    fi
    sleep 5
    waited=$((waited + 5))
  done
}

if [ $# -eq 0 ]; then
  set -- web
fi

case "$1" in
  web)
    shift
    # MIGRATE_ON_START=0 lets all but one web node skip migrate in multi-node deploys.
    if [ "${MIGRATE_ON_START:-1}" != "0" ]; then
      python manage.py migrate --noinput
    else
      wait_for_migrations
    fi
    python manage.py storage_setup
    python manage.py setup_periodic_tasks
    python manage.py seed_scaffolding
    python manage.py seed_training
    exec gunicorn brightrun.wsgi:application \
      --bind 0.0.0.0:8000 \
      --workers "${WEB_CONCURRENCY:-3}" \
      --worker-tmp-dir /dev/shm \
      --access-logfile - \
      "$@"
    ;;
  worker)
    shift
    wait_for_migrations
    exec celery -A brightrun worker \
      --queues "${WORKER_QUEUES:-default,generation,validation}" \
      --hostname "worker@%h" \
      --loglevel "${LOG_LEVEL:-INFO}" \
      "$@"
    ;;
  beat)
    shift
    wait_for_migrations
    exec celery -A brightrun beat --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  trainer)
    shift
    if ! python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
      log "the trainer role needs the ML dependencies: use the image built with --target trainer"
      exit 1
    fi
    wait_for_migrations
    exec celery -A brightrun worker \
      --queues training \
      --concurrency 1 \
      --prefetch-multiplier 1 \
      --hostname "trainer@%h" \
      --loglevel "${LOG_LEVEL:-INFO}" \
      "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
