"""The embedded PostgreSQL server (from the `pgserver` wheel) used when no DSN is set.

Its data lives under the state directory; it keeps running between commands so Airflow
tasks and the CLI share it. `newsroom db stop` stops it.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError, DatabaseUnavailable

log = logging.getLogger(__name__)
# pgserver logs every handle it opens and closes at INFO: noise in every task log.
logging.getLogger("pgserver").setLevel(logging.WARNING)

# Unix socket paths are capped at 107 bytes; Postgres appends "/.s.PGSQL.5432".
_MAX_PGDATA_CHARS = 90


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddedStatus:
    pgdata: Path
    initialised: bool
    running: bool
    pid: int | None
    uri: str | None


def _check_path(pgdata: Path) -> None:
    if len(str(pgdata)) > _MAX_PGDATA_CHARS:
        raise ConfigError(
            f"embedded Postgres data dir {pgdata} is {len(str(pgdata))} characters long; its Unix "
            f"socket needs a path under {_MAX_PGDATA_CHARS}: set NEWSROOM_STATE_DIR to a shorter path"
        )


def start(pgdata: Path) -> str:
    """Start (or reuse) the server for `pgdata`; return its admin URI (database `postgres`)."""
    pgdata = pgdata.resolve()
    _check_path(pgdata)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        import pgserver
        from pgserver.postgres_server import PostgresServer

        if not status(pgdata).running:
            # pgserver caches one handle per data dir; after a stop it would hand back the dead one.
            PostgresServer._instances.pop(pgdata, None)
        try:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, AssertionError) as exc:
            logfile = pgdata / "log"
            raise DatabaseUnavailable(
                f"embedded Postgres in {pgdata} failed to start ({type(exc).__name__}); see {logfile}"
            ) from exc
    return server.get_uri()


def status(pgdata: Path) -> EmbeddedStatus:
    pgdata = pgdata.resolve()
    initialised = (pgdata / "PG_VERSION").exists()
    pid, uri = None, None
    if initialised:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None and info.is_running():
            pid, uri = info.pid, info.get_uri()
    return EmbeddedStatus(pgdata=pgdata, initialised=initialised, running=pid is not None, pid=pid, uri=uri)


def stop(pgdata: Path) -> bool:
    """Stop the server if it runs; return whether it was running."""
    st = status(pgdata)
    if not st.running:
        return False
    import os

    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=st.pgdata, user=user)
    return True
