"""The `newsroom` command. Thin: parses arguments, calls one pipeline function, prints results."""

from __future__ import annotations

import functools
import logging
import sys

import click

from pipeline import config, embedded, feeds, ingest, store
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


# --- feeds ----------------------------------------------------------------------------------

@main.group("feeds")
def feeds_group() -> None:
    """The feed list and each feed's health."""


@feeds_group.command("sync")
@click.pass_obj
@_friendly
def feeds_sync(settings: config.Settings) -> None:
    """Upsert the feed list (NEWSROOM_FEEDS) into the database; unlisted feeds are disabled."""
    _migrate_quietly(settings)
    result = ingest.sync_feeds(settings)
    c = result.counts
    click.echo(f"{c['inserted']} new, {c['updated']} updated, {c['unchanged']} unchanged, "
               f"{c['disabled']} disabled (from {settings.feeds_file})")


@feeds_group.command("status")
@click.option("--failing", is_flag=True, help="Only feeds that are failing or silent.")
@click.pass_obj
@_friendly
def feeds_status(settings: config.Settings, failing: bool) -> None:
    """Every feed's health: state, last poll, failure streak, last error."""
    from rich.console import Console
    from rich.table import Table

    with store.session(settings) as conn:
        rows = store.feed_health(conn)
        now = store.now(conn)
    table = Table(title="Feeds", show_lines=False)
    for col in ("state", "name", "last poll", "http", "fails", "newest article", "next poll", "articles", "last error"):
        table.add_column(col, overflow="fold")
    shown = 0
    for r in rows:
        state = feeds.health(r, now)
        if failing and state not in ("failing", "silent"):
            continue
        shown += 1
        style = {"failing": "red", "silent": "yellow", "disabled": "dim", "ok": "green"}.get(state)
        table.add_row(state, r["name"], _ago(r["last_polled_at"], now), str(r["last_http_status"] or ""),
                      str(r["consecutive_failures"] or ""), _ago(r["last_new_article_at"], now),
                      _ago(r["next_poll_at"], now), str(r["articles"]),
                      f"{r['last_error_class']}: {r['last_error']}" if r["last_error"] else "", style=style)
    Console().print(table)
    summary = feeds.summarise(rows, now)
    click.echo(", ".join(f"{v} {k}" for k, v in sorted(summary.items())) or "no feeds; run `newsroom feeds sync`")


def _ago(when, now) -> str:
    if when is None:
        return "never"
    secs = (now - when).total_seconds()
    future = secs < 0
    secs = abs(secs)
    text = (f"{secs:.0f}s" if secs < 120 else f"{secs / 60:.0f}m" if secs < 7200
            else f"{secs / 3600:.0f}h" if secs < 172800 else f"{secs / 86400:.0f}d")
    return f"in {text}" if future else f"{text} ago"


def _migrate_quietly(settings: config.Settings) -> None:
    with store.session(settings, autocommit=True) as conn:
        store.migrate(conn)


# --- ingest ---------------------------------------------------------------------------------

@main.command("ingest")
@click.option("--once", is_flag=True, required=True, help="Run one cycle and exit (Airflow schedules the rest).")
@click.option("--no-progress", is_flag=True, help="No progress bar (for logs).")
@click.pass_obj
@_friendly
def ingest_cmd(settings: config.Settings, once: bool, no_progress: bool) -> None:
    """One ingestion cycle: sync feeds -> poll -> fetch pages, then a summary."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    _migrate_quietly(settings)
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} done"),
                  TimeElapsedColumn(), console=console, disable=no_progress or not console.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, n: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=None)
            bar.advance(tasks[stage], n)

        run_key, results = ingest.ingest_once(settings, progress=progress)
    table = Table(title=f"ingest run {run_key}")
    table.add_column("stage")
    table.add_column("counts")
    table.add_column("errors")
    table.add_column("seconds", justify="right")
    for r in results:
        table.add_row(r.stage, ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()) if v),
                      ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())), f"{r.seconds:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
