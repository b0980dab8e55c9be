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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline import feeds, fetch, quality, store
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


def _claimed_batches(conn, settings: Settings, status: str, result: StageResult, *, limit: int, batch_size: int,
                     ids: Sequence[int] | None) -> Iterator[list]:
    """Lease batches of articles in `status` until none are left or `limit` were taken; each
    claim is committed at once so other workers see it."""
    while result.counts["claimed"] < limit:
        claimed = store.claim_articles(conn, status, lease_seconds=settings.claim_lease,
                                       limit=min(batch_size, limit - result.counts["claimed"]), ids=ids)
        conn.commit()
        if not claimed:
            return
        result.counts["claimed"] += len(claimed)
        yield claimed


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
        due = store.claim_due_feeds(conn, limit=limit, lease_seconds=max(settings.claim_lease, 60), shard=shard,
                                    shards=shards, feed_ids=feed_ids)
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


def fetch_pages(settings: Settings, *, limit: int = 1_000_000, batch_size: int = 200,
                ids: Sequence[int] | None = None, limiter: fetch.HostLimiter | None = None,
                progress: Progress = _noop) -> StageResult:
    """Download pages of newly discovered articles, batch by batch, until none are left."""
    t0 = time.monotonic()
    result = StageResult("fetch")
    limiter = limiter or fetch.HostLimiter(settings.per_host_concurrency, settings.per_host_delay)
    robots = fetch.RobotsCache(settings, limiter)
    with store.session(settings) as conn:
        batches = _claimed_batches(conn, settings, "discovered", result, limit=limit, batch_size=batch_size, ids=ids)
        for claimed in batches:

            async def run(claimed=claimed) -> None:
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
                    # Each page on its own: a crash loses at most the downloads in flight.
                    conn.commit()
                    progress("fetch", 1)

            asyncio.run(run())
    result.seconds = time.monotonic() - t0
    log.info("fetched pages: %s; errors %s", dict(result.counts), dict(result.errors))
    return result


def extract_pages(settings: Settings, *, limit: int = 100_000, batch_size: int = 50,
                  ids: Sequence[int] | None = None, progress: Progress = _noop) -> StageResult:
    """Extract clean text from stored pages (no network). A page without a usable body ends
    `failed` with the reason. Each text gets its near-duplicate fingerprint for `cluster_articles`."""
    from pipeline import dedup
    from pipeline.extract import ExtractionFailed, extract_article

    t0 = time.monotonic()
    result = StageResult("extract")
    with store.session(settings) as conn:
        batches = _claimed_batches(conn, settings, "fetched", result, limit=limit, batch_size=batch_size, ids=ids)
        for claimed in batches:
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
                    fp = dedup.fingerprint(ex.text)
                    store.save_extraction(conn, a.id, ex, (fp.signature, fp.bands) if fp else None)
                    result.counts["extracted"] += 1
            conn.commit()
            progress("extract", len(claimed))
    result.seconds = time.monotonic() - t0
    log.info("extracted: %s; failures %s", dict(result.counts), dict(result.errors))
    return result


