"""The `summary` task (pipeline.tasks.summarise) against a real database: a run that brought in
nothing new says why, in the task log and in the run's `ingest_runs.details`, e.g. when a user
triggers news_ingest right after `newsroom demo --once` and no feed is due yet."""

import logging

import pytest

from pipeline import ingest, tasks


@pytest.fixture
def env(db_dsn, tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSROOM_DATABASE_URL", db_dsn)
    monkeypatch.setenv("NEWSROOM_STATE_DIR", str(tmp_path))
    return tasks._settings()


def _feeds(conn, *rows):
    for name, next_in in rows:
        conn.execute("INSERT INTO feeds (url, name, next_poll_at) VALUES (%s, %s, now() + %s::interval)",
                     (f"https://{len(name)}.example/{name}", name, next_in))
    conn.commit()


def _run(settings, run_key, poll: dict, caplog):
    ingest.begin_run(settings, run_key, "manual")
    results = [{"stage": "sync", "counts": {}}, [{"stage": "poll", "counts": poll, "errors": {}}],
               {"stage": "fetch", "counts": {}}, [], [], {"stage": "cluster", "counts": {}}]
    with caplog.at_level(logging.INFO, logger="pipeline.tasks"):
        return tasks.summarise(run_key, results, [])


def test_no_feed_due_says_when_the_next_is_and_which(env, conn, caplog):
    _feeds(conn, ("Later", "3 hours"), ("Demo Outlet", "12 minutes 20 seconds"), ("Off", "-1 hour"))
    conn.execute("UPDATE feeds SET enabled = false, disabled_reason = 'paused' WHERE name = 'Off'")
    conn.commit()
    out = _run(env, "manual__1", {}, caplog)
    expected = ("no feed was due: the next poll is due in 12 min (Demo Outlet); trigger again after that or "
                "wait for the schedule")
    assert out["polling"] == expected
    assert expected in caplog.text and "nothing new" in caplog.text
    details = conn.execute("SELECT details->>'polling' FROM ingest_runs WHERE run_key = 'manual__1'").fetchone()[0]
    assert details == expected


def test_feeds_polled_but_nothing_new_says_what_they_answered(env, conn, caplog):
    _feeds(conn, ("A", "30 minutes"), ("B", "30 minutes"), ("C", "30 minutes"))
    out = _run(env, "manual__2", {"polled": 3, "not_modified": 3}, caplog)
    assert out["polling"].startswith("3 feeds polled, nothing new (all not modified")
    assert "3 feeds polled, nothing new" in caplog.text


def test_a_run_with_news_has_no_note(env, conn, caplog):
    _feeds(conn, ("A", "30 minutes"))
    out = _run(env, "manual__3", {"polled": 1, "ok": 1, "new_articles": 4}, caplog)
    assert "polling" not in out and "nothing new" not in caplog.text
    assert conn.execute("SELECT details ? 'polling' FROM ingest_runs WHERE run_key = 'manual__3'").fetchone()[0] is False


def test_no_feeds_at_all(env, conn, caplog):
    out = _run(env, "manual__4", {}, caplog)
    assert "no feed is enabled" in out["polling"] and "NEWSROOM_FEEDS" in out["polling"]


def test_a_retag_run_gets_an_ingest_runs_row_with_its_counts(env, conn, monkeypatch):
    monkeypatch.setattr(ingest, "reprocess", lambda settings, **kw: {
        "extract": {"selected": 3, "extracted": 2, "failed": 1}, "cluster": {"clusters": 1},
        "tag": {"selected": 3, "tagged": 3, "failed": 0}})
    ingest.begin_run(env, "manual__1", "manual")  # an ingest run of the same id keeps its own row
    tasks.reprocess(None, ["extract", "tag"], run_id="manual__1")
    row = conn.execute("SELECT trigger, status, articles_extracted, articles_tagged, articles_failed, finished_at "
                       "FROM ingest_runs WHERE run_key = 'news_retag:manual__1'").fetchone()
    assert row[:5] == ("retag", "success", 2, 3, 1) and row[5] is not None
    assert conn.execute("SELECT trigger, finished_at FROM ingest_runs WHERE run_key = 'manual__1'").fetchone() \
        == ("manual", None)


def test_a_failed_retag_run_is_recorded_failed_with_its_reason(env, conn, monkeypatch):
    def broken(settings, **kw):
        raise RuntimeError("model exploded\nwith a traceback")

    monkeypatch.setattr(ingest, "reprocess", broken)
    with pytest.raises(RuntimeError):
        tasks.reprocess(None, ["tag"], run_id="manual__retag2")
    status, errors = conn.execute("SELECT status, errors FROM ingest_runs "
                                  "WHERE run_key = 'news_retag:manual__retag2'").fetchone()
    assert status == "failed" and "model exploded" in str(errors)


def test_arrived_last_run_means_the_last_ingest_run_not_a_retag(env, conn, monkeypatch):
    from pipeline import queries

    ingest.begin_run(env, "manual__ingest", "manual")
    conn.execute("UPDATE ingest_runs SET finished_at = now() - interval '1 hour', started_at = now() - interval '2 hours'")
    conn.commit()
    monkeypatch.setattr(ingest, "reprocess", lambda settings, **kw: {"tag": {"selected": 0}})
    tasks.reprocess(None, ["tag"], run_id="manual__later")
    start, end = queries.arrival_window(conn, "last-run")
    row = conn.execute("SELECT started_at, finished_at FROM ingest_runs WHERE run_key = 'manual__ingest'").fetchone()
    assert (start, end) == row
