"""The SQL views (sql/views/*.sql) on a small corpus written through the store's own functions.

`build_corpus` is shared with test_queries, test_docs_queries and test_cli_query: six feeds in
every health state and seven articles about the S-400 dispute and Idlib, dated relative to now
so "this week" questions have answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline import store
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

RULES = "rules-test-1"
NLP = "nlp-test-1"

FEEDS = {
    "sabah": FeedSpec(url="http://127.0.0.1/sabah.xml", name="Daily Sabah", outlet="Daily Sabah"),
    "tass": FeedSpec(url="http://127.0.0.1/tass.xml", name="TASS", outlet="TASS"),
    "monitor": FeedSpec(url="http://127.0.0.1/monitor.xml", name="Al-Monitor", outlet="Al-Monitor"),
    "quiet": FeedSpec(url="http://127.0.0.1/quiet.xml", name="Quiet Times", outlet="Quiet Times"),
    "old": FeedSpec(url="http://127.0.0.1/old.xml", name="Old Feed", outlet="Old Feed"),
    "fresh": FeedSpec(url="http://127.0.0.1/fresh.xml", name="Brand New", outlet="Brand New"),
}

TOPICS = [
    TopicDef(slug="s400-f35-dispute", name="S-400 and F-35 dispute", rules_version=RULES),
    TopicDef(slug="idlib-conflict", name="Fighting in Idlib", rules_version=RULES),
    TopicDef(slug="syria-war", name="War in Syria", rules_version=RULES),
    TopicDef(slug="russia-turkey-defence-cooperation", name="Russia-Turkey defence cooperation", rules_version=RULES),
    TopicDef(slug="us-turkey-relations", name="US-Turkey relations", rules_version=RULES),
    TopicDef(slug="arms-trade", name="Arms trade", rules_version=RULES),
]

# surface -> (canonical, label, wikidata id); longer surfaces win where they overlap.
ENTITIES = {
    "Recep Tayyip Erdoğan": ("Recep Tayyip Erdoğan", "PERSON", "Q39259"),
    "Erdoğan": ("Recep Tayyip Erdoğan", "PERSON", "Q39259"),
    "Vladimir Putin": ("Vladimir Putin", "PERSON", "Q7747"),
    "Putin": ("Vladimir Putin", "PERSON", "Q7747"),
    "Bashar al-Assad": ("Bashar al-Assad", "PERSON", None),
    "S-400": ("S-400", "WEAPON", None),
    "F-35": ("F-35", "WEAPON", None),
    "Turkey": ("Turkey", "GPE", "Q43"),
    "United States": ("United States", "GPE", "Q30"),
    "Syria": ("Syria", "GPE", "Q858"),
    "Idlib": ("Idlib", "GPE", None),
    "Sochi": ("Sochi", "GPE", None),
    "Ankara": ("Ankara", "GPE", None),
    "Hayat Tahrir al-Sham": ("Hayat Tahrir al-Sham", "ORG", None),
    "Pentagon": ("Pentagon", "ORG", None),
}

S400_TEXT = (
    "Turkish President Recep Tayyip Erdoğan said on Tuesday that deliveries of the Russian S-400 air "
    "defence system would go ahead. Erdoğan told reporters in Ankara that Turkey would not bow to "
    "pressure over the S-400. The United States has warned that buying the S-400 could cost Turkey "
    "its role in the F-35 programme and bring sanctions. Erdoğan said he had discussed the purchase "
    "with Vladimir Putin by telephone. Jets of the F-35 programme built with Turkish parts are at stake.")


@dataclass
class Art:
    key: str
    feed: str
    title: str
    days_ago: float
    text: str | None = None  # None: discovered only, never fetched
    topics: dict[str, float] = field(default_factory=dict)
    also_in: tuple[str, ...] = ()
    tagged: bool = True


ARTICLES = [
    Art("a1", "sabah", "Turkey says S-400 deliveries will go ahead despite US warnings", 1.0, S400_TEXT,
        {"s400-f35-dispute": 11.2, "russia-turkey-defence-cooperation": 6.5}),
    Art("a2", "tass", "Putin and Erdoğan discuss Idlib ceasefire in Sochi", 2.0,
        "Russian President Vladimir Putin and Recep Tayyip Erdoğan met in Sochi to discuss the situation "
        "in Idlib. Putin said the ceasefire in Idlib must hold and that militants had shelled Syrian army "
        "positions. Erdoğan raised the fate of civilians fleeing Idlib towards the Turkish border. The "
        "leaders also touched on the S-400 contract.",
        {"idlib-conflict": 8.4, "syria-war": 5.0}, also_in=("sabah",)),
    # A syndicated copy of a1, published three hours later: same cluster, not the original.
    Art("a3", "monitor", "Erdoğan: S-400 deliveries will go ahead", 1.0 - 3 / 24,
        S400_TEXT + " The story was first reported by Daily Sabah.",
        {"s400-f35-dispute": 11.2, "russia-turkey-defence-cooperation": 6.5}),
    Art("a4", "tass", "Shelling in southern Idlib kills civilians", 10.0,
        "Government forces loyal to Bashar al-Assad shelled villages in southern Idlib on Sunday, killing "
        "at least twelve civilians, monitors said. Hayat Tahrir al-Sham militants fired rockets in return. "
        "Idlib is the last rebel stronghold in Syria.",
        {"idlib-conflict": 9.1, "syria-war": 7.7}),
    Art("a5", "sabah", "Pentagon sets out F-35 wind-down for Turkey", 40.0,
        "The Pentagon said it would wind down the participation of Turkey in the F-35 programme by March. "
        "Officials said the F-35 and the S-400 cannot coexist. Turkey has invested heavily in the F-35.",
        {"s400-f35-dispute": 8.0, "us-turkey-relations": 5.5}),
    Art("a6", "quiet", "Heatwave forecast for the weekend", 10.0,
        "Forecasters expect a heatwave this weekend. In an unrelated incident, a prankster wrote DROP TABLE "
        "articles on the newsroom whiteboard, editors said.", tagged=False),
    Art("a7", "sabah", "Breaking: talks continue", 3 / 24),
]


@dataclass
class Corpus:
    now: datetime
    feeds: dict[str, int]
    ids: dict[str, int]
    topics: dict[str, int]
    published: dict[str, datetime]


def mentions_in(text: str) -> list[Mention]:
    """Every occurrence of a known surface, longest first, without overlaps."""
    taken: list[tuple[int, int]] = []
    out = []
    for surface in sorted(ENTITIES, key=len, reverse=True):
        canonical, label, qid = ENTITIES[surface]
        for m in re.finditer(rf"(?<!\w){re.escape(surface)}(?!\w)", text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            out.append(Mention(start=m.start(), end=m.end(), surface=surface, label=label,
                               canonical=canonical, wikidata_id=qid))
    return sorted(out, key=lambda m: m.start)


def _evidence(slug: str, score: float, mentions: list[Mention]) -> dict:
    counts: dict[str, int] = {}
    for m in mentions:
        counts[m.canonical] = counts.get(m.canonical, 0) + 1
    matched = [{"item": f"entity:{k}", "count": n, "title": 0, "weight": 1.0, "score": round(1 + n * 0.5, 3)}
               for k, n in sorted(counts.items(), key=lambda kv: -kv[1])[:3]]
    return {"score": score, "threshold": 5.0, "rules_version": RULES,
            "required": [{"group": "core", "min_count": 1, "count": sum(m["count"] for m in matched),
                          "matched": matched, "ok": True}],
            "supporting": [{"item": "term:sanctions", "count": 1, "title": 0, "weight": 0.5, "score": 0.5}]}


def build_corpus(conn) -> Corpus:
    """Write the corpus through store.* as the pipeline would; commit; return its ids and dates."""
    now = store.db.now(conn)
    store.feeds.upsert_feeds(conn, list(FEEDS.values()))
    # Old Feed leaves the list: disabled, kept.
    store.feeds.upsert_feeds(conn, [s for k, s in FEEDS.items() if k != "old"])
    feeds = dict(zip(FEEDS, [conn.execute("SELECT id FROM feeds WHERE url = %s", (s.url,)).fetchone()[0]
                             for s in FEEDS.values()], strict=True))
    topic_ids = store.annotations.upsert_topics(conn, TOPICS)
    published = {a.key: now - timedelta(days=a.days_ago) for a in ARTICLES}

    def entry(a: Art, guid_prefix: str = "") -> FeedEntry:
        url = f"http://127.0.0.1/news/{a.key}"
        return FeedEntry(url=url, entry_url=url + "?utm_source=rss", guid=f"{guid_prefix}{a.key}", title=a.title,
                         summary=(a.text or a.title)[:80], published=published[a.key])

    def poll(feed: str, at: datetime, arts: list[Art], outcome: str = "ok", **kw) -> None:
        prefix = "" if all(x.feed == feed for x in arts) else f"{feed}-"
        store.feeds.record_poll(conn, PollResult(
            feed_id=feeds[feed], started_at=at - timedelta(seconds=2), finished_at=at, outcome=outcome,
            http_status=kw.pop("http_status", 200), entries=tuple(entry(x, prefix) for x in arts), **kw),
            default_interval=1800)
        conn.commit()  # each poll its own transaction, as in the pipeline: first_seen_at tells them apart

    by_feed = {k: [a for a in ARTICLES if a.feed == k] for k in FEEDS}
    poll("quiet", now - timedelta(days=10), by_feed["quiet"])
    poll("quiet", now - timedelta(hours=1), [], outcome="not_modified", http_status=304)  # alive, nothing new
    poll("tass", now - timedelta(hours=2), by_feed["tass"])
    poll("sabah", now - timedelta(hours=1), by_feed["sabah"] + [a for a in ARTICLES if "sabah" in a.also_in])
    poll("monitor", now - timedelta(days=1), by_feed["monitor"])
    for hours in (2, 1):  # two failures in a row since
        poll("monitor", now - timedelta(hours=hours), [], outcome="error", http_status=503,
             error_class="http_5xx", error_message="503 Service Unavailable", transient=True)
    ids = dict(conn.execute("SELECT substr(url, length('http://127.0.0.1/news/') + 1), id FROM articles").fetchall())

    for a in ARTICLES:
        if a.text is None:
            continue
        aid = ids[a.key]
        store.articles.store_page(conn, RawPage(article_id=aid, http_status=200, final_url=f"http://127.0.0.1/news/{a.key}",
                                       html=f"<html><title>{a.title}</title><body><p>{a.text}</p></body></html>",
                                       content_type="text/html", charset="utf-8"))
        store.articles.save_extraction(conn, aid, Extraction(
            text=a.text, title=a.title, language="en", published_at=published[a.key], published_source="page",
            word_count=len(a.text.split()), content_hash=f"hash-{a.key}", extractor_version="x-test"))
        if not a.tagged:
            continue
        ms = mentions_in(a.text)
        store.annotations.replace_mentions(conn, aid, ms, NLP)
        tags = [TopicTag(slug=s, score=sc, evidence=_evidence(s, sc, ms)) for s, sc in a.topics.items()]
        store.annotations.replace_topics(conn, aid, tags, RULES, topic_ids)
        store.articles.mark_tagged(conn, aid, nlp_version=NLP, rules_version=RULES)
    # Clusters: the clustering stage's own tests cover how copies are found; here a3 copies a1.
    conn.execute("UPDATE articles SET cluster_id = id, is_original = true WHERE body IS NOT NULL")
    conn.execute("UPDATE articles SET cluster_id = %s, is_original = false WHERE id = %s", (ids["a1"], ids["a3"]))
    conn.commit()
    return Corpus(now=now, feeds=feeds, ids=ids, topics=topic_ids, published=published)


def utc_day(when: datetime):
    return when.astimezone(UTC).date()


def _dicts(conn, query: str, params=None) -> list[dict]:
    cur = conn.execute(query, params)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# --- v_articles -----------------------------------------------------------------------------

def test_v_articles_has_one_row_per_article_with_sources_topics_and_entities(conn):
    c = build_corpus(conn)
    rows = {r["id"]: r for r in _dicts(conn, "SELECT * FROM v_articles")}
    assert len(rows) == len(ARTICLES)
    a1 = rows[c.ids["a1"]]
    assert a1["url"] == "http://127.0.0.1/news/a1" and a1["outlet"] == "Daily Sabah"
    assert a1["status"] == "tagged" and a1["language"] == "en" and a1["word_count"] > 50
    assert a1["topics"] == ["s400-f35-dispute", "russia-turkey-defence-cooperation"]  # best score first
    # Erdoğan x3 (three spellings, one entity), S-400 x3, then F-35 and Turkey x2, ties by name.
    assert a1["top_entities"][:4] == ["Recep Tayyip Erdoğan", "S-400", "F-35", "Turkey"]
    assert len(a1["top_entities"]) <= 10
    assert a1["published_at"] == c.published["a1"] and a1["dated_by"] == "page"
    assert a1["day"] == utc_day(c.published["a1"])
    assert (a1["cluster_id"], a1["is_original"]) == (c.ids["a1"], True)
    a3 = rows[c.ids["a3"]]
    assert (a3["cluster_id"], a3["is_original"], a3["outlet"]) == (c.ids["a1"], False, "Al-Monitor")
    # carried by two feeds: both listed, in the order they carried it
    assert rows[c.ids["a2"]]["outlets"] == ["TASS", "Daily Sabah"]
    a6 = rows[c.ids["a6"]]
    assert a6["status"] == "extracted" and a6["topics"] == [] and a6["top_entities"] == []
    # never fetched: dated by its feed entry, no language, not clustered
    a7 = rows[c.ids["a7"]]
    assert a7["status"] == "discovered" and a7["dated_by"] == "feed" and a7["published_at"] == c.published["a7"]
    assert a7["language"] is None and a7["cluster_id"] is None and a7["is_original"] is None


def test_v_articles_filters_by_topic_and_window(conn):
    c = build_corpus(conn)
    got = [r[0] for r in conn.execute(
        """SELECT id FROM v_articles WHERE 's400-f35-dispute' = ANY (topics)
             AND published_at >= now() - interval '7 days' ORDER BY published_at""")]
    assert got == [c.ids["a1"], c.ids["a3"]]


# --- v_topic_daily --------------------------------------------------------------------------

def test_v_topic_daily_counts_articles_and_originals_per_topic_day_and_outlet(conn):
    c = build_corpus(conn)
    rows = _dicts(conn, "SELECT * FROM v_topic_daily WHERE topic = 's400-f35-dispute' ORDER BY day, outlet")
    got = {(r["day"], r["outlet"]): (r["articles"], r["originals"]) for r in rows}
    assert got == {
        (utc_day(c.published["a5"]), "Daily Sabah"): (1, 1),
        (utc_day(c.published["a1"]), "Daily Sabah"): (1, 1),
        (utc_day(c.published["a3"]), "Al-Monitor"): (1, 0),  # the syndicated copy
    }
    assert {r["topic_name"] for r in rows} == {"S-400 and F-35 dispute"}
    assert all(r["feed_id"] in c.feeds.values() for r in rows)
    # every tagged article counted once per topic: totals match article_topics
    total = conn.execute("SELECT sum(articles) FROM v_topic_daily").fetchone()[0]
    assert total == conn.execute("SELECT count(*) FROM article_topics").fetchone()[0]
    # topics without articles have no rows
    assert conn.execute("SELECT count(*) FROM v_topic_daily WHERE topic = 'arms-trade'").fetchone()[0] == 0


# --- v_entity_mentions ----------------------------------------------------------------------

def test_v_entity_mentions_one_row_per_entity_and_article(conn):
    c = build_corpus(conn)
    rows = _dicts(conn, "SELECT * FROM v_entity_mentions WHERE entity = 'Recep Tayyip Erdoğan' ORDER BY article_id")
    assert [r["article_id"] for r in rows] == sorted([c.ids["a1"], c.ids["a2"], c.ids["a3"]])
    a1 = next(r for r in rows if r["article_id"] == c.ids["a1"])
    assert a1["mentions"] == 3 and a1["label"] == "PERSON" and a1["wikidata_id"] == "Q39259"
    assert a1["surfaces"] == ["Erdoğan", "Recep Tayyip Erdoğan"]
    assert a1["day"] == utc_day(c.published["a1"]) and a1["published_at"] == c.published["a1"]
    # mention counts add up to article_entities
    assert conn.execute("SELECT sum(mentions) FROM v_entity_mentions").fetchone()[0] == \
        conn.execute("SELECT count(*) FROM article_entities").fetchone()[0]
    weapons = dict(conn.execute(
        "SELECT entity, count(*) FROM v_entity_mentions WHERE label = 'WEAPON' GROUP BY entity").fetchall())
    assert weapons == {"S-400": 4, "F-35": 3}


# --- v_entity_cooccurrence and entity_cooccurrence() ----------------------------------------

def test_v_entity_cooccurrence_is_symmetric_per_day(conn):
    c = build_corpus(conn)
    partners = dict(conn.execute(
        """SELECT other, sum(articles) FROM v_entity_cooccurrence
            WHERE entity = 'Idlib' GROUP BY other""").fetchall())
    assert partners == {"Vladimir Putin": 1, "Recep Tayyip Erdoğan": 1, "Sochi": 1, "S-400": 1,
                        "Bashar al-Assad": 1, "Hayat Tahrir al-Sham": 1, "Syria": 1}
    both_ways = conn.execute(
        """SELECT count(*) FROM v_entity_cooccurrence x JOIN v_entity_cooccurrence y
             ON y.entity_id = x.other_id AND y.other_id = x.entity_id AND y.day = x.day
            AND y.articles = x.articles""").fetchone()[0]
    assert both_ways == conn.execute("SELECT count(*) FROM v_entity_cooccurrence").fetchone()[0]
    # Erdoğan and the S-400 share a1, a2 and a3; a window by day keeps the recent ones
    rows = conn.execute(
        """SELECT day, articles FROM v_entity_cooccurrence
            WHERE entity = 'S-400' AND other = 'Recep Tayyip Erdoğan' ORDER BY day""").fetchall()
    assert sum(n for _, n in rows) == 3
    assert {d for d, _ in rows} == {utc_day(c.published[k]) for k in ("a1", "a2", "a3")}


def test_entity_cooccurrence_function_applies_a_time_window(conn):
    c = build_corpus(conn)
    def pairs(*args):
        return {(r[0], r[1]): r[2] for r in conn.execute(
            f"SELECT entity_a, entity_b, articles FROM entity_cooccurrence({', '.join(['%s'] * len(args))})",  # noqa: S608 - placeholders only
            args)}
    everything = pairs()
    assert all(a != b for a, b in everything)
    ids = dict(conn.execute("SELECT name, id FROM entities").fetchall())
    assert all(ids[a] < ids[b] for a, b in everything)  # each pair once
    key = tuple(sorted(["S-400", "F-35"], key=ids.get))
    assert everything[key] == 3  # a1, a3, a5
    week = pairs(c.now - timedelta(days=7))
    assert week[key] == 2  # a5 is 40 days old
    assert pairs(c.now - timedelta(days=60), c.now - timedelta(days=7))[key] == 1
    row = conn.execute(
        "SELECT first_seen, last_seen FROM entity_cooccurrence() WHERE entity_a = %s AND entity_b = %s", key).fetchone()
    assert row == (c.published["a5"], c.published["a3"])


# --- v_feed_health --------------------------------------------------------------------------

def test_v_feed_health_status_words_match_feeds_health(conn):
    from pipeline import feeds

    c = build_corpus(conn)
    rows = {r["name"]: r for r in _dicts(conn, "SELECT * FROM v_feed_health")}
    assert {k: r["status"] for k, r in rows.items()} == {
        "Daily Sabah": "ok", "TASS": "ok", "Al-Monitor": "failing", "Quiet Times": "silent",
        "Old Feed": "unlisted", "Brand New": "new"}
    # the same word as pipeline/feeds.py:health gives for every feed
    now = store.db.now(conn)
    for r in store.feeds.feed_health(conn):
        assert rows[r["name"]]["status"] == feeds.health(r, now), r["name"]
    mon = rows["Al-Monitor"]
    assert mon["failure_streak"] == 2 and mon["last_error_class"] == "http_5xx"
    assert mon["last_error"] == "503 Service Unavailable" and mon["last_http_status"] == 503
    assert mon["last_success_at"] == c.now - timedelta(days=1)
    sabah = rows["Daily Sabah"]
    # a1, a5, a7 and a2 (also carried by TASS), all first seen just now
    assert sabah["articles_total"] == 4 and sabah["articles_7d"] == 4
    assert sabah["daily_7d"] == [0, 0, 0, 0, 0, 0, 4] and float(sabah["articles_per_day_7d"]) == 0.6
    assert sabah["last_error"] is None and sabah["failure_streak"] == 0
    assert rows["Brand New"]["articles_7d"] == 0 and rows["Brand New"]["daily_7d"] == [0] * 7


def test_v_feed_health_buckets_by_24_hours(conn):
    c = build_corpus(conn)
    # move TASS's sources back in time: 30 hours ago lands in the second-to-last bucket, 8 days ago
    # drops out of the week
    a2, a4 = c.ids["a2"], c.ids["a4"]
    conn.execute("UPDATE article_sources SET first_seen_at = now() - interval '30 hours' WHERE article_id = %s AND feed_id = %s",
                 (a2, c.feeds["tass"]))
    conn.execute("UPDATE article_sources SET first_seen_at = now() - interval '8 days' WHERE article_id = %s", (a4,))
    row = conn.execute("SELECT articles_total, articles_7d, daily_7d FROM v_feed_health WHERE name = 'TASS'").fetchone()
    assert row == (2, 1, [0, 0, 0, 0, 0, 1, 0])


def test_views_on_an_empty_database_return_nothing(conn):
    for view in ("v_articles", "v_topic_daily", "v_entity_mentions", "v_entity_cooccurrence", "v_feed_health"):
        assert conn.execute(f"SELECT count(*) FROM {view}").fetchone()[0] == 0, view  # noqa: S608 - constant names
    assert conn.execute("SELECT count(*) FROM entity_cooccurrence()").fetchone()[0] == 0
