"""`make run`: Airflow standalone on top of Newsroom's database, our DAGs, a first run at once.

Airflow's metadata lives in its own database ("airflow") on the same PostgreSQL as Newsroom's
data (the embedded server by default), never SQLite. Everything Airflow keeps on disk is under
NEWSROOM_STATE_DIR/airflow.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from pipeline import store
from pipeline.config import Settings, is_demo, to_env
from pipeline.errors import ConfigError, NewsroomError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
POOL = ("newsroom_network", 4, "Newsroom tasks that use the network (polls, page downloads)")
AIRFLOW_DB = "airflow"


class AirflowError(NewsroomError):
    pass


def airflow_env(settings: Settings, *, port: int = 8080) -> dict[str, str]:
    """The environment Airflow runs with: its home, our DAGs, its metadata database."""
    state = settings.state_dir.resolve()
    home = state / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # Tasks see exactly these settings, with absolute paths (they run in other directories).
        **to_env(settings),
        # `airflow standalone` starts its parts as `airflow ...` subprocesses.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # Yours, if you set one; the demo's Airflow always keeps its metadata beside the demo's data.
    if is_demo(settings) or not os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        url = metadata_url(settings)
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
        # Airflow would derive an asyncpg URL (not installed); psycopg 3 does async too.
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = url.replace("postgresql+psycopg://",
                                                                      "postgresql+psycopg_async://", 1)
    return env


def metadata_url(settings: Settings) -> str:
    """SQLAlchemy URL of Airflow's metadata database, created beside Newsroom's if missing."""
    if settings.embedded:
        admin = store.db.embedded_dsn(settings, dbname="postgres")
        store.db.ensure_database(admin, AIRFLOW_DB)
        host = store.db.dsn_params(admin)["host"]
        return f"postgresql+psycopg://postgres@/{AIRFLOW_DB}?host={quote(host)}"
    params = store.db.dsn_params(store.db.resolve_dsn(settings))
    try:
        store.db.ensure_database(store.db.resolve_dsn(settings), AIRFLOW_DB)
    except NewsroomError as exc:
        raise ConfigError(f"cannot create Airflow's database {AIRFLOW_DB!r} ({exc}); create it or set "
                          "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") from None
    user = quote(params.get("user", ""))
    password = f":{quote(params['password'])}" if params.get("password") else ""
    host = params.get("host", "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    if host.startswith("/"):
        return f"postgresql+psycopg://{user}{password}@/{AIRFLOW_DB}?host={quote(host)}"
    return f"postgresql+psycopg://{user}{password}@{host}{port}/{AIRFLOW_DB}"


def _airflow(args: list[str], env: dict[str, str], *, timeout: float = 600) -> str:
    exe = shutil.which("airflow", path=env["PATH"])
    if exe is None:
        raise AirflowError("the `airflow` command is not installed in this environment (run `make install`)")
    proc = subprocess.run([exe, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise AirflowError(f"`airflow {' '.join(args)}` failed: {' | '.join(tail)}")
    return proc.stdout


def prepare(settings: Settings, env: dict[str, str]) -> None:
    """Migrate both databases and create the pool. Safe to repeat."""
    with store.db.session(settings, autocommit=True) as conn:
        store.migrations.migrate(conn)
    log.info("migrating Airflow's metadata database (a minute the first time)")
    _airflow(["db", "migrate"], env, timeout=900)
    _airflow(["pools", "set", *map(str, POOL)], env)


def admin_password(env: dict[str, str], timeout: float = 120) -> str:
    path = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())["admin"]
            except (ValueError, KeyError):
                pass
        time.sleep(1)
    raise AirflowError(f"no admin password appeared in {path}")


class Api:
    """Just enough of Airflow's REST API (v2) to unpause and trigger our DAG."""

    def __init__(self, base: str, password: str):
        self.base = base
        self.client = httpx.Client(base_url=base, timeout=30, trust_env=False)
        token = self.client.post("/auth/token", json={"username": "admin", "password": password})
        token.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def wait_for_dag(self, dag_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                return
            time.sleep(3)
        errors = self.client.get("/api/v2/importErrors").json()
        raise AirflowError(f"DAG {dag_id} did not appear within {timeout:.0f}s; import errors: {errors}")

    def unpause(self, dag_id: str) -> None:
        self.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str) -> str:
        r = self.client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
        r.raise_for_status()
        return r.json()["dag_run_id"]


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AirflowError(f"airflow standalone exited with code {proc.returncode}")
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=5, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AirflowError(f"Airflow's API server did not answer at {base} within {timeout:.0f}s")


