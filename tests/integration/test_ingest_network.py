"""Feeds to stored pages against a local site on 127.0.0.1: polite, resilient, safe."""

import asyncio
import gzip
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from localsite import article_html, rss

from pipeline import fetch, ingest, store
from pipeline.records import FeedState


def _poll_once(settings):
    return ingest.poll_feeds(settings)


def _article_rows(conn):
    return conn.execute("SELECT url, status, failed_stage, last_error FROM articles ORDER BY url").fetchall()


def _page_stored(conn, url):
    return conn.execute("SELECT count(*) FROM raw_pages p JOIN articles a ON a.id = p.article_id WHERE a.url = %s",
                        (url,)).fetchone()[0] == 1


def test_two_runs_second_is_conditional_and_adds_nothing(settings, site, feeds_file, conn):
    page = article_html("Turkey and the S-400", ["Ankara took delivery of the first S-400 batteries."] * 5)
    a1, a2 = site.add("/news/1.html", page, content_type="text/html"), site.add("/news/2.html", page,
                                                                                content_type="text/html")
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.add("/feed.xml", rss([(a1 + "?utm_source=rss", "One"), (a2, "Two")]), content_type="application/rss+xml",
             headers={"ETag": '"v1"', "Last-Modified": "Tue, 01 Oct 2019 12:00:00 GMT"})
    site.routes["/feed.xml"].handler = lambda h: (
        (304, {"ETag": '"v1"'}, b"") if h.get("if-none-match") == '"v1"'
        else (200, {"ETag": '"v1"', "Last-Modified": "Tue, 01 Oct 2019 12:00:00 GMT",
                    "Content-Type": "application/rss+xml"}, site.routes["/feed.xml"].body))
    s = replace(settings, feeds_file=feeds_file([site.url("/feed.xml")]))

    _, first, _ = ingest.ingest_once(s, run_key="run-1")
    counts = {r.stage: r.counts for r in first}
    assert counts["poll"]["ok"] == 1 and counts["poll"]["new_articles"] == 2
    assert counts["fetch"]["fetched"] == 2
    assert [r[0] for r in _article_rows(conn)] == [a1, a2]
    assert _page_stored(conn, a1) and _page_stored(conn, a2)
    assert {r[1] for r in _article_rows(conn)} <= {"extracted", "tagged"}  # later stages ran too

    before = {t: store.db.count_rows(conn, t) for t in ("articles", "article_sources", "raw_pages")}
    conn.execute("UPDATE feeds SET next_poll_at = now()")  # due again
    conn.commit()
    _, second, _ = ingest.ingest_once(s, run_key="run-2")
    counts = {r.stage: r.counts for r in second}
    assert counts["poll"]["not_modified"] == 1 and counts["poll"]["new_articles"] == 0
    assert counts["fetch"]["claimed"] == 0
    last = site.hits("/feed.xml")[-1]
    assert last.headers["if-none-match"] == '"v1"'
    assert last.headers["if-modified-since"] == "Tue, 01 Oct 2019 12:00:00 GMT"
    assert "Newsroom" in last.headers["user-agent"]
    assert {t: store.db.count_rows(conn, t) for t in before} == before
    assert store.db.count_rows(conn, "feed_polls") == 2
    runs = conn.execute("SELECT run_key, status, feeds_ok, articles_new, pages_fetched FROM ingest_runs ORDER BY id").fetchall()
    assert runs == [("run-1", "success", 1, 2, 2), ("run-2", "success", 1, 0, 0)]


def test_same_article_in_two_feeds_is_one_article_two_sources(settings, site, feeds_file, conn):
    page = article_html("Idlib", ["Shelling continued in Idlib province on Tuesday."] * 5)
    a = site.add("/idlib.html", page, content_type="text/html")
    site.add("/f1.xml", rss([(a, "Idlib")]), content_type="application/rss+xml")
    site.add("/f2.xml", rss([(a + "?utm_medium=social#top", "Idlib (copy)")]), content_type="text/xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f1.xml"), site.url("/f2.xml")]))
    ingest.ingest_once(s)
    assert store.db.count_rows(conn, "articles") == 1
    assert store.db.count_rows(conn, "article_sources") == 2
    assert len(site.hits("/idlib.html")) == 1