def tag_articles(settings: Settings, *, limit: int = 100_000, batch_size: int = 64,
                 ids: Sequence[int] | None = None, progress: Progress = _noop) -> StageResult:
    """Entities (spaCy + gazetteer) and topics (rules) for extracted articles. Old annotations are
    replaced atomically (one transaction per batch), stamped with the model and rules versions."""
    from pipeline import nlp, topics

    t0 = time.monotonic()
    result = StageResult("tag")
    rules = topics.load_rules(settings.topics_file)
    version = nlp.model_version(nlp.load_nlp(settings.spacy_model, settings.gazetteer_file))
    with store.session(settings) as conn:
        topic_ids = store.upsert_topics(conn, topics.topic_defs(rules))
        conn.commit()
        batches = _claimed_batches(conn, settings, "extracted", result, limit=limit, batch_size=batch_size, ids=ids)
        for claimed in batches:
            texts = store.load_texts(conn, [a.id for a in claimed])
            for a in claimed:
                if a.id not in texts:
                    store.record_failure(conn, a.id, stage="tag", error="no_body: nothing to tag", transient=False,
                                         max_attempts=settings.max_fetch_attempts)
                    result.counts["failed"] += 1
            order = [a.id for a in claimed if a.id in texts]
            # batch_size 8: the same speed as 32 at about half the peak memory (bench/nlp_bench.py)
            mentions = nlp.tag_entities([texts[i][1] for i in order], model=settings.spacy_model,
                                        gazetteer=settings.gazetteer_file, batch_size=8)
            # The batch's annotations replace the old ones in one transaction: one entity upsert,
            # one DELETE and one COPY for all mentions (the per-article path was 3x slower).
            entity_ids = store.upsert_entities(conn, (m for ms in mentions for m in ms))
            result.counts["mentions"] += store.replace_mentions_many(conn, dict(zip(order, mentions, strict=True)),
                                                                     version, entity_ids)
            for article_id, found in zip(order, mentions, strict=True):
                title, body = texts[article_id]
                tags = topics.tag_topics(body, found, rules, title=title)
                store.replace_topics(conn, article_id, tags, rules.version, topic_ids)
                store.mark_tagged(conn, article_id, nlp_version=version, rules_version=rules.version)
                result.counts["tagged"] += 1
                result.counts["topic_tags"] += len(tags)
                for t in tags:
                    result.counts[f"topic:{t.slug}"] += 1
            conn.commit()
            progress("tag", len(claimed))
    result.seconds = time.monotonic() - t0
    log.info("tagged %d articles with %d mentions and %d topic tags (%s, rules %s)", result.counts["tagged"],
             result.counts["mentions"], result.counts["topic_tags"], version, rules.version)
    return result


def cluster_articles(settings: Settings, *, batch_size: int = 500) -> StageResult:
    """Syndicated copies get one cluster id; the earliest copy is marked the original."""
    from pipeline import dedup

    t0 = time.monotonic()
    result = StageResult("cluster")
    with store.session(settings) as conn:
        while True:
            counts = store.cluster_pending(conn, min_similarity=dedup.SIMILARITY, limit=batch_size)
            conn.commit()
            result.counts.update(counts)
            if counts["clustered"] < batch_size:
                break
    result.seconds = time.monotonic() - t0
    log.info("clustered: %s", dict(result.counts))
    return result


def reprocess(settings: Settings, *, since: datetime | None = None, stages: Sequence[str] = ("tag",),
              ids: Sequence[int] | None = None) -> dict[str, dict]:
    """Re-run extraction and/or tagging from stored pages, without the network. Each article's
    annotations are replaced in one transaction by the stage; nothing is deleted beforehand."""
    out: dict[str, dict] = {}
    first = "extract" if "extract" in stages else "tag"
    with store.session(settings) as conn:
        chosen = store.select_for_reprocessing(conn, stage=first, since=since, ids=ids)
    log.info("re-processing %d articles from the %s stage", len(chosen), first)
    if not chosen:
        return {first: {"selected": 0}}
    if "extract" in stages:
        out["extract"] = {"selected": len(chosen), **extract_pages(settings, ids=chosen).counts}
        out["cluster"] = dict(cluster_articles(settings).counts)
    if "tag" in stages:
        out["tag"] = {"selected": len(chosen), **tag_articles(settings, ids=chosen).counts}
    return out


def new_run_key(trigger: str) -> str:
    return f"{trigger}__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}__{uuid.uuid4().hex[:6]}"


