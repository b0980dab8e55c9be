"""The stages, wired to the database: each claims its own work from Postgres, does it, and
records the outcome per item. A stage can run in several workers at once, be killed, and be
re-run: claims are leases (FOR UPDATE SKIP LOCKED), every write is an upsert.

The CLI (`newsroom ingest --once`) and the Airflow DAG tasks both call these functions.

Why one module of this size: the five stages share one discipline (claim a batch under a
heartbeat, isolate each item, record its failure under its claim: `_claimed_batches`,
`_isolated`, `_failed`), and each stage is a short function over it. The work itself lives in
fetch, extract, nlp, topics and dedup; every write in store/.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from pipeline import dedup, feeds, fetch, quality, store
from pipeline.config import Settings
from pipeline.errors import UserInputError
from pipeline.records import ClaimedArticle, PollResult, StoredPage
from pipeline.states import ArticleStatus, ErrorClass, PollOutcome, RunStatus, Stage

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
    topics: Counter = field(default_factory=Counter)  # topic slug -> articles tagged with it

    def as_dict(self) -> dict:
        # plain str keys: enum members (outcomes, error classes) must not reach XCom or JSON as such
        out = {"stage": self.stage, "counts": {str(k): v for k, v in self.counts.items()},
               "errors": {str(k): v for k, v in self.errors.items()},
               "seconds": round(self.seconds, 3)}
        if self.topics:
            out["topics"] = dict(self.topics)
        return out


def _owner(run_key: str | None, stage: str, part: int | str | None = None) -> str:
    """Who holds a claim: the run, the stage and this process (or a shard, so that a retry of the
    same poll task takes its own crashed claims back at once)."""
    where = part if part is not None else f"{socket.gethostname()}:{os.getpid()}"
    return f"{run_key or 'adhoc'}/{stage}/{where}"


@contextmanager
def _working(settings: Settings) -> Iterator[tuple]:
    """A stage's connection, and the heartbeat that keeps its claims alive while it works."""
    with store.db.session(settings) as conn, store.queue.Heartbeat(store.db.resolve_dsn(settings), settings.claim_lease) as hb:
        yield conn, hb


def _internal(exc: BaseException) -> str:
    return f"internal_error: {type(exc).__name__}: {str(exc)[:500]}"


def _claimed_batches(conn, settings: Settings, stage: Stage, result: StageResult, hb: store.queue.Heartbeat, *,
                     owner: str, limit: int, batch_size: int, ids: Sequence[int] | None,
                     exclude: list[int] | None = None,
                     interleave_hosts: bool = False) -> Iterator[tuple[store.queue.Claim, list[ClaimedArticle]]]:
    """Lease batches of articles for `stage` until none are left or `limit` were taken; each
    claim is committed at once so other workers see it, and kept alive by the heartbeat while
    its batch is worked on. Articles claimed too often end failed first (poison items)."""
    while result.counts["claimed"] < limit:
        claim, claimed = store.queue.claim_articles(
            conn, stage, owner=owner, limit=min(batch_size, limit - result.counts["claimed"]),
            lease_seconds=settings.claim_lease, max_attempts=settings.max_attempts, ids=ids,
            exclude=exclude or (), interleave_hosts=interleave_hosts)
        conn.commit()
        if claim.gave_up:
            result.counts["failed"] += claim.gave_up
            result.errors[ErrorClass.GAVE_UP] += claim.gave_up
            log.warning("%s: %d articles claimed %d times without finishing are now failed",
                        stage, claim.gave_up, settings.max_attempts)
        if not claimed:
            return
        result.counts["claimed"] += len(claimed)
        hb.add(claim.token)
        try:
            yield claim, claimed
        finally:
            hb.remove(claim.token)


def _failed(conn, settings: Settings, result: StageResult, stage: Stage, token: str, article_id: int, error: str, *,
            transient: bool, error_class: ErrorClass, retry_after: float | None = None) -> None:
    """Record one article's failed attempt under its claim, and count it."""
    status = store.queue.record_failure(conn, token, article_id, stage=stage, error=error, transient=transient,
                                      max_attempts=settings.max_attempts,
                                      retry_after_s=max(60.0, retry_after or 300.0))
    if status is None:
        result.counts["stale"] += 1
        return
    result.counts["failed" if status is ArticleStatus.FAILED else "retry_later"] += 1
    result.errors[error_class] += 1


