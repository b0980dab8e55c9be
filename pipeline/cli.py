"""The `newsroom` command. Thin: parses arguments, calls one pipeline function, prints results."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path

import click

from pipeline import config, embedded, feedlists, feeds, ingest, periods, quality, store
from pipeline.cli_support import (
    FORMATS,
    empty_result,
    friendly,
    print_csv,
    print_json,
    terminal_text,
)
from pipeline.errors import ConfigError
from pipeline.states import DisabledReason
from pipeline.urls import feed_lookup_key

log = logging.getLogger(__name__)


def _setup_logging(level: str) -> None:
    # The CLI owns its handlers; inside Airflow, Airflow does.
    root = logging.getLogger("pipeline")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option("--demo", is_flag=True,
              help="Use the demo's own database and feeds (what `newsroom demo` wrote), not yours.")
@click.pass_context
def main(ctx: click.Context, verbose: bool, demo: bool) -> None:
    """Newsroom: feeds -> pages -> clean text -> entities and topics -> PostgreSQL."""
    try:
        settings = config.load()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    _setup_logging("DEBUG" if verbose else settings.log_level)
    ctx.obj = config.demo_settings(settings) if demo else settings


# --- db -------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """The database: DSN, embedded server, migrations."""


@db.command("url")
@click.pass_obj
@friendly
def db_url(settings: config.Settings) -> None:
    """Print the DSN in use (starting the embedded server if that is the one)."""
    click.echo(store.db.resolve_dsn(settings))


@db.command("start")
@click.pass_obj
@friendly
def db_start(settings: config.Settings) -> None:
    """Start the embedded server (no-op when NEWSROOM_DATABASE_URL is set)."""
    if not settings.embedded:
        click.echo("NEWSROOM_DATABASE_URL is set; not starting the embedded server")
        return
    click.echo(store.db.resolve_dsn(settings))


@db.command("stop")
@click.pass_obj
@friendly
def db_stop(settings: config.Settings) -> None:
    """Stop the embedded server."""
    was_running = embedded.stop(settings.pgdata)
    store.db.forget_dsn(settings)
    click.echo("stopped" if was_running else "not running")


_STATUS_TIMEOUT = 5  # seconds `db status` waits for a server before calling it unreachable


@db.command("status")
@click.pass_obj
@friendly
def db_status(settings: config.Settings) -> None:
    """Whether the database answers, its server version and migrations; for the embedded server
    also where its data lives. Exit 1 when an external server is unreachable (the reason on
    stderr), 3 when the embedded server is not running."""
    if not settings.embedded:
        dsn = store.db.resolve_dsn(settings)  # a malformed or non-PostgreSQL URL: exit 2
        click.echo(f"external database: {store.db.redact(dsn)}")
        _db_details(dsn)
        return
    st = embedded.status(settings.pgdata)
    state = "running" if st.running else ("stopped" if st.initialised else "not initialised")
    click.echo(f"embedded postgres: {state}")
    click.echo(f"data: {st.pgdata}")
    if st.running:
        click.echo(f"pid: {st.pid}")
        _db_details(store.db.resolve_dsn(settings))
    if not st.running:
        sys.exit(3)


def _db_details(dsn: str) -> None:
    """Connect (briefly) and say what answered; DatabaseUnavailable (exit 1) when nothing does."""
    with store.db.connect(dsn, autocommit=True, timeout=_STATUS_TIMEOUT) as conn:
        version = store.db.server_version(conn)
        applied, pending, unknown = store.migrations.migration_status(conn)
    click.echo(f"reachable: yes (PostgreSQL {version})")
    if pending:
        click.echo(f"migrations: {len(applied)} applied, {len(pending)} pending ({', '.join(pending)}); "
                   "run `newsroom db migrate`")
    else:
        click.echo(f"migrations: all {len(applied)} applied")
    if unknown:
        click.echo(f"migrations this Newsroom does not know (a newer version migrated the database): "
                   f"{', '.join(unknown)}")


@db.command("migrate")
@click.pass_obj
@friendly
def db_migrate(settings: config.Settings) -> None:
    """Apply pending migrations and (re)create views. Safe to run any number of times."""
    with store.db.session(settings, autocommit=True) as conn:
        applied = store.migrate(conn)
        total = len(store.migrations.applied_migrations(conn))
    click.echo(f"applied {len(applied)} migration(s); {total} in place")
    for name in applied:
        click.echo(f"  {name}")


@db.command("sizes")
@click.pass_obj
@friendly
def db_sizes(settings: config.Settings) -> None:
    """Disk use of every table: rows (estimated), heap, TOAST, indexes, total; largest first."""
    with store.db.session(settings) as conn:
        sizes = store.maintenance.table_sizes(conn)
    click.echo(f"{'table':<20}{'rows':>12}{'heap':>11}{'toast':>11}{'indexes':>11}{'total':>11}")
    for t in sizes:
        click.echo(f"{t.table:<20}{t.rows:>12}{_size(t.heap):>11}{_size(t.toast):>11}{_size(t.indexes):>11}"
                   f"{_size(t.total):>11}")
    click.echo(f"{'all':<20}{'':>12}{'':>11}{'':>11}{'':>11}{_size(sum(t.total for t in sizes)):>11}")


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


# --- feeds ----------------------------------------------------------------------------------

@main.group("feeds")
def feeds_group() -> None:
    """The feed list and each feed's health."""


