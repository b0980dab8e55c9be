#!/usr/bin/env bash
# airflow-init (docker-compose.yml): everything that must happen once before the Airflow
# services start. Runs to completion and exits 0; the other services wait for that
# (depends_on: service_completed_successfully). Every step is idempotent, so
# `docker compose up` may run it any number of times (after an upgrade it applies new
# migrations).
#
# It runs as root, like the official compose file's airflow-init, only so that it can hand the
# shared volumes to AIRFLOW_UID at the end; it talks to PostgreSQL and writes nothing else.
# The image's entrypoint has already waited for the metadata database (`airflow db check`).
set -euo pipefail

say() { printf '[airflow-init] %s\n' "$*"; }
fail() { printf '[airflow-init] ERROR: %s\n' "$*" >&2; exit 1; }

executor="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
say "Airflow $(airflow version 2>/dev/null), executor ${executor}"

# 1. The executor and the compose profile must agree. CeleryExecutor needs the `celery` profile
#    (redis + airflow-worker); without it tasks would queue forever. Redis starts in seconds.
redis_up() {
    python -c 'import socket; socket.create_connection(("redis", 6379), timeout=3).close()' 2>/dev/null
}
if [[ "${executor}" == *CeleryExecutor* ]]; then
    for _ in $(seq 1 30); do
        redis_up && break
        sleep 2
    done
    redis_up || fail "AIRFLOW__CORE__EXECUTOR=${executor} but redis is not running: start with" \
        "'docker compose --profile celery up -d' (or set COMPOSE_PROFILES=celery in .env)," \
        "or set AIRFLOW__CORE__EXECUTOR=LocalExecutor. See docs/deployment.md."
    say "redis is reachable"
elif redis_up; then
    say "WARNING: the celery profile is running but AIRFLOW__CORE__EXECUTOR=${executor};" \
        "airflow-worker refuses to start until it is CeleryExecutor (docs/deployment.md)"
fi

# 2. Airflow's metadata database (the `airflow` database on the postgres service).
say "migrating Airflow's metadata database"
airflow db migrate

# 3. The pool that caps Newsroom's network tasks (polls, page downloads); `set` also resizes it.
slots="${AIRFLOW_NETWORK_POOL_SLOTS:-4}"
say "pool newsroom_network: ${slots} slots"
airflow pools set newsroom_network "${slots}" \
    "Newsroom tasks that use the network (polls, page downloads)" > /dev/null

# 4. Newsroom's schema (the `newsroom` database): migrations in order, then views.
say "migrating Newsroom's database"
newsroom db migrate

# 5. The shared volumes belong to the user the other services run as (GID 0, group-writable).
#    Only when their owner differs (a new volume, or AIRFLOW_UID changed): the logs volume
#    can hold many files.
if [[ "$(id -u)" == 0 ]]; then
    uid="${AIRFLOW_UID:-50000}"
    for dir in /opt/airflow/logs "${NEWSROOM_STATE_DIR:-/opt/airflow/newsroom}"; do
        mkdir -p "${dir}"
        if [[ "$(stat -c %u "${dir}")" != "${uid}" ]]; then
            say "handing ${dir} to uid ${uid}"
            chown -R "${uid}:0" "${dir}"
            chmod -R g+rwX "${dir}"
        fi
    done
fi

say "done"
