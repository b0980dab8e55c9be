"""The network edge: safe, polite HTTP for feeds, pages and robots.txt.

Every download: connect/read timeouts and an overall deadline, a size cap enforced while
streaming and again after decompression, redirects followed by hand (each hop's address is
checked), private/loopback/link-local/multicast addresses refused unless allowed, per-host
concurrency cap and minimum gap shared by feed and page requests, and a User-Agent naming
the project. Failures become FetchError with an error class and whether a retry may help.

Why one module of this size: every request, feed or page, goes through the same checked path
(address pinning, the host limiter, the caps, the deadline, classification), and that path is
what makes the network safe; split, a second caller could take a shortcut around it.
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
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpcore
import httpx

from pipeline.config import Settings
from pipeline.errors import ItemFailed
from pipeline.feeds import (
    classify_status,
    next_poll_delay,
    parse_feed,
    parse_retry_after,
)
from pipeline.records import ClaimedArticle, FeedState, PollResult, RawPage
from pipeline.states import CharsetSource, ErrorClass, PollOutcome
from pipeline.urls import InvalidURL, canonical_url, fetchable_url, host_of

log = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 512 * 1024
MAX_FEED_URL_CHARS = 2000  # a redirect to a longer "feed URL" is not followed for good
ROBOTS_TTL = 6 * 3600
ROBOTS_FAILURE_TTL = 600  # a robots.txt that failed is not asked again for this long
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_KEEP_HEADERS = ("etag", "last-modified", "content-type", "content-language", "date", "cache-control",
                 "expires", "x-robots-tag", "link")


class FetchError(ItemFailed):
    """A download that failed (its transient flag is always given: the network decides)."""

    def __init__(self, error_class: ErrorClass | str, message: str, *, transient: bool,
                 http_status: int | None = None, retry_after: float | None = None):
        super().__init__(error_class, message, transient=transient, http_status=http_status,
                         retry_after=retry_after)


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    url: str
    final_url: str
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    redirects: int = 0
    # The URL the first hops reached when they were all permanent (301/308): where `url` now
    # lives for good. None when the first hop was temporary, or there was none.
    moved_to: str | None = None

    @property
    def content_type(self) -> str | None:
        ct = self.headers.get("content-type")
        return ct.split(";")[0].strip().lower() if ct else None


# --- politeness -----------------------------------------------------------------------------

class HostLimiter:
    """At most `concurrency` requests at once and `delay` seconds between request starts, per host,
    and at most `total` requests at once overall.

    The host's slot is taken before the global gate: a request waiting for its host's turn never
    holds a place another host could use (no head-of-line blocking behind one slow site).
    One instance is shared by feed polls, page downloads and robots.txt within a process.
    Timestamps survive across event loops; semaphores are remade for each new loop.
    """

    def __init__(self, concurrency: int, delay: float, total: int = 64):
        self.concurrency = concurrency
        self.delay = delay
        self.total = total
        self._next_start: dict[str, float] = {}
        self._host_delay: dict[str, float] = {}
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._gate: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def set_delay(self, host: str, seconds: float) -> None:
        self._host_delay[host] = max(self.delay, seconds)

    def next_start(self, host: str) -> float:
        """Monotonic time at which the host's next request may start."""
        return self._next_start.get(host, 0.0)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._sems, self._locks = loop, {}, {}
            self._gate = asyncio.Semaphore(self.total)
        sem = self._sems.setdefault(host, asyncio.Semaphore(self.concurrency))
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with sem:
            async with lock:
                wait = self._next_start.get(host, 0.0) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_start[host] = time.monotonic() + self._host_delay.get(host, self.delay)
            async with self._gate:
                yield


# --- address safety -------------------------------------------------------------------------

def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None and not is_public_address(ip.sixtofour):
            return False  # 2002::/16 wrapping a private IPv4 address (10/8, 127/8, 169.254/16, ...)
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