@feeds_group.command("sync")
@click.pass_obj
@friendly
def feeds_sync(settings: config.Settings) -> None:
    """Sync the feeds file (NEWSROOM_FEEDS) into the database: its feeds are added or updated,
    the feeds it no longer lists are disabled. Feeds added with `feeds add` or `feeds import` are
    not the file's: it leaves them alone."""
    _migrate_quietly(settings)
    result = ingest.sync_feeds(settings)
    c = result.counts
    click.echo(f"{c['inserted']} new, {c['updated']} updated, {c['unchanged']} unchanged, "
               f"{c['disabled']} disabled as no longer listed (from {settings.feeds_file})")


@feeds_group.command("add")
@click.argument("url")
@click.option("--name", help="What to call it (default: its URL).")
@click.option("--tags", default="", help="Comma-separated tags, e.g. 'syria,uk'.")
@click.option("--interval", help="Seconds between polls, or 15m / 2h / 1d (default: NEWSROOM_POLL_INTERVAL).")
@click.option("--outlet", help="The publishing site's name (default: each article's site, its domain).")
@click.pass_obj
@friendly
def feeds_add(settings: config.Settings, url: str, name: str | None, tags: str, interval: str | None,
              outlet: str | None) -> None:
    """Add a feed. It is yours: the feeds file's sync never disables it. A URL that is already a
    feed is an error, and nothing changes."""
    spec = feeds.feed_spec(url, name=name, tags=tags, interval=interval, outlet=outlet)
    _migrate_quietly(settings)
    with store.db.session(settings) as conn:
        feed_id = store.feeds.add_feed(conn, spec)
    click.echo(f"added feed #{feed_id} {spec.name!r} ({spec.url}); the next run polls it")


def _set_feed(settings: config.Settings, ident: str, change) -> tuple[dict, str]:
    """(the feed, "now" or "already") after `change(conn, feed)` said whether it changed it."""
    _migrate_quietly(settings)
    with store.db.session(settings) as conn:
        feed = store.feeds.find_feed(conn, feed_lookup_key(ident))
        changed = change(conn, feed)
    return feed, "now" if changed else "already"


@feeds_group.command("remove")
@click.argument("feed")
@click.pass_obj
@friendly
def feeds_remove(settings: config.Settings, feed: str) -> None:
    """Stop polling a feed for good (by id, URL or name). Nothing is deleted: its polls and
    articles stay, and `feeds resume` brings it back."""
    row, word = _set_feed(settings, feed, lambda conn, f: store.feeds.set_disabled(
        conn, f["id"], DisabledReason.REMOVED, "removed with `newsroom feeds remove`"))
    click.echo(f"feed #{row['id']} {row['name']!r} is {word} removed; its history and articles are kept")


