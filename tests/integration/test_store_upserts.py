"""Every write in `store` is an upsert: the same write twice leaves one row."""

from datetime import UTC, datetime, timedelta

import pytest

from pipeline import ingest, store
from pipeline.records import (
    Extraction,
    FeedEntry,
    FeedSpec,
    Mention,
    PollResult,
    RawPage,
    TopicDef,
    TopicTag,
)
from pipeline.text import entity_key

T0 = datetime(2019, 10, 1, 12, 0, tzinfo=UTC)


def _feed(conn, url="http://127.0.0.1/feed.xml", name="Feed"):
    store.feeds.upsert_feeds(conn, [FeedSpec(url=url, name=name)], disable_missing=False)
    return conn.execute("SELECT id FROM feeds WHERE url = %s", (url,)).fetchone()[0]


def _entry(n, **kw):
    return FeedEntry(url=f"http://127.0.0.1/a/{n}", entry_url=f"http://127.0.0.1/a/{n}?utm_source=x",
                     guid=kw.pop("guid", f"guid-{n}"), title=f"Title {n}", published=T0, **kw)


def test_upsert_feeds_twice_is_one_row_and_missing_feeds_are_disabled(conn):
    specs = [FeedSpec(url="http://127.0.0.1/a.xml", name="A", tags=("world",)),
             FeedSpec(url="http://127.0.0.1/b.xml", name="B", poll_interval=600)]
    assert store.feeds.upsert_feeds(conn, specs)["inserted"] == 2
    again = store.feeds.upsert_feeds(conn, specs)
    assert again["inserted"] == 0 and again["unchanged"] == 2
    assert store.db.count_rows(conn, "feeds") == 2
    renamed = store.feeds.upsert_feeds(conn, [FeedSpec(url="http://127.0.0.1/a.xml", name="A2")])
    assert renamed == {"inserted": 0, "updated": 1, "disabled": 1, "unchanged": 0}
    rows = dict(conn.execute("SELECT url, enabled FROM feeds").fetchall())
    assert rows == {"http://127.0.0.1/a.xml": True, "http://127.0.0.1/b.xml": False}
    # back in the file: enabled again, history kept
    store.feeds.upsert_feeds(conn, specs)
    assert conn.execute("SELECT bool_and(enabled) FROM feeds").fetchone()[0]


def test_entries_twice_are_one_article_and_two_feeds_are_two_sources(conn):
    f1, f2 = _feed(conn, "http://127.0.0.1/1.xml"), _feed(conn, "http://127.0.0.1/2.xml")
    assert len(store.feeds.upsert_entries(conn, f1, [_entry(1), _entry(2)])) == 2
    assert store.feeds.upsert_entries(conn, f1, [_entry(1), _entry(2)]) == []
    assert store.feeds.upsert_entries(conn, f2, [_entry(1, guid="other-feed-guid")]) == []
    assert store.db.count_rows(conn, "articles") == 2
    assert store.db.count_rows(conn, "article_sources") == 3


def test_same_guid_with_a_new_url_is_the_same_article(conn):
    f1 = _feed(conn)
    [aid] = store.feeds.upsert_entries(conn, f1, [_entry(1)])
    moved = FeedEntry(url="http://127.0.0.1/a/1-updated-slug", entry_url="http://127.0.0.1/a/1-updated-slug",
                      guid="guid-1", title="Title 1 (updated)")
    assert store.feeds.upsert_entries(conn, f1, [moved]) == []
    assert store.db.count_rows(conn, "articles") == 1


def test_record_poll_twice_is_one_poll_row(conn):
    fid = _feed(conn)
    result = PollResult(feed_id=fid, started_at=T0, finished_at=T0 + timedelta(seconds=1), outcome="ok",
                        http_status=200, entries=(_entry(1),), etag='"v1"', last_modified="Tue, 01 Oct 2019 12:00:00 GMT")
    assert len(store.feeds.record_poll(conn, result, default_interval=1800)) == 1
    assert store.feeds.record_poll(conn, result, default_interval=1800) == []
    assert store.db.count_rows(conn, "feed_polls") == 1
    row = conn.execute("SELECT etag, last_status, consecutive_failures, last_new_article_at FROM feeds").fetchone()
    assert row[:3] == ('"v1"', "ok", 0) and row[3] is not None


