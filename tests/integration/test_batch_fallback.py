"""A batch write that one item's data breaks is redone item by item: only the culprit fails."""

from datetime import UTC, datetime

from pipeline import fetch, ingest, store
from pipeline.records import FeedEntry, FeedSpec, PollResult
from pipeline.states import ErrorClass, PollOutcome


def test_one_feeds_unwritable_poll_does_not_lose_the_others(settings, conn, monkeypatch):
    urls = [f"http://127.0.0.1/f{i}.xml" for i in range(3)]
    store.feeds.upsert_feeds(conn, [FeedSpec(url=u, name=u) for u in urls])
    conn.commit()
    ids = {r[1]: r[0] for r in conn.execute("SELECT id, url FROM feeds")}

    async def polled(feeds, settings, limiter, resolve=None):
        now = datetime.now(UTC)
        for f in feeds:
            if f.url == urls[1]:  # a class the database's CHECK refuses: the batch's write fails
                yield PollResult(feed_id=f.id, started_at=now, finished_at=now, outcome=PollOutcome.ERROR,
                                 error_class="no_such_class", error_message="x", transient=True)
            else:
                entry = FeedEntry(url=f.url + "/a", entry_url=f.url + "/a", title="a")
                yield PollResult(feed_id=f.id, started_at=now, finished_at=now, outcome=PollOutcome.OK,
                                 http_status=200, entries=(entry,))

    monkeypatch.setattr(fetch, "poll_feeds", polled)
    result = ingest.poll_feeds(settings)
    assert result.counts["polled"] == 3 and result.counts["new_articles"] == 2
    assert result.errors == {ErrorClass.INTERNAL_ERROR: 1}
    rows = dict(conn.execute("SELECT id, last_error_class FROM feeds").fetchall())
    assert rows == {ids[urls[0]]: None, ids[urls[1]]: "internal_error", ids[urls[2]]: None}
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM feeds WHERE claim_token IS NOT NULL").fetchone()[0] == 0