@feeds_group.command("pause")
@click.argument("feed")
@click.pass_obj
@friendly
def feeds_pause(settings: config.Settings, feed: str) -> None:
    """Stop polling a feed until `feeds resume` (by id, URL or name)."""
    row, word = _set_feed(settings, feed, lambda conn, f: store.feeds.set_disabled(
        conn, f["id"], DisabledReason.PAUSED, "paused with `newsroom feeds pause`"))
    click.echo(f"feed #{row['id']} {row['name']!r} is {word} paused")


@feeds_group.command("resume")
@click.argument("feed")
@click.pass_obj
@friendly
def feeds_resume(settings: config.Settings, feed: str) -> None:
    """Poll a paused, removed or gone feed again, from the next run (by id, URL or name)."""
    row, word = _set_feed(settings, feed, lambda conn, f: store.feeds.set_enabled(conn, f["id"]))
    click.echo(f"feed #{row['id']} {row['name']!r} is {word} polled" + (" again, from the next run" if word == "now" else ""))


@feeds_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@friendly
def feeds_import(settings: config.Settings, file: Path) -> None:
    """Add the feeds of an OPML file (as feed readers export it) or a YAML feed list. Feeds
    already there are left as they are; a malformed file changes nothing."""
    specs = feedlists.read_feed_list(file)
    _migrate_quietly(settings)
    with store.db.session(settings) as conn:
        counts = store.feeds.import_feeds(conn, specs)
    click.echo(f"{counts['added']} feed(s) added, {counts['known']} already there (from {file})")


@feeds_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["opml", "yaml"]), default="opml", show_default=True)
@click.option("--all", "everything", is_flag=True, help="Also the feeds not polled (paused, removed, gone); the file does not say so.")
@click.pass_obj
@friendly
def feeds_export(settings: config.Settings, fmt: str, everything: bool) -> None:
    """Print the feed list as OPML (for feed readers) or YAML (for NEWSROOM_FEEDS or `feeds import`)."""
    _migrate_quietly(settings)
    with store.db.session(settings) as conn:
        specs = store.feeds.listed_feeds(conn, include_disabled=everything)
    if fmt == "opml":
        sys.stdout.buffer.write(feedlists.to_opml(specs))
        sys.stdout.flush()
    else:
        click.echo(feedlists.to_yaml(specs), nl=False)


_FEED_COLUMNS = ["id", "name", "url", "state", "enabled", "tags", "last_status", "last_http_status",
                 "last_polled_at", "last_success_at", "last_new_article_at", "next_poll_at",
                 "consecutive_failures", "last_error_class", "last_error", "articles", "created_at",
                 "managed_by", "outlet", "disabled_reason", "disabled_at", "disabled_detail", "redirect_url",
                 "redirect_polls", "moved_from"]
_STATE_STYLES = {"failing": "red", "silent": "yellow", "ok": "green", "gone": "red", "moved": "yellow",
                 "disabled": "dim", "paused": "dim", "removed": "dim", "unlisted": "dim"}