def _isolated(conn, what: str, item_id: int, work: Callable[[], object], on_error: Callable[[str], object]):
    """Run `work` for one item in a savepoint and return its result. An exception that is the
    item's own (not the database's or the machine's) is logged with its traceback and handed to
    `on_error` as "internal_error: Type: message" (its result is returned); the batch goes on."""
    try:
        with conn.transaction():
            return work()
    except Exception as exc:
        if store.db.is_infrastructure(exc):
            raise
        log.exception("%s %s failed", what, item_id)
        with conn.transaction():
            return on_error(_internal(exc))


def _all_or_each(conn, what: str, items: list, *, write: Callable[[list], dict], on_error: Callable,
                 key: Callable = lambda x: x) -> dict:
    """Write `items` at once in one savepoint (`write(items)` -> {key: result}); when one item's
    data breaks that, write each in its own savepoint (`_isolated`), so only the culprit fails
    (`on_error(item, "internal_error: ...")` gives its result) and its batch-mates are written."""
    try:
        with conn.transaction():
            return write(items)
    except Exception as exc:
        if store.db.is_infrastructure(exc):
            raise
        log.warning("writing %s for %d items at once raised %s; writing them one by one", what, len(items),
                    type(exc).__name__)
    out: dict = {}
    for x in items:
        out.update(_isolated(conn, f"writing {what}", key(x), lambda x=x: write([x]),
                             lambda error, x=x: {key(x): on_error(x, error)}))
    return out


def sync_feeds(settings: Settings) -> StageResult:
    """Upsert the feed list into `feeds`; feeds no longer listed are disabled, never deleted."""
    t0 = time.monotonic()
    specs = feeds.load_feed_list(settings.feeds_file)
    with store.db.session(settings) as conn:
        counts = store.feeds.upsert_feeds(conn, specs)
    log.info("feeds synced from %s: %s", settings.feeds_file, counts)
    return StageResult("sync", Counter(counts), seconds=time.monotonic() - t0)


def poll_feeds(settings: Settings, *, shard: int = 0, shards: int = 1, limit: int = 100_000,
               feed_ids: Sequence[int] | None = None, limiter: fetch.HostLimiter | None = None,
               progress: Progress = _noop, run_key: str | None = None,
               resolve: fetch.Resolver | None = None) -> StageResult:
    """Poll due feeds (this shard's), record every poll and its entries. One feed's failure,
    whatever it is, is recorded on that feed; the others go on."""
    t0 = time.monotonic()
    result = StageResult("poll")
    limiter = limiter or _limiter(settings)
    owner = _owner(run_key, "poll", f"shard{shard}of{shards}")
    with _working(settings) as (conn, hb):
        claim, due = store.queue.claim_feeds(conn, owner=owner, limit=limit, lease_seconds=settings.claim_lease,
                                           shard=shard, shards=shards, feed_ids=feed_ids)
        conn.commit()
        if not due:
            leased = store.queue.feeds_leased_now(conn)
            if leased:
                result.counts["leased_elsewhere"] = leased
                log.warning("no feed to poll: %d feeds are claimed by another worker right now", leased)
            return result
        hb.add(claim.token)
        by_id = {f.id: f for f in due}

        def record(r: PollResult) -> list[int] | None:
            return store.feeds.record_poll(conn, r, default_interval=settings.default_poll_interval,
                                           token=claim.token, move_after=settings.feed_move_after)

        crashed: dict[int, PollResult] = {}

        def record_crash(r: PollResult, error: str) -> list[int] | None:
            feed = by_id[r.feed_id]
            delay = feeds.next_poll_delay(failures=feed.consecutive_failures + 1,
                                          interval=feed.poll_interval or settings.default_poll_interval)
            crashed[r.feed_id] = replace(r, outcome=PollOutcome.ERROR, entries=(), error_class=ErrorClass.INTERNAL_ERROR,
                                         error_message=error, transient=True,
                                         next_poll_at=r.finished_at + timedelta(seconds=delay))
            return record(crashed[r.feed_id])

        def count(r: PollResult, new_ids: list[int] | None) -> None:
            result.counts["polled"] += 1
            if new_ids is None:
                result.counts["stale"] += 1
                return
            result.counts[r.outcome.value] += 1  # plain strings: these go to logs, XCom and JSON
            result.counts["entries"] += len(r.entries)
            result.counts["new_articles"] += len(new_ids)
            if r.error_class:
                result.errors[r.error_class.value] += 1

        def flush(batch: list) -> None:
            recorded = _all_or_each(
                conn, "the poll of feed", batch, key=lambda r: r.feed_id, on_error=record_crash,
                write=lambda rs: store.feeds.record_polls(conn, rs, default_interval=settings.default_poll_interval,
                                                          token=claim.token, move_after=settings.feed_move_after))
            for r in batch:
                count(crashed.pop(r.feed_id, r), recorded[r.feed_id])
            conn.commit()
            progress("poll", len(batch))
            batch.clear()

        async def run() -> None:
            batch: list = []
            async for r in fetch.poll_feeds(due, settings, limiter, resolve=resolve):
                batch.append(r)
                if len(batch) >= FLUSH_EVERY:
                    flush(batch)
            flush(batch)

        asyncio.run(run())
    result.seconds = time.monotonic() - t0
    log.info("polled %d feeds: %s; errors %s", result.counts["polled"], dict(result.counts), dict(result.errors))
    return result