async def resolve_checked(host: str, port: int, *, allow_private: bool, timeout: float,
                          resolve: Resolver = system_resolve) -> list[str]:
    """The addresses of `host` to connect to, after refusing hosts whose answers include any
    non-public address (unless allowed). Raises FetchError (dns, blocked_address, invalid_url)."""
    host = host.strip("[]")
    try:
        literal = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        addrs = [host]
    else:
        try:
            async with asyncio.timeout(timeout):
                addrs = await resolve(host, port)
        except TimeoutError:
            raise FetchError("dns", f"no DNS answer for {host} within {timeout:.0f}s", transient=True) from None
        except socket.gaierror as exc:
            raise FetchError("dns", f"cannot resolve {host}: {exc.strerror or exc}", transient=True) from None
        except (UnicodeError, ValueError) as exc:  # a label IDNA refuses: nothing to retry
            raise FetchError("invalid_url", f"host {host[:80]!r} is not a valid domain name ({exc})",
                             transient=False) from None
        if not addrs:
            raise FetchError("dns", f"no address for {host}", transient=True)
    if not allow_private:
        for addr in addrs:
            ip = ipaddress.ip_address(addr.split("%")[0])
            if not is_public_address(ip):
                raise FetchError("blocked_address",
                                 f"{host} resolves to non-public address {ip}; refused "
                                 "(set NEWSROOM_ALLOW_PRIVATE_NETWORKS=1 to allow)", transient=False)
    return addrs


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once, checks every address, and connects to an address it checked.

    httpx would otherwise resolve the name again to connect, and a DNS server that answers
    a public address to the check and 169.254.169.254 to the connection (DNS rebinding) would
    win. TLS still uses the host name (SNI and certificate), and the Host header is unchanged:
    only the TCP connection is pinned.
    """

    def __init__(self, *, allow_private: bool, timeout: float, resolve: Resolver | None = None):
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addrs = await resolve_checked(host, port, allow_private=self.allow_private, timeout=self.timeout,
                                      resolve=self.resolve or system_resolve)
        error: Exception | None = None
        for addr in addrs[:4]:
            try:
                return await self._inner.connect_tcp(addr, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error  # type: ignore[misc]

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise FetchError("blocked_address", "unix sockets are never fetched", transient=False)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on a PinnedBackend."""

    def __init__(self, *, limits: httpx.Limits, backend: PinnedBackend):
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True, http2=False, network_backend=backend)


# --- downloading ----------------------------------------------------------------------------

def make_client(settings: Settings, *, resolve: Resolver | None = None) -> httpx.AsyncClient:
    timeout = httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                            write=settings.read_timeout, pool=None)
    limits = httpx.Limits(max_connections=max(100, settings.poll_concurrency * 2), max_keepalive_connections=50)
    backend = PinnedBackend(allow_private=settings.allow_private_networks, timeout=settings.connect_timeout,
                            resolve=resolve)
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False,
        transport=PinnedTransport(limits=limits, backend=backend),
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
        event_hooks={"response": [_set_location_aside]},
    )


_LOCATION = "x-newsroom-location"


async def _set_location_aside(response: httpx.Response) -> None:
    """httpx parses a redirect's Location even when not following it, and raises on one it cannot
    parse (a stranger's bad port or IPv6 literal); redirects are followed by hand here, each
    target checked by urls.fetchable_url, so the header is moved out of httpx's sight."""
    if "location" in response.headers:
        response.headers[_LOCATION] = response.headers["location"]
        del response.headers["location"]


