"""Shared bench helpers: a database to write to, and the machine's description."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

import psycopg

from pipeline import embedded, store

RESULTS = Path(__file__).parent / "results"


@contextmanager
def bench_database():
    """A fresh, migrated database: on NEWSROOM_DATABASE_URL's server if set, else a throwaway embedded one."""
    external = os.environ.get("NEWSROOM_DATABASE_URL")
    tmp = None
    if external:
        admin = external
    else:
        tmp = Path(tempfile.mkdtemp(prefix="nrb", dir="/tmp"))
        admin = embedded.start(tmp / "pg")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    store.db.ensure_database(admin, name)
    dsn = psycopg.conninfo.make_conninfo(admin, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        store.migrations.migrate(conn)
    try:
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if tmp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                embedded.stop(tmp / "pg")
            shutil.rmtree(tmp, ignore_errors=True)


def machine() -> dict:
    mem = None
    try:
        mem = round(int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu": cpu, "mem_gib": mem,
            "platform": platform.platform()}


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str) + "\n")
    return path
