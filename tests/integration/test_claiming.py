"""Work claiming: several workers at once never take the same article; a killed worker's
articles come back when its lease runs out."""

import multiprocessing as mp
import os
import time

import psycopg

from pipeline import store
from pipeline.records import FeedEntry, FeedSpec
from pipeline.states import Stage


def _seed(conn, n):
    store.feeds.upsert_feeds(conn, [FeedSpec(url="http://127.0.0.1/f.xml", name="f")])
    fid = conn.execute("SELECT id FROM feeds").fetchone()[0]
    store.feeds.upsert_entries(conn, fid, [FeedEntry(url=f"http://127.0.0.1/a/{i}", entry_url=f"http://127.0.0.1/a/{i}")
                                     for i in range(n)])
    conn.commit()


def _worker(dsn, out, ready):
    done = []
    with psycopg.connect(dsn) as conn:
        ready.wait(timeout=120)  # all start together, however long each took to import
        while True:
            batch = store.queue.claim_articles(conn, Stage.FETCH, owner="t", limit=7)[1]
            conn.commit()
            if not batch:
                break
            for a in batch:
                time.sleep(0.001)  # "work"
                conn.execute("UPDATE articles SET status = 'fetched', claimed_until = NULL WHERE id = %s", (a.id,))
                done.append(a.id)
            conn.commit()
    out.put((os.getpid(), done))


def test_parallel_worker_processes_process_each_article_exactly_once(db_dsn, conn):
    _seed(conn, 300)
    ctx = mp.get_context("spawn")
    out, ready = ctx.Queue(), ctx.Barrier(4)
    procs = [ctx.Process(target=_worker, args=(db_dsn, out, ready)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    ids = [i for _, done in results for i in done]
    assert len(ids) == 300 and len(set(ids)) == 300
    assert sum(1 for _, done in results if done) >= 2  # the work really was shared
    assert store.articles.status_counts(conn) == {"fetched": 300}


def test_a_lease_hides_rows_until_it_expires(db_dsn, conn):
    _seed(conn, 5)
    first = store.queue.claim_articles(conn, Stage.FETCH, owner="t", limit=5, lease_seconds=1)[1]
    conn.commit()
    assert len(first) == 5
    # a worker "killed" here never reports back; nobody else can take the rows meanwhile
    assert store.queue.claim_articles(conn, Stage.FETCH, owner="t", limit=5)[1] == []
    conn.commit()
    time.sleep(1.2)
    again = store.queue.claim_articles(conn, Stage.FETCH, owner="t", limit=5)[1]
    conn.commit()
    assert sorted(a.id for a in again) == sorted(a.id for a in first)
    assert all(a.attempts == 2 for a in again)


def test_claim_due_feeds_is_exclusive_and_sharded_by_host(conn):
    urls = [f"http://host{h}.example/{i}.xml" for h in range(6) for i in range(3)]
    store.feeds.upsert_feeds(conn, [FeedSpec(url=u, name=u) for u in urls])
    conn.commit()
    shards = [store.queue.claim_feeds(conn, owner="t", shard=k, shards=3)[1] for k in range(3)]
    conn.commit()
    assert sum(len(s) for s in shards) == len(urls)
    hosts = [{f.url.split("/")[2] for f in s} for s in shards]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not hosts[a] & hosts[b]  # a host's feeds all land in one shard
    assert store.queue.claim_feeds(conn, owner="another worker")[1] == []  # leased: not due again until polled or expired