def _classify_transport(exc: Exception, host: str) -> FetchError:
    chain, cur = [], exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    if any(isinstance(e, socket.gaierror) for e in chain):
        return FetchError("dns", f"cannot resolve {host}", transient=True)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return FetchError("tls_certificate", f"TLS certificate of {host} refused: {exc}", transient=False)
    if any(isinstance(e, ssl.SSLError) for e in chain):
        # a handshake cut short (EOF, reset) is the network's doing more often than the site's
        return FetchError("tls", f"TLS handshake with {host} failed: {exc}", transient=True)
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
    current, redirects, moved_to, permanent = url, 0, None, True
    while True:
        try:
            current = fetchable_url(current)
        except InvalidURL as exc:
            raise FetchError("invalid_url", str(exc), transient=False) from None
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https"):
            raise FetchError("invalid_url", f"not an http(s) URL: {current[:200]}", transient=False)
        host = (parts.hostname or "").lower()
        # The deadline covers the request only, not the wait for this host's turn: a site with many
        # queued pages is not slow, just politely spaced.
        deadline = settings.connect_timeout + 3 * settings.read_timeout
        async with limiter.slot(host):
            try:
                async with asyncio.timeout(deadline), \
                        client.stream("GET", current, headers={"Accept": accept, **headers}) as resp:
                    status = resp.status_code
                    location = resp.headers.get(_LOCATION, "").strip()
                    if status in (301, 302, 303, 307, 308) and location:
                        redirects += 1
                        if redirects > settings.max_redirects:
                            raise FetchError("too_many_redirects",
                                             f"more than {settings.max_redirects} redirects from {url}",
                                             transient=False, http_status=status)
                        current = _redirect_target(current, location, status)
                        permanent = permanent and status in (301, 308)
                        moved_to = current if permanent else moved_to
                        continue
                    kept = {k: resp.headers[k] for k in _KEEP_HEADERS if k in resp.headers}
                    if status == 304:
                        return Download(url=url, final_url=current, status=304, body=b"", headers=kept,
                                        redirects=redirects, moved_to=moved_to)
                    if status >= 300:
                        error_class, transient = classify_status(status)
                        raise FetchError(error_class, f"HTTP {status} {resp.reason_phrase}".strip(),
                                         transient=transient, http_status=status,
                                         retry_after=parse_retry_after(resp.headers.get("retry-after")))
                    body = await _read_body(resp, max_bytes)
                    return Download(url=url, final_url=current, status=status, body=body, headers=kept,
                                    redirects=redirects, moved_to=moved_to)
            except FetchError:
                raise
            except TimeoutError:
                raise FetchError("timeout", f"no complete response within {deadline:.0f}s from {host}",
                                 transient=True) from None
            except httpx.InvalidURL as exc:
                raise FetchError("invalid_url", f"{exc}", transient=False) from None
            except (httpx.HTTPError, OSError) as exc:
                raise _classify_transport(exc, host) from None


def _redirect_target(current: str, location: str, status: int) -> str:
    """Where a redirect points, checked like any URL from a stranger (scheme, host, port, length)."""
    try:
        target = fetchable_url(location, base=current)
    except InvalidURL as exc:
        raise FetchError("invalid_url", f"redirect to an unusable URL: {exc}", transient=False,
                         http_status=status) from None
    if urlsplit(target).scheme not in ("http", "https"):
        raise FetchError("invalid_url", f"redirect to a non-http(s) URL {target[:200]!r}", transient=False,
                         http_status=status)
    return target


# --- decoding pages -------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w:.-]+)""", re.I)
_LATIN_FAMILY = {"cp1250", "cp1252", "latin_1", "iso8859_2", "iso8859_15", "iso8859_9", "cp1254", "mac_roman",
                 "iso8859_3", "iso8859_4", "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_16", "cp1257"}
_LATIN = {"iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252", "us-ascii", "ascii"}


# Python codecs a page may name but no browser knows: escapes and IDNA, which decode to
# surrogates or raise, and the bytes-to-bytes ones (base64, zlib, rot13, ...).
_NOT_WEB_CODECS = {"undefined", "idna", "punycode", "utf-7", "unicode-escape", "raw-unicode-escape",
                   "palmos", "mbcs", "oem", "utf-8-sig"}


