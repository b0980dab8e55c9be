"""URL canonicalisation: one spelling per article, so the same story from two feeds meets."""

from __future__ import annotations

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


def is_tracking_param(name: str) -> bool:
    low = name.lower()
    return low in _TRACKING_EXACT or low.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str, base: str | None = None) -> str:
    """Canonical form of an article URL.

    Resolves relative links against `base`, lower-cases scheme and host, drops default ports,
    fragments, tracking parameters and empty query strings, and sorts the remaining parameters.
    Path case is kept: servers treat it as meaningful. Raises ValueError for non-HTTP URLs.
    """
    url = (url or "").strip()
    if base:
        url = urljoin(base, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:200]!r}")
    host = parts.hostname.lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # keep it as given; the download will report the bad host
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~%") or "/"
    path = re.sub(r"/{2,}", "/", path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
