"""Feeds, the pure part: the feed list, parsing feed documents into entries, failure
classification, backoff and health. No network and no database here (see fetch.py, store.py)."""

from __future__ import annotations

import calendar
import html
import logging
import random
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin

from pipeline.config import read_yaml
from pipeline.errors import ConfigError, PermanentError
from pipeline.records import FeedEntry, FeedSpec
from pipeline.urls import canonical_url

log = logging.getLogger(__name__)

MIN_POLL_INTERVAL = 60
# A failing feed is never dropped: it is polled at least this often, and shown in `feeds status`.
MAX_BACKOFF = timedelta(days=7).total_seconds()
RETRY_AFTER_CAP = timedelta(days=1).total_seconds()
_TRANSIENT_BASE = 15 * 60
_PERMANENT_BASE = 2 * 3600
# A feed that answers but has carried nothing new for this long is "alive but silent".
SILENT_AFTER = timedelta(days=7)


# --- the feed list --------------------------------------------------------------------------

def load_feed_list(path: Path) -> list[FeedSpec]:
    """Read feeds.yaml. Every problem names the file and the entry, so a user can fix it."""
    _, doc = read_yaml(path, what="feed list", setting="NEWSROOM_FEEDS")
    items = doc.get("feeds") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ConfigError(f"feed list {path}: expected a list under 'feeds:'")
    specs: dict[str, FeedSpec] = {}
    for i, item in enumerate(items, 1):
        where = f"feed list {path}, entry {i}"
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise ConfigError(f"{where}: needs a 'url'")
        unknown = set(item) - {"url", "name", "tags", "poll_interval"}
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
        try:
            url = canonical_url(item["url"])
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        tags = item.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(f"{where}: 'tags' must be a list of strings")
        interval = item.get("poll_interval")
        if interval is not None:
            interval = parse_interval(interval, where)
        if url in specs:
            log.warning("%s: %s is listed twice; keeping the first", where, url)
            continue
        specs[url] = FeedSpec(url=url, name=str(item.get("name") or url), tags=tuple(tags), poll_interval=interval)
    return list(specs.values())


