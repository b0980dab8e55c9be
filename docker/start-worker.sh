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

# `celery worker --queues ...`: the queues this worker serves (NEWSROOM_WORKER_QUEUES, or every
# queue the DAGs use), from pipeline/topology.py, the module `newsroom airflow up` starts its
# workers from. Queue names are letters, digits and "_.-" (config.py checks), so no quoting.
args="$(python -m pipeline.topology airflow-worker)"
# shellcheck disable=SC2086
exec airflow ${args}
