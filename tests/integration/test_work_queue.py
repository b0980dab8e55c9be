"""The work queue cannot wedge: claims are fenced by tokens, renewed by a heartbeat, capped in
attempts; a poison item in any stage fails alone; backlog waits behind live work."""

import time
from dataclasses import replace

import pytest
from localsite import article_html, rss

from pipeline import extract, ingest, nlp, quality, store
from pipeline.records import Extraction, FeedEntry, FeedSpec, RawPage
from pipeline.states import Stage

PARAS = [
    "Syrian government forces shelled villages in southern Idlib province on Tuesday, rescuers said.",
    "Thousands of families fled north towards the Turkish border as the offensive entered its second week.",
    "Turkey said its observation posts in the de-escalation zone would stay where they are.",
    "Aid groups warned that camps along the frontier were already full and short of tents and food.",
    "Russia said its aircraft were striking militants who had broken the ceasefire agreed in Sochi.",
]


def _seed(conn, urls, feed="http://127.0.0.1/f.xml"):
    store.feeds.upsert_feeds(conn, [FeedSpec(url=feed, name="f")], disable_missing=False)
    fid = conn.execute("SELECT id FROM feeds WHERE url = %s", (feed,)).fetchone()[0]
    ids = store.feeds.upsert_entries(conn, fid, [FeedEntry(url=u, entry_url=u) for u in urls])
    conn.commit()
    return ids


def _page(aid, url="http://127.0.0.1/a"):
    return RawPage(article_id=aid, http_status=200, final_url=url, html="<html><p>x</p></html>")


def _due_now(conn):
    conn.execute("UPDATE articles SET next_attempt_at = now() WHERE status <> 'failed'")
    conn.commit()


def test_a_late_write_after_the_lease_ran_out_is_dropped(conn, caplog):
    [aid] = _seed(conn, ["http://127.0.0.1/a"])
    old, [mine] = store.queue.claim_articles(conn, Stage.FETCH, owner="slow worker", lease_seconds=1)
    conn.commit()
    time.sleep(1.1)  # the slow worker's lease runs out while it is still downloading
    new, [theirs] = store.queue.claim_articles(conn, Stage.FETCH, owner="new worker", lease_seconds=60)
    conn.commit()
    assert mine.id == theirs.id == aid and old.token != new.token
    assert store.articles.store_page(conn, _page(aid, "http://127.0.0.1/new"), token=new.token)
    conn.commit()
    # the slow worker finishes now: its page, and its failure, are both refused
    assert not store.articles.store_page(conn, _page(aid, "http://127.0.0.1/old"), token=old.token)
    assert store.queue.record_failure(conn, old.token, aid, stage=Stage.FETCH, error="timeout: late",
                                    transient=False, max_attempts=5) is None
    conn.commit()
    row = conn.execute("SELECT status, final_url, last_error, claim_token FROM articles").fetchone()
    assert row == ("fetched", "http://127.0.0.1/new", None, None)
    assert "stale write dropped" in caplog.text


def test_a_late_extraction_cannot_undo_tagging(conn):
    [aid] = _seed(conn, ["http://127.0.0.1/a"])
    store.articles.store_page(conn, _page(aid))
    old, _ = store.queue.claim_articles(conn, Stage.EXTRACT, owner="w1", lease_seconds=1)
    conn.commit()
    time.sleep(1.1)
    new, _ = store.queue.claim_articles(conn, Stage.EXTRACT, owner="w2", lease_seconds=60)
    assert store.articles.save_extraction(conn, aid, Extraction(text="new text", word_count=2), token=new.token)
    store.articles.mark_tagged(conn, aid, nlp_version="m", rules_version="r")
    conn.commit()
    assert not store.articles.save_extraction(conn, aid, Extraction(text="old text", word_count=2), token=old.token)
    assert conn.execute("SELECT status, body FROM articles").fetchone() == ("tagged", "new text")


def test_the_heartbeat_keeps_a_slow_batch_claimed(conn, db_dsn):
    _seed(conn, [f"http://127.0.0.1/a{i}" for i in range(3)])
    with store.queue.Heartbeat(db_dsn, 1) as hb:
        claim, got = store.queue.claim_articles(conn, Stage.FETCH, owner="slow", lease_seconds=1)
        conn.commit()
        hb.add(claim.token)
        time.sleep(2.5)  # over twice the lease: only the heartbeat keeps it
        assert store.queue.claim_articles(conn, Stage.FETCH, owner="other")[1] == []
        conn.commit()
        assert hb.beats >= 2
        hb.remove(claim.token)
    time.sleep(1.1)
    assert len(store.queue.claim_articles(conn, Stage.FETCH, owner="other")[1]) == 3