def _codec(name: str | None) -> str | None:
    """The Python codec of a declared charset, or None when the name is unknown or not a text
    encoding a web page can be in."""
    if not name:
        return None
    try:
        info = codecs.lookup(name.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_WEB_CODECS:
        return None
    return info.name


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded page and the decision behind it: the charset used and where it came from."""

    text: str
    charset: str
    source: CharsetSource


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode a page, not trusting its declared charset blindly. Returns (text, charset used);
    never raises, and the text carries no lone surrogates."""
    d = decode_page(body, content_type)
    return d.text, d.charset


def decode_page(body: bytes, content_type: str | None) -> Decoded:
    """decode_html with the decision recorded (where the charset came from), for raw_pages:
    re-extraction decodes the stored bytes again with `decode_as` and the recorded charset."""
    text, charset, source = _decode_html(body, content_type)
    return Decoded(_SURROGATES.sub("\ufffd", text), charset, source)


def decode_as(body: bytes, charset: str | None) -> str:
    """Decode stored page bytes with a charset already decided (recorded at fetch time, or
    corrected by hand): the same text decode_html gave for that decision, bad bytes replaced,
    a leading BOM dropped, no NUL or lone surrogate. Raises ValueError for a name that is no text
    encoding (a correction is checked with `web_codec` before it is stored)."""
    try:
        text = body.decode(web_codec(charset) or charset or "utf-8", errors="replace").lstrip("\ufeff")
    except LookupError:
        raise ValueError(f"{charset!r} is not a text encoding") from None
    return _SURROGATES.sub("\ufffd", text).replace("\x00", "")


def web_codec(name: str | None) -> str | None:
    """The Python codec name of a charset a page may be in ("latin-1" -> "latin-1",
    "windows-1252" -> "cp1252"), or None."""
    return _codec(name)


_SURROGATES = re.compile("[\ud800-\udfff]")


def _decode_html(body: bytes, content_type: str | None) -> tuple[str, str, CharsetSource]:
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(enc, errors="replace").lstrip("\ufeff"), enc, CharsetSource.BOM
    header = None
    if content_type and "charset=" in content_type.lower():
        header = content_type.lower().split("charset=", 1)[1].split(";")[0]
    meta = _META_CHARSET.search(body[:4096])
    declared = _codec(header) or _codec(meta.group(1).decode("ascii", "ignore") if meta else None)
    said_by = CharsetSource.HEADER if _codec(header) else CharsetSource.META
    try:
        utf8 = body.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = None
    # Valid multi-byte UTF-8 almost never happens by accident: a page declaring Latin-1 whose
    # bytes are valid UTF-8 is lying (a common CMS misconfiguration).
    if utf8 is not None and (declared in (None, "utf-8") or declared in {_codec(x) for x in _LATIN}):
        return utf8, "utf-8", said_by if declared == "utf-8" else CharsetSource.DETECTED
    if declared and declared != "utf-8":
        try:
            return body.decode(declared), declared, said_by
        except (UnicodeError, LookupError):
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000]).best()
    if best is None:
        return body.decode("utf-8", errors="replace"), "utf-8", CharsetSource.FALLBACK
    enc = best.encoding
    # Detectors confuse the Latin single-byte code pages on short pages; Windows-1252 is by far
    # the most common of them on the web (and what browsers assume for "Latin-1").
    if enc in _LATIN_FAMILY:
        try:
            return body.decode("cp1252"), "cp1252", CharsetSource.DETECTED
        except UnicodeDecodeError:
            pass
    try:
        return body.decode(enc, errors="replace"), enc, CharsetSource.DETECTED
    except (UnicodeError, LookupError):
        return body.decode("utf-8", errors="replace"), "utf-8", CharsetSource.FALLBACK


# --- robots.txt -----------------------------------------------------------------------------