def test_failed_poll_keeps_validators_and_counts_failures(conn):
    fid = _feed(conn)
    ok = PollResult(feed_id=fid, started_at=T0, finished_at=T0, outcome="ok", http_status=200, etag='"v1"')
    store.feeds.record_poll(conn, ok, default_interval=1800)
    for i in range(1, 3):
        bad = PollResult(feed_id=fid, started_at=T0 + timedelta(hours=i), finished_at=T0 + timedelta(hours=i),
                         outcome="error", http_status=503, error_class="http_5xx", error_message="503 Service Unavailable",
                         transient=True)
        store.feeds.record_poll(conn, bad, default_interval=1800)
    row = conn.execute("SELECT etag, last_status, consecutive_failures, last_error_class, last_error FROM feeds").fetchone()
    assert row == ('"v1"', "error", 2, "http_5xx", "503 Service Unavailable")


def test_store_page_twice_is_one_page_and_roundtrips(conn):
    fid = _feed(conn)
    [aid] = store.feeds.upsert_entries(conn, fid, [_entry(1)])
    page = RawPage(article_id=aid, http_status=200, final_url="http://127.0.0.1/a/1", html="<p>hé\x00llo</p>",
                   content_type="text/html", charset="utf-8", headers={"etag": '"x"'})
    store.articles.store_page(conn, page)
    store.articles.store_page(conn, page)
    assert store.db.count_rows(conn, "raw_pages") == 1
    assert ingest.page_text(store.articles.load_page(conn, aid)) == "<p>héllo</p>"
    assert conn.execute("SELECT status FROM articles WHERE id = %s", (aid,)).fetchone()[0] == "fetched"


def test_extraction_mentions_and_topics_twice_are_one_set(conn):
    fid = _feed(conn)
    [aid] = store.feeds.upsert_entries(conn, fid, [_entry(1)])
    text = "Recep Tayyip Erdoğan said Turkey would buy the S-400. Erdogan repeated it."
    store.articles.save_extraction(conn, aid, Extraction(text=text, title="T", word_count=12, content_hash="h"))
    mentions = [
        Mention(start=0, end=20, surface="Recep Tayyip Erdoğan", label="PERSON", canonical="Recep Tayyip Erdoğan",
                wikidata_id="Q39259"),
        Mention(start=48, end=53, surface="S-400", label="WEAPON", canonical="S-400"),
        Mention(start=55, end=62, surface="Erdogan", label="PERSON", canonical="Recep Tayyip Erdoğan",
                wikidata_id="Q39259"),
    ]
    assert store.annotations.replace_mentions(conn, aid, mentions, "m1") == 3
    assert store.annotations.replace_mentions(conn, aid, mentions, "m1") == 3
    assert store.db.count_rows(conn, "article_entities") == 3
    assert store.db.count_rows(conn, "entities") == 2
    aliases = conn.execute("SELECT aliases FROM entities WHERE wikidata_id = 'Q39259'").fetchone()[0]
    assert aliases == ["Erdogan"]
    ids = store.annotations.upsert_topics(conn, [TopicDef(slug="s400-f35-dispute", name="S-400", rules_version="r1")])
    assert store.annotations.upsert_topics(conn, [TopicDef(slug="s400-f35-dispute", name="S-400", rules_version="r1")]) == ids
    tags = [TopicTag(slug="s400-f35-dispute", score=3.5, evidence={"terms": ["S-400"]})]
    store.annotations.replace_topics(conn, aid, tags, "r1", ids)
    store.annotations.replace_topics(conn, aid, tags, "r1", ids)
    assert store.db.count_rows(conn, "topics") == 1
    assert store.db.count_rows(conn, "article_topics") == 1
    store.articles.mark_tagged(conn, aid, nlp_version="m1", rules_version="r1")
    assert conn.execute("SELECT status FROM articles").fetchone()[0] == "tagged"