def _limiter(settings: Settings) -> fetch.HostLimiter:
    return fetch.HostLimiter(settings.per_host_concurrency, settings.per_host_delay, settings.poll_concurrency)


def fetch_pages(settings: Settings, *, limit: int = 1_000_000, batch_size: int = 200,
                ids: Sequence[int] | None = None, limiter: fetch.HostLimiter | None = None,
                progress: Progress = _noop, run_key: str | None = None,
                resolve: fetch.Resolver | None = None) -> StageResult:
    """Download pages of newly discovered articles, batch by batch, until none are left. A host
    that used up its time budget (NEWSROOM_HOST_BUDGET) keeps its remaining pages for next run."""
    t0 = time.monotonic()
    result = StageResult("fetch")
    limiter = limiter or _limiter(settings)
    robots = fetch.RobotsCache(settings, limiter)
    budget = fetch.HostBudget(settings.host_budget)
    deferred: list[int] = []
    with _working(settings) as (conn, hb):
        batches = _claimed_batches(conn, settings, Stage.FETCH, result, hb, owner=_owner(run_key, "fetch"),
                                   limit=limit, batch_size=batch_size, ids=ids, exclude=deferred,
                                   interleave_hosts=True)
        for claim, claimed in batches:

            def failed(article: ClaimedArticle, error: str, *, transient: bool, retry_after: float | None = None,
                       error_class: ErrorClass, token: str = claim.token) -> None:
                _failed(conn, settings, result, Stage.FETCH, token, article.id, error, transient=transient,
                        error_class=error_class, retry_after=retry_after)

            def one(article: ClaimedArticle, outcome, token: str = claim.token) -> None:
                if isinstance(outcome, fetch.Deferred):
                    store.queue.release(conn, token, [article.id])
                    deferred.append(article.id)
                    result.counts["deferred"] += 1
                elif isinstance(outcome, fetch.FetchError):
                    failed(article, f"{outcome.error_class}: {outcome}", transient=outcome.transient,
                           retry_after=outcome.retry_after, error_class=outcome.error_class)
                elif store.articles.store_page(conn, outcome, token=token):
                    result.counts["fetched"] += 1
                else:
                    result.counts["stale"] += 1

            async def run(claim=claim, claimed=claimed) -> None:
                async for article, outcome in fetch.fetch_pages(claimed, settings, limiter, robots, budget,
                                                                resolve=resolve):
                    _isolated(conn, "storing article", article.id, lambda a=article, o=outcome: one(a, o),
                              lambda error, a=article: failed(a, error, transient=True, error_class=ErrorClass.INTERNAL_ERROR))
                    # Each page on its own: a crash loses at most the downloads in flight.
                    conn.commit()
                    progress("fetch", 1)

            asyncio.run(run())
    if deferred:
        log.warning("%d pages wait for the next run: their hosts used up the %.0fs budget (%s)", len(deferred),
                    settings.host_budget, ", ".join(sorted(budget.over())[:10]))
    result.seconds = time.monotonic() - t0
    log.info("fetched pages: %s; errors %s", dict(result.counts), dict(result.errors))
    return result


def page_text(page: StoredPage | None) -> str | None:
    """The text of a stored page: its bytes as served decoded with the recorded charset (as
    fetched, or as corrected by hand), or the text a row from before migration 0007 kept."""
    if page is None:
        return None
    if page.body is None:
        return page.html
    return fetch.decode_as(page.body, page.charset)


