#!/bin/bash
# postgres (docker-compose.yml): the postgres image runs this once, on an empty data directory
# (/docker-entrypoint-initdb.d), as the superuser over the local socket.
#
# Two databases with two owners, each reachable only by its own role:
#   airflow   Airflow's metadata    role airflow   password POSTGRES_AIRFLOW_PASSWORD
#   newsroom  Newsroom's data       role newsroom  password POSTGRES_NEWSROOM_PASSWORD
# The superuser (POSTGRES_PASSWORD) is for administration only; no service uses it.
#
# Idempotent, so it can also be run by hand against an existing server:
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/01-databases.sh
# (it then also resets both roles' passwords to the values in the environment).
#
# Works whether the image executes it (executable bit set) or sources it (bit lost on checkout).
set -Eeo pipefail

if [[ -z "${POSTGRES_AIRFLOW_PASSWORD:-}" || -z "${POSTGRES_NEWSROOM_PASSWORD:-}" ]]; then
    echo "01-databases.sh: POSTGRES_AIRFLOW_PASSWORD and POSTGRES_NEWSROOM_PASSWORD must be set" >&2
    exit 1
fi

newsroom_create_database() {  # <role and database name> <password>
    # Values travel as psql variables and are quoted by format(%I, %L): no injection, any password.
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
         --set=name="$1" --set=password="$2" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'name', :'name') \gexec
SQL
    echo "01-databases.sh: database $1 owned by role $1"
}

newsroom_create_database airflow "${POSTGRES_AIRFLOW_PASSWORD}"
newsroom_create_database newsroom "${POSTGRES_NEWSROOM_PASSWORD}"
