"""Backfill against a local site: a sitemap index -> a Google News sitemap and a gzipped sitemap
-> pages. Enqueued as backlog (live work is claimed first), never twice, never resetting an
article; failing sitemaps reported one line each; then processed by the regular stages."""

import gzip
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from localsite import article_html, rss

from pipeline import backfill, ingest, sitemaps, store, tasks
from pipeline.errors import UserInputError
from pipeline.states import Stage

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS_NS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
PARAS = [
    "Syrian government forces shelled villages in southern Idlib province on Tuesday, rescuers said.",
    "Thousands of families fled north towards the Turkish border as the offensive entered its second week.",
    "Turkey said its observation posts in the de-escalation zone would stay where they are.",
    "Aid groups warned that camps along the frontier were already full and short of tents and food.",
]


def _urlset(*urls: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset {NS} {NEWS_NS}>{"".join(urls)}</urlset>'


def _news_url(loc: str, title: str, when: str) -> str:
    return (f"<url><loc>{loc}</loc><news:news><news:publication><news:name>Local</news:name>"
            f"<news:language>en</news:language></news:publication>"
            f"<news:publication_date>{when}</news:publication_date><news:title>{title}</news:title></news:news></url>")


def _index(*children: tuple[str, str | None]) -> str:
    items = "".join(f"<sitemap><loc>{loc}</loc>{f'<lastmod>{m}</lastmod>' if m else ''}</sitemap>"
                    for loc, m in children)
    return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex {NS}>{items}</sitemapindex>'


@pytest.fixture
def news_site(site):
    """Four archive pages (a1-a4) listed by an index of: a news sitemap (a1, a2, and an unusable
    URL), a gzipped sitemap served with a lying content type (a3, a4, a1 again), the index itself
    (a loop), a 404 and an HTML error page. Plus a feed with one live article."""
    pages = {}
    for i in range(1, 5):
        pages[i] = site.add(f"/2019/10/a{i}.html",
                            article_html(f"Archive story {i}", [f"Story {i}. {p}" for p in PARAS]),
                            content_type="text/html")
    site.add("/sitemap-news.xml", _urlset(
        _news_url(pages[1], "Archive story one", "2019-10-01T09:00:00+00:00"),
        _news_url(pages[2], "Archive story two", "2019-10-02T09:00:00Z"),
        "<url><loc>javascript:alert(1)</loc></url>"), content_type="application/xml")
    site.add("/sitemap-2.xml.gz", gzip.compress(_urlset(*(f"<url><loc>{pages[i]}</loc><lastmod>2019-10-0{i}</lastmod>"
                                                          f"</url>" for i in (3, 4, 1))).encode()),
             content_type="text/html")  # lies: it is gzip
    site.add("/sitemap-error.xml", "<!DOCTYPE html><html><body>Oops</body></html>", content_type="text/xml")
    index = site.add("/sitemap_index.xml", _index(
        (site.url("/sitemap-news.xml"), "2019-10-03"), ("/sitemap-2.xml.gz", "2019-10-05"),
        (site.url("/sitemap_index.xml"), None), (site.url("/sitemap-404.xml"), None),
        (site.url("/sitemap-error.xml"), None)), content_type="application/xml")
    live = site.add("/live.html", article_html("Live story", [f"Live. {p}" for p in PARAS]), content_type="text/html")
    site.add("/feed.xml", rss([(live, "Live story")]), content_type="application/rss+xml")
    return {"index": index, "pages": pages, "live": live, "feed": site.url("/feed.xml")}


def _articles(conn):
    return {r[0]: r[1:] for r in conn.execute(
        """SELECT url, status, priority, first_feed_id, title, feed_published_at, language, updated_at
             FROM articles ORDER BY id""").fetchall()}


def test_a_sitemap_index_is_enqueued_as_backlog_once(settings, news_site, conn):
    reported = []
    result = backfill.run(settings, sitemaps_given=[news_site["index"]], report=reported.append)
    pages = news_site["pages"]
    assert (result.new, result.known) == (4, 0)
    assert result.sitemaps_read == 3  # the index, the news sitemap, the gzipped one
    assert sorted(f.url.rsplit("/", 1)[1] for f in result.sitemaps_failed) == ["sitemap-404.xml", "sitemap-error.xml"]
    assert sorted(reported) == sorted(f.line() for f in result.sitemaps_failed)
    assert any("sitemap-404.xml failed: http_4xx: HTTP 404" in line for line in reported)
    assert any("sitemap-error.xml failed: not_a_sitemap: got an HTML page" in line for line in reported)
    assert result.sitemaps_skipped == {sitemaps.Skip.REPEATED: 1}  # the index listing itself
    assert result.skipped == {sitemaps.Skip.INVALID_URL: 1, sitemaps.Skip.DUPLICATE: 1}
    assert result.listed == 6
    rows = _articles(conn)
    assert sorted(rows) == sorted(pages.values())
    assert {r[:3] for r in rows.values()} == {("discovered", 1, None)}  # backlog, no feed
    # a1 is in both sitemaps, read in either order: the news sitemap's hints are kept
    assert rows[pages[1]][3:6] == ("Archive story one", datetime(2019, 10, 1, 9, tzinfo=UTC), "en")
    assert rows[pages[3]][3:6] == (None, None, None)  # a lastmod is no publication time

    # again: nothing new, nothing touched
    again = backfill.run(settings, sitemaps_given=[news_site["index"]], report=lambda _: None)
    assert (again.new, again.known) == (0, 4)
    assert _articles(conn) == rows


def test_re_running_never_resets_an_article(settings, news_site, conn):
    backfill.run(settings, sitemaps_given=[news_site["index"]], report=lambda _: None)
    url = news_site["pages"][2]
    conn.execute("""UPDATE articles SET status = 'failed', failed_stage = 'fetch', last_error = 'http_4xx: gone',
                           attempts = 3 WHERE url = %s""", (url,))
    conn.commit()
    before = _articles(conn)
    backfill.run(settings, sitemaps_given=[news_site["index"]], report=lambda _: None)
    assert _articles(conn) == before


def test_live_work_is_claimed_before_the_backlog_and_a_feed_makes_a_backfilled_article_live(
        settings, news_site, feeds_file, conn, site):
    backfill.run(settings, sitemaps_given=[news_site["index"]], report=lambda _: None)
    # the feed carries the live story and one archive story the backfill listed
    site.add("/feed.xml", rss([(news_site["live"], "Live story"), (news_site["pages"][4], "Archive story 4")]),
             content_type="application/rss+xml")
    settings = replace(settings, feeds_file=feeds_file([news_site["feed"]]))
    ingest.sync_feeds(settings)
    ingest.poll_feeds(settings)
    rows = _articles(conn)
    feed_id = conn.execute("SELECT id FROM feeds").fetchone()[0]
    assert rows[news_site["live"]][:3] == ("discovered", 0, feed_id)
    assert rows[news_site["pages"][4]][:3] == ("discovered", 0, feed_id)  # now live, with its outlet
    assert rows[news_site["pages"][1]][:3] == ("discovered", 1, None)
    _, claimed = store.queue.claim_articles(conn, Stage.FETCH, owner="test", limit=2)
    assert sorted(a.url for a in claimed) == sorted([news_site["live"], news_site["pages"][4]])
    _, rest = store.queue.claim_articles(conn, Stage.FETCH, owner="test", limit=10)
    assert sorted(a.url for a in rest) == sorted(news_site["pages"][i] for i in (1, 2, 3))
    conn.rollback()


def test_a_date_range_skips_older_sitemaps_and_pages(settings, news_site, conn):
    dates = backfill.date_range("2019-10-04", "2019-10-04")
    result = backfill.run(settings, sitemaps_given=[news_site["index"]], dates=dates, report=lambda _: None)
    # the news sitemap (lastmod 2019-10-03) is not even read; of the gzipped one, a4 is in range
    assert result.sitemaps_skipped[sitemaps.Skip.OUTSIDE_DATES] == 1
    assert list(_articles(conn)) == [news_site["pages"][4]]
    assert result.skipped[sitemaps.Skip.OUTSIDE_DATES] == 2  # a3 (Oct 3) and a1 (Oct 1)


def test_dry_run_writes_nothing_and_a_limit_caps(settings, news_site, conn):
    dry = backfill.run(settings, sitemaps_given=[news_site["index"]], dry_run=True, report=lambda _: None)
    assert dry.new == 4 and dry.dry_run and not _articles(conn)
    capped = backfill.run(settings, sitemaps_given=[news_site["index"]], limit=3, report=lambda _: None)
    assert capped.new == 3 and len(_articles(conn)) == 3
    assert capped.skipped[sitemaps.Skip.OVER_LIMIT] >= 1


def test_a_failing_sitemap_given_by_the_user_writes_nothing(settings, news_site, site, conn):
    with pytest.raises(backfill.BackfillFailed) as info:
        backfill.run(settings, sitemaps_given=[news_site["index"], site.url("/nope.xml")], report=lambda _: None)
    assert "nope.xml failed: http_4xx: HTTP 404" in str(info.value) and "nothing was enqueued" in str(info.value)
    assert not _articles(conn)
    for bad in (["ftp://x.example/s.xml"], ["not a url"]):
        with pytest.raises(UserInputError):
            backfill.run(settings, sitemaps_given=bad)
    with pytest.raises(UserInputError):
        backfill.run(settings)


def test_hostile_sitemaps_fail_alone(settings, site, conn):
    """Slow, huge, bombed, redirected and private sitemaps of one index: each fails in one line
    (or works), the good one is enqueued."""
    good = site.add("/a.html", article_html("A", PARAS), content_type="text/html")
    site.add("/good.xml", _urlset(f"<url><loc>{good}</loc></url>"), content_type="application/xml")
    site.add("/moved.xml", status=301, headers={"Location": "/good.xml"})
    site.add("/slow.xml", _urlset(), delay=3.0)  # past the 2 s read timeout
    site.add("/huge.xml", _urlset(*[f"<url><loc>{site.url(f'/p{i}')}</loc></url>" for i in range(2000)]))
    bomb = gzip.compress(b"<urlset>" + b" " * (8 * 1024 * 1024))
    site.add("/bomb.xml.gz", bomb, content_type="application/octet-stream")
    site.add("/bomb-encoded.xml", bomb, content_type="application/xml", headers={"Content-Encoding": "gzip"})
    site.add("/double.xml.gz", gzip.compress(gzip.compress(_urlset(f"<url><loc>{site.url('/b.html')}</loc></url>")
                                                           .encode())),
             content_type="application/x-gzip", headers={"Content-Encoding": "gzip"})  # nginx gzip_static, say
    site.add("/laughs.xml", '<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaaaaaaaa">]>' + _urlset()[38:])
    index = site.add("/index.xml", _index(*((site.url(p), None) for p in (
        "/moved.xml", "/slow.xml", "/huge.xml", "/bomb.xml.gz", "/bomb-encoded.xml", "/laughs.xml",
        "/double.xml.gz"))))
    small = replace(settings, max_body_bytes=64 * 1024)
    reported = []
    result = backfill.run(small, sitemaps_given=[index], report=reported.append)
    reasons = {f.url.rsplit("/", 1)[1]: f.reason.split(":")[0] for f in result.sitemaps_failed}
    assert reasons == {"slow.xml": "timeout", "huge.xml": "too_large", "bomb.xml.gz": "too_large",
                       "bomb-encoded.xml": "too_large", "laughs.xml": "entity_expansion"}
    assert len(reported) == 5 and all("\n" not in line for line in reported)
    assert result.new == 2 and sorted(_articles(conn)) == sorted([good, site.url("/b.html")])

    # and nothing on a private address without NEWSROOM_ALLOW_PRIVATE_NETWORKS
    with pytest.raises(backfill.BackfillFailed, match="blocked_address"):
        backfill.run(replace(settings, allow_private_networks=False), sitemaps_given=[index], report=lambda _: None)


def test_robots_txt_is_honoured_for_sitemaps(settings, site, conn):
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.add("/private/sitemap.xml", _urlset(f"<url><loc>{site.url('/x')}</loc></url>"))
    with pytest.raises(backfill.BackfillFailed, match="robots_disallowed"):
        backfill.run(settings, sitemaps_given=[site.url("/private/sitemap.xml")], report=lambda _: None)


def test_the_task_returns_counts_only(db_dsn, news_site, tmp_path, monkeypatch, conn):
    monkeypatch.setenv("NEWSROOM_DATABASE_URL", db_dsn)
    monkeypatch.setenv("NEWSROOM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NEWSROOM_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("NEWSROOM_PER_HOST_DELAY", "0")
    out = tasks.backfill([news_site["index"]], [news_site["live"], "not a url"], "", "", 0)
    assert out["new"] == 5 and out["known"] == 0 and out["sitemaps_read"] == 3 and out["sitemaps_failed"] == 2
    assert out["skipped"] == {"duplicate": 1, "invalid_url": 2}
    text = json.dumps(out)  # what XCom keeps: counts, no URL
    assert "http" not in text
    assert tasks.backfill([], [news_site["live"]])["known"] == 1
    with pytest.raises(UserInputError):
        tasks.backfill([], [], "2019-13-45")
    with pytest.raises(backfill.BackfillFailed):
        tasks.backfill([news_site["index"].replace("sitemap_index", "missing")])


# --- the command ----------------------------------------------------------------------------

def _run(args, env, stdin=None):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env={**os.environ, **env}, input=stdin,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(db_dsn, tmp_path):
    return {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path),
            "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1", "NEWSROOM_PER_HOST_DELAY": "0"}


def test_newsroom_backfill_then_ingest_processes_the_backlog(env, news_site, feeds_file, conn):
    first = _run(["backfill", "--sitemap", news_site["index"]], env)
    assert first.returncode == 0, first.stderr
    assert "listed 6 URLs from 3 sitemaps (2 failed): 4 new, 0 already known, 2 skipped" in first.stdout
    assert "newsroom ingest --once" in first.stdout
    assert first.stderr.count("warning: sitemap") == 2 and "Traceback" not in first.stderr
    second = _run(["backfill", "--sitemap", news_site["index"]], env)
    assert second.returncode == 0 and "0 new, 4 already known" in second.stdout
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 4

    env["NEWSROOM_FEEDS"] = str(feeds_file([news_site["feed"]]))
    done = _run(["ingest", "--once", "--no-progress"], env)
    assert done.returncode == 0, done.stderr
    statuses = dict(conn.execute("SELECT url, status FROM articles").fetchall())
    assert set(statuses.values()) == {"tagged"} and len(statuses) == 5
    assert conn.execute("SELECT count(*) FROM articles WHERE priority = 1").fetchone()[0] == 0  # done

    aid = conn.execute("SELECT id FROM articles WHERE url = %s", (news_site["pages"][1],)).fetchone()[0]
    shown = _run(["article", str(aid)], {**env, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "Archive story" in shown.stdout


def test_newsroom_backfill_from_a_file_of_urls(env, news_site, tmp_path, conn):
    listing = tmp_path / "urls.txt"
    pages = news_site["pages"]
    listing.write_text(f"# archive\n{pages[1]}\n\n  {pages[2]}?utm_source=newsletter\nftp://nope/\n{pages[1]}\n")
    dry = _run(["backfill", "--urls", str(listing), "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert "2 would be new" in dry.stdout and "nothing was enqueued" in dry.stdout
    assert "ftp://nope/" in dry.stderr
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 0
    real = _run(["backfill", "--urls", str(listing)], env)
    assert real.returncode == 0 and "2 new" in real.stdout and "1 duplicate, 1 invalid_url" in real.stdout
    piped = _run(["backfill", "--urls", "-"], env, stdin=f"{pages[3]}\n{pages[1]}\n")
    assert piped.returncode == 0 and "1 new, 1 already known" in piped.stdout
    assert sorted(r[0] for r in conn.execute("SELECT url FROM articles")) == sorted(pages[i] for i in (1, 2, 3))


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--urls", "/nonexistent/urls.txt"], 2, "No such file"),
    (["--urls", "EMPTY"], 2, "the list of URLs is empty"),
    (["--urls", "JUNK"], 2, "no usable URL in the list"),
    (["--sitemap", "ftp://x.example/s.xml"], 2, "not a URL Newsroom can fetch"),
    (["--sitemap", "SITE/missing.xml"], 1, "missing.xml failed: http_4xx: HTTP 404"),
    (["--sitemap", "SITE/sitemap-news.xml", "--since", "someday"], 2, "--since 'someday'"),
    (["--sitemap", "SITE/sitemap-news.xml", "--since", "2019-10-05", "--until", "2019-10-01"], 2, "not before"),
    ([], 2, "give --sitemap URL"),
])
def test_bad_input_is_one_line_and_changes_nothing(env, news_site, site, tmp_path, conn, args, code, message):
    (tmp_path / "empty.txt").write_text("# nothing here\n\n")
    (tmp_path / "junk.txt").write_text("hello\nworld\n")
    args = [a.replace("EMPTY", str(tmp_path / "empty.txt")).replace("JUNK", str(tmp_path / "junk.txt"))
            .replace("SITE", site.base) for a in args]
    out = _run(["backfill", *args], env)
    assert out.returncode == code, (out.stdout, out.stderr)
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.startswith(("error", "Error"))]) == 1
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 0