@feeds_group.command("status")
@click.option("--failing", is_flag=True, help="Only feeds that are failing or silent.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_obj
@friendly
def feeds_status(settings: config.Settings, failing: bool, fmt: str) -> None:
    """Every feed's health: state, last poll, failure streak, last error.

    Exit 1 when there is no feed to show (none synced, or none failing with --failing); json
    and csv still print a valid empty document then."""
    with store.db.session(settings) as conn:
        rows = store.feeds.feed_health(conn)
        history = store.feeds.url_history(conn)
        now = store.db.now(conn)
    for r in rows:
        r["state"] = feeds.health(r, now)
        r["moved_from"] = [h["url"] for h in history.get(r["id"], [])]
    shown = [r for r in rows if not failing or r["state"] in ("failing", "silent", "gone", "moved")]
    summary = ", ".join(f"{v} {k}" for k, v in sorted(feeds.summarise(rows, now).items()))
    if not shown:
        empty_result(fmt, f"no feed is failing or silent ({summary})" if rows and failing
                     else "no feeds; run `newsroom feeds sync`", _FEED_COLUMNS)
    if fmt == "json":
        print_json([{c: r[c] for c in _FEED_COLUMNS} for r in shown])
        return
    if fmt == "csv":
        print_csv(shown, _FEED_COLUMNS)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Fits 80 columns: the short columns never wrap (about 63 characters with the gaps), the feed
    # column (its name, and its last error below it) takes what is left and folds; a long error
    # is cut to about three lines of it (json and csv carry it whole).
    console = Console(highlight=False)
    error_chars = min(300, max(60, 3 * (console.width - 63)))
    table = Table(title="Feeds", box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  show_edge=False)
    table.add_column("state", no_wrap=True)
    table.add_column("feed", min_width=16, overflow="fold")
    for col in ("polled", "http", "fails", "newest", "next", "articles"):
        table.add_column(col, no_wrap=True, justify="left" if col in ("polled", "newest", "next") else "right")
    for r in shown:
        feed = Text(terminal_text(r["name"] or r["url"]))  # never parsed as markup
        for note, style in _feed_notes(r):
            note = terminal_text(note)
            cut = note if len(note) <= error_chars else note[:error_chars - 1] + "…"
            feed.append("\n" + cut, style=style)
        table.add_row(r["state"], feed, periods.ago(r["last_polled_at"], now), str(r["last_http_status"] or ""),
                      str(r["consecutive_failures"] or ""), periods.ago(r["last_new_article_at"], now),
                      _next_poll(r, now), str(r["articles"]), style=_STATE_STYLES.get(r["state"]))
    console.print(table)
    click.echo(summary)


def _feed_notes(r: dict) -> list[tuple[str, str]]:
    """The lines under a feed's name in `feeds status`: why it is not polled, where it is moving
    or moved from, its last error."""
    notes = []
    if not r["enabled"] and r["disabled_detail"]:
        notes.append((f"{r['disabled_reason']}: {r['disabled_detail']}", "red" if r["state"] == "gone" else "dim"))
    if r["enabled"] and r["redirect_polls"]:
        notes.append((f"redirected for good to {r['redirect_url']} on {r['redirect_polls']} poll(s) in a row", "yellow"))
    if r["moved_from"]:
        notes.append((f"moved from {r['moved_from'][-1]}", "dim"))
    if r["last_error"]:
        notes.append((f"{r['last_error_class']}: {r['last_error']}", "red" if r["state"] == "failing" else "dim"))
    return notes


def _next_poll(row: dict, now) -> str:
    if not row["enabled"]:
        return ""
    return "due" if row["next_poll_at"] <= now else periods.ago(row["next_poll_at"], now)


def _migrate_quietly(settings: config.Settings) -> None:
    with store.db.session(settings, autocommit=True) as conn:
        store.migrate(conn)


# --- ingest ---------------------------------------------------------------------------------

@main.command("ingest")
@click.option("--once", is_flag=True, required=True, help="Run one cycle and exit (Airflow schedules the rest).")
@click.option("--no-progress", is_flag=True, help="No progress bar (for logs).")
@click.pass_obj
@friendly
def ingest_cmd(settings: config.Settings, once: bool, no_progress: bool) -> None:
    """One ingestion cycle: sync feeds -> poll -> fetch -> extract -> tag -> cluster, then a summary."""
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

        run_key, results, checks = ingest.ingest_once(settings, progress=progress)
    table = Table(title=f"ingest run {run_key}")
    table.add_column("stage")
    table.add_column("counts")
    table.add_column("errors")
    table.add_column("seconds", justify="right")
    for r in results:
        table.add_row(r.stage, ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()) if v),
                      ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())), f"{r.seconds:.1f}")
    Console().print(table)
    poll = Counter(next((r.counts for r in results if r.stage == "poll"), {}))
    note = ingest.polling_note(poll, ingest.poll_schedule(settings) if not poll["polled"] else None)
    if note:
        click.echo(f"nothing new: {note}", err=True)
    for c in checks:
        if c.severity != "ok":
            click.echo(f"{c.severity}: {c.name}: {c.message}", err=True)
    if quality.failures(checks):
        sys.exit(1)


