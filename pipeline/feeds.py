"""Feeds, the pure part: the feed list, parsing feed documents into entries, failure
classification, backoff and health. No network and no database here (see fetch.py, store.py)."""

from __future__ import annotations

import calendar
import html
import io
import logging
import random
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urljoin

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from pipeline.config_files import ConfigFile, FileKind, Model, load, problem, short
from pipeline.errors import ItemFailed, UserInputError
from pipeline.records import FeedEntry, FeedSpec
from pipeline.text import safe_text, truncate_utf8
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

MAX_TAGS = 50
MAX_TAG_CHARS = 100


def _tags(value: Any) -> Any:
    """Tags as written: `tags: world, europe` and `tags: [world, europe]` alike (each item may
    hold commas too), stripped, without empties and repeats. Anything but a string or a list of
    strings (a number counts as its text, as in `name`) is left for the model to refuse, naming
    the field."""
    if not value:
        return []
    items = [value] if isinstance(value, str | int | float) and not isinstance(value, bool) else value
    if not isinstance(items, list):
        return value
    items = [str(t) if isinstance(t, int | float) and not isinstance(t, bool) else t for t in items]
    if not all(isinstance(t, str) for t in items):
        return items
    tags = list(dict.fromkeys(t.strip() for item in items for t in item.split(",") if t.strip()))
    if len(tags) > MAX_TAGS:
        raise problem(f"at most {MAX_TAGS} tags, got {len(tags)}")
    for t in tags:
        if len(t) > MAX_TAG_CHARS:
            raise problem(f"a tag is at most {MAX_TAG_CHARS} characters, got {short(t)} ({len(t)} characters)")
    return tags


class _Feed(Model):
    model_config = ConfigDict(coerce_numbers_to_str=True)  # for `name: 1945`, as before

    url: Annotated[str, AfterValidator(canonical_url)] = Field(description="every feed needs a 'url'")
    # Left out or empty (null, "", 0): the URL.
    name: Annotated[str | None, Field(strict=False), BeforeValidator(lambda v: v or None)] = None
    # A list, or one string of comma-separated tags; left out or empty: none.
    tags: Annotated[list[str], BeforeValidator(_tags)] = []
    poll_interval: Annotated[int | None, BeforeValidator(lambda v: None if v is None else parse_interval(v))] = None
    # The publishing site's name ("BBC News"); left out: each article's site (its domain).
    outlet: Annotated[str | None, Field(strict=False), BeforeValidator(lambda v: v or None)] = None


class FeedsFile(ConfigFile):
    kind: ClassVar[FileKind] = FileKind("feed list", "NEWSROOM_FEEDS",
                                      "a list of feeds, or a mapping with a 'feeds' list", "feeds")

    feeds: list[_Feed]

    @classmethod
    def document(cls, data: Any) -> Any:
        # Short forms: the file may be just the list, and an entry just its URL.
        if isinstance(data, list):
            data = {"feeds": data}
        if isinstance(data, dict) and isinstance(data.get("feeds"), list):
            data = {**data, "feeds": [{"url": f} if isinstance(f, str) else f for f in data["feeds"]]}
        return data

    @classmethod
    def entry_name(cls, n: int, raw: Any) -> str:
        url = raw.get("url") if isinstance(raw, dict) else None
        return f"feed entry {n} ({short(url.strip())})" if isinstance(url, str) and url.strip() else f"feed entry {n}"


