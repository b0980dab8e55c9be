"""Airflow for the DAG tests: a home in a temporary directory and a metadata database on the
test PostgreSQL server (never SQLite), migrated once per session."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pipeline import store

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def airflow_env(pg_admin, tmp_path_factory):
    store.db.ensure_database(pg_admin, "airflow_test")
    params = psycopg.conninfo.conninfo_to_dict(pg_admin)
    url = f"postgresql+psycopg://postgres@/airflow_test?host={params['host']}"
    home = tmp_path_factory.mktemp("airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url.replace("+psycopg:", "+psycopg_async:"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    out = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return env