class RobotsCache:
    """robots.txt per host (RFC 9309): 4xx = allow all; 5xx or unreachable = try later."""

    def __init__(self, settings: Settings, limiter: HostLimiter):
        self.settings = settings
        self.limiter = limiter
        self.agent = settings.user_agent.split("/")[0].split()[0] or "Newsroom"
        self._cache: dict[str, tuple[float, RobotFileParser | FetchError | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def allowed(self, client: httpx.AsyncClient, url: str) -> bool:
        """Whether robots.txt lets us fetch `url`. Each origin's outcome is kept, failures too: a
        host whose robots.txt never answers costs one timeout per run, not one per page."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # each batch runs in a new event loop; locks belong to one
            self._loop, self._locks = loop, {}
        # One download per origin even when many of its pages are fetched at once.
        async with self._locks.setdefault(origin, asyncio.Lock()):
            cached = self._cache.get(origin)
            ttl = ROBOTS_FAILURE_TTL if cached is not None and isinstance(cached[1], FetchError) else ROBOTS_TTL
            if cached is None or time.monotonic() - cached[0] > ttl:
                try:
                    rules = await self._load(client, origin)
                except FetchError as exc:
                    self._cache[origin] = (time.monotonic(), exc)
                    raise
            else:
                rules = cached[1]
        if isinstance(rules, FetchError):
            raise FetchError(rules.error_class, str(rules), transient=rules.transient)
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
            if not exc.transient and exc.error_class in ("invalid_url", "blocked_address", "tls_certificate"):
                raise  # the site's own pages would fail the same way: say why, once
            raise FetchError("robots_unavailable", f"robots.txt of {origin} unavailable ({exc})",
                             transient=True) from None
        rules = RobotFileParser()
        rules.parse(dl.body[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace").splitlines())
        delay = rules.crawl_delay(self.agent)
        if delay:
            try:
                self.limiter.set_delay(urlsplit(origin).hostname or "", min(float(delay), 60.0))
            except (TypeError, ValueError):
                pass
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
        moved_to = _moved_to(feed.url, dl.moved_to)
        if dl.status == 304:
            return PollResult(feed_id=feed.id, started_at=started, finished_at=datetime.now(UTC),
                              outcome=PollOutcome.NOT_MODIFIED, http_status=304, moved_to=moved_to,
                              etag=dl.headers.get("etag"), last_modified=dl.headers.get("last-modified"))
        body_hash = hashlib.sha256(dl.body).hexdigest()
        if body_hash == feed.body_hash:
            # Same bytes as last time: nothing new, and no parsing (servers without validators).
            return PollResult(feed_id=feed.id, started_at=started, finished_at=datetime.now(UTC),
                              outcome=PollOutcome.NOT_MODIFIED, http_status=dl.status, body_hash=body_hash,
                              moved_to=moved_to,
                              etag=dl.headers.get("etag"), last_modified=dl.headers.get("last-modified"))
        # In a thread: a big hostile feed can take feedparser's sanitiser many seconds, and the
        # event loop must keep serving the other feeds' requests (and their timeouts) meanwhile.
        parsed = await asyncio.to_thread(parse_feed, dl.body, feed_url=dl.final_url,
                                         content_type=dl.headers.get("content-type"))
        return PollResult(feed_id=feed.id, started_at=started, finished_at=datetime.now(UTC), outcome=PollOutcome.OK,
                          http_status=dl.status, entries=parsed.entries, body_hash=body_hash, moved_to=moved_to,
                          etag=dl.headers.get("etag"), last_modified=dl.headers.get("last-modified"))
    except Exception as exc:  # the feed's own failure, classified, or one nobody foresaw
        if isinstance(exc, MemoryError):
            raise
        if not isinstance(exc, ItemFailed):
            # A bug or an input nobody foresaw: recorded on this feed, the others go on.
            log.exception("polling feed %s crashed", feed.url)
            exc = ItemFailed(ErrorClass.INTERNAL_ERROR, f"{type(exc).__name__}: {str(exc)[:500]}", transient=True)
        delay = next_poll_delay(failures=feed.consecutive_failures + 1, interval=interval,
                                transient=exc.transient, retry_after=exc.retry_after)
        finished = datetime.now(UTC)
        log.info("feed %s failed: %s: %s", feed.url, exc.error_class, exc)
        return PollResult(feed_id=feed.id, started_at=started, finished_at=finished, outcome=PollOutcome.ERROR,
                          http_status=exc.http_status, error_class=exc.error_class,
                          error_message=str(exc)[:1000], transient=exc.transient,
                          next_poll_at=finished + timedelta(seconds=delay))


def _moved_to(url: str, target: str | None) -> str | None:
    """A permanent redirect's target as a feed URL (canonical, as the feed list's are); None when
    there is none, it is unusable, or it only changes what canonical URLs ignore."""
    if not target:
        return None
    try:
        moved = canonical_url(target)
    except InvalidURL:
        return None
    return None if moved == url or len(moved) > MAX_FEED_URL_CHARS else moved


async def poll_feeds(feeds: Sequence[FeedState], settings: Settings, limiter: HostLimiter, *,
                     resolve: Resolver | None = None) -> AsyncIterator[PollResult]:
    """Poll many feeds at once (bounded overall and per host by the limiter); yield results as
    they finish. Never raises for one feed's problem."""
    async with make_client(settings, resolve=resolve) as client:
        for next_done in asyncio.as_completed([poll_feed(client, limiter, f, settings) for f in feeds]):
            yield await next_done


# --- documents (sitemaps) -------------------------------------------------------------------

_DOCUMENT_ACCEPT = "application/xml, text/xml;q=0.9, application/gzip;q=0.8, text/plain;q=0.5, */*;q=0.1"


async def fetch_document(client: httpx.AsyncClient, limiter: HostLimiter, robots: RobotsCache, url: str,
                         settings: Settings) -> Download:
    """Download a document that lists pages (a sitemap): the same checked path as a page (URL,
    robots.txt, the host's turn, every cap). The body is returned as sent, its content type not
    trusted: the caller tells the format by the bytes. Raises FetchError (classified)."""
    try:
        url = fetchable_url(url)
    except InvalidURL as exc:
        raise FetchError("invalid_url", str(exc), transient=False) from None
    if not await robots.allowed(client, url):
        raise FetchError("robots_disallowed", f"robots.txt disallows {url}", transient=False)
    dl = await download(client, limiter, url, settings, accept=_DOCUMENT_ACCEPT)
    if not dl.body.strip():
        raise FetchError("empty_body", "empty response body", transient=False, http_status=dl.status)
    return dl


@asynccontextmanager
async def document_fetcher(settings: Settings, limiter: HostLimiter, *, resolve: Resolver | None = None
                           ) -> AsyncIterator[Callable[[str], Awaitable[Download]]]:
    """`async with document_fetcher(...) as get: dl = await get(url)`: one client and one
    robots.txt cache for the documents of one job, each fetched with fetch_document."""
    robots = RobotsCache(settings, limiter)
    async with make_client(settings, resolve=resolve) as client:

        async def get(url: str) -> Download:
            try:
                return await fetch_document(client, limiter, robots, url, settings)
            except (FetchError, MemoryError, asyncio.CancelledError):
                raise
            except Exception as exc:  # a bug or an input nobody foresaw: this document only
                log.exception("downloading document %s crashed", url)
                raise FetchError("internal_error", f"{type(exc).__name__}: {str(exc)[:500]}", transient=True) from None

        yield get


async def fetch_page(client: httpx.AsyncClient, limiter: HostLimiter, robots: RobotsCache,
                     article: ClaimedArticle, settings: Settings) -> RawPage:
    """Download one article page; raises FetchError (classified) when it cannot be had."""
    try:
        url = fetchable_url(article.url)
    except InvalidURL as exc:
        raise FetchError("invalid_url", str(exc), transient=False) from None
    if not await robots.allowed(client, url):
        raise FetchError("robots_disallowed", f"robots.txt disallows {url}", transient=False)
    dl = await download(client, limiter, url, settings,
                        accept="text/html, application/xhtml+xml;q=0.9, */*;q=0.1")
    ctype = dl.content_type
    if ctype is not None and ctype not in _HTML_TYPES:
        raise FetchError("not_html", f"content type {ctype[:100]} is not HTML", transient=False,
                         http_status=dl.status)
    if ctype is None and not re.match(rb"\s*<", dl.body[:512]):
        raise FetchError("not_html", "no content type and the body does not look like HTML", transient=False,
                         http_status=dl.status)
    if not dl.body.strip():
        raise FetchError("empty_body", "empty response body", transient=False, http_status=dl.status)
    if _looks_binary(dl.body):
        raise FetchError("not_html", "the body is binary data, not HTML text", transient=False,
                         http_status=dl.status)
    # In a thread: charset detection on a big page is slow, and other hosts' downloads go on.
    decoded = await asyncio.to_thread(decode_page, dl.body, dl.headers.get("content-type"))
    # The bytes as served (after Content-Encoding) are what is kept; the text is for the caller.
    return RawPage(article_id=article.id, http_status=dl.status, final_url=dl.final_url, html=decoded.text,
                   body=dl.body, content_type=ctype, charset=decoded.charset, charset_source=decoded.source,
                   headers=dl.headers)


def _looks_binary(body: bytes) -> bool:
    """Binary data served as HTML: more than 1 in 20 of the first 4 KB are control bytes (NUL
    included; a text page with a stray NUL is let through and the NUL stripped). UTF-16 pages
    carry a BOM and are let through."""
    head = body[:4096]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) // 20


