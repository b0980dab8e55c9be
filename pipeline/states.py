"""The states and classes Newsroom records, as enums. Each one whose column has a CHECK
constraint in sql/migrations matches it exactly (tests/integration/test_states.py).

StrEnums: a member is its string, so it goes into SQL parameters, JSON and log lines unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class ArticleStatus(StrEnum):
    """articles.status: where an article is on its way through the stages."""

    DISCOVERED = "discovered"  # seen in a feed; its page not downloaded yet
    FETCHED = "fetched"  # page stored
    EXTRACTED = "extracted"  # clean text stored
    TAGGED = "tagged"  # entities and topics stored
    FAILED = "failed"  # given up: last_error and failed_stage say why and where


class Stage(StrEnum):
    """articles.failed_stage, and the article stages: each takes articles in one status to the next."""

    FETCH = "fetch"
    EXTRACT = "extract"
    TAG = "tag"

    @property
    def takes(self) -> ArticleStatus:
        """The article status this stage claims."""
        return _TAKES[self]


_TAKES = {Stage.FETCH: ArticleStatus.DISCOVERED, Stage.EXTRACT: ArticleStatus.FETCHED,
          Stage.TAG: ArticleStatus.EXTRACTED}


class PollOutcome(StrEnum):
    """feed_polls.outcome and feeds.last_status."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"  # 304, or a 200 whose body hash is unchanged
    ERROR = "error"


class FeedManager(StrEnum):
    """feeds.managed_by: who keeps a feed's settings."""

    FILE = "file"  # listed in the feeds file (NEWSROOM_FEEDS), kept in sync with it
    USER = "user"  # added or imported from the CLI: the file's sync leaves it alone


class DisabledReason(StrEnum):
    """feeds.disabled_reason: why a feed is not polled (NULL while it is)."""

    REMOVED = "removed"  # `newsroom feeds remove`
    PAUSED = "paused"  # `newsroom feeds pause`
    GONE = "gone"  # the server answered 410 Gone
    UNLISTED = "unlisted"  # dropped from the feeds file
    MOVED = "moved"  # redirected for good to a URL another feed already has


class RunStatus(StrEnum):
    """ingest_runs.status."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class DateSource(StrEnum):
    """articles.published_source: where the publication date was found."""

    PAGE = "page"
    FEED = "feed"
    URL = "url"


class CharsetSource(StrEnum):
    """raw_pages.charset_source: where the charset a page was decoded with came from."""

    BOM = "bom"  # a byte-order mark
    HEADER = "header"  # the Content-Type header's charset
    META = "meta"  # a <meta charset> in the first 4 KB
    DETECTED = "detected"  # the bytes: valid UTF-8 (overruling a Latin declaration), or a detector's guess
    FALLBACK = "fallback"  # nothing fit: UTF-8 with the bad bytes replaced
    OVERRIDE = "override"  # corrected by hand after the fetch (store.articles.correct_charset)


class ErrorClass(StrEnum):
    """Why a feed, page or article failed: feed_polls.error_class, feeds.last_error_class, the
    prefix of articles.last_error ("timeout: ...", except `worker_lost: ...` for GAVE_UP), and the
    keys of a stage's error counts."""

    # the network
    DNS = "dns"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    TLS = "tls"
    TLS_CERTIFICATE = "tls_certificate"
    PROTOCOL = "protocol"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    HTTP_4XX = "http_4xx"
    HTTP_410_GONE = "http_410_gone"
    HTTP_429 = "http_429"
    HTTP_5XX = "http_5xx"
    HTTP_UNEXPECTED = "http_unexpected"
    # what we refuse to fetch
    INVALID_URL = "invalid_url"
    BLOCKED_ADDRESS = "blocked_address"
    ROBOTS_DISALLOWED = "robots_disallowed"
    ROBOTS_UNAVAILABLE = "robots_unavailable"
    # what came back
    TOO_LARGE = "too_large"
    EMPTY_BODY = "empty_body"
    NOT_HTML = "not_html"
    BAD_ENCODING = "bad_encoding"
    NOT_A_FEED = "not_a_feed"
    PARSE_ERROR = "parse_error"
    ENTITY_EXPANSION = "entity_expansion"
    # extraction (pipeline/extract.py)
    EMPTY_HTML = "empty_html"
    NO_BODY = "no_body"
    TOO_SHORT = "too_short"
    PAYWALL = "paywall"
    NOT_ARTICLE = "not_article"
    # the machinery
    INTERNAL_ERROR = "internal_error"  # a bug or an input nobody foresaw, with its traceback in the log
    GAVE_UP = "gave_up"  # claimed NEWSROOM_MAX_ATTEMPTS times, never finished (worker_lost)


class PlaceKind(StrEnum):
    """What kind of place an entity is: entities.place_kind (pipeline/places.py)."""

    COUNTRY = "country"  # an ISO 3166-1 country (or territory)
    REGION = "region"  # a subdivision: an ISO 3166-2 code (a US state, England, Surrey, Idlib Governorate)
    CITY = "city"  # a GeoNames city or town
    CONTINENT = "continent"


class LinkRule(StrEnum):
    """Which rule tied a mention to its place: article_entities.link_rule (pipeline/places.py
    says when each one applies)."""

    GAZETTEER = "gazetteer"  # a curated name or alias (places.yaml, the gazetteer): no doubt to settle
    SINGLE = "single"  # the model said place, and one place has the name
    CONTEXT = "context"  # several places have the name: the one in a country the article names
    PROMINENT = "prominent"  # several have it: a country over smaller places, or one ten times the others' size
    PREPOSITION = "preposition"  # the model said otherwise, but "in/near/outside X": a place
    NEARBY_COUNTRY = "nearby_country"  # the model said otherwise, but a country is named beside it ("Jordan and Syria")
