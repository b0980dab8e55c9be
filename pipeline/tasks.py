"""What the Airflow DAGs call: one function per task, settings read here, JSON-able results.

Keeps the DAG files to wiring. Results carry ids and counts, never article bodies (XCom).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from pipeline import config, ingest, quality, store
from pipeline.errors import NewsroomError
from pipeline.states import RunStatus

log = logging.getLogger(__name__)

FEEDS_PER_SHARD = 250
MAX_SHARDS = 16


class QualityCheckFailed(NewsroomError):
    """A run's quality check found something wrong; the message says what."""


class RunFailed(NewsroomError):
    """A task of the run failed although the later stages ran; the message says which."""


def _settings() -> config.Settings:
    return config.load()


def begin(run_key: str, trigger: str) -> str:
    ingest.begin_run(_settings(), run_key, trigger)
    return run_key


def sync() -> dict:
    return ingest.sync_feeds(_settings()).as_dict()


def plan_poll_shards(*, feeds_per_shard: int = FEEDS_PER_SHARD, max_shards: int = MAX_SHARDS) -> list[dict]:
    """Split the due feeds into shards for mapped poll tasks (never one task per feed)."""
    with store.db.session(_settings()) as conn:
        due = store.feeds.count_due_feeds(conn)
    n = max(1, min(max_shards, math.ceil(due / feeds_per_shard)))
    return [{"shard": i, "shards": n} for i in range(n)]


def plan_workers() -> list[int]:
    """Worker numbers for the mapped CPU stages; each worker claims its own batches."""
    return list(range(_settings().stage_workers))


def poll(shard: int, shards: int, run_key: str | None = None) -> dict:
    return ingest.poll_feeds(_settings(), shard=shard, shards=shards, run_key=run_key).as_dict()


def fetch(run_key: str | None = None) -> dict:
    return ingest.fetch_pages(_settings(), run_key=run_key).as_dict()


def extract(run_key: str | None = None) -> dict:
    return ingest.extract_pages(_settings(), run_key=run_key).as_dict()


def tag(run_key: str | None = None) -> dict:
    return ingest.tag_articles(_settings(), run_key=run_key).as_dict()


def cluster() -> dict:
    return ingest.cluster_articles(_settings()).as_dict()


def _flatten(results: Sequence) -> list[dict]:
    out: list[dict] = []
    for r in results:
        if isinstance(r, dict):
            out.append(r)
        elif r is not None:  # a mapped task's list of results
            out.extend(_flatten(list(r)))
    return out


def check(run_key: str, results: Sequence) -> list[dict]:
    """Run the quality checks; raise QualityCheckFailed (failing the task loudly) on an error."""
    settings = _settings()
    flat = _flatten(results)
    checks = ingest.check_quality(settings, flat)
    failed = quality.failures(checks)
    as_dicts = [{"name": c.name, "severity": c.severity, "message": c.message} for c in checks]
    if failed:
        ingest.record_run(settings, run_key, flat, status=RunStatus.FAILED, checks=checks)
        raise QualityCheckFailed("; ".join(f"{c.name}: {c.message}" for c in failed))
    return as_dicts


def summarise(run_key: str, results: Sequence, checks: Sequence[dict] | None) -> dict:
    """Write the run's `ingest_runs` row and log a compact table; return the counts. Raises
    RunFailed when a task of the run failed (its reason is already on the row), so the run ends
    failed although every stage that could run did. A run that brought in nothing new says why
    (no feed was due and when the next is, or what the polled feeds answered), in the log and
    in the row's details."""
    settings = _settings()
    flat = _flatten(results)
    # No verdicts when quality_checks itself failed: judge again, so the row keeps them.
    verdicts = [quality.Check(**c) for c in checks] if checks is not None else ingest.check_quality(settings, flat)
    poll = ingest.poll_counts(flat)
    polling = ingest.polling_note(poll, ingest.poll_schedule(settings) if not poll["polled"] else None)
    counts, status, reasons = ingest.record_run(settings, run_key, flat, status=RunStatus.SUCCESS, checks=verdicts,
                                                with_outcome=True, polling=polling)
    with store.db.session(settings) as conn:
        top = store.runs.top_topics_of_run(conn, run_key)
    log.info("\n%s", "\n".join(summary_lines(run_key, counts, top, verdicts, reasons, polling)))
    if status == RunStatus.FAILED:
        raise RunFailed("; ".join(reasons) or "a task of this run failed (see ingest_runs.errors)")
    return {**counts, "top_topics": dict(top), **({"polling": polling} if polling else {})}