def test_runs_twice_are_one_row(conn):
    rid = store.runs.start_run(conn, "manual__1", "cli")
    assert store.runs.start_run(conn, "manual__1", "cli") == rid
    store.runs.finish_run(conn, "manual__1", status="success", counts={"feeds_ok": 3, "articles_new": 5},
                     durations={"poll": 1.5})
    store.runs.finish_run(conn, "manual__1", status="success", counts={"feeds_ok": 3, "articles_new": 5})
    assert store.db.count_rows(conn, "ingest_runs") == 1
    assert conn.execute("SELECT feeds_ok, articles_new, status FROM ingest_runs").fetchone() == (3, 5, "success")
    with pytest.raises(ValueError):
        store.runs.finish_run(conn, "manual__1", status="success", counts={"bogus": 1})


def test_nul_characters_are_stripped(conn):
    fid = _feed(conn)
    e = FeedEntry(url="http://127.0.0.1/nul", entry_url="http://127.0.0.1/nul", guid="g\x00", title="a\x00b",
                  summary="\x00")
    store.feeds.upsert_entries(conn, fid, [e])
    assert conn.execute("SELECT title, guid FROM articles").fetchone() == ("ab", "g")


def test_full_text_search_column(conn):
    fid = _feed(conn)
    [aid] = store.feeds.upsert_entries(conn, fid, [_entry(1)])
    store.articles.save_extraction(conn, aid, Extraction(text="Turkey received the S-400 batteries from Russia.", word_count=7,
                                                         language="en"))
    hit = conn.execute("SELECT id FROM articles WHERE search @@ websearch_to_tsquery('english', 'batteries russia')").fetchall()
    assert hit == [(aid,)]
    # stemmed in its language (0008): without one, `simple` (no stemming, no stop words)
    store.articles.save_extraction(conn, aid, Extraction(text="Turkey received the S-400 batteries from Russia.", word_count=7))
    assert conn.execute("SELECT id FROM articles WHERE search @@ websearch_to_tsquery('simple', 'batteries the')").fetchall() == [(aid,)]


def test_entity_keys_fold_case_and_accents():
    assert entity_key("Ahmet Davutoğlu") == entity_key("ahmet  DAVUTOGLU")
    assert entity_key("X", "Q1") == "Q1"


def test_an_entity_relabelled_by_the_gazetteer_follows_it(conn):
    store.annotations.upsert_entities(conn, [Mention(start=0, end=5, surface="Idlib", label="GPE", canonical="Idlib",
                                         wikidata_id="Q188863")])
    store.annotations.upsert_entities(conn, [Mention(start=0, end=5, surface="Idlib", label="LOC", canonical="Idlib Province",
                                         wikidata_id="Q188863")])
    assert conn.execute("SELECT name, label FROM entities").fetchall() == [("Idlib Province", "LOC")]


def test_search_folds_accents_both_ways(conn):
    fid = _feed(conn)
    [a, b] = store.feeds.upsert_entries(conn, fid, [_entry(1), _entry(2)])
    store.articles.save_extraction(conn, a, Extraction(text="Recep Tayyip Erdoğan met Çavuşoğlu in Ankara.", word_count=7))
    store.articles.save_extraction(conn, b, Extraction(text="Erdogan spoke to reporters in Istanbul.", word_count=6))
    for typed in ("Erdogan", "Erdoğan", "erdoğan"):
        hits = conn.execute("SELECT id FROM articles WHERE search @@ websearch_to_tsquery('english', newsroom_fold(%s))"
                            " ORDER BY id", (typed,)).fetchall()
        assert hits == [(a,), (b,)], typed
    assert conn.execute("SELECT newsroom_fold('Çavuşoğlu İdlib Maarrat al-Nu''mān')").fetchone()[0] == \
        "Cavusoglu Idlib Maarrat al-Nu'man"