def test_an_article_that_kills_its_worker_ends_failed_after_max_attempts(conn):
    [aid] = _seed(conn, ["http://127.0.0.1/poison"])
    for _ in range(3):  # three workers die on it, never recording anything
        assert store.queue.claim_articles(conn, Stage.FETCH, owner="w", lease_seconds=1, max_attempts=3)[1]
        conn.commit()
        time.sleep(1.05)
    assert store.queue.give_up_exhausted(conn, Stage.FETCH, max_attempts=3) == 1
    assert store.queue.claim_articles(conn, Stage.FETCH, owner="w", max_attempts=3)[1] == []
    status, stage, error = conn.execute("SELECT status, failed_stage, last_error FROM articles").fetchone()
    assert (status, stage) == ("failed", "fetch") and error.startswith("worker_lost: claimed 3 times")


def test_claims_interleave_hosts(conn):
    _seed(conn, [f"http://big.example/{i}" for i in range(20)] + ["http://small.example/1", "http://other.example/1"])
    _, got = store.queue.claim_articles(conn, Stage.FETCH, owner="w", limit=6, interleave_hosts=True)
    hosts = {a.url.split("/")[2] for a in got}
    assert hosts == {"big.example", "small.example", "other.example"}


def test_backlog_waits_behind_live_work(conn):
    old = _seed(conn, [f"http://127.0.0.1/old{i}" for i in range(5)])
    for aid in old:
        store.articles.store_page(conn, _page(aid))
        store.articles.save_extraction(conn, aid, Extraction(text="x", word_count=1))
        store.articles.mark_tagged(conn, aid, nlp_version="m", rules_version="r")
    conn.commit()
    assert len(store.queue.select_for_reprocessing(conn, stage="tag")) == 5  # a retag: backlog
    conn.commit()
    [live] = _seed(conn, ["http://127.0.0.1/new"])
    store.articles.store_page(conn, _page(live))
    store.articles.save_extraction(conn, live, Extraction(text="y", word_count=1))
    conn.commit()
    _, first = store.queue.claim_articles(conn, Stage.TAG, owner="w", limit=1)
    assert [a.id for a in first] == [live]
    assert store.queue.stuck_articles(conn, 0.0001) == {}  # backlog waiting is not "stuck"
    assert conn.execute("SELECT status, count(*) FROM articles WHERE priority = 1 GROUP BY status").fetchall() \
        == [("extracted", 5)]
    assert len(store.queue.select_for_reprocessing(conn, stage="tag", limit=2)) <= 2
    # a retag that also selects live work already waiting for tagging leaves it live
    store.queue.select_for_reprocessing(conn, stage="tag", ids=[live])
    assert conn.execute("SELECT priority FROM articles WHERE id = %s", (live,)).fetchone()[0] == 0


def test_the_heartbeat_never_deadlocks_with_a_stage_writing_its_claimed_rows(conn, db_dsn):
    import random
    import threading

    store.feeds.upsert_feeds(conn, [FeedSpec(url=f"http://h{i % 50}.example/{i}.xml", name=str(i)) for i in range(3000)])
    conn.commit()
    conn.execute("UPDATE feeds SET updated_at = now() WHERE id % 3 = 0")  # shuffle the physical order
    conn.commit()
    claim, feeds = store.queue.claim_feeds(conn, owner="w", lease_seconds=60)
    conn.commit()
    ids = [f.id for f in feeds]
    stop, errors = threading.Event(), []

    def renew_hard():
        with store.db.connect(db_dsn, autocommit=True) as other:
            while not stop.is_set():
                try:
                    store.queue.renew(other, [claim.token], 60)
                except Exception as exc:  # recorded for the assertion
                    errors.append(exc)

    t = threading.Thread(target=renew_hard)
    t.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            batch = random.sample(ids, 100)
            with conn.transaction():
                conn.execute("SELECT id FROM feeds WHERE id = ANY(%s) AND claim_token = %s ORDER BY id FOR UPDATE",
                             (batch, claim.token))
                conn.execute("UPDATE feeds SET last_status = 'ok' WHERE id = ANY(%s)", (batch,))
            conn.commit()
    finally:
        stop.set()
        t.join()
    assert not errors


