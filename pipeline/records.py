"""Typed records passed between stages. Third-party dicts are converted into these at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pipeline.states import (
    ArticleStatus,
    CharsetSource,
    DateSource,
    ErrorClass,
    LinkRule,
    PlaceKind,
    PollOutcome,
)
from pipeline.text import entity_key


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSpec:
    """One feed as the user lists it in feeds.yaml."""

    url: str
    name: str
    tags: tuple[str, ...] = ()
    poll_interval: int | None = None  # seconds; None = the default
    outlet: str | None = None  # the publishing site's name; None = each article's site


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedState:
    """What polling needs to know about a stored feed."""

    id: int
    url: str
    name: str = ""
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    consecutive_failures: int = 0
    poll_interval: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedEntry:
    """One item of a parsed feed."""

    url: str  # canonical
    entry_url: str  # as the feed gave it, resolved against the feed URL
    guid: str | None = None
    title: str | None = None
    summary: str | None = None
    published: datetime | None = None  # always timezone-aware
    authors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedArticle:
    """An article URL a backfill found (a sitemap's <url>, a line of a URL list), with the hints
    a Google News sitemap gives; enqueued as backlog (pipeline/backfill.py)."""

    url: str  # canonical
    listed_url: str  # as listed, resolved against the sitemap's URL
    lastmod: datetime | None = None  # when the page last changed (filters only; never a publication time)
    published: datetime | None = None  # news:publication_date: the feed-level publication time
    title: str | None = None  # news:title
    language: str | None = None  # news:language


@dataclass(frozen=True, slots=True, kw_only=True)
class PollResult:
    """The outcome of polling one feed, as recorded in `feed_polls` and on the feed."""

    feed_id: int
    started_at: datetime
    finished_at: datetime
    outcome: PollOutcome
    http_status: int | None = None
    entries: tuple[FeedEntry, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    error_class: ErrorClass | None = None
    error_message: str | None = None
    transient: bool | None = None
    next_poll_at: datetime | None = None
    # Where a permanent redirect (301/308 from the feed's URL itself) pointed, canonical.
    moved_to: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedArticle:
    id: int
    url: str
    attempts: int
    status: ArticleStatus
    title: str | None = None
    summary: str | None = None
    feed_published_at: datetime | None = None
    final_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawPage:
    """A downloaded page. `body`: the bytes as served (after Content-Encoding), which is what
    raw_pages keeps, with the charset decision (`charset`, `charset_source`); `html`: the text
    decoded with it. A page made without `body` is kept as its `html` in UTF-8."""

    article_id: int
    http_status: int
    final_url: str
    html: str
    body: bytes | None = None
    content_type: str | None = None
    charset: str | None = None
    charset_source: CharsetSource | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPage:
    """A page as raw_pages holds it: the bytes as served with the charset decision (rows since
    migration 0007), or only the decoded text (`html`, older rows)."""

    article_id: int
    body: bytes | None = None
    html: str | None = None
    charset: str | None = None
    charset_source: CharsetSource | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Extraction:
    """A cleaned article."""

    text: str
    title: str | None = None
    author: str | None = None
    language: str | None = None
    published_at: datetime | None = None
    published_source: DateSource | None = None
    word_count: int = 0
    content_hash: str = ""
    extractor_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Mention:
    """One entity mention, with offsets into the stored body."""

    start: int
    end: int
    surface: str
    label: str
    canonical: str
    wikidata_id: str | None = None
    # Set for an entity the gazetteer or the place index knows (nlp.normalise): its stable key
    # (text.entity_key's rule otherwise) and, for a place, its ids and country.
    key: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    geonames_id: int | None = None
    iso_code: str | None = None  # ISO 3166-1 alpha-2 of a country, ISO 3166-2 of a subdivision
    place_kind: PlaceKind | None = None
    rule: LinkRule | None = None  # which rule linked the place

    @property
    def entity_key(self) -> str:
        """The key of the entity this mention belongs to (entities.key)."""
        return self.key or entity_key(self.canonical, self.wikidata_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicDef:
    slug: str
    name: str
    description: str = ""
    rules_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicTag:
    slug: str
    score: float
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterCandidate:
    """An article as near-duplicate clustering sees it: its MinHash and when it was published
    (`published_effective`)."""

    id: int
    signature: bytes | None
    bands: tuple[int, ...] = ()
    published: datetime
    cluster_id: int | None = None
