#!/usr/bin/env bash
# airflow-apiserver (docker-compose.yml): the UI and REST API on :8080.
#
# Airflow 3's SimpleAuthManager keeps passwords in a JSON file and would invent a random one
# for a user missing from it. Write the file from .env (AIRFLOW_ADMIN_USERNAME /
# AIRFLOW_ADMIN_PASSWORD) on every start, so the password is the one you chose and changing it
# in .env takes effect on `docker compose up -d`. The file lives in the container, not a volume.
set -euo pipefail

: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is not set (see .env.example)}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?not set}"
export AIRFLOW_ADMIN_USERNAME="${AIRFLOW_ADMIN_USERNAME:-admin}"

umask 077  # readable by this user only; SimpleAuthManager opens it read-write
python -c '
import json, os, sys
with open(sys.argv[1], "w") as f:
    json.dump({os.environ["AIRFLOW_ADMIN_USERNAME"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
' "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"
unset AIRFLOW_ADMIN_PASSWORD

exec airflow api-server