def load_feed_list(path: Path) -> list[FeedSpec]:
    """Read feeds.yaml. Every problem names the file and the entry, so a user can fix it."""
    specs: dict[str, FeedSpec] = {}
    for i, feed in enumerate(load(path, FeedsFile)[1].feeds, 1):
        if feed.url in specs:
            log.warning("%s: feed entry %d: %s is listed twice; keeping the first", path, i, feed.url)
            continue
        specs[feed.url] = FeedSpec(url=feed.url, name=feed.name or feed.url, tags=tuple(feed.tags),
                                   poll_interval=feed.poll_interval, outlet=feed.outlet)
    return list(specs.values())


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def feed_spec(url: str, *, name: str | None = None, tags: str = "", interval: str | None = None,
              outlet: str | None = None) -> FeedSpec:
    """One feed as typed on the command line, checked as the feeds file's entries are;
    UserInputError says what is wrong."""
    try:
        canonical = canonical_url((url or "").strip())
    except ValueError as exc:
        raise UserInputError(f"{short(url)} is not a feed URL: {exc}") from None
    try:
        tag_list = _tags(tags)
    except PydanticCustomError as exc:
        raise UserInputError(f"--tags: {exc.message()}") from None
    try:
        seconds = parse_interval(interval) if interval else None
    except ValueError as exc:
        raise UserInputError(f"--interval {exc}") from None
    # control characters as spaces: a name ends up in terminals and in exported OPML (XML)
    name, outlet = (" ".join(_CONTROL.sub(" ", safe_text(v) or "").split()) for v in (name, outlet))
    return FeedSpec(url=canonical, name=name or canonical, tags=tuple(tag_list), poll_interval=seconds,
                    outlet=outlet or None)


def parse_interval(value: object) -> int:
    """Seconds from 900, "15m", "2h" or "1d"; at least a minute. ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(value))
    if not m:
        raise ValueError(f"{value!r:.80} is not like 900, 15m, 2h or 1d")
    seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds < MIN_POLL_INTERVAL:
        raise ValueError(f"must be at least {MIN_POLL_INTERVAL}s")
    return seconds


# --- parsing --------------------------------------------------------------------------------

class FeedError(ItemFailed):
    """The document is not a usable feed (permanent: the same bytes will not parse next time)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFeed:
    title: str | None
    entries: tuple[FeedEntry, ...]
    skipped: int = 0  # entries without a usable link


# Atomic groups and [^<>]: backtracking stays linear on hostile input ("<!---->" * 30 took minutes).
_HTML_START = re.compile(rb"^\s*(?><!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.I | re.S)
_FEED_LINK = re.compile(
    rb"""<link[^<>]+type=["']application/(rss|atom)\+xml["'][^>]*>""", re.I)
_TAG = re.compile(r"<[^<>]+>")

# Limits on what one feed may put in the database (characters).
MAX_TITLE_CHARS = 1000
MAX_SUMMARY_CHARS = 5000
MAX_AUTHOR_CHARS = 200
MAX_AUTHORS = 20
MAX_GUID_BYTES = 1000  # unique-indexed with the feed id: well under a btree entry's limit
# Internal DTD entities may expand a feed to at most this many bytes in all: one entity of
# 10 KB used 100,000 times is a gigabyte, and feedparser's guard only stops nested ones.
MAX_ENTITY_EXPANSION = 1_000_000
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,24}));?")
_ENTITY_DECL = re.compile(
    rb"""<!ENTITY\s+(%\s+)?([A-Za-z_:][\w.:-]*)\s+(?:(?:SYSTEM|PUBLIC)\b[^<>]*|"([^"]*)"|'([^']*)')\s*>""")
_ENTITY_REF = re.compile(rb"[&%]([A-Za-z_:][\w.:-]*);")


def _fix_char_ref(m: re.Match) -> bytes:
    """A numeric character reference XML allows stays; one outside Unicode, a surrogate, NUL or
    a control character becomes U+FFFD (feedparser raises on them)."""
    value = int(m.group(1), 16) if m.group(1) is not None else int(m.group(2))
    if value in (0x9, 0xA, 0xD) or 0x20 <= value <= 0xD7FF or 0xE000 <= value <= 0xFFFD or 0x10000 <= value <= 0x10FFFF:
        return m.group(0)
    return b"&#xFFFD;"


def entity_expansion(body: bytes) -> int:
    """Bytes that the internal DTD entities of `body` would expand to, in all (an upper bound)."""
    decls = {m.group(2): (m.group(3) or m.group(4) or b"")
             for m in _ENTITY_DECL.finditer(body) if not m.group(1)}
    if not decls:
        return 0
    sizes: dict[bytes, int] = {}

    def size(name: bytes, depth: int = 0) -> int:
        if name in sizes:
            return sizes[name]
        if depth > 20:
            return MAX_ENTITY_EXPANSION + 1
        sizes[name] = MAX_ENTITY_EXPANSION + 1  # a reference cycle counts as unbounded
        value = decls[name]
        total = len(value) + sum(size(r, depth + 1) for r in _ENTITY_REF.findall(value) if r in decls)
        sizes[name] = min(total, MAX_ENTITY_EXPANSION + 1)
        return sizes[name]

    doc_start = body.find(b"]>")
    rest = body[doc_start + 2:] if doc_start >= 0 else body
    total = 0
    for ref in _ENTITY_REF.findall(rest):
        if ref in decls:
            total += size(ref)
            if total > MAX_ENTITY_EXPANSION:
                break
    return total


