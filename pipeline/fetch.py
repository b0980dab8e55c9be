"""The network edge: safe, polite HTTP for feeds, pages and robots.txt.

Every download: connect/read timeouts and an overall deadline, a size cap enforced while
streaming and again after decompression, redirects followed by hand (each hop's address is
checked), private/loopback/link-local/multicast addresses refused unless allowed, per-host
concurrency cap and minimum gap shared by feed and page requests, and a User-Agent naming
the project. Failures become FetchError with an error class and whether a retry may help.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import ipaddress
import logging
import re
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from pipeline.config import Settings
from pipeline.errors import NewsroomError
from pipeline.feeds import (
    FeedError,
    classify_status,
    next_poll_delay,
    parse_feed,
    parse_retry_after,
)
from pipeline.records import ClaimedArticle, FeedState, PollResult, RawPage

log = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_TTL = 6 * 3600
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_KEEP_HEADERS = ("etag", "last-modified", "content-type", "content-language", "date", "cache-control",
                 "expires", "x-robots-tag", "link")


class FetchError(NewsroomError):
    """A download that failed, classified for the record and for retry decisions."""

    def __init__(self, error_class: str, message: str, *, transient: bool, http_status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.error_class = error_class
        self.transient = transient
        self.http_status = http_status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    url: str
    final_url: str
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    redirects: int = 0

    @property
    def content_type(self) -> str | None:
        ct = self.headers.get("content-type")
        return ct.split(";")[0].strip().lower() if ct else None


# --- politeness -----------------------------------------------------------------------------

class HostLimiter:
    """At most `concurrency` requests at once and `delay` seconds between request starts, per host.

    One instance is shared by feed polls, page downloads and robots.txt within a process.
    Timestamps survive across event loops; semaphores are remade for each new loop.
    """

    def __init__(self, concurrency: int, delay: float):
        self.concurrency = concurrency
        self.delay = delay
        self._next_start: dict[str, float] = {}
        self._host_delay: dict[str, float] = {}
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def set_delay(self, host: str, seconds: float) -> None:
        self._host_delay[host] = max(self.delay, seconds)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._sems, self._locks = loop, {}, {}
        sem = self._sems.setdefault(host, asyncio.Semaphore(self.concurrency))
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with sem:
            async with lock:
                wait = self._next_start.get(host, 0.0) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_start[host] = time.monotonic() + self._host_delay.get(host, self.delay)
            yield


# --- address safety -------------------------------------------------------------------------

def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


async def check_address(host: str, port: int, *, allow_private: bool) -> None:
    """Refuse hosts that resolve (any of their answers) to non-public addresses."""
    if allow_private:
        return
    host = host.strip("[]")
    try:
        addrs = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError("dns", f"cannot resolve {host}: {exc.strerror or exc}", transient=True) from None
        addrs = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addrs:
        if not is_public_address(ip):
            raise FetchError("blocked_address",
                             f"{host} resolves to non-public address {ip}; refused "
                             "(set NEWSROOM_ALLOW_PRIVATE_NETWORKS=1 to allow)", transient=False)


# --- downloading ----------------------------------------------------------------------------

def make_client(settings: Settings) -> httpx.AsyncClient:
    timeout = httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                            write=settings.read_timeout, pool=None)
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False, http2=False,
        limits=httpx.Limits(max_connections=max(100, settings.poll_concurrency * 2),
                            max_keepalive_connections=50),
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
    )


def _classify_transport(exc: Exception, host: str) -> FetchError:
    chain, cur = [], exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    if any(isinstance(e, socket.gaierror) for e in chain):
        return FetchError("dns", f"cannot resolve {host}", transient=True)
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return FetchError("tls", f"TLS error with {host}: {exc}", transient=False)
    if isinstance(exc, httpx.TimeoutException):
        kind = "connect timeout" if isinstance(exc, httpx.ConnectTimeout) else "read timeout"
        return FetchError("timeout", f"{kind} from {host}", transient=True)
    if isinstance(exc, httpx.ConnectError):
        return FetchError("connect", f"cannot connect to {host}: {exc}", transient=True)
    return FetchError("protocol", f"{type(exc).__name__} from {host}: {exc}", transient=True)


async def _read_body(resp: httpx.Response, max_bytes: int) -> bytes:
    """Read the body, decompressing ourselves so the cap holds after decompression too."""
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("too_large", f"body of {declared} bytes exceeds the {max_bytes}-byte limit",
                         transient=False, http_status=resp.status_code)
    encoding = resp.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    elif encoding in ("", "identity"):
        decoder = None
    else:
        raise FetchError("bad_encoding", f"unsupported Content-Encoding {encoding!r}", transient=False,
                         http_status=resp.status_code)
    out, raw_total = bytearray(), 0
    too_large = FetchError("too_large", f"body exceeds the {max_bytes}-byte limit", transient=False,
                           http_status=resp.status_code)
    async for chunk in resp.aiter_raw():
        raw_total += len(chunk)
        if raw_total > max_bytes:
            raise too_large
        if decoder is None:
            out += chunk
        else:
            try:
                out += decoder.decompress(chunk, max_bytes - len(out) + 1)
            except zlib.error as exc:
                if encoding == "deflate" and not out and raw_total == len(chunk):
                    decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
                    out += decoder.decompress(chunk, max_bytes + 1)
                else:
                    raise FetchError("bad_encoding", f"corrupt {encoding} body: {exc}", transient=False,
                                     http_status=resp.status_code) from None
            if decoder.unconsumed_tail:
                raise too_large  # a decompression bomb: stopped before it grew further
        if len(out) > max_bytes:
            raise too_large
    return bytes(out)


async def download(client: httpx.AsyncClient, limiter: HostLimiter, url: str, settings: Settings, *,
                   headers: dict[str, str] | None = None, max_bytes: int | None = None,
                   accept: str = "*/*") -> Download:
    """GET `url` with every limit in force. Returns 2xx and 304 responses; raises FetchError otherwise."""
    return await _download(client, limiter, url, settings, headers or {}, max_bytes or settings.max_body_bytes,
                           accept)


async def _download(client, limiter, url, settings, headers, max_bytes, accept) -> Download:
    current, redirects = url, 0
    while True:
        parts = urlsplit(current)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise FetchError("bad_url", f"not an http(s) URL: {current[:200]}", transient=False)
        await check_address(host, parts.port or (443 if parts.scheme == "https" else 80),
                            allow_private=settings.allow_private_networks)
        # The deadline covers the request only, not the wait for this host's turn: a site with many
        # queued pages is not slow, just politely spaced.
        deadline = settings.connect_timeout + 3 * settings.read_timeout
        async with limiter.slot(host):
            try:
                async with asyncio.timeout(deadline), \
                        client.stream("GET", current, headers={"Accept": accept, **headers}) as resp:
                    status = resp.status_code
                    if status in (301, 302, 303, 307, 308) and resp.headers.get("location"):
                        redirects += 1
                        if redirects > settings.max_redirects:
                            raise FetchError("too_many_redirects",
                                             f"more than {settings.max_redirects} redirects from {url}",
                                             transient=False, http_status=status)
                        current = urljoin(current, resp.headers["location"].strip())
                        continue
                    kept = {k: resp.headers[k] for k in _KEEP_HEADERS if k in resp.headers}
                    if status == 304:
                        return Download(url=url, final_url=current, status=304, body=b"", headers=kept,
                                        redirects=redirects)
                    if status >= 300:
                        error_class, transient = classify_status(status)
                        raise FetchError(error_class, f"HTTP {status} {resp.reason_phrase}".strip(),
                                         transient=transient, http_status=status,
                                         retry_after=parse_retry_after(resp.headers.get("retry-after")))
                    body = await _read_body(resp, max_bytes)
                    return Download(url=url, final_url=current, status=status, body=body, headers=kept,
                                    redirects=redirects)
            except FetchError:
                raise
            except TimeoutError:
                raise FetchError("timeout", f"no complete response within {deadline:.0f}s from {host}",
                                 transient=True) from None
            except (httpx.HTTPError, OSError) as exc:
                raise _classify_transport(exc, host) from None


# --- decoding pages -------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w:.-]+)""", re.I)
_LATIN_FAMILY = {"cp1250", "cp1252", "latin_1", "iso8859_2", "iso8859_15", "iso8859_9", "cp1254", "mac_roman",
                 "iso8859_3", "iso8859_4", "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_16", "cp1257"}
