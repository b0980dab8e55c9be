"""0004 on a database built by the migrations before it, with data in it: entity keys merged and
mentions re-pointed, `is_original` recomputed from the one publication time, search re-folded."""

from datetime import UTC, datetime, timedelta

import psycopg
import psycopg.sql
from sqltree import sql_before

from pipeline import store
from pipeline.text import entity_key

T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)


def _old_schema(dsn: str, tmp_path) -> None:
    root = sql_before("0004", tmp_path)
    with psycopg.connect(dsn, autocommit=True) as c:
        assert store.migrations.migrate(c, root) == ["0001_initial.sql", "0002_query_indexes.sql",
                                                     "0003_work_queue.sql"]


def _article(c, n: int, **cols) -> int:
    names = ["url", "first_url", "pipeline_version", *cols]
    query = psycopg.sql.SQL("INSERT INTO articles ({}) VALUES ({}) RETURNING id").format(
        psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, names)),
        psycopg.sql.SQL(", ").join(psycopg.sql.Placeholder() * len(names)))
    return c.execute(query, [f"http://127.0.0.1/{n}", f"http://127.0.0.1/{n}", "old", *cols.values()]).fetchone()[0]


def _entity(c, key: str, name: str, label: str, qid: str | None = None, aliases=()) -> int:
    return c.execute("INSERT INTO entities (key, name, label, wikidata_id, aliases) VALUES (%s, %s, %s, %s, %s) "
                     "RETURNING id", (key, name, label, qid, list(aliases))).fetchone()[0]


def test_0004_upgrades_a_database_with_data(empty_db_dsn, tmp_path):
    _old_schema(empty_db_dsn, tmp_path)
    with psycopg.connect(empty_db_dsn) as c:
        # Two copies of one story. Old clustering timed x by its discovery (its page had no date)
        # and made y the original; x's feed entry says it came first.
        y = _article(c, 1, published_at=T0 + timedelta(hours=1), discovered_at=T0 + timedelta(hours=1),
                     body="Sørensen spoke in Łódź.", status="tagged")
        x = _article(c, 2, feed_published_at=T0, discovered_at=T0 + timedelta(hours=5), body="Copy", status="tagged")
        alone = _article(c, 3, discovered_at=T0, title="Straße", status="tagged")
        c.execute("UPDATE articles SET cluster_id = %s, is_original = (id = %s) WHERE id IN (%s, %s)", (y, y, x, y))
        c.execute("UPDATE articles SET cluster_id = id, is_original = true WHERE id = %s", (alone,))
        # Entities as the old keys had them: label + NFKD fold (ø kept), so these were four rows.
        s1 = _entity(c, "PERSON:sørensen", "Sørensen", "PERSON")
        s2 = _entity(c, "PERSON:sorensen", "Sorensen", "PERSON", aliases=["Mr Sorensen"])
        gpe = _entity(c, "GPE:afrin", "Afrin", "GPE")
        loc = _entity(c, "LOC:afrin", "Afrin", "LOC", aliases=["AFRIN"])
        erdogan = _entity(c, "Q39259", "Recep Tayyip Erdoğan", "PERSON", "Q39259", aliases=["Erdoğan"])
        mentions = [(y, 0, 8, s1, "Sørensen", "PERSON"), (x, 0, 8, s2, "Sorensen", "PERSON"),
                    (y, 10, 15, gpe, "Afrin", "GPE"), (x, 10, 15, loc, "Afrin", "LOC"),
                    (alone, 10, 15, loc, "AFRIN", "LOC"), (alone, 20, 27, erdogan, "Erdoğan", "PERSON")]
        c.cursor().executemany("INSERT INTO article_entities (article_id, start_char, end_char, entity_id, surface, "
                               "label, model_version) VALUES (%s, %s, %s, %s, %s, %s, 'm')", mentions)

    with psycopg.connect(empty_db_dsn, autocommit=True) as c:
        assert store.migrations.migrate(c)[0] == "0004_fold_and_publication_time.sql"  # and any after it

    with psycopg.connect(empty_db_dsn) as c:
        assert c.execute("SELECT id, published_effective FROM articles ORDER BY id").fetchall() == [
            (y, T0 + timedelta(hours=1)), (x, T0), (alone, T0)]
        assert dict(c.execute("SELECT id, is_original FROM articles WHERE cluster_id = %s", (y,)).fetchall()) == \
            {x: True, y: False}
        entities = {r[0]: r[1:] for r in c.execute(
            "SELECT key, id, name, label, aliases FROM entities ORDER BY id").fetchall()}
        assert entities == {
            entity_key("Sørensen"): (s1, "Sørensen", "PERSON", ["Mr Sorensen", "Sorensen"]),
            entity_key("Afrin"): (gpe, "Afrin", "LOC", ["AFRIN"]),  # most mentions say LOC
            "Q39259": (erdogan, "Recep Tayyip Erdoğan", "PERSON", ["Erdoğan"]),
        }
        assert sorted(c.execute("SELECT entity_id, count(*) FROM article_entities GROUP BY 1").fetchall()) == \
            sorted([(s1, 2), (gpe, 3), (erdogan, 1)])
        assert c.execute("SELECT array_agg(label ORDER BY article_id) FROM article_entities WHERE entity_id = %s",
                         (gpe,)).fetchone()[0] == ["GPE", "LOC", "LOC"]  # each mention keeps its own label
        for query, want in [("Sorensen", y), ("Lodz", y), ("strasse", alone)]:
            assert c.execute("SELECT array_agg(id) FROM articles WHERE search @@ "
                             "websearch_to_tsquery(newsroom_ts_config(language), newsroom_fold(%s))", (query,)).fetchone()[0] == [want]
        # The views were re-created over the new column.
        assert c.execute("SELECT published_at FROM v_articles WHERE id = %s", (x,)).fetchone()[0] == T0