STOP_TIMEOUT = 60.0  # seconds Airflow gets to stop before what is left of its process group is killed
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopped(BaseException):
    """Ctrl-C or SIGTERM arrived: stop Airflow, exit 0. A BaseException (like KeyboardInterrupt),
    so no `except Exception` on the way swallows it."""


def up(settings: Settings, *, port: int = 8080, trigger: bool = True, echo=print) -> int:
    """Run Airflow standalone in the foreground until it exits (its exit code) or Ctrl-C or
    SIGTERM stops it (0, no traceback). Either way Airflow's whole process group is stopped:
    SIGTERM, then SIGKILL after STOP_TIMEOUT seconds or at a second Ctrl-C. The embedded
    database is left running (other commands use it), and the user is told so."""

    def stop_requested(signum: int, frame: object) -> None:
        raise _Stopped(signum)

    previous = _set_handlers(stop_requested)
    try:
        return _foreground(settings, port=port, trigger=trigger, echo=echo)
    except _Stopped:
        return 0
    finally:
        _restore_handlers(previous)
        if settings.embedded:
            echo(f"The embedded database keeps running; `{_newsroom(settings)} db stop` stops it.")


def _newsroom(settings: Settings) -> str:
    """The command that reaches this installation's database: the demo's has its own."""
    return "newsroom --demo" if is_demo(settings) else "newsroom"


def _set_handlers(handler) -> dict:
    """Install `handler` for SIGINT and SIGTERM (main thread only); return the previous ones."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler) for s in _STOP_SIGNALS}


def _restore_handlers(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)


def _foreground(settings: Settings, *, port: int, trigger: bool, echo) -> int:
    env = airflow_env(settings, port=port)
    echo(f"Newsroom state: {settings.state_dir.resolve()}  (Airflow home: {env['AIRFLOW_HOME']})")
    prepare(settings, env)
    logfile = Path(env["AIRFLOW_HOME"]) / "standalone.log"
    echo(f"starting Airflow (scheduler, dag-processor, api-server, triggerer); its output: {logfile}")
    exe = shutil.which("airflow", path=env["PATH"])
    if exe is None:
        raise AirflowError("the `airflow` command is not installed in this environment (run `make install`)")
    base = f"http://localhost:{port}"
    with open(logfile, "ab") as out:
        # Its own session: a Ctrl-C in the terminal reaches only us, and we stop the group in order.
        proc = subprocess.Popen([exe, "standalone"], env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(base, proc)
        password = admin_password(env)
        api = Api(base, password)
        api.wait_for_dag("news_ingest", timeout=300)
        if trigger:
            api.unpause("news_ingest")
            run_id = api.trigger("news_ingest")
            echo(f"news_ingest unpaused; first run triggered: {run_id}")
        echo("")
        echo(f"  Airflow UI:  {base}    user: admin    password: {password}")
        echo(f"  Runs:        {base}/dags/news_ingest")
        echo(f"  Database:    psql \"$({_newsroom(settings)} db url)\"   "
             f"({store.db.redact(store.db.resolve_dsn(settings))})")
        echo("  Stop:        Ctrl-C")
        echo("")
        code = proc.wait()
        return code if code >= 0 else 128 - code  # killed by a signal: as a shell reports it
    except _Stopped:
        echo("stopping Airflow ...")
        raise
    finally:
        stop_group(proc, STOP_TIMEOUT)


def stop_group(proc: subprocess.Popen, timeout: float) -> None:
    """Stop `proc` and its process group: SIGTERM, then SIGKILL after `timeout` seconds (or at
    once on another SIGINT/SIGTERM); then SIGKILL for any member left once `proc` has exited."""

    def kill_now(signum: int, frame: object) -> None:
        _signal_group(proc.pid, signal.SIGKILL)

    previous = _set_handlers(kill_now)
    try:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("Airflow did not stop within %.0fs; killing it", timeout)
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + min(timeout, 10)
        while _signal_group(proc.pid, 0) and time.monotonic() < deadline:
            time.sleep(0.2)  # its own children may take a moment more
        _signal_group(proc.pid, signal.SIGKILL)
    finally:
        _restore_handlers(previous)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal: nothing more we can do
        return True
    return True