def sanitise_feed_bytes(body: bytes) -> bytes:
    """The document with its unusable character references replaced; FeedError if its internal
    entities would expand past MAX_ENTITY_EXPANSION."""
    # The whole document: padding (a megabyte of comment) may push the DTD anywhere.
    if b"<!ENTITY" in body:
        expanded = entity_expansion(body)
        if expanded > MAX_ENTITY_EXPANSION:
            raise FeedError("entity_expansion", f"the document's DTD entities expand to more than "
                            f"{MAX_ENTITY_EXPANSION:,} bytes; refused")
    return _CHAR_REF.sub(_fix_char_ref, body) if b"&#" in body else body


def _plain(text: object, limit: int = 5000) -> str | None:
    if not text or not isinstance(text, str):
        return None
    text = text[: limit * 20]  # markup and whitespace shrink; the rest would be cut anyway
    out = " ".join(html.unescape(_TAG.sub(" ", text)).split())
    return safe_text(out, limit) or None


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
    if not names and entry.get("author"):
        names = [entry["author"]]
    names = [_plain(n, MAX_AUTHOR_CHARS) for n in names[:MAX_AUTHORS]]
    return tuple(dict.fromkeys(n for n in names if n))


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
    body = sanitise_feed_bytes(bytes(body))
    # A byte stream, never bytes or str: feedparser opens a str that looks like a URL, and a
    # str or bytes that names a local file (a server answering "/etc/hostname" would be read).
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=True,
                                  resolve_relative_uris=True)
    except MemoryError:
        raise
    except Exception as exc:  # feedparser raises on some malformed input; one feed's problem
        raise FeedError("parse_error", f"feedparser failed: {type(exc).__name__}: {str(exc)[:200]}") from None
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
        try:
            entry = _entry(raw, feed_url)
        except MemoryError:
            raise
        except Exception as exc:  # one odd entry never costs the feed its other entries
            log.info("feed %s: skipped an entry: %s: %s", feed_url, type(exc).__name__, str(exc)[:200])
            entry = None
        if entry is None:
            skipped += 1
            continue
        if entry.url in seen:
            continue
        seen.add(entry.url)
        entries.append(entry)
    exc = parsed.get("bozo_exception")
    if not entries and parsed.get("bozo") and exc is not None and not isinstance(exc, benign):
        raise FeedError("parse_error", f"malformed feed: {type(exc).__name__}: {str(exc)[:200]}")
    if parsed.get("bozo") and exc is not None:
        log.debug("feed %s parsed with a warning: %s", feed_url, parsed["bozo_exception"])
    return ParsedFeed(title=_plain(parsed.feed.get("title"), 500), entries=tuple(entries), skipped=skipped)


def _entry(raw: dict, feed_url: str) -> FeedEntry | None:
    """One feedparser entry as a FeedEntry, or None without a usable link."""
    link = raw.get("link")  # feedparser already falls back to a permalink guid
    if not link or not isinstance(link, str):
        return None
    try:
        url = canonical_url(link, base=feed_url)
        if url == canonical_url(feed_url):  # a link of "//" or "" resolves to the feed itself
            return None
        entry_url = safe_text(urljoin(feed_url, link.strip()), 4000)
    except (ValueError, TypeError):
        return None
    guid = raw.get("id")
    guid = truncate_utf8(safe_text(guid.strip()), MAX_GUID_BYTES) or None if isinstance(guid, str) else None
    return FeedEntry(
        url=url,
        entry_url=entry_url,
        guid=guid,
        title=_plain(raw.get("title"), MAX_TITLE_CHARS),
        summary=_plain(raw.get("summary"), MAX_SUMMARY_CHARS),
        published=_when(raw),
        authors=_authors(raw),
    )


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
        return row.get("disabled_reason") or "disabled"  # paused, removed, gone, unlisted, moved
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