def test_every_bad_feed_and_page_is_recorded_and_the_run_completes(settings, site, feeds_file, conn):
    good = site.add("/ok.html", article_html("Fine", ["Body text here."] * 5), content_type="text/html")
    pdf = site.add("/doc.pdf", b"%PDF-1.4 ...", content_type="application/pdf")
    missing = site.url("/gone.html")
    site.add("/r1", status=302, headers={"Location": "/r2"})
    site.add("/r2", status=301, headers={"Location": site.url("/ok2.html")})
    site.add("/ok2.html", article_html("Moved", ["Redirected body."] * 5), content_type="text/html")
    big = site.add("/big.html", b"<html>" + b"x" * 300_000, content_type="text/html")
    bomb = gzip.compress(b"<html>" + b"\0" * 5_000_000)
    site.add("/bomb.html", bomb, content_type="text/html", headers={"Content-Encoding": "gzip"})
    site.add("/private/secret.html", article_html("S", ["s"]), content_type="text/html")
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    items = [(good, "good"), (pdf, "pdf"), (missing, "404"), (site.url("/r1"), "redirect"), (big, "big"),
             (site.url("/bomb.html"), "bomb"), (site.url("/private/secret.html"), "robots")]
    site.add("/good.xml", rss(items), content_type="application/rss+xml")
    site.add("/html.xml", "<!doctype html><html><body>not a feed</body></html>", content_type="text/html")
    site.add("/broken.xml", "<rss version='2.0'><channel><title>x<item><link>", content_type="application/rss+xml")
    site.add("/410.xml", "gone", status=410)
    site.add("/429.xml", "slow down", status=429, headers={"Retry-After": "3600"})
    site.add("/500.xml", "oops", status=500)
    site.add("/slow.xml", rss([]), content_type="application/rss+xml", delay=3)
    feed_urls = [site.url(p) for p in ("/good.xml", "/html.xml", "/broken.xml", "/410.xml", "/429.xml", "/500.xml",
                                       "/slow.xml")]
    s = replace(settings, feeds_file=feeds_file(feed_urls), max_body_bytes=200_000, read_timeout=1.0)

    _, results, _ = ingest.ingest_once(s, run_key="bad-run")
    polls = dict(conn.execute(
        "SELECT f.url, p.error_class FROM feed_polls p JOIN feeds f ON f.id = p.feed_id").fetchall())
    assert polls == {
        site.url("/good.xml"): None, site.url("/html.xml"): "not_a_feed", site.url("/broken.xml"): "parse_error",
        site.url("/410.xml"): "http_410_gone", site.url("/429.xml"): "http_429", site.url("/500.xml"): "http_5xx",
        site.url("/slow.xml"): "timeout"}
    feeds = {r[0]: r[1:] for r in conn.execute(
        """SELECT url, last_status, consecutive_failures, last_error IS NOT NULL,
                  extract(epoch FROM next_poll_at - last_polled_at) FROM feeds""")}
    assert feeds[site.url("/good.xml")][:3] == ("ok", 0, False)
    for url in feed_urls[1:]:
        assert feeds[url][:3] == ("error", 1, True), url
    assert 0.8 * 3600 <= feeds[site.url("/429.xml")][3] <= 86400 * 1.2  # Retry-After honoured
    assert feeds[site.url("/410.xml")][3] >= 2 * 3600 * 0.8  # permanent: backs off longer

    articles = {r[0]: r[1:] for r in _article_rows(conn)}
    assert _page_stored(conn, good) and articles[good][1] != "fetch"
    assert _page_stored(conn, site.url("/r1"))
    final = conn.execute("SELECT p.final_url FROM raw_pages p JOIN articles a ON a.id = article_id WHERE a.url = %s",
                         (site.url("/r1"),)).fetchone()[0]
    assert final == site.url("/ok2.html")
    expected = {pdf: "not_html", big: "too_large", site.url("/bomb.html"): "too_large",
                site.url("/private/secret.html"): "robots_disallowed", missing: "http_4xx"}
    for url, error_class in expected.items():
        status, stage, error = articles[url]
        assert (status, stage) == ("failed", "fetch"), url
        assert error.startswith(error_class), (url, error)
    assert not site.hits("/private/secret.html")
    run = conn.execute("SELECT status, feeds_failed, pages_failed, errors FROM ingest_runs").fetchone()
    assert run[:3] == ("success", 6, 5) and run[3]