# --- files and re-processing ----------------------------------------------------------------

def _read_inputs(files: tuple[str, ...]):
    """(path, text) for each FILE: `-` is stdin, `.gz` is decompressed, bytes are decoded like pages."""
    import gzip
    from pathlib import Path

    from pipeline.fetch import decode_html

    for name in files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            click.echo(f"error: {name}: {exc.strerror}", err=True)
            yield name, None
            continue
        if name.endswith(".gz") or data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                click.echo(f"error: {name}: not valid gzip ({exc})", err=True)
                yield name, None
                continue
        yield name, decode_html(data, None)[0]


@main.command("extract")
@click.argument("files", nargs=-1, required=True)
@click.option("--url", help="The page's URL (helps dates and relative links).")
@friendly
def extract_cmd(files: tuple[str, ...], url: str | None) -> None:
    """Extract articles from HTML FILES (.gz accepted, - for stdin): one JSON object per line."""
    import json

    from pipeline.extract import ExtractionFailed, extract_article

    failed = 0
    for path, html in _read_inputs(files):
        if html is None:
            failed += 1
            continue
        try:
            ex = extract_article(html, url=url)
        except ExtractionFailed as exc:
            click.echo(json.dumps({"path": path, "error": exc.reason, "message": str(exc)}, ensure_ascii=False))
            failed += 1
            continue
        click.echo(json.dumps({"path": path, "title": ex.title, "author": ex.author,
                               "published": ex.published_at.isoformat() if ex.published_at else None,
                               "language": ex.language, "text": ex.text}, ensure_ascii=False))
    sys.exit(1 if failed else 0)


@main.command("tag")
@click.argument("files", nargs=-1, required=True)
@click.option("--language", help="The files' language code (default: detected in HTML, en for plain text); "
              "tagged with its pipeline in NEWSROOM_SPACY_MODELS, with nothing without one.")
@click.pass_obj
@friendly
def tag_cmd(settings: config.Settings, files: tuple[str, ...], language: str | None = None) -> None:
    """Entities and topics of FILES (plain text or HTML): one JSON object per line."""
    import json
    import re

    from pipeline import nlp, topics
    from pipeline.extract import ExtractionFailed, extract_article

    rules = topics.load_rules(settings.topics_file)
    failed = 0
    for path, text in _read_inputs(files):
        if text is None:
            failed += 1
            continue
        title, detected = None, "en"
        if re.match(r"\s*<", text):
            try:
                ex = extract_article(text)
                text, title, detected = ex.text, ex.title, ex.language
            except ExtractionFailed as exc:
                click.echo(json.dumps({"path": path, "error": exc.reason, "message": str(exc)}))
                failed += 1
                continue
        plan = ingest.tag_plan(language.strip().lower() if language else detected, text, settings)
        mentions, tags = [], []
        if plan.model is not None:
            [mentions] = nlp.tag_entities([text], model=plan.model, gazetteer=settings.gazetteer_file,
                                          places=settings.places_file)
            tags = topics.tag_topics(text, mentions, rules, title=title, language=plan.language)
        click.echo(json.dumps({
            "path": path, "language": plan.language, **({"skipped": plan.skipped} if plan.skipped else {}),
            "entities": [{"text": m.surface, "label": m.label, "canonical": m.canonical, "start": m.start,
                          "end": m.end, **({"wikidata": m.wikidata_id} if m.wikidata_id else {}),
                          **{k: v for k, v in (("country", m.country), ("geonames_id", m.geonames_id),
                                               ("iso_code", m.iso_code), ("link_rule", m.rule)) if v}}
                         for m in mentions],
            "topics": [{"slug": t.slug, "score": round(t.score, 3), "evidence": t.evidence} for t in tags],
        }, ensure_ascii=False))
    sys.exit(1 if failed else 0)


