"""`make run`: Airflow on top of Newsroom's database, our DAGs, a first run at once.

`newsroom airflow up` runs the services of docker-compose.yml as local processes (their
commands come from `pipeline.topology`, like compose's): api-server, scheduler, dag-processor
and triggerer under LocalExecutor; with `--executor celery` also a Valkey broker and N Celery
workers. Airflow's metadata lives in its own database ("airflow") on the same PostgreSQL as
Newsroom's data (the embedded server by default), never SQLite. Everything Airflow keeps on disk
is under NEWSROOM_STATE_DIR/airflow: its services' output in services/, their pid files in run/.
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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from pipeline import processes, store, topology
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
    """The environment Airflow runs with (LocalExecutor): its home, our DAGs, its metadata database."""
    state = settings.state_dir.resolve()
    home = state / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)  # airflow.cfg holds generated secrets, and the admin password file is here
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__API__PORT": str(port),
        # The UI on this machine only, unless AIRFLOW__API__HOST says otherwise.
        "AIRFLOW__API__HOST": os.environ.get("AIRFLOW__API__HOST", "").strip() or "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # Tasks see exactly these settings, with absolute paths (they run in other directories).
        **to_env(settings),
        # Airflow starts some of its parts as `airflow ...` subprocesses.
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
        store.migrate(conn)
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
            raise AirflowError(f"Airflow's api-server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=5, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AirflowError(f"Airflow's API server did not answer at {base} within {timeout:.0f}s")


STOP_TIMEOUT = 60.0  # seconds Airflow gets to stop before what is left of its processes is killed
BROKER_PORT = 6379
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopped(BaseException):
    """Ctrl-C or SIGTERM arrived: stop Airflow, exit 0. A BaseException (like KeyboardInterrupt),
    so no `except Exception` on the way swallows it."""


@dataclass(frozen=True, slots=True)
class Topology:
    """What `up` starts: the executor, and under Celery how many workers of which size where."""
    executor: str = "local"
    workers: int = 2
    concurrency: int | None = None  # task slots per worker; None: this machine's CPUs
    broker_port: int = BROKER_PORT


def up(settings: Settings, *, port: int = 8080, trigger: bool = True, echo=print,
       topo: Topology = Topology()) -> int:
    """Run Airflow's services in the foreground until Ctrl-C or SIGTERM stops them (0, no
    traceback) or one cannot be kept running (1). Every process started is stopped: SIGTERM,
    then SIGKILL after STOP_TIMEOUT seconds or at a second Ctrl-C. The embedded database is left
    running (other commands use it), and the user is told so."""

    signals = _Signals()
    previous = _set_handlers(signals.handler)
    try:
        return _foreground(settings, port=port, trigger=trigger, echo=echo, topo=topo, signals=signals)
    except _Stopped:
        return 0
    finally:
        _restore_handlers(previous)
        if settings.embedded:
            echo(f"The embedded database keeps running; `{_newsroom(settings)} db stop` stops it.")


class _Signals:
    """The first Ctrl-C or SIGTERM stops Airflow (raises _Stopped); any later one kills what is
    left at once, whenever it comes."""

    def __init__(self) -> None:
        self.received = 0
        self.kill_now = None  # set while stopping

    def handler(self, signum: int, frame: object) -> None:
        self.received += 1
        if self.received == 1:
            raise _Stopped(signum)
        if self.kill_now is not None:
            self.kill_now()


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


def _foreground(settings: Settings, *, port: int, trigger: bool, echo, topo: Topology, signals: _Signals) -> int:
    env = airflow_env(settings, port=port)
    home = Path(env["AIRFLOW_HOME"])
    echo(f"Newsroom state: {settings.state_dir.resolve()}  (Airflow home: {home})")
    exe = shutil.which("airflow", path=env["PATH"])
    if exe is None:
        raise AirflowError("the `airflow` command is not installed in this environment (run `make install`)")
    run_dir, log_dir = home / "run", home / "services"
    celery = topo.executor == "celery"
    lock = processes.RunLock(run_dir)
    try:
        lock.acquire()
    except processes.SupervisorError as exc:
        raise AirflowError(f"{exc}: stop that `newsroom airflow up` first") from None
    try:
        stale = processes.clear_stale(run_dir)
        if stale:
            echo(f"stopped what an earlier `airflow up` left running: {', '.join(stale)}")
        _check_ports(env, port, topo.broker_port if celery else None)
        sup = processes.Supervisor(run_dir, log_dir)
        try:
            if celery:
                env.update(_start_broker(sup, env, home, topo.broker_port))
            prepare(settings, env)
            echo(f"starting Airflow ({topology.EXECUTORS[topo.executor]}): "
                 f"{', '.join(s.args[0] for s in topology.AIRFLOW_SERVICES)}"
                 + (f", broker, {topo.workers} Celery worker(s)" if celery else "") + f"; their output: {log_dir}")
            procs = {s.name: sup.start(processes.Spec(s.name, (exe, *s.args), env))
                     for s in topology.AIRFLOW_SERVICES}
            base = f"http://localhost:{port}"
            wait_healthy(base, procs["airflow-apiserver"])
            if celery:
                _start_workers(sup, settings, env, exe, topo)
            _greet(settings, env, base, trigger, echo)
            return _watch(sup, echo, workers=topo.workers if celery else 0)
        except _Stopped:
            echo("stopping Airflow ...")
            raise
        except httpx.HTTPError as exc:  # Airflow's API answered oddly: one line, not a traceback
            raise AirflowError(f"Airflow's API server: {type(exc).__name__}: {exc}") from None
        finally:
            # From here any Ctrl-C (a first one too, when stopping for another reason) kills at once.
            signals.received = max(signals.received, 1)
            signals.kill_now = sup.kill_all
            sup.stop_all(STOP_TIMEOUT)
    finally:
        lock.release()


def _greet(settings: Settings, env: dict[str, str], base: str, trigger: bool, echo) -> None:
    """Unpause news_ingest and trigger its first run, and unpause news_maintenance (unless told
    not to); print where to look."""
    password = admin_password(env)
    api = Api(base, password)
    api.wait_for_dag("news_ingest", timeout=300)
    if trigger:
        api.unpause("news_ingest")
        run_id = api.trigger("news_ingest")
        echo(f"news_ingest unpaused; first run triggered: {run_id}")
        try:  # parsed in the same pass as news_ingest, as a rule; never worth failing `up` for
            api.wait_for_dag("news_maintenance", timeout=60)
            api.unpause("news_maintenance")
            echo("news_maintenance unpaused: it prunes old raw pages and polls and vacuums, daily")
        except (AirflowError, httpx.HTTPError) as exc:
            echo(f"news_maintenance could not be unpaused ({exc}); unpause it in the UI")
    echo("")
    echo(f"  Airflow UI:  {base}    user: admin    password: {password}")
    echo(f"  Runs:        {base}/dags/news_ingest")
    echo(f"  Newsroom:    {base}/plugin/newsroom   (feeds, topics, search; each run's \"This run\" tab)")
    echo(f"  Database:    psql \"$({_newsroom(settings)} db url)\"   "
         f"({store.db.redact(store.db.resolve_dsn(settings))})")
    echo("  Stop:        Ctrl-C")
    echo("")


def _check_ports(env: dict[str, str], port: int, broker_port: int | None) -> None:
    """Both ports free on the addresses they will be bound to, and not the same one."""
    if broker_port == port:
        raise AirflowError(f"--port and --broker-port are both {port}; choose two ports")
    wanted = [(env.get("AIRFLOW__API__HOST", "127.0.0.1"), port, "Airflow's API server", "--port")]
    if broker_port is not None:
        wanted.append((topology.BROKER_HOST, broker_port, "the Celery broker", "--broker-port"))
    for host, number, what, option in wanted:
        if not processes.port_free(number, host):
            raise AirflowError(f"port {number} ({what}) is taken by another program; stop it or choose "
                               f"another port with {option}")


def _start_broker(sup: processes.Supervisor, env: dict[str, str], home: Path, port: int) -> dict[str, str]:
    """Start Valkey (password-protected, on loopback) and wait until it answers; return the
    Celery settings that point at it."""
    data = home / "broker"
    data.mkdir(mode=0o700, exist_ok=True)
    data.chmod(0o700)  # its append-only file holds the queued tasks
    password = topology.broker_password(data)
    proc = sup.start(processes.Spec("broker", topology.broker_command(port=port, data_dir=data)))
    deadline = time.monotonic() + 30
    while not _broker_answers(port, password):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AirflowError(f"the Celery broker did not start on port {port}; its output: {sup.log_file('broker')}")
        time.sleep(0.1)
    metadata = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    return topology.celery_env(broker_url=topology.broker_url(port, password),
                               result_backend=topology.result_backend_url(metadata))


def _broker_answers(port: int, password: str) -> bool:
    import redis

    try:
        return bool(redis.Redis(host=topology.BROKER_HOST, port=port, password=password, socket_timeout=1,
                                socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _start_workers(sup: processes.Supervisor, settings: Settings, env: dict[str, str], exe: str,
                   topo: Topology) -> None:
    """N Celery workers with distinct names (worker-1, ...), each serving every queue (whatever
    NEWSROOM_WORKER_QUEUES says: on one machine nothing else would run the other queues) and
    recorded as its own host on the task instances it runs. Their logs are on this disk, so
    they serve none (no port to share)."""
    queues = topology.all_queues(settings)
    slots = topo.concurrency or len(os.sched_getaffinity(0)) or 2
    for i in range(1, topo.workers + 1):
        name = f"worker-{i}"
        args = topology.worker_args(queues, concurrency=slots, name=name, serve_logs=False)
        worker_env = {**env, "NEWSROOM_WORKER_NAME": name, "NEWSROOM_WORKER_QUEUES": ",".join(queues),
                      "AIRFLOW__CORE__HOSTNAME_CALLABLE": topology.HOSTNAME_CALLABLE}
        sup.start(processes.Spec(f"airflow-{name}", (exe, *args), worker_env, core=False))


def _watch(sup: processes.Supervisor, echo, *, workers: int) -> int:
    """Keep the services running until stopped; 1 when one cannot be kept running."""
    while True:
        try:
            for event in sup.poll():
                echo(event)
        except processes.SupervisorError as exc:
            raise AirflowError(str(exc)) from None
        if workers and len(sup.gone) >= workers:
            raise AirflowError("every Celery worker has exited; stopping (their output: "
                               f"{sup.log_dir}/airflow-worker-*.log)")
        time.sleep(1)