def test_transient_page_failure_is_retried_then_fails_after_max_attempts(settings, site, feeds_file, conn):
    flaky = site.add("/flaky.html", "busy", status=503)
    site.add("/f.xml", rss([(flaky, "flaky")]), content_type="application/rss+xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]), max_attempts=2)
    ingest.ingest_once(s)
    assert _article_rows(conn)[0][1:3] == ("discovered", None)
    assert "http_5xx" in _article_rows(conn)[0][3]
    conn.execute("UPDATE articles SET next_attempt_at = now()")
    conn.commit()
    ingest.fetch_pages(s)
    assert _article_rows(conn)[0][1:3] == ("failed", "fetch")
    assert conn.execute("SELECT attempts FROM articles").fetchone()[0] == 2


def test_too_many_redirects(settings, site):
    for i in range(10):
        site.add(f"/loop{i}", status=302, headers={"Location": f"/loop{i + 1}"})
    with pytest.raises(fetch.FetchError) as info:
        asyncio.run(_download(settings, site.url("/loop0")))
    assert info.value.error_class == "too_many_redirects"


async def _download(settings, url, **kw):
    limiter = fetch.HostLimiter(2, 0)
    async with fetch.make_client(settings) as client:
        return await fetch.download(client, limiter, url, settings, **kw)


def test_slow_trickle_hits_the_overall_deadline(settings, site):
    site.add("/trickle", chunks=[b"x"] * 50, chunk_delay=0.2, content_type="text/html")
    s = replace(settings, connect_timeout=0.5, read_timeout=0.5)
    with pytest.raises(fetch.FetchError) as info:
        asyncio.run(_download(s, site.url("/trickle")))
    assert info.value.error_class == "timeout" and info.value.transient


def test_streamed_body_without_length_is_capped(settings, site):
    site.add("/stream", chunks=[b"y" * 100_000] * 30, content_type="text/html")
    with pytest.raises(fetch.FetchError, match="limit"):
        asyncio.run(_download(replace(settings, max_body_bytes=1_000_000), site.url("/stream")))


def test_private_addresses_are_refused_when_the_flag_is_off(settings, site):
    site.add("/x", "hello", content_type="text/html")
    s = replace(settings, allow_private_networks=False)
    for url in (site.url("/x"), f"http://localhost:{site.port}/x", f"http://[::1]:{site.port}/x",
                "http://169.254.169.254/latest/meta-data/", "http://224.0.0.1/"):
        with pytest.raises(fetch.FetchError) as info:
            asyncio.run(_download(s, url))
        assert info.value.error_class == "blocked_address", url
    assert not site.requests


def test_private_address_refusal_covers_redirects(settings, site, monkeypatch):
    # Pretend 127.0.0.1 is public so the first hop is allowed; the redirect goes to 127.0.0.2.
    real = fetch.is_public_address
    monkeypatch.setattr(fetch, "is_public_address", lambda ip: str(ip) == "127.0.0.1" or real(ip))
    site.add("/hop", status=302, headers={"Location": f"http://127.0.0.2:{site.port}/inside"})
    site.add("/inside", "secret", content_type="text/html")
    with pytest.raises(fetch.FetchError) as info:
        asyncio.run(_download(replace(settings, allow_private_networks=False), site.url("/hop")))
    assert info.value.error_class == "blocked_address"
    assert not site.hits("/inside")


def test_private_feed_is_recorded_as_blocked(settings, site, feeds_file, conn):
    site.add("/f.xml", rss([]), content_type="application/rss+xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]), allow_private_networks=False)
    ingest.ingest_once(s)
    assert conn.execute("SELECT last_error_class FROM feeds").fetchone()[0] == "blocked_address"


@pytest.mark.parametrize(("body", "ctype", "expected"), [
    ("<html><head><meta charset='iso-8859-1'></head><body>Erdoğan – café</body></html>".encode(),
     "text/html; charset=iso-8859-1", "Erdoğan – café"),
    ("<html><body>café naïve</body></html>".encode("cp1252"), "text/html; charset=utf-8", "café naïve"),
    ("<html><head><meta charset='windows-1251'></head><body>Москва</body></html>".encode("cp1251"),
     "text/html", "Москва"),
    (b"\xef\xbb\xbf<html><body>BOM \xc3\xa9</body></html>", "text/html; charset=latin-1", "BOM é"),
])
def test_charset_detection_for_pages_that_lie(body, ctype, expected):
    text, _ = fetch.decode_html(body, ctype)
    assert expected in text


def test_per_host_gap_is_respected(settings, site):
    site.add("/p", "x", content_type="text/html")
    limiter = fetch.HostLimiter(2, 0.3)

    async def run():
        async with fetch.make_client(settings) as client:
            t0 = asyncio.get_running_loop().time()
            await asyncio.gather(*(fetch.download(client, limiter, site.url("/p"), settings) for _ in range(4)))
            return asyncio.get_running_loop().time() - t0

    assert asyncio.run(run()) >= 0.85  # 4 starts, 0.3 s apart


def test_poll_feed_304_is_cheap_and_keeps_state(settings, site):
    site.add("/f.xml", status=304, headers={"ETag": '"abc"'})
    feed = FeedState(id=1, url=site.url("/f.xml"), etag='"abc"', last_modified=None)

    async def run():
        async with fetch.make_client(settings) as client:
            return await fetch.poll_feed(client, fetch.HostLimiter(2, 0), feed, settings)

    result = asyncio.run(run())
    assert result.outcome == "not_modified" and result.http_status == 304 and not result.entries
    assert result.started_at <= result.finished_at <= datetime.now(UTC)


def test_many_batches_from_one_host_share_robots_and_limits_across_event_loops(settings, site, feeds_file, conn):
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    urls = [site.add(f"/m/{i}.html", article_html(f"M{i}", ["Text."] * 3), content_type="text/html", delay=0.05)
            for i in range(12)]
    site.add("/f.xml", rss([(u, "m") for u in urls]), content_type="application/rss+xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]))
    ingest.sync_feeds(s)
    ingest.poll_feeds(s)
    result = ingest.fetch_pages(s, batch_size=4)  # three batches, three event loops, contention in each
    assert result.counts["fetched"] == 12
    assert len(site.hits("/robots.txt")) == 1


def test_waiting_for_a_hosts_turn_is_not_a_timeout(settings, site):
    site.add("/q", "x", content_type="text/html")
    s = replace(settings, connect_timeout=0.3, read_timeout=0.1)  # deadline 0.6 s per request
    limiter = fetch.HostLimiter(1, 0.25)  # six requests queue for ~1.5 s in all

    async def run():
        async with fetch.make_client(s) as client:
            return await asyncio.gather(*(fetch.download(client, limiter, site.url("/q"), s) for _ in range(6)))

    assert [d.status for d in asyncio.run(run())] == [200] * 6