def parse_interval(value: object, where: str = "poll_interval") -> int:
    """Seconds from 900, "15m", "2h" or "1d"; at least a minute."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(value))
    if not m:
        raise ConfigError(f"{where}: poll_interval {value!r} is not like 900, 15m, 2h or 1d")
    seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds < MIN_POLL_INTERVAL:
        raise ConfigError(f"{where}: poll_interval must be at least {MIN_POLL_INTERVAL}s")
    return seconds


# --- parsing --------------------------------------------------------------------------------

class FeedError(PermanentError):
    """The document is not a usable feed."""

    def __init__(self, error_class: str, message: str):
        super().__init__(message)
        self.error_class = error_class


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFeed:
    title: str | None
    entries: tuple[FeedEntry, ...]
    skipped: int = 0  # entries without a usable link


_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.I | re.S)
_FEED_LINK = re.compile(
    rb"""<link[^>]+type=["']application/(rss|atom)\+xml["'][^>]*>""", re.I)
_TAG = re.compile(r"<[^>]+>")


def _plain(text: str | None, limit: int = 5000) -> str | None:
    if not text:
        return None
    out = " ".join(html.unescape(_TAG.sub(" ", text)).split())
    return out[:limit] or None


def _when(entry: dict) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # feedparser's updated->published alias
            t = entry.get(key)
        if t:
            try:
                # feedparser normalises to UTC struct_time
                return datetime.fromtimestamp(calendar.timegm(t), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _authors(entry: dict) -> tuple[str, ...]:
    names = [a.get("name") for a in entry.get("authors") or [] if isinstance(a, dict)]
    names = [n.strip() for n in names if n and n.strip()]
    if not names and entry.get("author"):
        names = [entry["author"].strip()]
    return tuple(dict.fromkeys(names))


def _benign_bozo() -> tuple[type, ...]:
    import feedparser

    # Warnings, not failures: the document parsed, just not as it declared itself.
    return tuple(getattr(feedparser, n) for n in ("CharacterEncodingOverride", "NonXMLContentType")
                 if hasattr(feedparser, n))


def parse_feed(body: bytes, *, feed_url: str, content_type: str | None = None) -> ParsedFeed:
    """Turn a feed document (RSS 0.9x/1.0/2.0, Atom, JSON-less) into typed entries.

    Raises FeedError("not_a_feed") for an HTML page or other non-feed, and
    FeedError("parse_error") for a feed too broken to yield anything.
    """
    import feedparser  # heavy import, only where needed

    if not body or not body.strip():
        raise FeedError("not_a_feed", "empty response body")
    head = body[:4096]
    if _HTML_START.match(head):
        hint = _FEED_LINK.search(body[:65536])
        extra = " (the page advertises a feed link; point feeds.yaml at that instead)" if hint else ""
        raise FeedError("not_a_feed", f"got an HTML page, not a feed{extra}")
    headers = {"content-location": feed_url}
    if content_type:
        headers["content-type"] = content_type
    # bytes, never a str: feedparser would treat a URL-looking string as something to fetch
    parsed = feedparser.parse(bytes(body), response_headers=headers, sanitize_html=True,
                              resolve_relative_uris=True)
    if not parsed.get("version") and not parsed.entries:
        exc = parsed.get("bozo_exception")
        reason = f": {type(exc).__name__}: {str(exc)[:200]}" if exc else ""
        if b"<rss" in head or b"<feed" in head or b"<rdf" in head.lower():
            raise FeedError("parse_error", f"malformed feed{reason}")
        raise FeedError("not_a_feed", f"not an RSS or Atom document{reason}")
    benign = _benign_bozo()
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    skipped = 0
    for raw in parsed.entries:
        link = raw.get("link")  # feedparser already falls back to a permalink guid
        if not link or not isinstance(link, str):
            skipped += 1
            continue
        try:
            url = canonical_url(link, base=feed_url)
            entry_url = urljoin(feed_url, link.strip())
        except (ValueError, TypeError):
            skipped += 1
            continue
        if url in seen:
            continue
        seen.add(url)
        entries.append(FeedEntry(
            url=url,
            entry_url=entry_url,
            guid=(str(raw.get("id")).strip()[:2000] or None) if raw.get("id") else None,
            title=_plain(raw.get("title"), 1000),
            summary=_plain(raw.get("summary")),
            published=_when(raw),
            authors=_authors(raw),
        ))
    exc = parsed.get("bozo_exception")
    if not entries and parsed.get("bozo") and exc is not None and not isinstance(exc, benign):
        raise FeedError("parse_error", f"malformed feed: {type(exc).__name__}: {str(exc)[:200]}")
    if parsed.get("bozo") and exc is not None:
        log.debug("feed %s parsed with a warning: %s", feed_url, parsed["bozo_exception"])
    return ParsedFeed(title=_plain(parsed.feed.get("title"), 500), entries=tuple(entries), skipped=skipped)


# --- failures, backoff, health --------------------------------------------------------------

def classify_status(status: int) -> tuple[str, bool]:
    """(error class, transient?) for an HTTP error status."""
    if status == 410:
        return "http_410_gone", False
    if status == 429:
        return "http_429", True
    if status in (408, 425):
        return "http_4xx", True
    if 400 <= status < 500:
        return "http_4xx", False
    if status >= 500:
        return "http_5xx", True
    return "http_unexpected", False


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def next_poll_delay(*, failures: int, interval: int, transient: bool = True, retry_after: float | None = None,
                    rng: random.Random | None = None) -> float:
    """Seconds until the next poll.

    Healthy feeds wait their interval. Failing ones back off exponentially from 15 minutes
    (transient) or 2 hours (permanent), capped at a week so a broken feed is still tried and
    seen. Retry-After is honoured up to a day. Everything gets ±20% jitter so feeds that failed
    together do not retry together.
    """
    rng = rng or random
    if failures <= 0:
        base = float(interval)
    else:
        start = _TRANSIENT_BASE if transient else _PERMANENT_BASE
        base = min(MAX_BACKOFF, max(start, interval) * 2 ** min(failures - 1, 30))
    if retry_after is not None:
        base = max(base, min(retry_after, RETRY_AFTER_CAP))
    return min(MAX_BACKOFF * 1.2, base * rng.uniform(0.8, 1.2))


def health(row: dict, now: datetime) -> str:
    """One word for a feed's state, as `feeds status` shows it."""
    if not row.get("enabled", True):
        return "disabled"
    if row.get("last_polled_at") is None:
        return "new"
    if row.get("consecutive_failures", 0) > 0:
        return "failing"
    newest = row.get("last_new_article_at")
    if newest is None or now - newest > SILENT_AFTER:
        # alive (answers fine) but silent: nothing new for a long time
        created = row.get("created_at") or row.get("last_polled_at")
        if newest is not None or (created and now - created > SILENT_AFTER):
            return "silent"
    return "ok"


def summarise(rows: Iterable[dict], now: datetime) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        state = health(r, now)
        out[state] = out.get(state, 0) + 1
    return out
