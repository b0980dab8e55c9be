"""Sitemaps, the pure part: bytes in, listed articles out. No network and no database here
(fetch.py downloads, backfill.py drives, store/backfill.py writes).

Reads what sites publish to list their pages: a sitemap (<urlset>), a sitemap index
(<sitemapindex>), Google News sitemaps (news:publication_date, news:title, news:language), a
plain-text sitemap (one URL per line), an RSS or Atom feed (sitemaps.org allows them), each
possibly gzip-compressed. Every byte is a stranger's:

- the format is told by the bytes, never by the URL or the content type (servers lie): gzip by
  its magic number, decompressed under a hard cap (a gzip bomb fails cleanly as `too_large`);
- XML is parsed by lxml with entities never resolved, no network, no huge trees; a document
  declaring DTD entities is refused outright (`entity_expansion`: sitemaps never need them,
  billion laughs and XXE always do);
- the declared encoding is believed only when the bytes are not UTF-8 (what the protocol
  requires), a BOM always wins, leading blank lines before the XML declaration are forgiven;
- at most MAX_URLS_PER_SITEMAP URLs are taken from one document (the protocol's limit), the
  rest counted `over_limit`; a URL that is not http(s) or cannot be fetched is skipped and
  counted `invalid_url`;
- an index's loops (A lists A, A -> B -> A) and depth are the Frontier's to stop.
"""

from __future__ import annotations

import codecs
import io
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from urllib.parse import urljoin

from pipeline.errors import NewsroomError
from pipeline.records import ListedArticle
from pipeline.text import safe_text
from pipeline.urls import InvalidURL, canonical_url, fetchable_url

MAX_URLS_PER_SITEMAP = 50_000  # sitemaps.org: at most 50,000 URLs (or child sitemaps) per file
MAX_DEPTH = 3  # index -> index -> index -> sitemap; the protocol allows one level, some sites nest
MAX_SITEMAPS = 5_000  # documents one backfill reads at most (10+ years of daily news sitemaps)
MAX_TITLE_CHARS = 1000
MIN_DATE = datetime(1995, 1, 1, tzinfo=UTC)  # as extract.py: earlier is a parsing accident
FUTURE_TOLERANCE = timedelta(days=1)


class SitemapKind(StrEnum):
    URLSET = "urlset"
    INDEX = "index"
    TEXT = "text"
    FEED = "feed"


class Problem(StrEnum):
    """Why a sitemap document could not be read (its one-line report says it; never stored)."""

    NOT_A_SITEMAP = "not_a_sitemap"
    PARSE_ERROR = "parse_error"
    TOO_LARGE = "too_large"
    BAD_ENCODING = "bad_encoding"
    ENTITY_EXPANSION = "entity_expansion"


class Skip(StrEnum):
    """Why a listed URL (or a child sitemap) was not taken."""

    INVALID_URL = "invalid_url"  # not http(s), bad host or characters, too long
    DUPLICATE = "duplicate"  # listed before in this backfill
    OUTSIDE_DATES = "outside_dates"  # dated outside --since/--until
    UNDATED = "undated"  # no date, and a date range was asked for
    OVER_LIMIT = "over_limit"  # past the per-sitemap or per-backfill cap
    REPEATED = "repeated"  # a sitemap already read (an index's loop, or listed twice)
    TOO_DEEP = "too_deep"  # indexes nested deeper than MAX_DEPTH
    TOO_MANY = "too_many"  # past MAX_SITEMAPS documents


class SitemapError(NewsroomError):
    """A document that is not a usable sitemap; the same bytes fail the same way next time."""

    def __init__(self, problem: Problem, message: str):
        super().__init__(message)
        self.problem = Problem(problem)


@dataclass(frozen=True, slots=True)
class ChildSitemap:
    """One <sitemap> of an index: a URL to request as given, and when it last changed."""

    url: str
    lastmod: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedSitemap:
    kind: SitemapKind
    articles: tuple[ListedArticle, ...] = ()
    sitemaps: tuple[ChildSitemap, ...] = ()
    skipped: Mapping[str, int] = field(default_factory=dict)  # Skip -> how many
    invalid: tuple[str, ...] = ()  # the first few unusable URLs, as listed, for the report

    @property
    def listed(self) -> int:
        """URLs (or child sitemaps) the document listed, usable or not."""
        return len(self.articles) + len(self.sitemaps) + sum(self.skipped.values())


