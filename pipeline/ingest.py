"""The stages, wired to the database: each claims its own work from Postgres, does it, and
records the outcome per item. A stage can run in several workers at once, be killed, and be
re-run: claims are leases (FOR UPDATE SKIP LOCKED), every write is an upsert.

The CLI (`newsroom ingest --once`) and the Airflow DAG tasks both call these functions.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline import feeds, fetch, store
from pipeline.config import Settings

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (stage, items just done)
FLUSH_EVERY = 100


def _noop(stage: str, n: int) -> None:
    pass


@dataclass(slots=True)
class StageResult:
    """Counts from one stage; what XCom and `ingest_runs` carry (never bodies)."""

    stage: str
    counts: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # error_class -> n
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"stage": self.stage, "counts": dict(self.counts), "errors": dict(self.errors),
                "seconds": round(self.seconds, 3)}


def sync_feeds(settings: Settings) -> StageResult:
    """Upsert the feed list into `feeds`; feeds no longer listed are disabled, never deleted."""
    t0 = time.monotonic()
    specs = feeds.load_feed_list(settings.feeds_file)
    with store.session(settings) as conn:
        counts = store.upsert_feeds(conn, specs)
    log.info("feeds synced from %s: %s", settings.feeds_file, counts)
    return StageResult("sync", Counter(counts), seconds=time.monotonic() - t0)


def poll_feeds(settings: Settings, *, shard: int = 0, shards: int = 1, limit: int = 100_000,
               feed_ids: Sequence[int] | None = None, limiter: fetch.HostLimiter | None = None,
               progress: Progress = _noop) -> StageResult:
    """Poll due feeds (this shard's), record every poll and its entries."""
    t0 = time.monotonic()
    result = StageResult("poll")
    limiter = limiter or fetch.HostLimiter(settings.per_host_concurrency, settings.per_host_delay)
    with store.session(settings) as conn:
        due = store.claim_due_feeds(conn, limit=limit, shard=shard, shards=shards, feed_ids=feed_ids)
        conn.commit()
        if not due:
            return result

        def flush(batch: list) -> None:
            for r in batch:
                new_ids = store.record_poll(conn, r, default_interval=settings.default_poll_interval)
                result.counts["polled"] += 1
                result.counts[r.outcome] += 1
                result.counts["entries"] += len(r.entries)
                result.counts["new_articles"] += len(new_ids)
                if r.error_class:
                    result.errors[r.error_class] += 1
            conn.commit()
            progress("poll", len(batch))
            batch.clear()

        async def run() -> None:
            batch: list = []
            async for r in fetch.poll_feeds(due, settings, limiter):
                batch.append(r)
                if len(batch) >= FLUSH_EVERY:
                    flush(batch)
            flush(batch)

        asyncio.run(run())
    result.seconds = time.monotonic() - t0
    log.info("polled %d feeds: %s; errors %s", result.counts["polled"], dict(result.counts), dict(result.errors))
    return result


def fetch_pages(settings: Settings, *, limit: int = 10_000, batch_size: int = 200,
                ids: Sequence[int] | None = None, limiter: fetch.HostLimiter | None = None,
                progress: Progress = _noop) -> StageResult:
    """Download pages of newly discovered articles, batch by batch, until none are left."""
    t0 = time.monotonic()
    result = StageResult("fetch")
    limiter = limiter or fetch.HostLimiter(settings.per_host_concurrency, settings.per_host_delay)
    robots = fetch.RobotsCache(settings, limiter)
    with store.session(settings) as conn:
        while result.counts["claimed"] < limit:
            claimed = store.claim_articles(conn, "discovered", limit=min(batch_size, limit - result.counts["claimed"]),
                                           ids=ids)
            conn.commit()
            if not claimed:
                break
            result.counts["claimed"] += len(claimed)

            async def run(claimed=claimed) -> None:
                done = 0
                async for article, outcome in fetch.fetch_pages(claimed, settings, limiter, robots):
                    if isinstance(outcome, fetch.FetchError):
                        status = store.record_failure(
                            conn, article.id, stage="fetch", error=f"{outcome.error_class}: {outcome}",
                            transient=outcome.transient, max_attempts=settings.max_fetch_attempts,
                            retry_after_s=max(60.0, outcome.retry_after or 300.0))
                        result.counts["failed" if status == "failed" else "retry_later"] += 1
                        result.errors[outcome.error_class] += 1
                    else:
                        store.store_page(conn, outcome)
                        result.counts["fetched"] += 1
                    done += 1
                    if done % 20 == 0:
                        conn.commit()
                        progress("fetch", 20)
                conn.commit()
                progress("fetch", done % 20)

            asyncio.run(run())
    result.seconds = time.monotonic() - t0
    log.info("fetched pages: %s; errors %s", dict(result.counts), dict(result.errors))
    return result


def extract_pages(settings: Settings, *, limit: int = 100_000, batch_size: int = 50,
                  ids: Sequence[int] | None = None, progress: Progress = _noop) -> StageResult:
    """Extract clean text from stored pages (no network). A page without a usable body ends
    `failed` with the reason; near-duplicates join the cluster of their earliest copy."""
    from pipeline import dedup
    from pipeline.extract import ExtractionFailed, extract_article

    t0 = time.monotonic()
    result = StageResult("extract")
    with store.session(settings) as conn:
        while result.counts["claimed"] < limit:
            claimed = store.claim_articles(conn, "fetched", limit=min(batch_size, limit - result.counts["claimed"]),
                                           ids=ids)
            conn.commit()
            if not claimed:
                break
            result.counts["claimed"] += len(claimed)
            for a in claimed:
                with conn.transaction():
                    html = store.load_page(conn, a.id)
                    try:
                        if html is None:
                            raise ExtractionFailed("empty_html", "no stored page")
                        ex = extract_article(html, url=a.final_url or a.url, feed_published=a.feed_published_at,
                                             feed_summary=a.summary, feed_title=a.title)
                    except ExtractionFailed as exc:
                        store.record_failure(conn, a.id, stage="extract", error=f"{exc.reason}: {exc}",
                                             transient=False, max_attempts=settings.max_fetch_attempts)
                        result.counts["failed"] += 1
                        result.errors[exc.reason] += 1
                        continue
                    except Exception as exc:  # an extractor bug on one odd page must not stop the batch
                        log.exception("extractor crashed on article %s (%s)", a.id, a.url)
                        store.record_failure(conn, a.id, stage="extract",
                                             error=f"extractor_error: {type(exc).__name__}: {exc}",
                                             transient=False, max_attempts=settings.max_fetch_attempts)
                        result.counts["failed"] += 1
                        result.errors["extractor_error"] += 1
                        continue
                    store.save_extraction(conn, a.id, ex)
                    fp = dedup.fingerprint(ex.text)
                    _, original = store.assign_cluster(conn, a.id, fp.signature if fp else None,
                                                       fp.bands if fp else (), min_similarity=dedup.SIMILARITY)
                    result.counts["extracted"] += 1
                    result.counts["duplicates"] += not original
            conn.commit()
            progress("extract", len(claimed))
    result.seconds = time.monotonic() - t0
    log.info("extracted: %s; failures %s", dict(result.counts), dict(result.errors))
    return result


def new_run_key(trigger: str) -> str:
    return f"{trigger}__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}__{uuid.uuid4().hex[:6]}"


STAGES = ("sync", "poll", "fetch", "extract")


def ingest_once(settings: Settings, *, run_key: str | None = None, trigger: str = "cli",
                progress: Progress = _noop) -> tuple[str, list[StageResult]]:
    """One full cycle: sync -> poll -> fetch, recorded as one `ingest_runs` row."""
    run_key = run_key or new_run_key(trigger)
    with store.session(settings) as conn:
        store.start_run(conn, run_key, trigger)
    limiter = fetch.HostLimiter(settings.per_host_concurrency, settings.per_host_delay)
    results: list[StageResult] = []
    status = "failed"
    try:
        results.append(sync_feeds(settings))
        results.append(poll_feeds(settings, limiter=limiter, progress=progress))
        results.append(fetch_pages(settings, limiter=limiter, progress=progress))
        results.append(extract_pages(settings, progress=progress))
        status = "success"
    finally:
        record_run(settings, run_key, results, status=status)
    return run_key, results


def record_run(settings: Settings, run_key: str, results: Sequence[StageResult], *, status: str) -> None:
    by = {r.stage: r for r in results}
    poll, fetched, extracted = by.get("poll"), by.get("fetch"), by.get("extract")
    counts = {}
    if poll:
        counts.update(feeds_polled=poll.counts["polled"], feeds_ok=poll.counts["ok"] + poll.counts["not_modified"],
                      feeds_failed=poll.counts["error"], articles_new=poll.counts["new_articles"])
    if fetched:
        counts.update(pages_fetched=fetched.counts["fetched"], pages_failed=fetched.counts["failed"])
    if extracted:
        counts.update(articles_extracted=extracted.counts["extracted"], articles_failed=extracted.counts["failed"])
    errors = [{"stage": r.stage, "error_class": k, "count": v} for r in results for k, v in r.errors.items()]
    with store.session(settings) as conn:
        store.finish_run(conn, run_key, status=status, counts=counts,
                         durations={r.stage: round(r.seconds, 3) for r in results}, errors=errors,
                         details={r.stage: dict(r.counts) for r in results})
