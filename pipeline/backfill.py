"""Backfill: a site's older articles, listed by its sitemaps or by a list of URLs, enqueued as
backlog (priority 1). Only enqueued: the regular stages (news_ingest, `newsroom ingest --once`)
download, extract and tag them, always after live work.

Sitemaps are fetched through fetch.py's checked path (SSRF checks, robots.txt, the per-host
turn, size caps, timeouts) and read by sitemaps.py. A sitemap of an index that fails is
reported in one line and the others go on; a sitemap the user gave that fails makes the whole
backfill fail before anything is written (nothing half-done to reason about). Everything found
is gathered first (at most NEWSROOM_BACKFILL_MAX_URLS), then written in batches; re-running
adds nothing and never resets an article.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline import fetch, sitemaps, store
from pipeline.config import Settings
from pipeline.errors import NewsroomError, UserInputError
from pipeline.queries import parse_when
from pipeline.sitemaps import DateRange, Frontier, Listing
from pipeline.urls import InvalidURL, fetchable_url

log = logging.getLogger(__name__)

CONCURRENCY = 4  # sitemaps downloaded at once (one host's still wait for their turn)
Report = Callable[[str], None]


class BackfillFailed(NewsroomError):
    """A sitemap the user gave could not be read; nothing was enqueued."""


@dataclass(frozen=True, slots=True)
class Failure:
    url: str
    depth: int  # 0: given by the user; 1: listed by their index; ...
    reason: str  # "http_4xx: HTTP 404 Not Found"

    def line(self) -> str:
        return f"sitemap {self.url[:300]} failed: {self.reason}"


@dataclass(slots=True)
class BackfillResult:
    listed: int = 0  # URLs the sitemaps and lists held, usable or not
    new: int = 0
    known: int = 0  # already articles: left as they are
    skipped: Counter = field(default_factory=Counter)  # sitemaps.Skip -> n
    sitemaps_read: int = 0
    sitemaps_failed: list[Failure] = field(default_factory=list)
    sitemaps_skipped: Counter = field(default_factory=Counter)  # child sitemaps not read, by why
    invalid: list[str] = field(default_factory=list)  # the first few unusable URLs, as listed
    dry_run: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """Counts only (what XCom carries)."""
        return {"listed": self.listed, "new": self.new, "known": self.known,
                "skipped": {str(k): v for k, v in sorted(self.skipped.items()) if v},
                "sitemaps_read": self.sitemaps_read, "sitemaps_failed": len(self.sitemaps_failed),
                "sitemaps_skipped": {str(k): v for k, v in sorted(self.sitemaps_skipped.items()) if v},
                "dry_run": self.dry_run, "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        """One line of counts, for a person."""
        skipped = sum(self.skipped.values())
        why = ", ".join(f"{v} {k}" for k, v in sorted(self.skipped.items()) if v)
        read = f" from {self.sitemaps_read} sitemap{'' if self.sitemaps_read == 1 else 's'}" if self.sitemaps_read else ""
        failed = f" ({len(self.sitemaps_failed)} failed)" if self.sitemaps_failed else ""
        new = "would be new" if self.dry_run else "new"
        return (f"listed {self.listed} URLs{read}{failed}: {self.new} {new}, {self.known} already known, "
                f"{skipped} skipped" + (f" ({why})" if why else ""))


def date_range(since: str | None, until: str | None, *, now: datetime | None = None) -> DateRange:
    """--since/--until as [since, until): dates or times as `parse_when` takes them; a bare
    date for --until includes that whole day."""
    start = parse_when(since, option="--since", now=now) if since else None
    end = None
    if until:
        end = parse_when(until, option="--until", now=now, future=True)
        if len(until.strip()) == 10:  # 2019-10-31: up to the end of that day
            end += timedelta(days=1)
    if start is not None and end is not None and start >= end:
        raise UserInputError(f"--since {since} is not before --until {until}")
    return DateRange(start, end)


def run(settings: Settings, *, sitemaps_given: Sequence[str] = (), urls: Sequence[str] = (),
        dates: DateRange | None = None, limit: int | None = None, dry_run: bool = False,
        report: Report | None = None, resolve: fetch.Resolver | None = None) -> BackfillResult:
    """List the articles of `sitemaps_given` (fetched) and `urls` (lines: absolute URLs, '#'
    comments and blank lines ignored), and enqueue those not yet known as backlog. Raises
    UserInputError (nothing to do, a bad sitemap URL, no usable URL) or BackfillFailed (a given
    sitemap could not be read); nothing is written then."""
    t0 = time.monotonic()
    report = report or log.warning
    roots = list(dict.fromkeys(s.strip() for s in sitemaps_given if s and s.strip()))
    if not roots and not urls:
        raise UserInputError("nothing to backfill: give sitemaps (--sitemap URL) or a list of URLs (--urls FILE)")
    for root in roots:
        try:
            fetchable_url(root)
        except InvalidURL as exc:
            raise UserInputError(f"sitemap {root[:200]!r} is not a URL Newsroom can fetch: {exc}") from None
    cap = min(limit, settings.backfill_max_urls) if limit else settings.backfill_max_urls
    listing = Listing(limit=cap, dates=dates)
    result = BackfillResult(dry_run=dry_run)
    if urls:
        listed = sitemaps.parse_url_list(urls, max_urls=cap * 2)  # (duplicates may hide among them)
        listing.add(listed)
        if not listed.articles:
            example = f" (e.g. {listed.invalid[0]!r})" if listed.invalid else ""
            raise UserInputError(f"no usable URL in the list: {listed.listed} lines, none an http(s) URL{example}"
                                 if listed.listed else "the list of URLs is empty")
    if roots:
        frontier = Frontier()
        asyncio.run(_crawl(settings, roots, listing, frontier, result, report, resolve))
        result.sitemaps_skipped.update(frontier.skipped)
        given = [f for f in result.sitemaps_failed if f.depth == 0]
        if given:
            raise BackfillFailed("; ".join(f.line() for f in given[:3]) + "; nothing was enqueued")
    result.listed = listing.listed
    result.skipped = Counter(listing.skipped)
    result.invalid = listing.invalid[:5]
    articles = list(listing.articles.values())
    with store.db.session(settings) as conn:
        if dry_run:
            result.new = len(articles) - len(store.backfill.known_urls(conn, [a.url for a in articles]))
        else:
            for i in range(0, len(articles), store.backfill.BATCH * 10):
                result.new += len(store.backfill.enqueue(conn, articles[i:i + store.backfill.BATCH * 10]))
                conn.commit()  # a long backfill keeps what it wrote; re-running adds only the rest
    result.known = len(articles) - result.new
    result.seconds = time.monotonic() - t0
    log.debug("backfill: %s", result.summary())
    return result


async def _crawl(settings: Settings, roots: list[str], listing: Listing, frontier: Frontier,
                 result: BackfillResult, report: Report, resolve: fetch.Resolver | None) -> None:
    """Read the sitemaps breadth-first, CONCURRENCY at a time, an index's newest children first;
    stop reading once the listing is full."""
    now = datetime.now(UTC)
    limiter = fetch.HostLimiter(settings.per_host_concurrency, settings.per_host_delay, settings.poll_concurrency)
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for root in roots:
        if frontier.admit(root, 0):
            queue.put_nowait((root, 0))

    def failed(url: str, depth: int, reason: str) -> None:
        failure = Failure(url, depth, " ".join(reason.split())[:500])
        result.sitemaps_failed.append(failure)
        report(failure.line())

    async def read(get, url: str, depth: int) -> None:
        if listing.full:
            result.sitemaps_skipped[sitemaps.Skip.OVER_LIMIT] += 1
            return
        try:
            dl = await get(url)
            frontier.mark(dl.final_url)
            # In a thread: a big sitemap takes a while to parse, and other downloads go on.
            parsed = await asyncio.to_thread(sitemaps.parse_sitemap, dl.body, url=dl.final_url,
                                             max_bytes=settings.max_body_bytes, now=now)
        except fetch.FetchError as exc:
            failed(url, depth, f"{exc.error_class}: {exc}")
            return
        except sitemaps.SitemapError as exc:
            failed(url, depth, f"{exc.problem}: {exc}")
            return
        result.sitemaps_read += 1
        listing.add(parsed)
        log.info("sitemap %s (%s): %d URLs, %d sitemaps", url, parsed.kind, len(parsed.articles), len(parsed.sitemaps))
        newest_first = sorted(parsed.sitemaps, key=lambda c: c.lastmod or datetime.min.replace(tzinfo=UTC),
                              reverse=True)
        for child in newest_first:
            if listing.dates.rejects_sitemap(child):
                result.sitemaps_skipped[sitemaps.Skip.OUTSIDE_DATES] += 1
            elif frontier.admit(child.url, depth + 1):
                queue.put_nowait((child.url, depth + 1))

    async def worker(get) -> None:
        while True:
            url, depth = await queue.get()
            try:
                await read(get, url, depth)
            except (MemoryError, asyncio.CancelledError):
                raise
            except Exception as exc:  # a bug or an input nobody foresaw: this sitemap only
                log.exception("reading sitemap %s crashed", url)
                failed(url, depth, f"internal_error: {type(exc).__name__}: {str(exc)[:300]}")
            finally:
                queue.task_done()

    async with fetch.document_fetcher(settings, limiter, resolve=resolve) as get:
        workers = [asyncio.create_task(worker(get)) for _ in range(CONCURRENCY)]
        joined = asyncio.create_task(queue.join())
        try:
            done, _ = await asyncio.wait([joined, *workers], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not joined and t.exception() is not None:
                    raise t.exception()
        finally:
            for t in [joined, *workers]:
                t.cancel()
            await asyncio.gather(joined, *workers, return_exceptions=True)