def extract_pages(settings: Settings, *, limit: int = 100_000, batch_size: int = 50,
                  ids: Sequence[int] | None = None, progress: Progress = _noop,
                  run_key: str | None = None) -> StageResult:
    """Extract clean text from stored pages (no network). A page without a usable body ends
    `failed` with the reason. Each text gets its near-duplicate fingerprint for `cluster_articles`."""
    from pipeline.extract import ExtractionFailed, extract_article

    t0 = time.monotonic()
    result = StageResult("extract")
    with _working(settings) as (conn, hb):
        batches = _claimed_batches(conn, settings, Stage.EXTRACT, result, hb, owner=_owner(run_key, "extract"),
                                   limit=limit, batch_size=batch_size, ids=ids)
        for claim, claimed in batches:

            def failed(a: ClaimedArticle, error: str, *, transient: bool, error_class: ErrorClass,
                       token: str = claim.token) -> None:
                _failed(conn, settings, result, Stage.EXTRACT, token, a.id, error, transient=transient,
                        error_class=error_class)

            def one(a: ClaimedArticle, token: str = claim.token) -> None:
                html = page_text(store.articles.load_page(conn, a.id))
                try:
                    if html is None:
                        raise ExtractionFailed(ErrorClass.EMPTY_HTML, "no stored page")
                    ex = extract_article(html, url=a.final_url or a.url, feed_published=a.feed_published_at,
                                         feed_summary=a.summary, feed_title=a.title)
                except ExtractionFailed as exc:
                    failed(a, f"{exc.reason}: {exc}", transient=False, error_class=exc.reason)
                    return
                if len(ex.text) > settings.max_text_chars:
                    log.warning("article %s: body of %d characters cut to %d (NEWSROOM_MAX_TEXT_CHARS)",
                                a.id, len(ex.text), settings.max_text_chars)
                    ex = replace(ex, text=ex.text[:settings.max_text_chars])
                fp = dedup.fingerprint(ex.text)
                if store.articles.save_extraction(conn, a.id, ex, (fp.signature, fp.bands) if fp else None, token=token):
                    result.counts["extracted"] += 1
                else:
                    result.counts["stale"] += 1

            for a in claimed:
                # an extractor bug on one odd page must not stop the batch: retried, then failed
                _isolated(conn, "extracting article", a.id, lambda a=a: one(a),
                          lambda error, a=a: failed(a, error, transient=True, error_class=ErrorClass.INTERNAL_ERROR))
                conn.commit()
            progress("extract", len(claimed))
        store.rollup.compact(conn)  # a new publication date moved the article's topics (if any)
    result.seconds = time.monotonic() - t0
    log.info("extracted: %s; failures %s", dict(result.counts), dict(result.errors))
    return result


@dataclass(frozen=True, slots=True)
class TagPlan:
    """How one article is tagged: its language, and the spaCy pipeline for it (None: no model for
    that language, or the language is unknown; the article is tagged with nothing, and why)."""

    language: str | None
    model: str | None

    @property
    def skipped(self) -> str | None:
        if self.model is not None:
            return None
        if self.language is None:
            return ("unknown_language: no language was detected and the text does not read as English; "
                    "no entities or topics")
        return (f"no_model: no spaCy pipeline for language {self.language!r} (NEWSROOM_SPACY_MODELS); "
                "no entities or topics")


def _plan(texts: dict[int, tuple[str | None, str, str | None]], settings: Settings) -> dict[int, TagPlan]:
    """Which pipeline tags each article: the one configured for its language. The English one
    never runs on an article in another language, nor on one whose language is unknown
    (`extract.tagging_language` decides when an article without a language counts as English)."""
    return {i: tag_plan(language, body, settings) for i, (_, body, language) in texts.items()}


def tag_plan(language: str | None, text: str, settings: Settings) -> TagPlan:
    """How a text in `language` (as extraction detected it; None: unknown) is tagged."""
    from pipeline.extract import tagging_language

    lang = tagging_language(language, text)
    return TagPlan(lang, settings.model_for(lang))


