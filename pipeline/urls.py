"""URL canonicalisation: one spelling per article, so the same story from two feeds meets.

Every URL comes from a stranger (a feed, a redirect), so it is validated here too: scheme,
length, host labels and port. A URL that can never be fetched is refused with InvalidURL
(a ValueError), recorded as a permanent `invalid_url`, never retried.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that only track where a click came from; they never select content.
_TRACKING_EXACT = {
    "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "yclid", "igshid", "cmpid", "ocid",
    "ito", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee", "at_medium",
    "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4",
    "s_cid", "smid", "_ga", "_gl", "mbid", "sr_share", "ftag", "wt.mc_id",
    "taid", "xtor", "spref", "__twitter_impression", "ref",
    "ref_src", "guccounter", "guce_referrer", "guce_referrer_sig",
}
_TRACKING_PREFIXES = ("utm_", "ga_", "pk_", "mtm_", "hsa_", "at_", "ns_", "oly_", "vero_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Canonical URLs are unique-indexed; a btree entry must stay well under Postgres's ~2.7 KB.
# Browsers and sitemaps cap near 2,000 characters too.
MAX_URL_LENGTH = 2000
_UNPRINTABLE = re.compile(r"[\x00-\x20\x7f-\x9f]|\s")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class InvalidURL(ValueError):
    """A URL that can never be fetched: the message says which part is wrong."""


def is_tracking_param(name: str) -> bool:
    low = name.lower()
    return low in _TRACKING_EXACT or low.startswith(_TRACKING_PREFIXES)


def _clean(url: str | None) -> str:
    """`url` without NUL, tab and newlines (browsers drop them), then without outer whitespace."""
    url = url or ""
    if any(c in url for c in "\x00\r\n\t"):
        url = re.sub(r"[\x00\r\n\t]", "", url)
    return url.strip()


def _short(url: str) -> str:
    return repr(url[:200] + ("…" if len(url) > 200 else ""))


def valid_host(host: str, url: str = "") -> str:
    """The host in ASCII (IDNA), lower-cased, or InvalidURL: labels of 1-63 characters, 253 in all,
    letters, digits and hyphens only; IP literals as themselves."""
    host = host.lower().rstrip(".")
    if not host:
        raise InvalidURL(f"no host in {_short(url)}")
    if "%" in host:  # an IPv6 zone ("[fe80::1%25eth0]") names an interface of the requester
        raise InvalidURL(f"host {host[:80]!r} has a zone identifier or a percent sign")
    try:
        return ipaddress.ip_address(host).compressed if ":" in host else str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if "" in labels:
        raise InvalidURL(f"host {host[:80]!r} has an empty label")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        longest = max(labels, key=len)
        reason = (f"a label of {len(longest)} characters (at most 63)" if len(longest) > 63
                  else "characters a domain name cannot hold")
        raise InvalidURL(f"host {host[:80]!r} has {reason}") from None
    if len(ascii_host) > 253:
        raise InvalidURL(f"host name of {len(ascii_host)} characters (at most 253)")
    for label in ascii_host.split("."):
        if not _LABEL.fullmatch(label):
            reason = "an empty label" if not label else (
                f"a label of {len(label)} characters (at most 63)" if len(label) > 63 else f"the label {label[:63]!r}")
            raise InvalidURL(f"host {ascii_host[:80]!r} has {reason}")
    last = ascii_host.rsplit(".", 1)[-1]
    if last.isdigit() or re.fullmatch(r"0x[0-9a-f]*", last):  # browsers read it as IPv4 ("127.1")
        try:
            return str(ipaddress.IPv4Address(ascii_host))
        except ValueError:
            raise InvalidURL(f"host {ascii_host[:80]!r} ends in a number but is not an IPv4 address") from None
    return ascii_host


def canonical_url(url: str, base: str | None = None) -> str:
    """Canonical form of an article URL.

    Resolves relative links against `base`, lower-cases scheme and host, drops default ports,
    fragments, tracking parameters and empty query strings, and sorts the remaining parameters.
    Path case is kept: servers treat it as meaningful. Raises InvalidURL (a ValueError) for
    non-HTTP URLs and for URLs that can never be fetched (bad host, bad port, too long).
    """
    url, base = _clean(url), _clean(base)
    if len(url) > 4 * MAX_URL_LENGTH:
        raise InvalidURL(f"URL of {len(url)} characters (at most {MAX_URL_LENGTH})")
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:  # a malformed IPv6 literal or port
        raise InvalidURL(f"malformed URL {_short(url)}: {exc}") from None
    if _SURROGATE.search(url):  # no encoding can carry it, so no request can
        raise InvalidURL(f"malformed URL {_short(url)}: a lone surrogate")
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(f"not an http(s) URL: {_short(url)}")
    if not hostname:
        raise InvalidURL(f"no host in {_short(url)}")
    if any(c.isspace() for c in hostname) or "\\" in hostname:
        raise InvalidURL(f"host {hostname[:80]!r} contains a space or backslash")
    if "\\" in parts.netloc:
        # "http://u@evil.example\\@127.0.0.1/": Python reads the host after the last "@", browsers
        # read a backslash as "/" and the host before it; no real link needs one.
        raise InvalidURL(f"a backslash in the host part of {_short(url)}")
    host = valid_host(hostname, url)
    if parts.netloc.rpartition("@")[2].startswith("[") and ":" not in host:
        raise InvalidURL(f"host {hostname[:80]!r} in brackets is not an IPv6 address")
    if port == 0:
        raise InvalidURL(f"port 0 in {_short(url)}")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    # "%" itself stays escaped: unquoting "%2541" once more would give "A", not "%41"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~") or "/"
    path = re.sub(r"/{2,}", "/", path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)]
    out = urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))
    if len(out) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL of {len(out)} characters (at most {MAX_URL_LENGTH}): {_short(out)}")
    return out


def fetchable_url(url: str, base: str | None = None) -> str:
    """A URL to request as given (not canonicalised: servers may need every parameter), after the
    same checks as canonical_url. Used for redirect targets and stored article URLs.

    The host is the one checked, in ASCII (IDNA): an HTTP client re-reading a Unicode host may
    find another one, or none. Spaces and control characters are percent-encoded."""
    canonical = canonical_url(url, base)  # raises InvalidURL
    url, base = _clean(url), _clean(base)  # as canonical_url did, before joining
    parts = urlsplit(urljoin(base, url) if base else url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    netloc = quote(userinfo, safe="!$&'()*+,;=:%") + at + urlsplit(canonical).netloc
    out = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return _UNPRINTABLE.sub(lambda m: quote(m.group()), out)


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def site_of(url: str) -> str | None:
    """The publishing site of a URL: its registered domain by the public suffix list bundled
    with `tld` ("bbc.co.uk" for news.bbc.co.uk, "example.blogspot.com" for a blog), else its host
    without "www." (an address, localhost, an unknown suffix); None without a host."""
    host = host_of(url)
    if not host:
        return None
    # Lazy: the list takes ~0.2 s to load, and most callers of this module never need it.
    from tld import get_fld

    try:
        registered = get_fld(host, fail_silently=True, fix_protocol=True)
    except Exception:  # a stranger's host; the fallback below is always right enough
        registered = None
    return registered or host.removeprefix("www.")


def feed_lookup_key(ident: str) -> str:
    """How a feed the user names (id, URL or name) is looked up: a URL by its canonical form, as
    feed lists store it (`HTTPS://Example.org/rss?utm_source=x` finds https://example.org/rss);
    anything else, or a URL too broken to canonicalise, as typed (stripped)."""
    ident = (ident or "").strip()
    if "://" not in ident:
        return ident
    try:
        return canonical_url(ident)
    except InvalidURL:
        return ident