def summary_lines(run_key: str, counts: dict, top: Sequence[tuple[str, int]], verdicts: Sequence[quality.Check],
                  reasons: Sequence[str], polling: str | None) -> list[str]:
    """The summary table of a run, for the task log: a label column as wide as its longest
    label, then the values; topic slugs come after their right-aligned counts, so a long slug
    never pushes a column."""
    rows: list[tuple[str, str]] = [
        ("feeds ok / failed", f"{counts['feeds_ok']} / {counts['feeds_failed']}"),
        ("new articles", str(counts["articles_new"])), ("pages fetched", str(counts["pages_fetched"])),
        ("extracted", str(counts["articles_extracted"])), ("tagged", str(counts["articles_tagged"])),
        ("failed", str(counts["articles_failed"])),
    ]
    if polling:
        rows.append(("nothing new", _one_line(polling)))
    digits = max((len(str(n)) for _, n in top), default=0)
    rows += [("top topics" if i == 0 else "", f"{n:>{digits}}  {slug}") for i, (slug, n) in enumerate(top)]
    rows += [(f"check {c.name}", _one_line(f"{c.severity}: {c.message}")) for c in verdicts if c.severity != "ok"]
    rows += [("failed task", _one_line(r)) for r in reasons]
    width = max(len(label) for label, _ in rows) + 2
    return [f"Newsroom run {run_key}"] + [f"  {label:<{width}}{value}" for label, value in rows]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def mark_failed(run_key: str, reason: str) -> None:
    """From a failure callback: the run's row says failed, with the reason."""
    try:
        with store.db.session(_settings()) as conn:
            store.runs.fail_run(conn, run_key, reason)
    except NewsroomError as exc:  # the database itself may be what failed
        log.error("could not record the failure of run %s: %s", run_key, exc)


def reprocess(since: str | None, stages: Sequence[str], limit: int | None = None, run_id: str | None = None) -> dict:
    """news_retag. With `run_id` (the DAG run's) the run gets an `ingest_runs` row like an
    ingest run's, with what it extracted and tagged: the run's "This run" tab in the UI shows it."""
    from pipeline.queries import parse_since
    from pipeline.queries import run_key as key_of

    settings = _settings()
    run_key = key_of("news_retag", run_id) if run_id else None
    if run_key:
        ingest.begin_run(settings, run_key, "retag")
    try:
        # parse_since, like the CLI: a date means midnight UTC, never the server's local time
        out = ingest.reprocess(settings, since=parse_since(since) if since else None, stages=tuple(stages),
                               limit=limit or None)
    except Exception as exc:
        if run_key:
            mark_failed(run_key, f"reprocess: {_one_line(str(exc))}")
        raise
    if run_key:
        results = [{"stage": stage, "counts": {k: v for k, v in counts.items() if k != "selected"}}
                   for stage, counts in out.items() if stage in ("extract", "tag")]
        ingest.record_run(settings, run_key, results, status=RunStatus.SUCCESS)
    return out


def backfill(sitemaps: Sequence[str] = (), urls: Sequence[str] = (), since: str | None = None,
             until: str | None = None, limit: int | None = None) -> dict:
    """news_backfill: enqueue the articles of `sitemaps` and `urls` as backlog; counts only.
    A sitemap given that fails raises (nothing enqueued); one of an index is logged and counted."""
    from pipeline import backfill as backfill_

    dates = backfill_.date_range(since or None, until or None)
    result = backfill_.run(_settings(), sitemaps_given=list(sitemaps or ()), urls=list(urls or ()), dates=dates,
                           limit=limit or None)
    log.info("backfill: %s", result.summary())
    return result.as_dict()


# --- news_maintenance ------------------------------------------------------------------------

def prune() -> dict:
    """Delete raw pages and feed polls older than NEWSROOM_PRUNE_RAW_PAGES_AFTER and
    NEWSROOM_PRUNE_POLLS_AFTER (store/maintenance.py says which); counts and bytes freed."""
    from datetime import UTC, datetime

    settings = _settings()
    now = datetime.now(UTC)
    with store.db.session(settings, autocommit=True) as conn:
        done = store.maintenance.prune(conn, raw_pages_before=now - settings.prune_raw_pages_after,
                                       polls_before=now - settings.prune_polls_after)
    log.info("pruned %d raw pages (%d bytes) older than %s and %d feed polls older than %s", done.raw_pages,
             done.raw_page_bytes, config.format_duration(settings.prune_raw_pages_after), done.polls,
             config.format_duration(settings.prune_polls_after))
    return done.as_dict()


def vacuum_analyze() -> list[str]:
    """VACUUM (ANALYZE) the big tables; returns their names."""
    with store.db.session(_settings(), autocommit=True) as conn:
        return store.maintenance.vacuum_analyze(conn)


def log_table_sizes() -> dict:
    """Log one line per table (rows, heap, TOAST, indexes, total); return {table: {rows, bytes}}."""
    with store.db.session(_settings()) as conn:
        sizes = store.maintenance.table_sizes(conn)
    for t in sizes:
        log.info("table %-18s rows %10d  heap %10d  toast %12d  indexes %10d  total %12d bytes", t.table, t.rows,
                 t.heap, t.toast, t.indexes, t.total)
    return {t.table: {"rows": t.rows, "bytes": t.total} for t in sizes}
