"""`newsroom ingest --once` and `newsroom feeds ...` as a user runs them."""

import os
import subprocess
import sys

from localsite import article_html, rss


def _run(args, env):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=180)


def test_ingest_twice_then_feeds_status(db_dsn, site, feeds_file, tmp_path, conn):
    a = site.add("/a.html", article_html("A", ["Paragraph about Idlib."] * 4), content_type="text/html")
    site.add("/feed.xml", rss([(a, "A")]), content_type="application/rss+xml", headers={"ETag": '"1"'})
    site.add("/dead.xml", "gone", status=410)
    env = {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path),
           "NEWSROOM_FEEDS": str(feeds_file([site.url("/feed.xml"), site.url("/dead.xml")])),
           "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1", "NEWSROOM_PER_HOST_DELAY": "0"}
    first = _run(["ingest", "--once", "--no-progress"], env)
    assert first.returncode == 0, first.stderr
    assert "ingest run" in first.stdout and "fetched 1" in first.stdout
    assert "nothing new" not in first.stderr
    second = _run(["ingest", "--once", "--no-progress"], env)
    assert second.returncode == 0, second.stderr
    assert "nothing new: no feed was due: the next poll is due in" in second.stderr  # and why
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM ingest_runs WHERE status = 'success'").fetchone()[0] == 2

    status = _run(["feeds", "status"], {**env, "COLUMNS": "250"})
    assert status.returncode == 0, status.stderr
    # 410 Gone: no longer polled, and says why
    assert "gone" in status.stdout and "HTTP 410 Gone at" in status.stdout
    assert "1 gone" in status.stdout
    only_failing = _run(["feeds", "status", "--failing"], {**env, "COLUMNS": "250"})
    assert "feed 0" not in only_failing.stdout and "feed 1" in only_failing.stdout

    # dropping a feed from the file disables it; its history stays
    env["NEWSROOM_FEEDS"] = str(feeds_file([site.url("/dead.xml")]))
    sync = _run(["feeds", "sync"], env)
    assert sync.returncode == 0 and "1 disabled as no longer listed" in sync.stdout, sync.stdout
    # the second run polled nothing: neither feed was due yet
    assert conn.execute("SELECT count(*) FROM feed_polls").fetchone()[0] == 2


def test_bad_feed_list_is_one_line(db_dsn, tmp_path):
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - name: no url\n")
    out = _run(["feeds", "sync"], {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_FEEDS": str(bad)})
    assert out.returncode == 2
    assert "needs a 'url'" in out.stderr and "Traceback" not in out.stderr