# --- bytes ----------------------------------------------------------------------------------

GZIP_MAGIC = b"\x1f\x8b"


def gunzip(body: bytes, max_bytes: int) -> bytes:
    """Decompress gzip (every member), stopping as soon as the output passes `max_bytes`:
    a bomb costs at most that much memory. SitemapError too_large or bad_encoding."""
    out = bytearray()
    data = body
    while data:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += decoder.decompress(data, max_bytes - len(out) + 1)
        except zlib.error as exc:
            raise SitemapError(Problem.BAD_ENCODING, f"corrupt gzip data: {exc}") from None
        if len(out) > max_bytes or decoder.unconsumed_tail:
            raise SitemapError(Problem.TOO_LARGE, f"decompresses to more than {max_bytes:,} bytes; refused")
        if not decoder.eof:
            raise SitemapError(Problem.BAD_ENCODING, "truncated gzip data")
        data = decoder.unused_data.lstrip(b"\x00")  # members may follow; padding NULs may too
        if data and not data.startswith(GZIP_MAGIC):
            break  # trailing garbage after the last member, as gzip(1) ignores it
    return bytes(out)


_XML_DECL = re.compile(r"^<\?xml[^>]{0,300}\?>")
_DECLARED = re.compile(rb"""^[\s\x00]*<\?xml[^>]{0,300}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
# Codecs a document may name that decode to something other than text, or raise.
_NOT_TEXT_CODECS = {"idna", "punycode", "utf-7", "unicode-escape", "raw-unicode-escape", "undefined"}


def _codec(name: str) -> str | None:
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_TEXT_CODECS:
        return None
    return info.name


def decode(body: bytes) -> str:
    """The document as text: a BOM wins; then UTF-8 if the bytes are UTF-8 (the protocol's
    encoding, whatever the declaration says); then the declared encoding; then Windows-1252."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(enc, errors="replace").lstrip("\ufeff")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    m = _DECLARED.match(body[:400])
    declared = _codec(m.group(1).decode("ascii")) if m else None
    if declared:
        try:
            return body.decode(declared)
        except (UnicodeError, LookupError):
            pass
    return body.decode("cp1252", errors="replace")


def _looks_binary(text: str) -> bool:
    head = text[:4096]
    return sum(1 for c in head if c < "\t" or "\r" < c < " ") > len(head) // 20


# --- dates, languages, titles ---------------------------------------------------------------

_W3C_DATE = re.compile(
    r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?")


def parse_w3c_date(text: str | None) -> datetime | None:
    """A W3C Datetime (what lastmod and news:publication_date hold: 2019, 2019-10, 2019-10-01,
    2019-10-01T12:00+02:00, with seconds and fractions) as an aware datetime; UTC when no offset
    is given. None for anything else."""
    m = _W3C_DATE.fullmatch((text or "").strip()[:64])
    if not m:
        return None
    year, month, day, hour, minute, second, offset = m.groups()
    tz = UTC
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    try:
        return datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                        int(second or 0), tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def plausible(when: datetime | None, now: datetime) -> datetime | None:
    """A publication time a page could have: from 1995 to a day from now; None otherwise."""
    if when is None or not MIN_DATE <= when <= now + FUTURE_TOLERANCE:
        return None
    return when


_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8}){0,3}")


def _language(text: str | None) -> str | None:
    code = (text or "").strip().lower().replace("_", "-")
    return code if _LANGUAGE.fullmatch(code) else None


def _title(text: str | None) -> str | None:
    return safe_text(" ".join((text or "").split()), MAX_TITLE_CHARS) or None


# --- documents ------------------------------------------------------------------------------