@main.command("retag")
@click.option("--since", help="Only articles discovered since then: a date like 2019-10-01, or 7d, 24h.")
@click.option("--stages", default="tag", show_default=True,
              type=click.Choice(["extract", "tag", "extract,tag"]),
              help="Re-run extraction from stored pages, tagging, or both.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many articles, newest first (default: all that match).")
@click.option("--charset", metavar="NAME", default=None,
              help="With --stages extract: decode the chosen pages' stored bytes as NAME (e.g. windows-1252) "
                   "from now on, for pages whose charset the fetch got wrong.")
@click.option("--id", "ids", type=int, multiple=True, help="Only this article (repeatable).")
@click.option("--skipped", is_flag=True,
              help="Only articles tagged without entities or topics for want of a spaCy pipeline for their "
                   "language (after adding one to NEWSROOM_SPACY_MODELS).")
@click.pass_obj
@friendly
def retag_cmd(settings: config.Settings, since: str | None, stages: str, limit: int | None, charset: str | None,
              ids: tuple[int, ...], skipped: bool) -> None:
    """Re-process stored articles after a model, rules or extractor change (no network).

    The articles become backlog: scheduled runs keep taking new articles first."""
    from pipeline.queries import parse_since

    result = ingest.reprocess(settings, since=parse_since(since) if since else None,
                              stages=tuple(stages.split(",")), limit=limit, charset=charset, ids=ids or None,
                              skipped=skipped)
    for stage, counts in result.items():
        click.echo(f"{stage}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v))


# --- backfill -------------------------------------------------------------------------------

@main.command("backfill")
@click.option("--sitemap", "sitemap_urls", multiple=True, metavar="URL",
              help="A sitemap, sitemap index or Google News sitemap (gzipped or not; a plain-text list of URLs "
                   "too). Repeatable.")
@click.option("--urls", "urls_file", metavar="FILE",
              help="A file of article URLs, one per line ('#' comments and blank lines ignored; - for stdin).")
@click.option("--since", help="Only pages published (news sitemaps) or changed (lastmod) since then: a date like "
                              "2019-10-01, a time, or 30d. Undated pages are skipped then.")
@click.option("--until", help="Only pages published or changed before then; a date includes its whole day.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many articles [default and cap: NEWSROOM_BACKFILL_MAX_URLS].")
@click.option("--dry-run", is_flag=True, help="Read and count, but enqueue nothing.")
@click.pass_obj
@friendly
def backfill_cmd(settings: config.Settings, sitemap_urls: tuple[str, ...], urls_file: str | None, since: str | None,
                 until: str | None, limit: int | None, dry_run: bool) -> None:
    """Enqueue a site's older articles, listed by its sitemaps or in a file of URLs.

    Only enqueues: they are backlog, which `newsroom ingest --once` and the news_ingest schedule
    download, extract and tag after any live work. Re-running adds nothing already known.
    A sitemap listed by an index that fails is reported and the others go on; a sitemap given
    here that fails stops the backfill before anything is written."""
    from pipeline import backfill

    if not sitemap_urls and not urls_file:
        raise click.UsageError("give --sitemap URL (repeatable) and/or --urls FILE")
    dates = backfill.date_range(since, until)
    lines = _read_url_list(urls_file) if urls_file else ()
    _migrate_quietly(settings)
    result = backfill.run(settings, sitemaps_given=sitemap_urls, urls=lines, dates=dates, limit=limit, dry_run=dry_run,
                          report=lambda line: click.echo(f"warning: {terminal_text(line)}", err=True))
    click.echo(result.summary())
    if result.invalid:
        click.echo("unusable URLs, e.g.: " + ", ".join(repr(terminal_text(u)[:100]) for u in result.invalid[:3]),
                   err=True)
    if result.sitemaps_skipped:
        click.echo("sitemaps not read: " + ", ".join(f"{v} {k}" for k, v in sorted(result.sitemaps_skipped.items())),
                   err=True)
    if dry_run:
        click.echo("dry run: nothing was enqueued")
    elif result.new:
        click.echo(f"{result.new} articles enqueued as backlog: `newsroom ingest --once` (or the news_ingest "
                   "schedule) downloads them after live work")
    if not result.listed and result.sitemaps_failed:
        sys.exit(1)


MAX_URL_FILE_BYTES = 64 * 2**20  # ~300,000 long URLs: more than a backfill takes (/dev/zero is not a list)


def _read_url_list(name: str) -> list[str]:
    """The lines of a file of URLs (`-`: stdin); UserInputError when it cannot be read as text."""
    from pipeline.errors import UserInputError
    from pipeline.sitemaps import decode

    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_URL_FILE_BYTES + 1)
        else:
            with open(name, "rb") as f:
                data = f.read(MAX_URL_FILE_BYTES + 1)
    except OSError as exc:
        raise UserInputError(f"--urls {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_URL_FILE_BYTES:
        raise UserInputError(f"--urls {name}: larger than {MAX_URL_FILE_BYTES // 2**20} MB; split it")
    text = decode(data)
    if "\x00" in text[:4096]:
        raise UserInputError(f"--urls {name}: binary data, not a text file of URLs")
    return text.splitlines()


# --- retention ------------------------------------------------------------------------------

@main.command("prune")
@click.option("--raw-pages-older-than", "raw_age", metavar="AGE",
              help="Delete stored pages fetched longer ago than AGE (36h, 90d, 12w) "
                   "[default: NEWSROOM_PRUNE_RAW_PAGES_AFTER, 90d].")
@click.option("--polls-older-than", "poll_age", metavar="AGE",
              help="Delete feed poll records older than AGE [default: NEWSROOM_PRUNE_POLLS_AFTER, 180d].")
@click.option("--dry-run", is_flag=True, help="Only count what would go, and the bytes it holds.")
@click.pass_obj
@friendly
def prune_cmd(settings: config.Settings, raw_age: str | None, poll_age: str | None, dry_run: bool) -> None:
    """Delete old raw pages and feed polls, in small batches. Articles, their text, entities,
    mentions and topics stay; only pages of articles past extraction go (a pruned article can
    be re-tagged, not re-extracted). Run VACUUM (the news_maintenance DAG does) to reuse the space."""
    from datetime import UTC, datetime

    pages = config.parse_duration(raw_age, name="--raw-pages-older-than") if raw_age is not None \
        else settings.prune_raw_pages_after
    polls = config.parse_duration(poll_age, name="--polls-older-than") if poll_age is not None \
        else settings.prune_polls_after
    _migrate_quietly(settings)
    now = datetime.now(UTC)
    with store.db.session(settings, autocommit=True) as conn:
        done = store.maintenance.prune(conn, raw_pages_before=now - pages, polls_before=now - polls, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"raw pages older than {config.format_duration(pages)}: {verb} {done.raw_pages} "
               f"({_size(done.raw_page_bytes)})")
    click.echo(f"feed polls older than {config.format_duration(polls)}: {verb} {done.polls} "
               f"({_size(done.poll_bytes)})")


# --- airflow and the demo -------------------------------------------------------------------

@main.group("airflow")
def airflow_group() -> None:
    """Run Newsroom's DAGs in Airflow on Newsroom's own database."""


def _topology_options(command):
    """--executor, --workers, --concurrency, --broker-port: what `up` runs (airflow up and demo)."""
    for option in reversed([
        click.option("--executor", type=click.Choice(["local", "celery"]), default="local", show_default=True,
                     help="local: tasks run beside the scheduler. celery: a broker and Celery workers too, "
                          "the topology of a deployment over several machines (docs/deployment.md)."),
        click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
                     help="Celery workers to start (--executor celery), each serving every queue "
                          "(NEWSROOM_WORKER_QUEUES is for workers on other machines)."),
        click.option("--concurrency", type=click.IntRange(1, 256), default=None,
                     help="Task slots per Celery worker [default: the CPUs this process may use]; each NLP task "
                          "holds a spaCy model (docs/deployment.md sizes it)."),
        click.option("--broker-port", type=click.IntRange(1, 65535), default=6379, show_default=True,
                     help="Loopback port of the Celery broker (--executor celery)."),
    ]):
        command = option(command)
    return command