def _annotate(texts: dict[int, tuple[str | None, str, str | None]], order: list[int], plans: dict[int, TagPlan],
              settings: Settings, rules, on_error: Callable[[int, str], None]) -> dict[int, tuple[list, list]]:
    """{id: (mentions, topic tags)} for the articles in `order`: each language's articles through
    their pipeline at once, and, if that raises, one article at a time so only the culprit fails.
    An article without a pipeline gets nothing (no mentions, no topics)."""
    from pipeline import nlp, topics

    def tag(ids: list[int]) -> dict[int, tuple[list, list]]:
        out: dict[int, tuple[list, list]] = {i: ([], []) for i in ids if plans[i].model is None}
        for model in dict.fromkeys(plans[i].model for i in ids if plans[i].model is not None):
            group = [i for i in ids if plans[i].model == model]
            # batch_size 8: the same speed as 32 at about half the peak memory (bench/nlp_bench.py)
            found = nlp.tag_entities([texts[i][1] for i in group], model=model,
                                     gazetteer=settings.gazetteer_file, places=settings.places_file, batch_size=8)
            out.update({i: (ms, topics.tag_topics(texts[i][1], ms, rules, title=texts[i][0],
                                                  language=plans[i].language))
                        for i, ms in zip(group, found, strict=True)})
        return out

    try:
        return tag(order)
    except Exception as exc:
        if store.db.is_infrastructure(exc):
            raise
        log.warning("tagging a batch of %d raised %s; tagging its articles one by one", len(order),
                    type(exc).__name__)
    out = {}
    for i in order:
        try:
            out.update(tag([i]))
        except Exception as exc:
            if store.db.is_infrastructure(exc):
                raise
            log.exception("tagging article %s failed", i)
            on_error(i, _internal(exc))
    return out