_LATIN = {"iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252", "us-ascii", "ascii"}


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode a page, not trusting its declared charset blindly. Returns (text, charset used)."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(enc, errors="replace").lstrip("\ufeff"), enc
    header = None
    if content_type and "charset=" in content_type.lower():
        header = content_type.lower().split("charset=", 1)[1].split(";")[0]
    meta = _META_CHARSET.search(body[:4096])
    declared = _codec(header) or _codec(meta.group(1).decode("ascii", "ignore") if meta else None)
    try:
        utf8 = body.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = None
    # Valid multi-byte UTF-8 almost never happens by accident: a page declaring Latin-1 whose
    # bytes are valid UTF-8 is lying (a common CMS misconfiguration).
    if utf8 is not None and (declared in (None, "utf-8") or declared in {_codec(x) for x in _LATIN}):
        return utf8, "utf-8"
    if declared and declared != "utf-8":
        try:
            return body.decode(declared), declared
        except (UnicodeDecodeError, LookupError):
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000]).best()
    enc = best.encoding if best else "utf-8"
    # Detectors confuse the Latin single-byte code pages on short pages; Windows-1252 is by far
    # the most common of them on the web (and what browsers assume for "Latin-1").
    if enc in _LATIN_FAMILY:
        try:
            return body.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    return body.decode(enc, errors="replace"), enc