def _topology(executor: str, workers: int, concurrency: int | None, broker_port: int):
    from pipeline import runner

    if executor != "celery" and (workers != 2 or concurrency or broker_port != 6379):
        raise click.UsageError("--workers, --concurrency and --broker-port need --executor celery")
    return runner.Topology(executor=executor, workers=workers, concurrency=concurrency, broker_port=broker_port)


@airflow_group.command("up")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="Port of Airflow's UI and API (on 127.0.0.1 unless AIRFLOW__API__HOST says otherwise).")
@click.option("--no-trigger", is_flag=True, help="Do not unpause news_ingest and start a first run.")
@_topology_options
@click.pass_obj
@friendly
def airflow_up(settings: config.Settings, port: int, no_trigger: bool, **topology) -> None:
    """Migrate, start Airflow's services (those of docker-compose.yml, as local processes),
    unpause news_ingest and trigger its first run. Ctrl-C stops them all."""
    from pipeline import runner

    sys.exit(runner.up(settings, port=port, trigger=not no_trigger, echo=click.echo, topo=_topology(**topology)))


@airflow_group.command("env")
@click.pass_obj
@friendly
def airflow_env_cmd(settings: config.Settings) -> None:
    """Print `export` lines so the `airflow` CLI talks to this installation."""
    import shlex

    from pipeline import runner

    for key, value in sorted(runner.airflow_env(settings).items()):
        click.echo(f"export {key}={shlex.quote(value)}")


