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
    failed although every stage that could run did."""
    settings = _settings()
    flat = _flatten(results)
    # No verdicts when quality_checks itself failed: judge again, so the row keeps them.
    verdicts = [quality.Check(**c) for c in checks] if checks is not None else ingest.check_quality(settings, flat)
    counts, status, reasons = ingest.record_run(settings, run_key, flat, status=RunStatus.SUCCESS, checks=verdicts,
                                                with_outcome=True)
    with store.db.session(settings) as conn:
        top = store.runs.top_topics_of_run(conn, run_key)
    lines = [f"Newsroom run {run_key}", f"{'feeds ok / failed':<22}{counts['feeds_ok']} / {counts['feeds_failed']}",
             f"{'new articles':<22}{counts['articles_new']}", f"{'pages fetched':<22}{counts['pages_fetched']}",
             f"{'extracted':<22}{counts['articles_extracted']}", f"{'tagged':<22}{counts['articles_tagged']}",
             f"{'failed':<22}{counts['articles_failed']}"]
    lines += [f"{'topic ' + slug:<22}{n}" for slug, n in top]
    lines += [f"{'check ' + c.name:<22}{c.severity}: {c.message}" for c in verdicts if c.severity != "ok"]
    lines += [f"{'failed task':<22}{r}" for r in reasons]
    log.info("\n%s", "\n".join(lines))
    if status == RunStatus.FAILED:
        raise RunFailed("; ".join(reasons) or "a task of this run failed (see ingest_runs.errors)")
    return {**counts, "top_topics": dict(top)}


def mark_failed(run_key: str, reason: str) -> None:
    """From a failure callback: the run's row says failed, with the reason."""
    try:
        with store.db.session(_settings()) as conn:
            store.runs.fail_run(conn, run_key, reason)
    except NewsroomError as exc:  # the database itself may be what failed
        log.error("could not record the failure of run %s: %s", run_key, exc)


def reprocess(since: str | None, stages: Sequence[str], limit: int | None = None) -> dict:
    from pipeline.queries import parse_since

    # parse_since, like the CLI: a date means midnight UTC, never the server's local time
    return ingest.reprocess(_settings(), since=parse_since(since) if since else None, stages=tuple(stages),
                            limit=limit or None)