def tag_articles(settings: Settings, *, limit: int = 100_000, batch_size: int = 64,
                 ids: Sequence[int] | None = None, progress: Progress = _noop,
                 run_key: str | None = None) -> StageResult:
    """Entities (spaCy + gazetteer) and topics (rules) for extracted articles. Old annotations are
    replaced atomically (one transaction per batch), stamped with the model and rules versions.
    One article's failure is recorded on it; its batch-mates are tagged."""
    from pipeline import nlp, places, topics

    t0 = time.monotonic()
    result = StageResult("tag")
    rules = topics.load_rules(settings.topics_file)  # a broken rules file fails the stage even when idle
    # {model: version}: each language's model loads (seconds, hundreds of MB) only once it has work
    versions: dict[str, str] = {}
    # A broken gazetteer or places file fails the stage even when idle (reading them is cheap;
    # building the place index, 2-3 s, waits for work).
    gazetteer = nlp.load_gazetteer(settings.gazetteer_file)
    places.check_file(settings.places_file)
    # The gazetteer's and the places' names of each entity, merged into entities.aliases: with the
    # first batch for the entities stored already (a no-op once done), in upsert_entities for
    # those the run creates.
    known: dict[str, tuple[str, ...]] = {}
    with _working(settings) as (conn, hb):
        topic_ids = store.annotations.upsert_topics(conn, topics.topic_defs(rules))
        conn.commit()
        batches = _claimed_batches(conn, settings, Stage.TAG, result, hb, owner=_owner(run_key, "tag"),
                                   limit=limit, batch_size=batch_size, ids=ids)
        for claim, claimed in batches:
            if not known:
                known.update(nlp.entity_aliases(nlp.with_places(gazetteer, places.load_places(settings.places_file))))
                store.annotations.merge_aliases(conn, known)
            texts = store.articles.load_texts(conn, [a.id for a in claimed])
            plans = _plan(texts, settings)
            for model in dict.fromkeys(p.model for p in plans.values() if p.model and p.model not in versions):
                try:
                    versions[model] = nlp.model_version(nlp.load_nlp(model, settings.gazetteer_file,
                                                                     settings.places_file))
                except BaseException:
                    # The machinery failed, not these articles: give them back with their attempt
                    # uncounted, so a missing model never ends good articles `failed`.
                    store.queue.release(conn, claim.token, [a.id for a in claimed])
                    conn.commit()
                    raise

            def failed(article_id: int, error: str, *, transient: bool, error_class: ErrorClass,
                       token: str = claim.token) -> None:
                _failed(conn, settings, result, Stage.TAG, token, article_id, error, transient=transient,
                        error_class=error_class)

            for a in claimed:
                if a.id not in texts:
                    failed(a.id, "no_body: nothing to tag", transient=False, error_class=ErrorClass.NO_BODY)
            conn.commit()
            order = [a.id for a in claimed if a.id in texts]
            annotations = _annotate(texts, order, plans, settings, rules, lambda i, error: _isolated(
                conn, "recording the failure of article", i,
                lambda: failed(i, error, transient=True, error_class=ErrorClass.INTERNAL_ERROR), lambda _e: None))
            conn.commit()

            def write(ids: list[int], token: str = claim.token, annotations: dict = annotations,
                      plans: dict = plans) -> dict:
                """The annotations of `ids` (those still ours), replacing the old ones: {id: (mentions
                written, topic tags)}, or None for an article whose claim ran out."""
                held = store.queue.holding(conn, token, ids)
                out: dict = {}
                for i in sorted(set(ids) - held):
                    store.queue.log_stale("tags", f"article {i}", token)
                    out[i] = None
                mentions = {i: annotations[i][0] for i in ids if i in held}
                if not mentions:
                    return out
                # One entity upsert, one DELETE and one COPY for all mentions (the per-article
                # path was 3x slower).
                entity_ids = store.annotations.upsert_entities(conn, (m for ms in mentions.values() for m in ms),
                                                               known)
                written: dict[int, int] = {}
                for model in dict.fromkeys(plans[i].model for i in mentions):  # None: no model, no mentions
                    group = {i: ms for i, ms in mentions.items() if plans[i].model == model}
                    written.update(store.annotations.replace_mentions_many(
                        conn, group, versions[model] if model else "", entity_ids))
                for i in mentions:
                    tags = annotations[i][1]
                    store.annotations.replace_topics(conn, i, tags, rules.version, topic_ids)
                    model = plans[i].model
                    store.articles.mark_tagged(conn, i, nlp_version=versions[model] if model else None,
                                               rules_version=rules.version, skipped=plans[i].skipped)
                    out[i] = (written[i], tags, plans[i])
                return out

            def write_failed(i: int, error: str, token: str = claim.token) -> str:
                failed(i, error, transient=True, error_class=ErrorClass.INTERNAL_ERROR, token=token)
                return "failed"

            written = _all_or_each(conn, "the tags of article", [i for i in order if i in annotations],
                                   write=write, on_error=write_failed)
            for outcome in written.values():
                if outcome is None:
                    result.counts["stale"] += 1
                elif outcome != "failed":
                    mentions_written, tags, plan = outcome
                    result.counts["tagged"] += 1
                    if plan.skipped:
                        # Not a failure: tagged with nothing, the reason on the article.
                        result.counts["no_model" if plan.language else "unknown_language"] += 1
                    result.counts["mentions"] += mentions_written
                    result.counts["topic_tags"] += len(tags)
                    result.topics.update(t.slug for t in tags)
            conn.commit()
            store.rollup.compact(conn)  # per batch: a long run keeps the topic rollup's deltas few
            progress("tag", len(claimed))
    result.seconds = time.monotonic() - t0
    if not result.counts["tagged"] and not versions:
        log.info("nothing to tag: no extracted article is waiting (no model was loaded)")
    else:
        log.info("tagged %d articles with %d mentions and %d topic tags (%s, rules %s)", result.counts["tagged"],
                 result.counts["mentions"], result.counts["topic_tags"], ", ".join(versions.values()) or "no model",
                 rules.version)
    if result.counts["no_model"] or result.counts["unknown_language"]:
        log.warning("%d articles tagged without entities or topics: %d in a language without a spaCy pipeline "
                    "(NEWSROOM_SPACY_MODELS), %d in an unknown language; `newsroom retag --skipped` re-tags them "
                    "once a pipeline is configured", result.counts["no_model"] + result.counts["unknown_language"],
                    result.counts["no_model"], result.counts["unknown_language"])
    return result


def cluster_articles(settings: Settings, *, batch_size: int = 500, window_days: int = 30) -> StageResult:
    """Syndicated copies get one cluster id; the earliest published copy is marked the original.
    One article's odd fingerprint never stops clustering: it gets a cluster of its own."""
    t0 = time.monotonic()
    result = StageResult("cluster")
    with store.db.session(settings) as conn:
        while True:
            store.articles.lock_clustering(conn)  # one clustering worker at a time, per batch
            pending = store.articles.unclustered(conn, batch_size)
            for article in pending:
                result.counts["clustered"] += 1
                joined = _isolated(conn, "clustering article", article.id,
                                   lambda a=article: _place_in_cluster(conn, a, window_days),
                                   lambda error, a=article: _cluster_alone(conn, a.id, result))
                result.counts["duplicates"] += joined is True
            conn.commit()
            if len(pending) < batch_size:
                break
        store.rollup.compact(conn)  # originals changed
    result.seconds = time.monotonic() - t0
    log.info("clustered: %s", dict(result.counts))
    return result


