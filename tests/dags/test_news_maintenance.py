"""The news_maintenance DAG's tasks (pipeline.tasks, what each @task calls) against a real
database: prune by the settings' ages, VACUUM (ANALYZE), table sizes for the log and XCom."""

import json
import logging

import pytest

from pipeline import store, tasks
from pipeline.records import FeedEntry, FeedSpec, RawPage


@pytest.fixture
def env(db_dsn, tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSROOM_DATABASE_URL", db_dsn)
    monkeypatch.setenv("NEWSROOM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NEWSROOM_PRUNE_RAW_PAGES_AFTER", "30d")
    monkeypatch.setenv("NEWSROOM_PRUNE_POLLS_AFTER", "2w")
    return tasks._settings()


def _data(conn) -> None:
    store.feeds.upsert_feeds(conn, [FeedSpec(url="http://127.0.0.1/feed.xml", name="Feed")], disable_missing=False)
    fid = conn.execute("SELECT id FROM feeds").fetchone()[0]
    ids = store.feeds.upsert_entries(conn, fid, [FeedEntry(url=f"http://127.0.0.1/{n}", entry_url="x")
                                                 for n in range(4)])
    for aid in ids:
        store.articles.store_page(conn, RawPage(article_id=aid, http_status=200, final_url="http://127.0.0.1/",
                                                html="", body=b"<p>secret body text</p>" * 50, charset="utf-8"))
    conn.execute("UPDATE articles SET status = 'tagged', body = 'secret body text'")
    conn.execute("UPDATE raw_pages SET fetched_at = now() - interval '31 days' WHERE article_id = ANY(%s)", (ids[:3],))
    for days in (20, 1):
        conn.execute("INSERT INTO feed_polls (feed_id, started_at, finished_at, outcome) "
                     "VALUES (%s, now() - make_interval(days => %s), now(), 'ok')", (fid, days))
    conn.commit()


def test_the_maintenance_tasks_in_order(env, conn, caplog):
    _data(conn)
    with caplog.at_level(logging.INFO, logger="pipeline.tasks"):
        pruned = tasks.prune()
        vacuumed = tasks.vacuum_analyze()
        sizes = tasks.log_table_sizes()
    assert pruned["raw_pages"] == 3 and pruned["polls"] == 1 and pruned["raw_page_bytes"] > 0
    assert "older than 30d" in caplog.text and "older than 2w" in caplog.text
    assert set(vacuumed) >= {"articles", "raw_pages", "article_entities", "feed_polls"}
    assert sizes["raw_pages"]["rows"] == 1 and sizes["articles"]["rows"] == 4 and sizes["feed_polls"]["rows"] == 1
    assert all(set(v) == {"rows", "bytes"} for v in sizes.values())
    xcom = json.dumps([pruned, vacuumed, sizes])  # what goes to XCom: small, JSON, no text
    assert "secret" not in xcom and len(xcom) < 4000
    assert sum(1 for r in caplog.records if r.getMessage().startswith("table ")) == len(sizes)
    # a second day finds nothing more
    assert tasks.prune()["raw_pages"] == 0
