#!/usr/bin/env bash
# airflow-worker (docker-compose.yml, profile `celery`): one Celery worker.
#
# The executor is chosen by AIRFLOW__CORE__EXECUTOR in .env; the `celery` profile only adds
# redis and the workers. A worker started while the scheduler uses LocalExecutor would sit idle
# and look healthy, so refuse to start and say why instead.
set -euo pipefail

executor="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
if [[ "${executor}" != *CeleryExecutor* ]]; then
    printf '[airflow-worker] ERROR: AIRFLOW__CORE__EXECUTOR=%s; the celery profile needs %s\n' \
        "${executor}" "AIRFLOW__CORE__EXECUTOR=CeleryExecutor in .env (see docs/deployment.md)" >&2
    exit 1
fi

exec airflow celery worker
