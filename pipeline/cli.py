"""The `newsroom` command. Thin: parses arguments, calls one pipeline function, prints results."""

from __future__ import annotations

import functools
import logging
import sys

import click

from pipeline import config, embedded, store
from pipeline.errors import ConfigError, NewsroomError

log = logging.getLogger(__name__)


def _setup_logging(level: str) -> None:
    # The CLI owns its handlers; inside Airflow, Airflow does.
    root = logging.getLogger("pipeline")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)


def _friendly(fn):
    """Turn Newsroom's typed errors into a one-line message and a non-zero exit, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except NewsroomError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Newsroom: feeds -> pages -> clean text -> entities and topics -> PostgreSQL."""
    try:
        settings = config.load()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    _setup_logging("DEBUG" if verbose else settings.log_level)
    ctx.obj = settings


# --- db -------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """The database: DSN, embedded server, migrations."""


@db.command("url")
@click.pass_obj
@_friendly
def db_url(settings: config.Settings) -> None:
    """Print the DSN in use (starting the embedded server if that is the one)."""
    click.echo(store.resolve_dsn(settings))


@db.command("start")
@click.pass_obj
@_friendly
def db_start(settings: config.Settings) -> None:
    """Start the embedded server (no-op when NEWSROOM_DATABASE_URL is set)."""
    if not settings.embedded:
        click.echo("NEWSROOM_DATABASE_URL is set; not starting the embedded server")
        return
    click.echo(store.resolve_dsn(settings))


@db.command("stop")
@click.pass_obj
@_friendly
def db_stop(settings: config.Settings) -> None:
    """Stop the embedded server."""
    was_running = embedded.stop(settings.pgdata)
    click.echo("stopped" if was_running else "not running")


@db.command("status")
@click.pass_obj
@_friendly
def db_status(settings: config.Settings) -> None:
    """Show whether the embedded server runs, and where its data lives."""
    if not settings.embedded:
        click.echo(f"external database: {store.redact(settings.database_url)}")
        return
    st = embedded.status(settings.pgdata)
    state = "running" if st.running else ("stopped" if st.initialised else "not initialised")
    click.echo(f"embedded postgres: {state}")
    click.echo(f"data: {st.pgdata}")
    if st.running:
        click.echo(f"pid: {st.pid}")
    if not st.running:
        sys.exit(3)


@db.command("migrate")
@click.pass_obj
@_friendly
def db_migrate(settings: config.Settings) -> None:
    """Apply pending migrations and (re)create views. Safe to run any number of times."""
    with store.session(settings, autocommit=True) as conn:
        applied = store.migrate(conn)
        total = len(store.applied_migrations(conn))
    click.echo(f"applied {len(applied)} migration(s); {total} in place")
    for name in applied:
        click.echo(f"  {name}")


if __name__ == "__main__":
    main()
