"""Arbitrary titles, bodies and URLs go through the store and come back identical (NULs stripped)."""

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import store
from pipeline.records import Extraction, FeedEntry, FeedSpec

ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=2000)
NASTY = st.sampled_from(["'; DROP TABLE articles; --", "\x00", "\x00a\x00", "%s %(x)s {}", "\\", "\u202e",
                         "e\u0301", "🇹🇷🇷🇺", "\ufeff", "\r\n\t", "'" * 50, "$$", "--", "/*"])
TEXT = st.one_of(ANY_TEXT, NASTY, st.builds(lambda a, b: a + b, ANY_TEXT, NASTY))


def _feed(conn):
    store.feeds.upsert_feeds(conn, [FeedSpec(url="http://127.0.0.1/p.xml", name="p")], disable_missing=False)
    return conn.execute("SELECT id FROM feeds").fetchone()[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=TEXT, body=TEXT, path=TEXT, guid=TEXT, author=TEXT)
def test_arbitrary_text_round_trips(conn, title, body, path, guid, author):
    fid = _feed(conn)
    url = f"http://127.0.0.1/{uuid.uuid4().hex}/{path}"
    [aid] = store.feeds.upsert_entries(conn, fid, [FeedEntry(url=url, entry_url=url, guid=guid or None, title=title,
                                                      authors=(author,) if author else ())])
    store.articles.save_extraction(conn, aid, Extraction(text=body, title=title or None, word_count=len(body.split())))
    row = conn.execute("SELECT url, title, body, guid FROM articles WHERE id = %s", (aid,)).fetchone()
    strip = lambda s: s.replace("\x00", "")  # noqa: E731
    assert row[0] == strip(url)
    assert (row[1] or "") == strip(title)
    assert row[2] == strip(body)
    assert (row[3] or "") == strip(guid)
    conn.rollback()


def test_huge_body_round_trips_and_stays_searchable(conn):
    fid = _feed(conn)
    [aid] = store.feeds.upsert_entries(conn, fid, [FeedEntry(url="http://127.0.0.1/huge", entry_url="http://127.0.0.1/huge")])
    body = ("Ankara Moscow S-400 délivrance Москва 土耳其 " * 200_000) + "needle"
    store.articles.save_extraction(conn, aid, Extraction(text=body, word_count=1))
    assert conn.execute("SELECT length(body) FROM articles WHERE id = %s", (aid,)).fetchone()[0] == len(body)
    hit = conn.execute("SELECT count(*) FROM articles WHERE search @@ plainto_tsquery('english', 'Ankara')")
    assert hit.fetchone()[0] == 1