def test_a_retried_poll_takes_back_its_own_claims_and_others_see_them_as_orphans(conn):
    store.feeds.upsert_feeds(conn, [FeedSpec(url=f"http://h{i}.example/f.xml", name=str(i)) for i in range(3)])
    store.runs.start_run(conn, "run1", "cli")
    conn.commit()
    claim, got = store.queue.claim_feeds(conn, owner="run1/poll/shard0of1", lease_seconds=60)
    conn.commit()
    assert len(got) == 3
    assert store.queue.claim_feeds(conn, owner="run2/poll/shard0of1")[1] == []  # leased
    # the task crashed; Airflow retries it with the same owner: it takes its feeds back at once
    _, again = store.queue.claim_feeds(conn, owner="run1/poll/shard0of1", lease_seconds=60)
    assert len(again) == 3
    conn.commit()
    store.runs.finish_run(conn, "run1", status="failed", counts={})
    conn.commit()
    orphans = store.queue.orphaned_feed_leases(conn)
    assert len(orphans) == 3 and orphans[0]["claimed_by"] == "run1/poll/shard0of1"
    facts = quality.Facts(feeds_polled=0, feeds_ok=0, last_feed_success=None, extract_attempted=0,
                          extract_succeeded=0, stuck={}, now=store.db.now(conn), orphaned_feeds=orphans)
    checks = {c.name: c for c in quality.evaluate(facts, min_extract_rate=0.5, stuck_hours=6)}
    assert checks["stale_claims"].severity == "error" and checks["feeds_polled"].severity == "error"
    assert "no feed was due" not in checks["feeds_polled"].message


# --- a poison item in each stage ------------------------------------------------------------

def _site(site, n):
    urls = [site.add(f"/a/{i}.html", article_html(f"Story {i}", [f"{p} ({i})" for p in PARAS]),
                     content_type="text/html") for i in range(n)]
    site.add("/f.xml", rss([(u, f"Story {i}") for i, u in enumerate(urls)]), content_type="application/rss+xml")
    return urls


def _poison_runs(conn, stage_fn, attempts):
    """Run a stage `attempts` times, the poison due again each time; return the first result."""
    first = stage_fn()
    for _ in range(attempts - 1):
        _due_now(conn)
        stage_fn()
    return first


@pytest.mark.parametrize("stage", ["fetch", "extract", "tag"])
def test_a_poison_article_fails_alone_after_max_attempts(stage, settings, site, feeds_file, conn, monkeypatch):
    urls = _site(site, 4)
    poison = urls[2]
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]), max_attempts=3)
    ingest.sync_feeds(s)
    ingest.poll_feeds(s)
    if stage != "fetch":
        ingest.fetch_pages(s)
    if stage == "tag":
        ingest.extract_pages(s)
    boom = RuntimeError("poisoned input")
    if stage == "fetch":
        real = ingest.fetch.fetch_page

        async def fetch_page(client, limiter, robots, article, settings):
            if article.url == poison:
                raise boom
            return await real(client, limiter, robots, article, settings)

        monkeypatch.setattr(ingest.fetch, "fetch_page", fetch_page)
        run = lambda: ingest.fetch_pages(s)  # noqa: E731
    elif stage == "extract":
        real = extract.extract_article

        def extract_article(html, *, url, **kw):
            if url == poison:
                raise boom
            return real(html, url=url, **kw)

        monkeypatch.setattr(extract, "extract_article", extract_article)
        run = lambda: ingest.extract_pages(s)  # noqa: E731
    else:
        real = nlp.tag_entities
        body = conn.execute("SELECT body FROM articles WHERE url = %s", (poison,)).fetchone()[0]

        def tag_entities(texts, **kw):
            if body in texts:
                raise boom
            return real(texts, **kw)

        monkeypatch.setattr(nlp, "tag_entities", tag_entities)
        run = lambda: ingest.tag_articles(s)  # noqa: E731
    first = _poison_runs(conn, run, 3)
    assert first.errors["internal_error"] == 1
    rows = dict(conn.execute("SELECT url, status FROM articles").fetchall())
    done = {"fetch": "fetched", "extract": "extracted", "tag": "tagged"}[stage]
    assert all(status == done for url, status in rows.items() if url != poison), rows
    status, failed_stage, error, attempts, token = conn.execute(
        "SELECT status, failed_stage, last_error, attempts, claim_token FROM articles WHERE url = %s",
        (poison,)).fetchone()
    assert (status, failed_stage, token) == ("failed", stage, None)
    assert error == "internal_error: RuntimeError: poisoned input" and attempts == 3