def _place_in_cluster(conn, article, window_days: int) -> bool:
    """Put one article in its near-duplicates' cluster, or its own; True if it joined one."""
    candidates = store.articles.cluster_candidates(conn, article, window_days) if article.signature else []
    cluster = dedup.choose_cluster(article, candidates)
    if cluster is None:
        store.articles.set_cluster(conn, article.id, article.id, original=True)
        return False
    original = dedup.is_original(article.published, store.articles.earliest_in_cluster(conn, cluster))
    store.articles.set_cluster(conn, article.id, cluster, original=original)
    return True


def _cluster_alone(conn, article_id: int, result: StageResult) -> None:
    result.counts["errors"] += 1
    store.articles.set_cluster(conn, article_id, article_id, original=True)


def reprocess(settings: Settings, *, since: datetime | None = None, stages: Sequence[str] = ("tag",),
              ids: Sequence[int] | None = None, limit: int | None = None,
              charset: str | None = None, skipped: bool = False) -> dict[str, dict]:
    """Re-run extraction and/or tagging from stored pages, without the network. Each article's
    annotations are replaced in one transaction by the stage; nothing is deleted beforehand.
    `charset`: decode the chosen pages' stored bytes with this charset from now on (a page
    the fetch decided wrongly); needs the extract stage and `ids` (a correction is per page).

    The chosen articles (at most `limit`, newest first) become backlog: live work is claimed
    before them, here and in scheduled runs, so a big retag never delays new articles. `skipped`:
    only the articles tagged with nothing for want of a model for their language."""
    out: dict[str, dict] = {}
    first = "extract" if "extract" in stages else "tag"
    codec = None
    if charset is not None:
        codec = fetch.web_codec(charset)
        if codec is None:
            raise UserInputError(f"--charset {charset[:40]!r}: not a charset a web page can be in")
        if first != "extract" or not ids:
            raise UserInputError("--charset needs the extract stage and the articles it is for "
                                 "(--stages extract --id N ...)")
    with store.db.session(settings) as conn:
        chosen = store.queue.select_for_reprocessing(conn, stage=first, since=since, ids=ids, limit=limit,
                                                     skipped=skipped)
        if codec is not None:
            out["charset"] = {"corrected": store.articles.correct_charset(conn, chosen, codec)}
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
    limiter = _limiter(settings)
    results: list[StageResult] = []
    checks: list[quality.Check] = []
    status = RunStatus.FAILED
    try:
        results.append(sync_feeds(settings))
        results.append(poll_feeds(settings, limiter=limiter, progress=progress, run_key=run_key))
        results.append(fetch_pages(settings, limiter=limiter, progress=progress, run_key=run_key))
        results.append(extract_pages(settings, progress=progress, run_key=run_key))
        results.append(tag_articles(settings, progress=progress, run_key=run_key))
        results.append(cluster_articles(settings))
        checks = check_quality(settings, [r.as_dict() for r in results])
        status = RunStatus.FAILED if quality.failures(checks) else RunStatus.SUCCESS
    finally:
        record_run(settings, run_key, [r.as_dict() for r in results], status=status, checks=checks)
    return run_key, results, checks


def begin_run(settings: Settings, run_key: str, trigger: str) -> int:
    with store.db.session(settings) as conn:
        return store.runs.start_run(conn, run_key, trigger)


def _stage_counts(results: Sequence[dict], stage: str) -> Counter:
    """Counts of one stage, summed over its parts (mapped poll shards)."""
    total: Counter = Counter()
    for r in results:
        if r.get("stage") == stage:
            total.update(r.get("counts", {}))
    return total


