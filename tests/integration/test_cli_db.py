"""`newsroom db ...` end to end, with the embedded server and with bad settings."""

import os
import subprocess
import sys

import psycopg


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def test_db_url_prints_a_dsn_psql_can_use(pg_state_dir, pg_admin):
    # The state dir of the session's server: the CLI reuses the running embedded server.
    env = {"NEWSROOM_STATE_DIR": str(pg_state_dir), "NEWSROOM_DATABASE_URL": ""}
    out = _run("db", "url", env=env)
    assert out.returncode == 0, out.stderr
    dsn = out.stdout.strip()
    assert dsn.startswith("postgresql://") and "newsroom" in dsn
    psql = subprocess.run(["psql", dsn, "-tAc", "SELECT current_database()"], capture_output=True, text=True)
    assert psql.returncode == 0, psql.stderr
    assert psql.stdout.strip() == "newsroom"
    assert _run("db", "migrate", env=env).returncode == 0
    status = _run("db", "status", env=env)
    assert status.returncode == 0 and "running" in status.stdout


def test_malformed_database_url_is_one_line_naming_the_setting(tmp_path):
    out = _run("db", "migrate", env={"NEWSROOM_DATABASE_URL": "this is not a dsn", "NEWSROOM_STATE_DIR": str(tmp_path)})
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "NEWSROOM_DATABASE_URL" in out.stderr and "Traceback" not in out.stderr


def test_unreachable_server_is_one_line_without_the_password(tmp_path):
    dsn = "postgresql://someone:s3cret-pw@127.0.0.1:9/nowhere"
    out = _run("db", "migrate", env={"NEWSROOM_DATABASE_URL": dsn, "NEWSROOM_STATE_DIR": str(tmp_path)})
    assert out.returncode == 1
    assert "cannot connect" in out.stderr and "NEWSROOM_DATABASE_URL" in out.stderr
    assert "s3cret-pw" not in out.stderr and "Traceback" not in out.stderr


def test_sqlalchemy_style_url_is_accepted(db_dsn, tmp_path):
    params = psycopg.conninfo.conninfo_to_dict(db_dsn)
    url = f"postgresql+psycopg://postgres@/{params['dbname']}?host={params['host']}"
    out = _run("db", "migrate", env={"NEWSROOM_DATABASE_URL": url, "NEWSROOM_STATE_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "applied 0 migration(s)" in out.stdout


def test_embedded_start_status_stop():
    import shutil
    import tempfile
    from pathlib import Path

    state = Path(tempfile.mkdtemp(prefix="nrc", dir="/tmp"))  # short: the socket lives there
    env = {"NEWSROOM_STATE_DIR": str(state), "NEWSROOM_DATABASE_URL": ""}
    try:
        assert _run("db", "status", env=env).returncode == 3  # not initialised yet
        started = _run("db", "start", env=env)
        assert started.returncode == 0, started.stderr
        assert "running" in _run("db", "status", env=env).stdout
        assert _run("db", "migrate", env=env).returncode == 0
        assert _run("db", "stop", env=env).stdout.strip() == "stopped"
        stopped = _run("db", "status", env=env)
        assert stopped.returncode == 3 and "stopped" in stopped.stdout
        # data survives a restart
        assert _run("db", "start", env=env).returncode == 0
        again = _run("db", "migrate", env=env)
        assert "applied 0 migration(s)" in again.stdout
    finally:
        _run("db", "stop", env=env)
        shutil.rmtree(state, ignore_errors=True)


def test_too_long_state_dir_is_refused_clearly(tmp_path):
    deep = tmp_path / ("d" * 120)
    out = _run("db", "url", env={"NEWSROOM_STATE_DIR": str(deep), "NEWSROOM_DATABASE_URL": ""})
    assert out.returncode == 2 and "NEWSROOM_STATE_DIR" in out.stderr and "Traceback" not in out.stderr


def test_status_of_an_external_database_connects_and_reports_version_and_migrations(db_dsn, tmp_path):
    out = _run("db", "status", env={"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "external database: postgresql://" in out.stdout
    assert "reachable: yes (PostgreSQL 16" in out.stdout
    assert "migrations: all" in out.stdout and "pending" not in out.stdout


def test_status_of_an_unmigrated_database_names_the_pending_migrations(empty_db_dsn, tmp_path):
    out = _run("db", "status", env={"NEWSROOM_DATABASE_URL": empty_db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "reachable: yes" in out.stdout
    assert "migrations: 0 applied" in out.stdout and "0001_initial.sql" in out.stdout
    assert "newsroom db migrate" in out.stdout


def test_status_names_migrations_this_code_does_not_know(db_dsn, conn, tmp_path):
    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ('9999', '9999_future.sql', 'x')")
    conn.commit()
    out = _run("db", "status", env={"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "9999_future.sql" in out.stdout and "newer" in out.stdout


def test_status_of_an_unreachable_database_exits_1_with_one_line(tmp_path):
    dsn = "postgresql://someone:s3cret-pw@127.0.0.1:9/nowhere"
    out = _run("db", "status", env={"NEWSROOM_DATABASE_URL": dsn, "NEWSROOM_STATE_DIR": str(tmp_path)})
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "cannot connect" in out.stderr
    assert "NEWSROOM_DATABASE_URL" in out.stderr and "Traceback" not in out.stderr
    assert "s3cret-pw" not in out.stderr + out.stdout


def test_status_gives_up_on_a_server_that_never_answers_within_seconds(tmp_path):
    import socket
    import time

    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        start = time.monotonic()
        out = _run("db", "status", env={"NEWSROOM_DATABASE_URL": f"postgresql://u:pw@127.0.0.1:{port}/db",
                                        "NEWSROOM_STATE_DIR": str(tmp_path)})
        took = time.monotonic() - start
    assert out.returncode == 1 and "cannot connect" in out.stderr and "timeout" in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert took < 30


def test_a_mysql_url_is_refused_naming_the_setting_and_the_accepted_forms(tmp_path):
    for command in (("db", "status"), ("db", "migrate")):
        out = _run(*command, env={"NEWSROOM_DATABASE_URL": "mysql://newsroom:s3cret-pw@db.example/newsroom",
                                  "NEWSROOM_STATE_DIR": str(tmp_path)})
        assert out.returncode == 2, out
        assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
        assert "NEWSROOM_DATABASE_URL" in out.stderr and "'mysql:'" in out.stderr
        assert "postgresql://" in out.stderr and "postgres://" in out.stderr and "key=value" in out.stderr
        assert "s3cret-pw" not in out.stderr + out.stdout