def ingest_once(settings: Settings, *, run_key: str | None = None, trigger: str = "cli",
                progress: Progress = _noop) -> tuple[str, list[StageResult], list[quality.Check]]:
    """One full cycle, recorded as one `ingest_runs` row, with the quality checks' verdicts."""
    run_key = run_key or new_run_key(trigger)
    begin_run(settings, run_key, trigger)
    limiter = fetch.HostLimiter(settings.per_host_concurrency, settings.per_host_delay)
    results: list[StageResult] = []
    checks: list[quality.Check] = []
    status = "failed"
    try:
        results.append(sync_feeds(settings))
        results.append(poll_feeds(settings, limiter=limiter, progress=progress))
        results.append(fetch_pages(settings, limiter=limiter, progress=progress))
        results.append(extract_pages(settings, progress=progress))
        results.append(tag_articles(settings, progress=progress))
        results.append(cluster_articles(settings))
        checks = check_quality(settings, [r.as_dict() for r in results])
        status = "failed" if quality.failures(checks) else "success"
    finally:
        record_run(settings, run_key, [r.as_dict() for r in results], status=status, checks=checks)
    return run_key, results, checks


def begin_run(settings: Settings, run_key: str, trigger: str) -> int:
    with store.session(settings) as conn:
        return store.start_run(conn, run_key, trigger)


def _stage_counts(results: Sequence[dict], stage: str) -> Counter:
    """Counts of one stage, summed over its parts (mapped poll shards)."""
    total: Counter = Counter()
    for r in results:
        if r.get("stage") == stage:
            total.update(r.get("counts", {}))
    return total


def check_quality(settings: Settings, results: Sequence[dict]) -> list[quality.Check]:
    poll, extract = _stage_counts(results, "poll"), _stage_counts(results, "extract")
    with store.session(settings) as conn:
        facts = quality.Facts(
            feeds_polled=poll["polled"], feeds_ok=poll["ok"] + poll["not_modified"],
            last_feed_success=store.last_feed_success(conn),
            extract_attempted=extract["extracted"] + extract["failed"], extract_succeeded=extract["extracted"],
            stuck=store.stuck_articles(conn, settings.qc_stuck_hours), now=store.now(conn))
    checks = quality.evaluate(facts, min_extract_rate=settings.qc_min_extract_rate,
                              stuck_hours=settings.qc_stuck_hours)
    for c in checks:
        log.log(logging.ERROR if c.severity == "error" else logging.WARNING if c.severity == "warning"
                else logging.INFO, "quality check %s: %s: %s", c.name, c.severity, c.message)
    return checks


def record_run(settings: Settings, run_key: str, results: Sequence[dict], *, status: str,
               checks: Sequence[quality.Check] = ()) -> dict[str, int]:
    """Final counts of a run into its `ingest_runs` row; returns them."""
    poll, fetched = _stage_counts(results, "poll"), _stage_counts(results, "fetch")
    extracted, tagged = _stage_counts(results, "extract"), _stage_counts(results, "tag")
    counts = {
        "feeds_polled": poll["polled"], "feeds_ok": poll["ok"] + poll["not_modified"],
        "feeds_failed": poll["error"], "articles_new": poll["new_articles"],
        "pages_fetched": fetched["fetched"], "pages_failed": fetched["failed"],
        "articles_extracted": extracted["extracted"], "articles_tagged": tagged["tagged"],
        "articles_failed": extracted["failed"] + tagged["failed"],
    }
    errors = [{"stage": r["stage"], "error_class": k, "count": v}
              for r in results for k, v in r.get("errors", {}).items()]
    errors += [{"stage": "quality", "check": c.name, "message": c.message} for c in checks if c.severity == "error"]
    durations: Counter = Counter()
    for r in results:
        durations[r["stage"]] += r.get("seconds", 0.0)
    with store.session(settings) as conn:
        store.finish_run(conn, run_key, status=status, counts=counts,
                         durations={k: round(v, 3) for k, v in durations.items()}, errors=errors,
                         details={"stages": [dict(r) for r in results],
                                  "checks": [{"name": c.name, "severity": c.severity, "message": c.message}
                                             for c in checks]})
    return counts