# --- robots.txt -----------------------------------------------------------------------------

class RobotsCache:
    """robots.txt per host (RFC 9309): 4xx = allow all; 5xx or unreachable = try later."""

    def __init__(self, settings: Settings, limiter: HostLimiter):
        self.settings = settings
        self.limiter = limiter
        self.agent = settings.user_agent.split("/")[0].split()[0] or "Newsroom"
        self._cache: dict[str, tuple[float, RobotFileParser | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def allowed(self, client: httpx.AsyncClient, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # each batch runs in a new event loop; locks belong to one
            self._loop, self._locks = loop, {}
        # One download per origin even when many of its pages are fetched at once.
        async with self._locks.setdefault(origin, asyncio.Lock()):
            cached = self._cache.get(origin)
            if cached is None or time.monotonic() - cached[0] > ROBOTS_TTL:
                rules = await self._load(client, origin)
            else:
                rules = cached[1]
        return True if rules is None else rules.can_fetch(self.agent, url)

    async def _load(self, client: httpx.AsyncClient, origin: str) -> RobotFileParser | None:
        try:
            dl = await download(client, self.limiter, origin + "/robots.txt", self.settings,
                                max_bytes=ROBOTS_MAX_BYTES, accept="text/plain")
        except FetchError as exc:
            if exc.http_status is not None and 400 <= exc.http_status < 500:
                self._cache[origin] = (time.monotonic(), None)
                return None
            if exc.error_class == "too_large":
                self._cache[origin] = (time.monotonic(), None)
                return None
            raise FetchError("robots_unavailable", f"robots.txt of {origin} unavailable ({exc})",
                             transient=True) from None
        rules = RobotFileParser()
        rules.parse(dl.body.decode("utf-8", errors="replace").splitlines())
        delay = rules.crawl_delay(self.agent)
        if delay:
            self.limiter.set_delay(urlsplit(origin).hostname or "", min(float(delay), 60.0))
        self._cache[origin] = (time.monotonic(), rules)
        return rules


# --- feeds and pages ------------------------------------------------------------------------

async def poll_feed(client: httpx.AsyncClient, limiter: HostLimiter, feed: FeedState, settings: Settings) -> PollResult:
    """Poll one feed with conditional GET; never raises for the feed's own failures."""
    started = datetime.now(UTC)
    conditional = {}
    if feed.etag:
        conditional["If-None-Match"] = feed.etag
    if feed.last_modified:
        conditional["If-Modified-Since"] = feed.last_modified
    interval = feed.poll_interval or settings.default_poll_interval
    try:
        dl = await download(client, limiter, feed.url, settings, headers=conditional,
                            accept="application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
        if dl.status == 304:
            return PollResult(feed_id=feed.id, started_at=started, finished_at=datetime.now(UTC),
                              outcome="not_modified", http_status=304,
                              etag=dl.headers.get("etag"), last_modified=dl.headers.get("last-modified"))
        body_hash = hashlib.sha256(dl.body).hexdigest()
        if body_hash == feed.body_hash:
            # Same bytes as last time: nothing new, and no parsing (servers without validators).
            return PollResult(feed_id=feed.id, started_at=started, finished_at=datetime.now(UTC),
                              outcome="not_modified", http_status=dl.status, body_hash=body_hash,
                              etag=dl.headers.get("etag"), last_modified=dl.headers.get("last-modified"))
        parsed = parse_feed(dl.body, feed_url=dl.final_url, content_type=dl.headers.get("content-type"))
        return PollResult(feed_id=feed.id, started_at=started, finished_at=datetime.now(UTC), outcome="ok",
                          http_status=dl.status, entries=parsed.entries, body_hash=body_hash,
                          etag=dl.headers.get("etag"), last_modified=dl.headers.get("last-modified"))
    except (FetchError, FeedError) as exc:
        transient = getattr(exc, "transient", False)
        retry_after = getattr(exc, "retry_after", None)
        delay = next_poll_delay(failures=feed.consecutive_failures + 1, interval=interval,
                                transient=transient, retry_after=retry_after)
        finished = datetime.now(UTC)
        log.info("feed %s failed: %s: %s", feed.url, exc.error_class, exc)
        return PollResult(feed_id=feed.id, started_at=started, finished_at=finished, outcome="error",
                          http_status=getattr(exc, "http_status", None), error_class=exc.error_class,
                          error_message=str(exc)[:1000], transient=transient,
                          next_poll_at=finished + timedelta(seconds=delay))


async def poll_feeds(feeds: Sequence[FeedState], settings: Settings, limiter: HostLimiter) -> AsyncIterator[PollResult]:
    """Poll many feeds at once (bounded overall and per host); yield results as they finish."""
    gate = asyncio.Semaphore(settings.poll_concurrency)
    async with make_client(settings) as client:
        async def one(feed: FeedState) -> PollResult:
            async with gate:
                return await poll_feed(client, limiter, feed, settings)

        for next_done in asyncio.as_completed([one(f) for f in feeds]):
            yield await next_done


async def fetch_page(client: httpx.AsyncClient, limiter: HostLimiter, robots: RobotsCache,
                     article: ClaimedArticle, settings: Settings) -> RawPage:
    """Download one article page; raises FetchError (classified) when it cannot be had."""
    if not await robots.allowed(client, article.url):
        raise FetchError("robots_disallowed", f"robots.txt disallows {article.url}", transient=False)
    dl = await download(client, limiter, article.url, settings,
                        accept="text/html, application/xhtml+xml;q=0.9, */*;q=0.1")
    ctype = dl.content_type
    if ctype is not None and ctype not in _HTML_TYPES:
        raise FetchError("not_html", f"content type {ctype} is not HTML", transient=False, http_status=dl.status)
    if ctype is None and not re.match(rb"\s*<", dl.body[:512]):
        raise FetchError("not_html", "no content type and the body does not look like HTML", transient=False,
                         http_status=dl.status)
    if not dl.body.strip():
        raise FetchError("empty_body", "empty response body", transient=False, http_status=dl.status)
    text, charset = decode_html(dl.body, dl.headers.get("content-type"))
    return RawPage(article_id=article.id, http_status=dl.status, final_url=dl.final_url, html=text,
                   content_type=ctype, charset=charset, headers=dl.headers)


async def fetch_pages(articles: Sequence[ClaimedArticle], settings: Settings, limiter: HostLimiter,
                      robots: RobotsCache | None = None) -> AsyncIterator[tuple[ClaimedArticle, RawPage | FetchError]]:
    """Download many pages at once; yield (article, page or error) as each finishes."""
    robots = robots or RobotsCache(settings, limiter)
    gate = asyncio.Semaphore(settings.poll_concurrency)
    async with make_client(settings) as client:
        async def one(a: ClaimedArticle):
            async with gate:
                try:
                    return a, await fetch_page(client, limiter, robots, a, settings)
                except FetchError as exc:
                    return a, exc

        for next_done in asyncio.as_completed([one(a) for a in articles]):
            yield await next_done
