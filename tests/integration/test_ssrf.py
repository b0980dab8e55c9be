"""Server-side request forgery: Newsroom connects only to the address it checked, and refuses
private ranges however they are wrapped."""

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import replace

import httpx
import pytest
from localsite import LocalSite

from pipeline import fetch


@pytest.fixture
def two_hosts():
    """The "public" server on 127.0.0.2 and the "metadata service" on 127.0.0.1, same port."""
    outside = LocalSite(host="127.0.0.2").start()
    inside = LocalSite(host="127.0.0.1", port=outside.port).start()
    yield outside, inside
    outside.stop()
    inside.stop()


def test_dns_rebinding_cannot_reach_what_the_check_refused(settings, two_hosts, monkeypatch):
    outside, inside = two_hosts
    outside.add("/x", "<html><body>public page</body></html>", content_type="text/html")
    inside.add("/x", "<html><body>instance credentials</body></html>", content_type="text/html")
    real_public = fetch.is_public_address
    monkeypatch.setattr(fetch, "is_public_address", lambda ip: str(ip) == "127.0.0.2" or real_public(ip))
    # A resolver we control: the first answer is "public", every later one points inside.
    answers = iter(["127.0.0.2"])
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port, *args, **kw):
        if host not in ("rebind.test", b"rebind.test"):  # (anyio passes the name IDNA-encoded)
            return real_getaddrinfo(host, port, *args, **kw)
        addr = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    s = replace(settings, allow_private_networks=False)

    async def get():
        async with fetch.make_client(s) as client:
            return await fetch.download(client, fetch.HostLimiter(2, 0), f"http://rebind.test:{outside.port}/x", s)

    dl = asyncio.run(get())
    assert b"public page" in dl.body
    assert not inside.requests  # the connection went to the address that was checked
    assert outside.hits("/x")[0].headers["host"] == f"rebind.test:{outside.port}"  # Host header kept


def test_a_resolver_answer_outside_is_refused_before_any_connection(settings, two_hosts):
    outside, inside = two_hosts

    async def resolver(host, port):
        return ["169.254.169.254"]

    s = replace(settings, allow_private_networks=False)

    async def get():
        async with fetch.make_client(s, resolve=resolver) as client:
            return await fetch.download(client, fetch.HostLimiter(2, 0), "http://metadata.test/latest/", s)

    with pytest.raises(fetch.FetchError) as info:
        asyncio.run(get())
    assert info.value.error_class == "blocked_address" and not info.value.transient


@pytest.mark.parametrize(("address", "public"), [
    ("2002:a00:1::", False),        # 6to4 wrapping 10.0.0.1
    ("2002:7f00:1::", False),       # 6to4 wrapping 127.0.0.1
    ("2002:a9fe:a9fe::", False),    # 6to4 wrapping 169.254.169.254
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ("64:ff9b::7f00:1", False),     # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
    ("::ffff:127.0.0.1", False),    # IPv4-mapped loopback
    ("fe80::1", False), ("fc00::1", False), ("::1", False),
    ("2002:808:808::1", True),      # 6to4 wrapping a public address
    ("2606:4700::1111", True), ("93.184.216.34", True),
])
def test_address_ranges(address, public):
    assert fetch.is_public_address(ipaddress.ip_address(address)) is public


def _chained(cause: BaseException) -> httpx.ConnectError:
    exc = httpx.ConnectError("handshake failed")
    exc.__cause__ = cause
    return exc


def test_tls_resets_are_transient_and_certificate_failures_permanent():
    reset = fetch._classify_transport(_chained(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")), "h")
    assert (reset.error_class, reset.transient) == ("tls", True)
    cert = fetch._classify_transport(_chained(ssl.SSLCertVerificationError(1, "certificate has expired")), "h")
    assert (cert.error_class, cert.transient) == ("tls_certificate", False)


@pytest.mark.parametrize("location", [
    "file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/_", "http://127.0.0.1:99999999/x",
    "http://[::1/x", "http://" + "a" * 70 + ".example/", "http://a..b.example/", "http://a b.example/",
])
def test_redirects_to_unusable_urls_end_as_invalid_url(settings, site, location):
    site.add("/hop", status=301, headers={"Location": location})

    async def get():
        async with fetch.make_client(settings) as client:
            return await fetch.download(client, fetch.HostLimiter(2, 0), site.url("/hop"), settings)

    with pytest.raises(fetch.FetchError) as info:
        asyncio.run(get())
    assert (info.value.error_class, info.value.transient) == ("invalid_url", False), location


@pytest.mark.parametrize("url", ["http://" + "a" * 70 + ".example/x", "http://a..b.example/x",
                                 "http://a b.example/x", "http://x.example:99999/"])
def test_unfetchable_hosts_fail_at_once_even_with_the_address_check_on(settings, url):
    article = fetch.ClaimedArticle(id=1, url=url, attempts=1, status="discovered")
    s = replace(settings, allow_private_networks=False)

    async def run():
        return [o async for _, o in fetch.fetch_pages([article], s, fetch.HostLimiter(2, 0))]

    [outcome] = asyncio.run(run())
    assert isinstance(outcome, fetch.FetchError)
    assert (outcome.error_class, outcome.transient) == ("invalid_url", False)