def _duration(seconds: float) -> str:
    """ "45 s", "12 min", "2 h 5 min", "3 days": how long until something, for a person."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 2 * 86400:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{round(seconds / 86400)} days"


def polling_note(poll: Counter, schedule: dict | None = None) -> str | None:
    """Why a run brought in nothing new, in words a user who has just triggered it can act on,
    from the poll stage's counts (summed over its shards) and, when no feed was polled,
    `store.feeds.poll_schedule`. None when the run found new articles."""
    polled = poll["polled"]
    if polled and poll["new_articles"]:
        return None
    if polled:
        feeds_polled = f"{polled} feed{'' if polled == 1 else 's'} polled, nothing new"
        if poll[PollOutcome.NOT_MODIFIED] == polled:
            return f"{feeds_polled} (all not modified since their last poll: 304 Not Modified or the same body)"
        if poll[PollOutcome.ERROR] == polled:
            return f"{feeds_polled} (all failed; `newsroom feeds status --failing` says why)"
        parts = [f"{poll[PollOutcome.NOT_MODIFIED]} not modified" if poll[PollOutcome.NOT_MODIFIED] else "",
                 f"{poll[PollOutcome.OK]} carried only entries already stored" if poll[PollOutcome.OK] else "",
                 f"{poll[PollOutcome.ERROR]} failed" if poll[PollOutcome.ERROR] else "",
                 f"{poll['stale']} lost their claim to another worker" if poll["stale"] else ""]
        return f"{feeds_polled} ({', '.join(p for p in parts if p)})"
    if poll["leased_elsewhere"]:
        n = poll["leased_elsewhere"]
        return (f"no feed was polled: {n} feed{' is' if n == 1 else 's are'} being polled by another run right "
                "now; its run brings their news")
    if schedule is None:
        return "no feed was polled"
    if not schedule["enabled"]:
        return ("no feed was polled: no feed is enabled (list feeds in the file NEWSROOM_FEEDS names; "
                "`newsroom feeds sync` applies it)")
    if schedule["due"]:
        n = schedule["due"]
        return (f"no feed was polled, and {n} feed{' is' if n == 1 else 's are'} due now (they came due during "
                "this run, or its poll task failed); trigger again")
    if schedule["next_at"] is None:
        return "no feed was due"
    wait = _duration((schedule["next_at"] - schedule["now"]).total_seconds())
    name = " ".join(str(schedule["next_name"] or "").split())[:100]
    return (f"no feed was due: the next poll is due in {wait} ({name}); trigger again after that or wait "
            "for the schedule")


def check_quality(settings: Settings, results: Sequence[dict]) -> list[quality.Check]:
    poll, extract = _stage_counts(results, "poll"), _stage_counts(results, "extract")
    with store.db.session(settings) as conn:
        facts = quality.Facts(
            feeds_polled=poll["polled"], feeds_ok=poll["ok"] + poll["not_modified"],
            last_feed_success=store.feeds.last_feed_success(conn),
            extract_attempted=extract["extracted"] + extract["failed"], extract_succeeded=extract["extracted"],
            stuck=store.queue.stuck_articles(conn, settings.qc_stuck_hours), now=store.db.now(conn),
            orphaned_feeds=store.queue.orphaned_feed_leases(conn),
            feeds_leased_elsewhere=poll["leased_elsewhere"])
    checks = quality.evaluate(facts, min_extract_rate=settings.qc_min_extract_rate,
                              stuck_hours=settings.qc_stuck_hours)
    for c in checks:
        log.log(logging.ERROR if c.severity == "error" else logging.WARNING if c.severity == "warning"
                else logging.INFO, "quality check %s: %s: %s", c.name, c.severity, c.message)
    return checks


def poll_counts(results: Sequence[dict]) -> Counter:
    """The poll stage's counts, summed over its shards."""
    return _stage_counts(results, "poll")


def poll_schedule(settings: Settings) -> dict:
    with store.db.session(settings) as conn:
        return store.feeds.poll_schedule(conn)


def record_run(settings: Settings, run_key: str, results: Sequence[dict], *, status: str,
               checks: Sequence[quality.Check] = (), with_outcome: bool = False, polling: str | None = None):
    """Final counts of a run into its `ingest_runs` row; returns them. With `with_outcome`,
    returns (counts, final status, reasons of failed tasks): a run that a failed task marked
    failed stays failed. `polling` (polling_note) goes into the row's details."""
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
    with store.db.session(settings) as conn:
        final = store.runs.finish_run(conn, run_key, status=status, counts=counts,
                                 durations={k: round(v, 3) for k, v in durations.items()}, errors=errors,
                                 details={"stages": [dict(r) for r in results],
                                          "checks": [{"name": c.name, "severity": c.severity, "message": c.message}
                                                     for c in checks],
                                          **({"polling": polling} if polling else {})})
        reasons = store.runs.failed_task_reasons(conn, run_key) if with_outcome else []
    return (counts, final, reasons) if with_outcome else counts