@main.command("demo")
@click.option("--port", default=8765, show_default=True, help="Port of the demo news site.")
@click.option("--once", is_flag=True, help="Run one ingestion cycle against the demo site instead of Airflow.")
@click.option("--reset", is_flag=True, help="Delete the demo's database and Airflow state first, then start afresh.")
@click.option("--airflow-port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="Port of Airflow's UI and API (`airflow up --port`).")
@_topology_options
@click.pass_context
@friendly
def demo_cmd(ctx: click.Context, port: int, once: bool, reset: bool, airflow_port: int, **topology) -> None:
    """Serve a small local news site on 127.0.0.1 and run the pipeline against it.

    The demo keeps its own state (database, feeds, Airflow) under <state dir>/demo, apart from
    yours: ask it questions with `newsroom --demo search ...`. Its articles are dated relative
    to now, and each start publishes one new bulletin, so every run has something to do."""
    from pipeline import demo, runner

    topo = _topology(**topology)
    if once and topo.executor != "local":
        raise click.UsageError("--once runs without Airflow: it takes no --executor")
    # `newsroom --demo demo` has the demo's settings already; otherwise they are made here, always
    # (never inferred from a state directory's name: the demo writes its own feed list).
    settings = ctx.obj if ctx.find_root().params.get("demo") else config.demo_settings(ctx.obj)
    if reset:
        click.echo(demo.reset(settings))
        store.db.forget_dsn(settings)
    site = demo.DemoSite(port=port).start()
    try:
        demo.prepare_state(settings)
        settings.feeds_file.write_text(demo.feeds_yaml(site.base))
        click.echo(f"demo site: {site.base}/  (state: {settings.state_dir.resolve()})")
        _migrate_quietly(settings)
        ingest.sync_feeds(settings)
        with store.db.session(settings) as conn:
            store.feeds.make_all_due(conn)  # the site has just published: poll it now, not in 30 minutes
        ctx.obj = settings
        if once:
            ctx.invoke(ingest_cmd, once=True, no_progress=False)
            click.echo("ask it: newsroom --demo topics | newsroom --demo search Idlib | newsroom --demo articles "
                       "--arrived last-run", err=True)
        else:
            sys.exit(runner.up(settings, port=airflow_port, trigger=True, echo=click.echo, topo=topo))
    finally:
        site.stop()


def _register_query_commands() -> None:
    from pipeline.cli_query import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_query_commands()


if __name__ == "__main__":
    main()