_HTML_START = re.compile(r"^\s*(?><!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.I | re.S)
_FEED_ROOTS = {"rss", "feed", "rdf"}
_SAFE_XML = {"resolve_entities": False, "no_network": True, "huge_tree": False, "load_dtd": False,
             "dtd_validation": False, "remove_comments": True, "remove_pis": True}


def parse_sitemap(body: bytes, *, url: str, max_bytes: int, max_urls: int = MAX_URLS_PER_SITEMAP,
                  now: datetime | None = None) -> ParsedSitemap:
    """What one sitemap document lists. `url` is where it came from (after redirects): relative
    locations resolve against it. Raises SitemapError when the document is not a usable sitemap."""
    now = now or datetime.now(UTC)
    if body.startswith(GZIP_MAGIC):
        body = gunzip(body, max_bytes)
        if body.startswith(GZIP_MAGIC):
            raise SitemapError(Problem.NOT_A_SITEMAP, "gzip inside gzip; refused")
    if len(body) > max_bytes:
        raise SitemapError(Problem.TOO_LARGE, f"{len(body):,} bytes, more than {max_bytes:,}; refused")
    if not body.strip():
        raise SitemapError(Problem.NOT_A_SITEMAP, "empty document")
    text = decode(body)
    start = text.lstrip()
    if not start.startswith("<"):
        if _looks_binary(text):
            raise SitemapError(Problem.NOT_A_SITEMAP, "binary data, not a sitemap")
        # Absolute URLs only, as the protocol says: resolved against the sitemap's URL, any line
        # of junk would become a page of its site.
        parsed = parse_url_list(text.splitlines(), max_urls=max_urls)
        if not parsed.articles and parsed.skipped.get(Skip.INVALID_URL):
            raise SitemapError(Problem.NOT_A_SITEMAP,
                               "neither XML nor a list of URLs (no line of the text is an http(s) URL)")
        return parsed
    if _HTML_START.match(start[:4096]):
        raise SitemapError(Problem.NOT_A_SITEMAP, "got an HTML page, not a sitemap")
    if "<!ENTITY" in start:
        raise SitemapError(Problem.ENTITY_EXPANSION, "the document declares DTD entities; refused "
                           "(a sitemap never needs them)")
    return _parse_xml(_XML_DECL.sub("", start, count=1).encode("utf-8", errors="replace"), body, url=url,
                      max_urls=max_urls, now=now)


def _local(el) -> str:
    tag = el.tag
    if not isinstance(tag, str):  # a comment or processing instruction
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _text(el) -> str:
    return "".join(el.itertext()).strip()


class _IsFeed(Exception):
    pass


def _parse_xml(data: bytes, original: bytes, *, url: str, max_urls: int, now: datetime) -> ParsedSitemap:
    from lxml import etree

    kind: SitemapKind | None = None
    articles: list[ListedArticle] = []
    children: list[ChildSitemap] = []
    skipped: Counter = Counter()
    invalid: list[str] = []
    depth = 0
    try:
        for event, el in etree.iterparse(io.BytesIO(data), events=("start", "end"), **_SAFE_XML):
            if event == "start":
                depth += 1
                if depth == 1:
                    kind = _root_kind(el)
                continue
            depth -= 1
            if depth != 1:
                continue
            name = _local(el)
            if len(articles) + len(children) >= max_urls and name in ("url", "sitemap"):
                skipped[Skip.OVER_LIMIT] += 1
            elif kind is SitemapKind.URLSET and name == "url":
                article = _url_entry(el, url, now)
                if isinstance(article, ListedArticle):
                    articles.append(article)
                else:
                    skipped[Skip.INVALID_URL] += 1
                    if len(invalid) < 5:
                        invalid.append(safe_text(article, 200) or "(empty)")
            elif kind is SitemapKind.INDEX and name == "sitemap":
                child = _child_entry(el, url)
                if isinstance(child, ChildSitemap):
                    children.append(child)
                else:
                    skipped[Skip.INVALID_URL] += 1
                    if len(invalid) < 5:
                        invalid.append(safe_text(child, 200) or "(empty)")
            # What was read is dropped: memory stays flat however long the document.
            el.clear()
            parent = el.getparent()
            while parent is not None and el.getprevious() is not None:
                del parent[0]
    except _IsFeed:
        return _parse_feed(original, url)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(Problem.PARSE_ERROR, f"malformed XML: {str(exc)[:200]}") from None
    if kind is None:
        raise SitemapError(Problem.NOT_A_SITEMAP, "no XML element in the document")
    return ParsedSitemap(kind=kind, articles=tuple(articles), sitemaps=tuple(children), skipped=dict(skipped),
                         invalid=tuple(invalid))


def _root_kind(el) -> SitemapKind:
    """The document's kind by its root element's name, in any namespace (sites get it wrong:
    none, the old Google one, a typo), so long as the name is right."""
    name = _local(el)
    if name == "urlset":
        return SitemapKind.URLSET
    if name == "sitemapindex":
        return SitemapKind.INDEX
    if name in _FEED_ROOTS:
        raise _IsFeed
    if name == "html":
        raise SitemapError(Problem.NOT_A_SITEMAP, "got an (X)HTML page, not a sitemap")
    raise SitemapError(Problem.NOT_A_SITEMAP,
                       f"the root element is <{safe_text(name, 40)}>, not <urlset> or <sitemapindex>")


def _url_entry(el, base: str, now: datetime) -> ListedArticle | str:
    """One <url> as a ListedArticle, or the unusable location as listed."""
    loc = lastmod = None
    published = title = language = None
    for child in el:
        name = _local(child)
        if name == "loc" and loc is None:
            loc = _text(child)
        elif name == "lastmod":
            lastmod = parse_w3c_date(_text(child))
        elif name == "news":  # Google News: <news:news><news:publication>...</news:publication>...
            for part in child.iter():
                sub = _local(part)
                if sub == "publication_date":
                    published = plausible(parse_w3c_date(_text(part)), now)
                elif sub == "title":
                    title = _title(_text(part))
                elif sub == "language":
                    language = _language(_text(part))
    if not loc:
        return ""
    try:
        canonical, listed = _article_url(loc, base)
    except InvalidURL:
        return loc
    return ListedArticle(url=canonical, listed_url=listed, lastmod=lastmod, published=published, title=title,
                         language=language)


_ABSOLUTE = re.compile(r"\s*https?://", re.I)


def _article_url(loc: str, base: str | None = None) -> tuple[str, str]:
    """(canonical URL, the URL as listed, resolved) of an article's location; InvalidURL when it
    can never be fetched. (The page is requested by its canonical URL, which passed every check:
    the listed spelling is only kept, as a feed entry's is.)"""
    if base is not None and not _ABSOLUTE.match(loc):  # the protocol wants absolute URLs; some sites don't
        loc = urljoin(base, loc.strip())
    return canonical_url(loc), safe_text(loc.strip(), 4000)


def _child_entry(el, base: str) -> ChildSitemap | str:
    loc = lastmod = None
    for child in el:
        name = _local(child)
        if name == "loc" and loc is None:
            loc = _text(child)
        elif name == "lastmod":
            lastmod = parse_w3c_date(_text(child))
    if not loc:
        return ""
    try:
        return ChildSitemap(fetchable_url(loc, base=base), lastmod)
    except InvalidURL:
        return loc


def _parse_feed(body: bytes, url: str) -> ParsedSitemap:
    """An RSS or Atom feed given as a sitemap: its entries' links (sitemaps.org allows it)."""
    from pipeline.feeds import FeedError, parse_feed

    try:
        feed = parse_feed(body, feed_url=url)
    except FeedError as exc:
        raise SitemapError(Problem.PARSE_ERROR, f"a feed that cannot be read: {exc}") from None
    articles = []
    for e in feed.entries:
        articles.append(ListedArticle(url=e.url, listed_url=e.entry_url, published=e.published, title=e.title))
    return ParsedSitemap(kind=SitemapKind.FEED, articles=tuple(articles),
                         skipped={Skip.INVALID_URL: feed.skipped} if feed.skipped else {})


def parse_url_list(lines: Iterable[str], *, max_urls: int = MAX_URLS_PER_SITEMAP) -> ParsedSitemap:
    """Absolute URLs one per line (a plain-text sitemap, or a user's list): blank lines and lines
    starting with '#' are ignored; an unusable URL is skipped and counted."""
    articles: list[ListedArticle] = []
    skipped: Counter = Counter()
    invalid: list[str] = []
    for line in lines:
        line = line.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        if len(articles) >= max_urls:
            skipped[Skip.OVER_LIMIT] += 1
            continue
        try:
            url, listed = _article_url(line)
            articles.append(ListedArticle(url=url, listed_url=listed))
        except InvalidURL:
            skipped[Skip.INVALID_URL] += 1
            if len(invalid) < 5:
                invalid.append(safe_text(line, 200))
    return ParsedSitemap(kind=SitemapKind.TEXT, articles=tuple(articles), skipped=dict(skipped),
                         invalid=tuple(invalid))


# --- one backfill's bookkeeping -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DateRange:
    """--since/--until: [since, until), by news:publication_date, else lastmod."""

    since: datetime | None = None
    until: datetime | None = None

    def __bool__(self) -> bool:
        return self.since is not None or self.until is not None

    def rejects(self, article: ListedArticle) -> Skip | None:
        if not self:
            return None
        when = article.published or article.lastmod
        if when is None:
            return Skip.UNDATED
        if (self.since is not None and when < self.since) or (self.until is not None and when >= self.until):
            return Skip.OUTSIDE_DATES
        return None

    def rejects_sitemap(self, child: ChildSitemap) -> bool:
        """A sitemap unchanged since before `since` lists only pages changed before it."""
        return self.since is not None and child.lastmod is not None and child.lastmod < self.since


class Listing:
    """The articles one backfill found: deduplicated by canonical URL, filtered by date, at most
    `limit`; every URL not taken is counted by why. listed == len(articles) + sum(skipped)."""

    def __init__(self, *, limit: int, dates: DateRange | None = None):
        self.limit = limit
        self.dates = dates or DateRange()
        self.articles: dict[str, ListedArticle] = {}
        self.skipped: Counter = Counter()
        self.invalid: list[str] = []

    @property
    def listed(self) -> int:
        return len(self.articles) + sum(self.skipped.values())

    @property
    def full(self) -> bool:
        return len(self.articles) >= self.limit

    def add(self, parsed: ParsedSitemap) -> None:
        self.skipped.update({Skip(k): v for k, v in parsed.skipped.items() if v})
        self.invalid.extend(parsed.invalid[: max(0, 5 - len(self.invalid))])
        for article in parsed.articles:
            reason = self.dates.rejects(article)
            if reason is None and article.url in self.articles:
                reason = Skip.DUPLICATE
                self.articles[article.url] = _merged(self.articles[article.url], article)
            if reason is None and self.full:
                reason = Skip.OVER_LIMIT
            if reason is None:
                self.articles[article.url] = article
            else:
                self.skipped[reason] += 1


def _merged(first: ListedArticle, again: ListedArticle) -> ListedArticle:
    """An article listed twice (a news sitemap and a plain one, read in either order): the first
    listing, its missing hints taken from the second."""
    return replace(first, lastmod=first.lastmod or again.lastmod, published=first.published or again.published,
                   title=first.title or again.title, language=first.language or again.language)


class Frontier:
    """Which sitemaps one backfill reads: each once (an index listing itself, or A -> B -> A,
    ends there), none deeper than `max_depth` below the ones given, at most `max_sitemaps`."""

    def __init__(self, *, max_depth: int = MAX_DEPTH, max_sitemaps: int = MAX_SITEMAPS):
        self.max_depth = max_depth
        self.max_sitemaps = max_sitemaps
        self.seen: set[str] = set()
        self.skipped: Counter = Counter()

    @staticmethod
    def _key(url: str) -> str:
        try:
            return canonical_url(url)
        except InvalidURL:
            return url

    def admit(self, url: str, depth: int) -> bool:
        """Whether to read `url`, found `depth` levels below a sitemap given by the user."""
        key = self._key(url)
        if key in self.seen:
            self.skipped[Skip.REPEATED] += 1
            return False
        if depth > self.max_depth:
            self.skipped[Skip.TOO_DEEP] += 1
            return False
        if len(self.seen) >= self.max_sitemaps:
            self.skipped[Skip.TOO_MANY] += 1
            return False
        self.seen.add(key)
        return True

    def mark(self, url: str) -> None:
        """A URL read under another name (a redirect's target): never read it again."""
        self.seen.add(self._key(url))
