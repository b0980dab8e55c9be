"""pipeline/queries.py against a real database: search, topic volumes, entities, article detail,
bad input and unknown names."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
from test_views import build_corpus

from pipeline import queries
from pipeline.errors import ConfigError, NotFound, UserInputError
from pipeline.periods import Bucket, bucket_start


@pytest.fixture
def corpus(conn):
    return build_corpus(conn)


# --- parse_since (pure) ---------------------------------------------------------------------

NOW = datetime(2019, 10, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", NOW - timedelta(days=7)),
    ("24h", NOW - timedelta(hours=24)),
    ("2w", NOW - timedelta(weeks=2)),
    ("30d", NOW - timedelta(days=30)),
    ("90m", NOW - timedelta(minutes=90)),
    (" 7D ", NOW - timedelta(days=7)),
    ("2019-10-01", datetime(2019, 10, 1, tzinfo=UTC)),
    ("2019-10-01T06:30", datetime(2019, 10, 1, 6, 30, tzinfo=UTC)),
    ("2019-10-01 06:30", datetime(2019, 10, 1, 6, 30, tzinfo=UTC)),
    ("2019-10-01T06:30:00+03:00", datetime(2019, 10, 1, 3, 30, tzinfo=UTC)),
    ("today", datetime(NOW.year, NOW.month, NOW.day, tzinfo=UTC)),
    ("Yesterday", datetime(NOW.year, NOW.month, NOW.day, tzinfo=UTC) - timedelta(days=1)),
])
def test_parse_since_accepts_durations_dates_and_datetimes(text, expected):
    got = queries.parse_since(text, now=NOW)
    assert got == expected and got.tzinfo is not None


@pytest.mark.parametrize("text", ["", "   ", "tomorrow", "7", "d7", "-7d", "0d", "7 days ago", "2019-13-01",
                                  "2019-10-01; DROP TABLE articles", "2020-01-01"])
def test_parse_since_rejects_bad_input_with_a_clear_message(text):
    with pytest.raises(UserInputError) as exc:
        queries.parse_since(text, now=NOW)
    assert "--since" in str(exc.value)
    assert isinstance(exc.value, ConfigError)  # the CLI exits 2 for it


def test_parse_since_takes_naive_datetimes_as_utc():
    assert queries.parse_since(datetime(2019, 10, 1), now=NOW) == datetime(2019, 10, 1, tzinfo=UTC)


# --- search ---------------------------------------------------------------------------------

def test_search_ranks_title_and_repeated_matches_first_with_a_highlighted_snippet(conn, corpus):
    rows = queries.search(conn, "S-400")
    ids = [r["id"] for r in rows]
    # a1/a3 say S-400 in the title and three times in the body; a2 once; a5 once and is 40 days old
    assert set(ids) == {corpus.ids[k] for k in ("a1", "a2", "a3", "a5")}
    assert set(ids[:2]) == {corpus.ids["a1"], corpus.ids["a3"]}
    assert ids.index(corpus.ids["a5"]) > ids.index(corpus.ids["a1"])
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    top = rows[0]
    assert set(top) >= {"id", "title", "url", "outlet", "published_at", "rank", "score", "snippet", "topics"}
    assert "<b>" in top["snippet"] and top["topics"][0] == "s400-f35-dispute"
    sanctions = queries.search(conn, "sanctions")
    assert "<b>sanctions</b>" in sanctions[0]["snippet"]


def test_search_score_discounts_text_rank_by_age(conn, corpus):
    rows = {r["id"]: r for r in queries.search(conn, "Erdoğan Putin")}
    a2, a5 = corpus.ids["a2"], corpus.ids["a5"]
    assert a5 not in rows  # no Erdoğan in a5
    assert all(0 < r["score"] <= r["rank"] for r in rows.values())
    assert rows[a2]["score"] > rows[a2]["rank"] * 0.9  # two days old: barely discounted


def test_search_prefers_the_newer_of_two_equal_texts(conn, corpus):
    from test_views import ARTICLES

    from pipeline import store
    from pipeline.records import Extraction, FeedEntry

    a4 = next(a for a in ARTICLES if a.key == "a4")  # ten days old
    [new] = store.feeds.upsert_entries(conn, corpus.feeds["tass"], [FeedEntry(
        url="http://127.0.0.1/news/a4-again", entry_url="http://127.0.0.1/news/a4-again", title=a4.title)])
    store.articles.save_extraction(conn, new, Extraction(text=a4.text, title=a4.title, published_at=corpus.now,
                                                published_source="page", word_count=40, language="en"))
    rows = queries.search(conn, "shelling civilians")
    assert [r["id"] for r in rows][:2] == [new, corpus.ids["a4"]]  # (a2 "shelled" further down)
    assert rows[0]["rank"] == rows[1]["rank"] and rows[0]["score"] > rows[1]["score"]


def test_search_web_syntax_phrases_and_exclusions(conn, corpus):
    assert [r["id"] for r in queries.search(conn, '"southern Idlib"')] == [corpus.ids["a4"]]
    ids = {r["id"] for r in queries.search(conn, "Idlib -Putin")}
    assert ids == {corpus.ids["a4"]}
    ids = {r["id"] for r in queries.search(conn, "heatwave or Sochi")}
    assert ids == {corpus.ids["a6"], corpus.ids["a2"]}


def test_search_filters_topic_entity_since_and_limit(conn, corpus):
    assert [r["id"] for r in queries.search(conn, "Erdoğan", topic="idlib-conflict")] == [corpus.ids["a2"]]
    assert [r["id"] for r in queries.search(conn, "Idlib", entity="Bashar al-Assad")] == [corpus.ids["a4"]]
    # entity by alias, any case, and by Wikidata id
    assert {r["id"] for r in queries.search(conn, "Idlib", entity="erdoğan")} == {corpus.ids["a2"]}
    assert {r["id"] for r in queries.search(conn, "Idlib", entity="Q39259")} == {corpus.ids["a2"]}
    assert [r["id"] for r in queries.search(conn, "Idlib", since=corpus.now - timedelta(days=5))] == [corpus.ids["a2"]]
    assert len(queries.search(conn, "S-400", limit=2)) == 2
    # topic by display name too
    assert [r["id"] for r in queries.search(conn, "Erdoğan", topic="Fighting in Idlib")] == [corpus.ids["a2"]]


def test_sql_looking_input_is_just_searched_for(conn, corpus):
    rows = queries.search(conn, "'; DROP TABLE articles; --")
    assert [r["id"] for r in rows] == [corpus.ids["a6"]]  # the prankster's whiteboard
    assert "<b>DROP</b> <b>TABLE</b> <b>articles</b>" in rows[0]["snippet"]
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 7
    # the same in every filter: unknown names, not SQL
    with pytest.raises(NotFound):
        queries.search(conn, "Idlib", topic="x' OR '1'='1")
    with pytest.raises(NotFound, match="unknown entity"):
        queries.search(conn, "Idlib", entity="%' OR 1=1 --")
    for weird in ('"unclosed', "a & | ! b", ":*", "(((", "\\", "S-400 <-> F-35"):
        queries.search(conn, weird)  # websearch syntax never raises


def test_search_without_lexemes_matches_nothing_and_empty_text_is_an_error(conn, corpus):
    assert queries.search(conn, "the and of") == []
    assert queries.search(conn, "zeppelin") == []
    with pytest.raises(UserInputError, match="empty"):
        queries.search(conn, "   ")
    with pytest.raises(UserInputError, match="limit"):
        queries.search(conn, "Idlib", limit=0)
    with pytest.raises(UserInputError, match="limit"):
        queries.search(conn, "Idlib", limit=10_000)


def test_unknown_topic_and_entity_name_what_exists(conn, corpus):
    with pytest.raises(NotFound) as exc:
        queries.search(conn, "Idlib", topic="idlib")
    assert "unknown topic 'idlib'" in str(exc.value) and "idlib-conflict" in str(exc.value)
    with pytest.raises(NotFound) as exc:
        queries.search(conn, "Idlib", entity="Bashar")
    assert "Bashar al-Assad" in str(exc.value)  # a suggestion
    with pytest.raises(NotFound, match="no entities with label 'TANK'"):
        queries.top_entities(conn, label="tank")


# --- topics ---------------------------------------------------------------------------------

def test_topic_volumes_compare_with_the_previous_period(conn, corpus):
    week = {r["slug"]: r for r in queries.topic_volumes(conn, corpus.now - timedelta(days=7))}
    assert set(week) == {"s400-f35-dispute", "idlib-conflict", "syria-war", "russia-turkey-defence-cooperation",
                         "us-turkey-relations", "arms-trade"}  # every topic, even without articles
    s400 = week["s400-f35-dispute"]
    assert (s400["articles"], s400["originals"], s400["previous"], s400["trend"]) == (2, 1, 0, "new")
    assert s400["change"] == 2 and s400["change_pct"] is None
    idlib = week["idlib-conflict"]  # a2 this week, a4 ten days ago
    assert (idlib["articles"], idlib["previous"], idlib["trend"], idlib["change_pct"]) == (1, 1, "flat", 0.0)
    assert week["arms-trade"]["trend"] == "flat" and week["arms-trade"]["articles"] == 0
    rows = queries.topic_volumes(conn, corpus.now - timedelta(days=7))
    assert rows[0]["slug"] in ("s400-f35-dispute", "russia-turkey-defence-cooperation")  # busiest first

    month = {r["slug"]: r for r in queries.topic_volumes(conn, corpus.now - timedelta(days=30))}
    assert (month["s400-f35-dispute"]["articles"], month["s400-f35-dispute"]["previous"]) == (2, 1)
    assert month["s400-f35-dispute"]["trend"] == "up" and month["s400-f35-dispute"]["change_pct"] == 100.0
    assert month["us-turkey-relations"]["trend"] == "down"  # a5 only, 40 days ago


def test_topic_volumes_window_and_bad_periods(conn, corpus):
    until = corpus.now - timedelta(days=7)
    got = {r["slug"]: r["articles"] for r in queries.topic_volumes(conn, until - timedelta(days=7), until=until)}
    assert got["idlib-conflict"] == 1 and got["s400-f35-dispute"] == 0
    with pytest.raises(UserInputError, match="period is empty"):
        queries.topic_volumes(conn, corpus.now + timedelta(days=1))


def test_topic_timeline_is_per_utc_day_by_default(conn, corpus):
    rows = queries.topic_timeline(conn, corpus.now - timedelta(days=30), topic="syria-war")
    assert [(r["bucket"], r["articles"]) for r in rows] == sorted(
        [(bucket_start(corpus.published["a4"], Bucket.DAY), 1), (bucket_start(corpus.published["a2"], Bucket.DAY), 1)])
    assert all(r["bucket"].tzinfo is UTC and r["bucket"].time() == time() for r in rows)


@pytest.mark.parametrize("bucket", list(Bucket))
def test_topic_timeline_by_week_and_month_counts_each_bucket_once(conn, corpus, bucket):
    since = corpus.now - timedelta(days=60)
    rows = queries.topic_timeline(conn, since, bucket=bucket)
    tagged = conn.execute("""SELECT t.slug, a.published_effective FROM articles a
                               JOIN article_topics at ON at.article_id = a.id JOIN topics t ON t.id = at.topic_id
                              WHERE a.published_effective >= %s""", (since,)).fetchall()
    expected = Counter((bucket_start(when, bucket), slug) for slug, when in tagged)
    assert {(r["bucket"], r["slug"]): r["articles"] for r in rows} == expected
    assert [(r["bucket"], r["slug"]) for r in rows] == sorted(expected)  # by bucket, then topic
    assert queries.topic_timeline(conn, since, bucket=bucket.value) == rows  # its name will do too


def test_sql_buckets_are_the_ones_periods_computes(conn):
    # date_trunc(unit, ts, 'UTC') as topic_timeline groups, in a session far from UTC, against
    # periods.bucket_start: every 7 hours over two years (Monday midnights, month and year ends).
    conn.execute("SET TimeZone = 'Asia/Kolkata'")
    for bucket in Bucket:
        got = conn.execute("""SELECT ts, date_trunc(%s, ts, 'UTC')
                                FROM generate_series(timestamptz '2019-12-01 00:00+00',
                                                     timestamptz '2021-12-31 00:00+00', interval '7 hours') ts""",
                           (bucket.value,)).fetchall()
        assert len(got) > 2000
        assert [(ts, start) for ts, start in got if start != bucket_start(ts, bucket)] == []


# --- entities -------------------------------------------------------------------------------

def test_top_entities_by_articles_then_mentions(conn, corpus):
    rows = queries.top_entities(conn)
    top = {r["name"]: r for r in rows}
    assert rows[0]["name"] == "S-400" and (rows[0]["articles"], rows[0]["mentions"]) == (4, 8)
    assert top["Recep Tayyip Erdoğan"]["articles"] == 3 and top["Recep Tayyip Erdoğan"]["wikidata_id"] == "Q39259"
    people = queries.top_entities(conn, label="person")
    assert [r["name"] for r in people] == ["Recep Tayyip Erdoğan", "Vladimir Putin", "Bashar al-Assad"]
    in_idlib = queries.top_entities(conn, topic="idlib-conflict", label="PERSON")
    # one article each; then by mentions (two each in a2, one in a4), then by name
    assert [r["name"] for r in in_idlib] == ["Recep Tayyip Erdoğan", "Vladimir Putin", "Bashar al-Assad"]
    assert {r["articles"] for r in in_idlib} == {1}
    weapons = queries.top_entities(conn, label="WEAPON", since=corpus.now - timedelta(days=7))
    assert [(r["name"], r["articles"]) for r in weapons] == [("S-400", 3), ("F-35", 2)]
    assert len(queries.top_entities(conn, limit=2)) == 2
    assert queries.top_entities(conn, topic="arms-trade") == []


def test_top_entities_by_topic_is_top_entities_per_topic(conn, corpus):
    for since, limit in ((corpus.now - timedelta(days=365), 8), (corpus.now - timedelta(days=7), 2)):
        by_topic = queries.top_entities_by_topic(conn, since, until=corpus.now, limit=limit)
        assert by_topic  # the corpus has tagged articles with mentions
        for t in queries.topic_volumes(conn, since, until=corpus.now):
            assert by_topic.get(t["slug"], []) == queries.top_entities(
                conn, topic=t["slug"], since=since, until=corpus.now, limit=limit), t["slug"]
        with_overall = queries.top_entities_by_topic(conn, since, until=corpus.now, limit=limit, overall=limit + 1)
        assert with_overall.pop(None) == queries.top_entities(conn, since=since, until=corpus.now, limit=limit + 1)
        assert with_overall == by_topic
    assert queries.top_entities_by_topic(conn, corpus.now + timedelta(days=1), until=corpus.now + timedelta(days=2)) == {}

def test_cooccurrence_partners_and_pairs(conn, corpus):
    partners = queries.cooccurrence(conn, entity="Idlib", label="PERSON")
    assert {r["name"] for r in partners} == {"Vladimir Putin", "Recep Tayyip Erdoğan", "Bashar al-Assad"}
    recent = queries.cooccurrence(conn, entity="Idlib", since=corpus.now - timedelta(days=5))
    assert "Bashar al-Assad" not in {r["name"] for r in recent}
    pairs = queries.cooccurrence(conn, since=corpus.now - timedelta(days=7), limit=5)
    assert pairs[0]["articles"] == 3 and len(pairs) == 5
    assert {pairs[0]["entity_a"], pairs[0]["entity_b"]} <= {"Recep Tayyip Erdoğan", "S-400", "Vladimir Putin"}


# --- one article ----------------------------------------------------------------------------

def test_article_detail_has_entities_topics_sources_and_copies(conn, corpus):
    a = queries.article(conn, corpus.ids["a3"])
    assert a["title"] == "Erdoğan: S-400 deliveries will go ahead" and a["outlet"] == "Al-Monitor"
    assert a["is_original"] is False and a["cluster_id"] == corpus.ids["a1"]
    assert [c["id"] for c in a["copies"]] == [corpus.ids["a1"]] and a["copies"][0]["is_original"] is True
    ent = {e["name"]: e for e in a["entities"]}
    assert ent["Recep Tayyip Erdoğan"]["mentions"] == 3
    assert ent["Recep Tayyip Erdoğan"]["surfaces"] == ["Erdoğan", "Recep Tayyip Erdoğan"]
    assert a["entities"][0]["mentions"] >= a["entities"][-1]["mentions"]
    tag = a["topic_tags"][0]
    assert tag["slug"] == "s400-f35-dispute" and tag["score"] == 11.2
    assert tag["evidence"]["required"][0]["matched"]  # what fired, as stored
    assert "S-400 ×3" in queries.evidence_summary(tag["evidence"])
    assert [s["feed"] for s in a["sources"]] == ["Al-Monitor"]
    assert a["sources"][0]["entry_url"].endswith("?utm_source=rss")

    two_feeds = queries.article(conn, corpus.ids["a2"])
    assert [s["feed"] for s in two_feeds["sources"]] == ["TASS", "Daily Sabah"] and two_feeds["copies"] == []
    bare = queries.article(conn, corpus.ids["a7"])  # discovered, never fetched
    assert bare["status"] == "discovered" and bare["entities"] == [] and bare["topic_tags"] == []
    assert bare["copies"] == [] and bare["summary"]


def test_article_not_found_and_bad_ids(conn, corpus):
    with pytest.raises(NotFound, match="no article with id 999999"):
        queries.article(conn, 999_999)
    for bad in (0, -1, "7", 1.5, True):
        with pytest.raises(UserInputError):
            queries.article(conn, bad)


def test_feed_health_puts_problems_first(conn, corpus):
    rows = queries.feed_health(conn)
    assert [r["status"] for r in rows] == ["failing", "silent", "new", "ok", "ok", "unlisted"]


def test_queries_on_an_empty_database(conn):
    queries.ensure_schema(conn)
    assert queries.search(conn, "Idlib") == []
    assert queries.top_entities(conn) == []
    assert queries.topic_volumes(conn, datetime.now(UTC) - timedelta(days=7)) == []
    assert queries.cooccurrence(conn) == []
    with pytest.raises(NotFound, match="no topics are defined"):
        queries.search(conn, "Idlib", topic="syria-war")
    with pytest.raises(NotFound, match="no entities are stored"):
        queries.top_entities(conn, label="PERSON")


def test_ensure_schema_points_at_migrate(empty_db_dsn):
    import psycopg

    with psycopg.connect(empty_db_dsn) as c, pytest.raises(NotFound, match="newsroom db migrate"):
        queries.ensure_schema(c)


def test_broad_searches_rank_only_the_most_recent_candidates(conn, corpus):
    # four articles say S-400; with room for one candidate, only the newest (a3) is ranked
    assert [r["id"] for r in queries.search(conn, "S-400", max_candidates=1)] == [corpus.ids["a3"]]
    assert len(queries.search(conn, "S-400", max_candidates=None)) == 4
    for bad in (0, -5, True, "10"):
        with pytest.raises(UserInputError, match="max_candidates"):
            queries.search(conn, "S-400", max_candidates=bad)


# --- articles (no search text), --until, --arrived --------------------------------------------

def test_articles_lists_a_topics_or_an_entitys_articles_newest_first(conn, corpus):
    rows = queries.articles(conn, topic="idlib-conflict")
    assert [r["id"] for r in rows] == [corpus.ids["a2"], corpus.ids["a4"]]
    assert rows[0]["topics"] == ["idlib-conflict", "syria-war"] and rows[0]["outlet"]
    assert [r["id"] for r in queries.articles(conn, entity="Bashar al-Assad")] == [corpus.ids["a4"]]
    assert len(queries.articles(conn)) == len(corpus.ids)
    assert len(queries.articles(conn, limit=2)) == 2


def test_until_bounds_publication_time_on_every_listing(conn, corpus):
    week_ago = corpus.now - timedelta(days=7)
    assert {r["id"] for r in queries.articles(conn, until=week_ago)} == \
        {corpus.ids[k] for k in ("a4", "a5", "a6")}
    assert {r["id"] for r in queries.search(conn, "S-400", until=week_ago)} == {corpus.ids["a5"]}
    both = queries.articles(conn, since=corpus.now - timedelta(days=30), until=week_ago)
    assert {r["id"] for r in both} == {corpus.ids["a4"], corpus.ids["a6"]}
    with pytest.raises(UserInputError, match="period is empty"):
        queries.articles(conn, since=week_ago, until=week_ago - timedelta(days=1))
    assert queries.parse_when("7d", option="--until", now=NOW) == NOW - timedelta(days=7)
    with pytest.raises(UserInputError, match="--until"):
        queries.parse_when("next week", option="--until", now=NOW)


def test_arrived_asks_by_discovery_time_and_last_run_by_the_latest_finished_run(conn, corpus):
    # Everything was discovered long ago except a2 and a4, which the latest run brought in.
    conn.execute("UPDATE articles SET discovered_at = now() - interval '30 days'")
    conn.execute("UPDATE articles SET discovered_at = now() - interval '5 minutes' WHERE id = ANY(%s)",
                 ([corpus.ids["a2"], corpus.ids["a4"]],))
    conn.execute("""INSERT INTO ingest_runs (run_key, trigger, status, started_at, finished_at) VALUES
                    ('old', 'cli', 'success', now() - interval '31 days', now() - interval '30 days' + interval '1 minute'),
                    ('new', 'cli', 'success', now() - interval '6 minutes', now() - interval '4 minutes'),
                    ('running', 'cli', 'running', now() - interval '1 minute', NULL)""")
    window = queries.arrival_window(conn, "last-run")
    got = queries.articles(conn, arrived=window)
    assert {r["id"] for r in got} == {corpus.ids["a2"], corpus.ids["a4"]}
    assert got[0]["discovered_at"] >= got[1]["discovered_at"]  # newest discovered first
    assert {r["id"] for r in queries.search(conn, "Idlib", arrived=window)} == {corpus.ids["a2"], corpus.ids["a4"]}
    today = queries.arrival_window(conn, "24h")
    assert today[1] is None and {r["id"] for r in queries.articles(conn, arrived=today)} == \
        {corpus.ids["a2"], corpus.ids["a4"]}
    # combined with a publication window: a4 was published ten days ago
    assert [r["id"] for r in queries.articles(conn, arrived=window, since=corpus.now - timedelta(days=7))] == \
        [corpus.ids["a2"]]


def test_arrived_last_run_without_any_finished_run_says_so(conn, corpus):
    with pytest.raises(NotFound, match="no ingest run has finished yet"):
        queries.arrival_window(conn, "last-run")
    with pytest.raises(UserInputError, match="--arrived"):
        queries.arrival_window(conn, "the other day")
