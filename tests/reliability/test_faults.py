"""Faults: a worker killed mid-batch, Postgres stopped mid-run, two runs at once. Afterwards
nothing is lost and nothing is duplicated."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from localsite import article_html, rss

from pipeline import embedded, ingest, store
from pipeline.errors import NewsroomError

PARAS = [
    "Syrian government forces shelled villages in southern Idlib province on Tuesday, rescuers said.",
    "Thousands of families fled north towards the Turkish border as the offensive entered its second week.",
    "Turkey said its observation posts in the de-escalation zone would stay where they are.",
    "Aid groups warned that camps along the frontier were already full and short of tents and food.",
    "Russia said its aircraft were striking militants who had broken the ceasefire agreed in Sochi.",
]


def _site_with_articles(site, n, *, delay=0.0, feeds=1):
    urls = [site.add(f"/a/{i}.html", article_html(f"Story {i}", [f"{p} ({i})" for p in PARAS]),
                     content_type="text/html", delay=delay) for i in range(n)]
    for f in range(feeds):
        site.add(f"/f{f}.xml", rss([(u, f"Story {i}") for i, u in enumerate(urls)]),
                 content_type="application/rss+xml")
    return [site.url(f"/f{f}.xml") for f in range(feeds)]


def _counts(conn):
    return {t: store.db.count_rows(conn, t) for t in ("articles", "article_sources", "raw_pages", "feed_polls")}


def test_a_worker_killed_mid_batch_leaves_its_articles_to_the_next_run(settings, site, feeds_file, db_dsn, conn):
    feeds = _site_with_articles(site, 6, delay=1.5)
    s = replace(settings, feeds_file=feeds_file(feeds), claim_lease=3, per_host_concurrency=2)
    ingest.sync_feeds(s)
    ingest.poll_feeds(s)
    env = {**os.environ, "NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
           "NEWSROOM_PER_HOST_DELAY": "0", "NEWSROOM_CLAIM_LEASE": "3", "NEWSROOM_STATE_DIR": str(s.state_dir)}
    code = "from pipeline import config, ingest; ingest.fetch_pages(config.load())"
    worker = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        claimed = conn.execute("SELECT count(*) FROM articles WHERE claimed_until > now()").fetchone()[0]
        conn.commit()
        if claimed:
            break
        time.sleep(0.1)
    assert claimed == 6
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert store.articles.status_counts(conn) == {"discovered": 6}
    conn.commit()
    assert ingest.fetch_pages(s).counts["fetched"] == 0  # still leased to the dead worker
    time.sleep(3.2)
    assert ingest.fetch_pages(s).counts["fetched"] == 6  # the lease ran out: taken over
    assert store.articles.status_counts(conn) == {"fetched": 6}
    assert store.db.count_rows(conn, "raw_pages") == 6


def test_two_ingest_runs_at_once_make_the_same_rows_as_one(settings, site, feeds_file, db_dsn, conn):
    feeds = _site_with_articles(site, 8, feeds=3)
    path = feeds_file(feeds)
    env = {**os.environ, "NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
           "NEWSROOM_PER_HOST_DELAY": "0", "NEWSROOM_FEEDS": str(path), "NEWSROOM_STATE_DIR": str(settings.state_dir)}
    cmd = [sys.executable, "-m", "pipeline.cli", "ingest", "--once", "--no-progress"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert _counts(conn) == {"articles": 8, "article_sources": 24, "raw_pages": 8, "feed_polls": 3}
    assert store.articles.status_counts(conn) == {"tagged": 8}
    # every page was downloaded once, every feed polled once
    assert all(len(site.hits(f"/a/{i}.html")) == 1 for i in range(8))
    assert conn.execute("SELECT count(*) FROM article_entities").fetchone()[0] > 0
    dupes = conn.execute("""SELECT count(*) FROM (SELECT article_id, start_char FROM article_entities
                             GROUP BY 1, 2 HAVING count(*) > 1) d""").fetchone()[0]
    assert dupes == 0


@pytest.fixture
def own_server():
    """A Postgres of this test's own, so it can be stopped without hurting the others."""
    path = Path(tempfile.mkdtemp(prefix="nrf", dir="/tmp"))
    admin = embedded.start(path / "pg")
    yield path / "pg", admin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded.stop(path / "pg")
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_postgres_stopped_mid_run_then_the_next_run_completes(own_server, site, feeds_file, tmp_path):
    pgdata, admin = own_server
    store.db.ensure_database(admin, "faults")
    dsn = psycopg.conninfo.make_conninfo(admin, dbname="faults")
    with psycopg.connect(dsn, autocommit=True) as c:
        store.migrations.migrate(c)
    feeds = _site_with_articles(site, 10, delay=0.4)
    from pipeline.config import Settings

    s = Settings(database_url=dsn, state_dir=tmp_path / "state", feeds_file=feeds_file(feeds),
                 allow_private_networks=True, per_host_delay=0.0, per_host_concurrency=1, claim_lease=2)
    failure: list[BaseException] = []

    def run():
        try:
            ingest.ingest_once(s, run_key="interrupted")
        except BaseException as exc:  # recorded for the assertion below
            failure.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(r.path.startswith("/a/") for r in site.requests):
        time.sleep(0.05)
    time.sleep(0.5)  # a few pages in
    embedded.stop(pgdata)
    t.join(timeout=120)
    assert failure and isinstance(failure[0], NewsroomError | psycopg.Error)

    embedded.start(pgdata)
    time.sleep(2.1)  # the interrupted run's leases run out
    _, results, _ = ingest.ingest_once(s, run_key="after")
    with psycopg.connect(dsn) as conn:
        assert _counts(conn)["articles"] == 10 and _counts(conn)["raw_pages"] == 10
        assert store.articles.status_counts(conn) == {"tagged": 10}
        assert conn.execute("SELECT status FROM ingest_runs WHERE run_key = 'after'").fetchone()[0] == "success"
    assert sum(len(site.hits(f"/a/{i}.html")) for i in range(10)) <= 10 + 2  # at most the in-flight ones twice