@dataclass(frozen=True, slots=True)
class Deferred:
    """A page not tried in this stage run: its host used up its time budget."""

    host: str
    reason: str


class HostBudget:
    """Seconds each host may take of one stage run, counted from its first request. A host over
    budget gets no new request; its pages wait for the next run."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._started: dict[str, float] = {}
        self._over: set[str] = set()

    def over(self) -> set[str]:
        """Hosts that had pages deferred."""
        return set(self._over)

    def start(self, host: str) -> None:
        self._started.setdefault(host, time.monotonic())

    def ends_at(self, host: str) -> float:
        return self._started.get(host, time.monotonic()) + self.seconds

    def spent(self, host: str, limiter: HostLimiter | None = None) -> bool:
        """Over budget now, or by the time the host's next request may start."""
        if host not in self._started:
            return False
        start = max(time.monotonic(), limiter.next_start(host) if limiter else 0.0)
        if start >= self.ends_at(host):
            self._over.add(host)
            return True
        return False


async def fetch_pages(articles: Sequence[ClaimedArticle], settings: Settings, limiter: HostLimiter,
                      robots: RobotsCache | None = None, budget: HostBudget | None = None, *,
                      resolve: Resolver | None = None
                      ) -> AsyncIterator[tuple[ClaimedArticle, RawPage | FetchError | Deferred]]:
    """Download many pages at once; yield (article, page, error or Deferred) as each finishes.

    Each host gets its own lanes (as many as its concurrency), so one slow host's queue never
    holds the others' pages; a host past its budget has its remaining pages deferred. Any
    exception for one page is recorded as that page's `internal_error`.
    """
    robots = robots or RobotsCache(settings, limiter)
    budget = budget or HostBudget(settings.host_budget)
    queues: dict[str, deque[ClaimedArticle]] = {}
    for a in articles:
        queues.setdefault(host_of(a.url), deque()).append(a)
    results: asyncio.Queue = asyncio.Queue()

    async def lane(host: str, queue: deque[ClaimedArticle], client: httpx.AsyncClient) -> None:
        while queue:
            a = queue.popleft()
            if budget.spent(host, limiter):
                await results.put((a, Deferred(host, f"{host} used its {budget.seconds:.0f}s budget")))
                continue
            budget.start(host)
            try:
                outcome: RawPage | FetchError = await fetch_page(client, limiter, robots, a, settings)
            except FetchError as exc:
                outcome = exc
            except (MemoryError, asyncio.CancelledError):
                raise
            except Exception as exc:  # a bug or an input nobody foresaw: this page only
                log.exception("downloading article %s (%s) crashed", a.id, a.url)
                outcome = FetchError("internal_error", f"{type(exc).__name__}: {str(exc)[:500]}", transient=True)
            await results.put((a, outcome))

    async with make_client(settings, resolve=resolve) as client:
        lanes = [asyncio.create_task(lane(host, q, client))
                 for host, q in queues.items() for _ in range(min(len(q), limiter.concurrency))]
        running, received = set(lanes), 0
        try:
            while received < len(articles):
                getter = asyncio.ensure_future(results.get())
                done, _ = await asyncio.wait({getter, *running}, return_when=asyncio.FIRST_COMPLETED)
                for t in done - {getter}:
                    running.discard(t)
                    if t.exception() is not None:  # what a lane must not swallow (MemoryError)
                        getter.cancel()
                        raise t.exception()
                if getter.done():
                    received += 1
                    yield getter.result()
                else:
                    getter.cancel()
        finally:
            for t in lanes:
                t.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
