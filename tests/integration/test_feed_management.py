"""Feeds are data: the CLI manages them, the feeds file syncs only its own, feeds move on
permanent redirects and stop on 410 Gone, and every listing filters by feed, tag, outlet and
language. Against the embedded Postgres and a local site."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from localsite import article_html, rss

from pipeline import ingest, store
from pipeline.records import FeedEntry, FeedSpec


def _run(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=180, **kw)


def _run_here(args, env):
    """`_run` in this process (no interpreter start-up): for a matrix of invocations of one command
    path whose real-process behaviour another call has already checked."""
    from click.testing import CliRunner

    from pipeline.cli import main

    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def env(db_dsn, tmp_path, feeds_file):
    return {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path / "state"),
            "NEWSROOM_FEEDS": str(feeds_file([])), "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
            "NEWSROOM_PER_HOST_DELAY": "0", "COLUMNS": "200"}


def _paragraphs(place):
    return [f"Report {i} from {place}: people there have lived through {i + 2} years of war, shelling and "
            f"displacement, and aid groups say winter is coming." for i in range(6)]


def _feeds(conn):
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT url, name, enabled, disabled_reason, managed_by, tags, outlet FROM feeds ORDER BY id")}


def _one_line_error(out, code=None):
    assert out.returncode != 0 and (code is None or out.returncode == code), (out.stdout, out.stderr)
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    return out.stderr


def test_a_feed_added_from_the_cli_survives_a_full_cycle_with_the_file(env, site, feeds_file, conn):
    a = site.add("/a.html", article_html("Listed", _paragraphs("Idlib")), content_type="text/html")
    b = site.add("/b.html", article_html("Added", _paragraphs("Aleppo")), content_type="text/html")
    listed = site.add("/listed.xml", rss([(a, "Listed")]), content_type="application/rss+xml")
    added = site.add("/added.xml", rss([(b, "Added")]), content_type="application/rss+xml")
    env["NEWSROOM_FEEDS"] = str(feeds_file([listed]))

    out = _run(["feeds", "add", added, "--name", "Mine", "--tags", "syria, mine", "--interval", "1h",
                "--outlet", "My Outlet"], env)
    assert out.returncode == 0 and "added feed #1 'Mine'" in out.stdout, out.stderr
    cycle = _run(["ingest", "--once", "--no-progress"], env)
    assert cycle.returncode == 0, cycle.stderr
    feeds = _feeds(conn)
    assert feeds[added] == ("Mine", True, None, "user", ["syria", "mine"], "My Outlet")
    assert feeds[listed][1:4] == (True, None, "file")
    got = conn.execute("SELECT title, status, last_error FROM articles").fetchall()
    assert {r[0] for r in got if r[1] == "tagged"} == {"Listed", "Added"}, (got, cycle.stdout, cycle.stderr)
    # and the file's sync, run on its own, leaves it alone too
    sync = _run(["feeds", "sync"], env)
    assert "0 disabled" in sync.stdout and _feeds(conn)[added][1] is True
    # the outlet filter: the feed's outlet name, else the article's site
    mine = json.loads(_run(["articles", "--outlet", "my outlet", "--format", "json"], env).stdout)
    assert [r["title"] for r in mine] == ["Added"] and mine[0]["outlet"] == "My Outlet"
    # a site's domain finds its articles whatever outlet name their feed gives them
    by_site = json.loads(_run(["articles", "--outlet", "127.0.0.1", "--format", "json"], env).stdout)
    assert sorted(r["title"] for r in by_site) == ["Added", "Listed"]


def test_add_remove_pause_resume_and_their_errors(env, conn):
    url = "https://news.example/rss"
    assert _run(["feeds", "add", url, "--name", "News"], env).returncode == 0
    before = _feeds(conn)
    # a duplicate URL (in another spelling), an unknown feed, bad options: one line, nothing changed
    assert "already feed #1 'News' (enabled)" in _one_line_error(
        _run(["feeds", "add", "HTTPS://NEWS.example/rss?utm_source=x"], env), 2)
    assert "no feed is called 'Nope'" in _one_line_error(_run(["feeds", "pause", "Nope"], env), 1)
    assert "--interval" in _one_line_error(_run(["feeds", "add", "https://b.example/f", "--interval", "10s"], env), 2)
    assert "not a feed URL" in _one_line_error(_run(["feeds", "add", "file:///etc/passwd"], env), 2)
    assert _feeds(conn) == before

    assert "is now paused" in _run(["feeds", "pause", "news"], env).stdout  # a name, in any case
    assert "is already paused" in _run(["feeds", "pause", "1"], env).stdout
    assert _feeds(conn)[url][1:3] == (False, "paused")
    assert "now removed" in _run(["feeds", "remove", url], env).stdout
    assert _feeds(conn)[url][1:3] == (False, "removed")
    # adding it again says how to bring it back
    assert "feeds resume 1" in _one_line_error(_run(["feeds", "add", url], env), 2)
    assert "now polled again" in _run(["feeds", "resume", "#1"], env).stdout
    assert _feeds(conn)[url][1:3] == (True, None)
    # two feeds of one name: the name is not enough
    assert _run(["feeds", "add", "https://other.example/rss", "--name", "News"], env).returncode == 0
    assert "2 feeds are called 'News'" in _one_line_error(_run(["feeds", "pause", "News"], env), 2)


def test_the_file_syncs_its_own_feeds_only(settings, feeds_file, conn):
    settings = replace(settings, feeds_file=feeds_file(["http://127.0.0.1/a.xml", "http://127.0.0.1/b.xml"]))
    ingest.sync_feeds(settings)
    store.feeds.add_feed(conn, FeedSpec(url="http://127.0.0.1/mine.xml", name="mine"))
    a_id = store.feeds.find_feed(conn, "http://127.0.0.1/a.xml")["id"]
    store.feeds.set_disabled(conn, a_id, "paused", "paused by the user")
    conn.commit()
    # b dropped from the file: disabled as unlisted; the paused feed stays paused though listed
    settings = replace(settings, feeds_file=feeds_file(["http://127.0.0.1/a.xml"]))
    counts = ingest.sync_feeds(settings).counts
    assert counts["disabled"] == 1
    feeds = _feeds(conn)
    assert feeds["http://127.0.0.1/b.xml"][1:3] == (False, "unlisted")
    assert feeds["http://127.0.0.1/a.xml"][1:3] == (False, "paused")
    assert feeds["http://127.0.0.1/mine.xml"][1:4] == (True, None, "user")
    # b listed again: back; re-syncing changes nothing more
    settings = replace(settings, feeds_file=feeds_file(["http://127.0.0.1/a.xml", "http://127.0.0.1/b.xml"]))
    ingest.sync_feeds(settings)
    assert _feeds(conn)["http://127.0.0.1/b.xml"][1:3] == (True, None)
    again = ingest.sync_feeds(settings).counts
    assert (again["inserted"], again["updated"], again["disabled"]) == (0, 0, 0)
    assert conn.execute("SELECT count(*) FROM feeds").fetchone()[0] == 3
    # a feed the file dropped and the user resumed is the user's now: the next sync keeps it
    settings = replace(settings, feeds_file=feeds_file(["http://127.0.0.1/a.xml"]))
    ingest.sync_feeds(settings)
    b_id = store.feeds.find_feed(conn, "http://127.0.0.1/b.xml")["id"]
    assert store.feeds.set_enabled(conn, b_id)
    conn.commit()
    assert ingest.sync_feeds(settings).counts["disabled"] == 0
    assert _feeds(conn)["http://127.0.0.1/b.xml"][1:4] == (True, None, "user")


def _poll_now(settings, conn):
    conn.execute("UPDATE feeds SET next_poll_at = now() WHERE enabled")
    conn.commit()
    return ingest.poll_feeds(settings)


def test_a_permanent_redirect_seen_three_times_moves_the_feed(settings, site, feeds_file, conn):
    a = site.add("/a.html", article_html("A", ["Text."] * 4), content_type="text/html")
    site.add("/new.xml", rss([(a, "A")]), content_type="application/rss+xml")
    site.add("/old.xml", status=301, headers={"Location": "/new.xml"})
    site.add("/temp.xml", status=302, headers={"Location": "/new2.xml"})
    site.add("/new2.xml", rss([(a, "A")]), content_type="application/rss+xml")
    old, new, temp = site.url("/old.xml"), site.url("/new.xml"), site.url("/temp.xml")
    settings = replace(settings, feeds_file=feeds_file([old, temp]), feed_move_after=3)
    ingest.sync_feeds(settings)
    for n in (1, 2):
        _poll_now(settings, conn)
        assert conn.execute("SELECT url, redirect_url, redirect_polls FROM feeds WHERE name = 'feed 0'").fetchone() \
            == (old, new, n)
    _poll_now(settings, conn)
    assert conn.execute("SELECT url, redirect_url, redirect_polls FROM feeds WHERE name = 'feed 0'").fetchone() \
        == (new, None, 0)
    assert conn.execute("SELECT url, new_url, reason FROM feed_url_history").fetchall() == [
        (old, new, "permanent redirect (301/308)")]
    # a temporary redirect never moves a feed
    assert conn.execute("SELECT url, redirect_polls FROM feeds WHERE name = 'feed 1'").fetchone() == (temp, 0)
    # the file still lists the old URL: the sync finds the moved feed, and adds no second one
    counts = ingest.sync_feeds(settings).counts
    assert counts["inserted"] == 0 and counts["disabled"] == 0
    assert conn.execute("SELECT count(*) FROM feeds").fetchone()[0] == 2
    assert store.feeds.find_feed(conn, old)["url"] == new
    # polls of the new URL go there directly
    site.requests.clear()
    _poll_now(settings, conn)
    assert not site.hits("/old.xml") and site.hits("/new.xml")


def test_a_move_onto_a_feed_already_polled_disables_the_mover(settings, site, feeds_file, conn):
    site.add("/dup.xml", rss([]), content_type="application/rss+xml")
    site.add("/old.xml", status=308, headers={"Location": "/dup.xml"})
    settings = replace(settings, feeds_file=feeds_file([site.url("/old.xml"), site.url("/dup.xml")]),
                       feed_move_after=1)
    ingest.sync_feeds(settings)
    _poll_now(settings, conn)
    row = conn.execute("SELECT enabled, disabled_reason, disabled_detail FROM feeds WHERE name = 'feed 0'").fetchone()
    assert row[:2] == (False, "moved") and "which feed #2 already polls" in row[2]
    # onto a feed that is not polled: said so, with the way back
    store.feeds.set_enabled(conn, 1)
    store.feeds.set_disabled(conn, 2, "removed", "by the user")
    conn.commit()
    _poll_now(settings, conn)
    detail = conn.execute("SELECT disabled_detail FROM feeds WHERE id = 1").fetchone()[0]
    assert "which feed #2 has, but does not poll (removed: `newsroom feeds resume 2`)" in detail


def test_410_gone_disables_the_feed_with_its_reason_and_status_shows_it(settings, site, feeds_file, conn, env):
    site.add("/gone.xml", "gone", status=410)
    site.add("/moving.xml", status=301, headers={"Location": "/there.xml"})
    site.add("/there.xml", rss([]), content_type="application/rss+xml")
    settings = replace(settings, feeds_file=feeds_file([site.url("/gone.xml"), site.url("/moving.xml")]))
    ingest.sync_feeds(settings)
    _poll_now(settings, conn)
    row = conn.execute("SELECT enabled, disabled_reason, disabled_detail, last_error_class FROM feeds "
                       "WHERE name = 'feed 0'").fetchone()
    assert row[:2] == (False, "gone") and "HTTP 410 Gone" in row[2] and row[3] == "http_410_gone"
    _poll_now(settings, conn)  # not polled again
    assert len(site.hits("/gone.xml")) == 1
    env["NEWSROOM_FEEDS"] = str(settings.feeds_file)
    status = _run(["feeds", "status"], env).stdout
    assert "gone" in status and "HTTP 410 Gone at" in status
    assert f"redirected for good to {site.url('/there.xml')} on 2 poll(s) in a row" in status
    rows = {r["name"]: r for r in json.loads(_run(["feeds", "status", "--format", "json"], env).stdout)}
    assert rows["feed 0"]["state"] == "gone" and rows["feed 1"]["redirect_polls"] == 2


def test_import_opml_then_export_round_trips_and_reimport_changes_nothing(env, conn, tmp_path):
    opml = tmp_path / "subs.opml"
    opml.write_text("""<?xml version="1.0"?><opml version="1.0"><body>
        <outline text="Syria"><outline text="One" type="rss" xmlUrl="https://one.example/rss"/>
        <outline text="Two" type="rss" xmlUrl="https://two.example/rss"/></outline></body></opml>""")
    out = _run(["feeds", "import", str(opml)], env)
    assert out.returncode == 0 and "2 feed(s) added, 0 already there" in out.stdout, out.stderr
    again = _run(["feeds", "import", str(opml)], env)
    assert "0 feed(s) added, 2 already there" in again.stdout
    assert _feeds(conn)["https://one.example/rss"] == ("One", True, None, "user", ["Syria"], None)
    exported = _run(["feeds", "export", "--format", "yaml"], env).stdout
    assert "url: https://two.example/rss" in exported and "- Syria" in exported
    as_opml = _run(["feeds", "export"], env).stdout
    assert 'xmlUrl="https://one.example/rss"' in as_opml and 'category="Syria"' in as_opml
    # malformed: one line, nothing added
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline text='x' xmlUrl='https://three.example/rss'>")
    assert "not well-formed" in _one_line_error(_run(["feeds", "import", str(bad)], env), 2)
    assert len(_feeds(conn)) == 2


def test_filters_by_feed_tag_outlet_and_language(env, conn, settings):
    store.feeds.upsert_feeds(conn, [FeedSpec(url="http://127.0.0.1/en.xml", name="English", tags=("uk",)),
                                    FeedSpec(url="http://127.0.0.1/fr.xml", name="French", tags=("fr",),
                                             outlet="Le Journal")])
    ids = {}
    for feed, url, lang, title in [("http://127.0.0.1/en.xml", "https://www.bbc.co.uk/news/1", "en", "Idlib talks"),
                                   ("http://127.0.0.1/fr.xml", "https://lejournal.fr/a", "fr", "Idlib en guerre")]:
        fid = store.feeds.find_feed(conn, feed)["id"]
        entry = FeedEntry(url=url, entry_url=url, guid=url, title=title)
        [aid] = store.feeds.upsert_entries(conn, fid, [entry])
        conn.execute("UPDATE articles SET language = %s, body = %s, status = 'tagged' WHERE id = %s",
                     (lang, f"{title}. Idlib.", aid))
        ids[lang] = aid
    conn.commit()

    def titles(*args, run=_run_here):
        out = run([*args, "--format", "json"], env)
        assert out.returncode in (0, 1), out.stderr
        return sorted(r["title"] for r in json.loads(out.stdout or "[]"))

    # The first listing and the first error as real processes; the rest in this process.
    assert titles("search", "Idlib", run=_run) == ["Idlib en guerre", "Idlib talks"]
    assert "no feed has the tag 'nope'" in _one_line_error(_run(["search", "Idlib", "--tag", "nope"], env))
    assert titles("search", "Idlib", "--tag", "uk") == ["Idlib talks"]
    assert titles("search", "Idlib", "--feed", "French") == ["Idlib en guerre"]
    assert titles("search", "Idlib", "--feed", "HTTP://127.0.0.1/fr.xml?utm_source=x") == ["Idlib en guerre"]
    assert titles("search", "Idlib", "--outlet", "bbc.co.uk") == ["Idlib talks"]
    assert titles("search", "Idlib", "--outlet", "LE JOURNAL") == ["Idlib en guerre"]
    assert titles("articles", "--language", "fr") == ["Idlib en guerre"]
    assert titles("search", "Idlib", "--language", "de") == []
    site = conn.execute("SELECT site FROM articles WHERE id = %s", (ids["en"],)).fetchone()[0]
    assert site == "bbc.co.uk"
    for args, says in [(["--tag", "nope"], "no feed has the tag 'nope' (tags in use: fr, uk)"),
                       (["--feed", "Nope"], "no feed is called 'Nope'"),
                       (["--outlet", "nope.example"], "no outlet is called"),
                       (["--language", "french!"], "language must be a two- or three-letter code"),
                       (["--outlet", "English"], "no outlet is called")]:  # a feed's name is not an outlet
        for command in (["search", "Idlib"], ["topics"], ["entities"], ["articles"]):
            assert says in _one_line_error(_run_here([*command, *args], env)), (command, args)


def test_only_a_chain_that_starts_permanent_says_where_a_feed_moved(settings, site):
    import asyncio

    from pipeline import fetch
    from pipeline.records import FeedState

    feed_xml = rss([])
    site.add("/end.xml", feed_xml, content_type="application/rss+xml")
    site.add("/p1.xml", status=301, headers={"Location": "/p2.xml"})
    site.add("/p2.xml", status=302, headers={"Location": "/end.xml"})  # permanent, then temporary
    site.add("/t1.xml", status=307, headers={"Location": "/p3.xml"})
    site.add("/p3.xml", status=308, headers={"Location": "/end.xml"})  # temporary first: no move
    site.add("/huge.xml", status=301, headers={"Location": "/" + "x" * 2100})
    site.add("/" + "x" * 2100, feed_xml, content_type="application/rss+xml")

    async def poll(path):
        async with fetch.make_client(settings) as client:
            return await fetch.poll_feed(client, fetch.HostLimiter(2, 0), FeedState(id=1, url=site.url(path)),
                                         settings)

    assert asyncio.run(poll("/p1.xml")).moved_to == site.url("/p2.xml")
    assert asyncio.run(poll("/t1.xml")).moved_to is None
    assert asyncio.run(poll("/huge.xml")).moved_to is None  # too long to be a feed's URL
