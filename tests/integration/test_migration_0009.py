"""0009 on a database built by the migrations before it: the entities and mentions stored keep
every value, the new place columns and link_rule start NULL, and their CHECK constraints refuse
what pipeline/places.py would never write."""


import psycopg
import pytest
from sqltree import sql_before

from pipeline import store
from pipeline.states import LinkRule, PlaceKind


def _at_0008(dsn, tmp_path):
    root = sql_before("0009", tmp_path)
    c = psycopg.connect(dsn, autocommit=True)
    assert store.migrations.migrate(c, root)[-1] == "0008_languages.sql"
    return c


def _stored(c):
    c.execute("INSERT INTO articles (url, first_url, pipeline_version, language, title, body, status) "
              "VALUES ('http://127.0.0.1/1', 'http://127.0.0.1/1', 'old', 'en', 'Idlib', 'Clashes in Idlib "
              "and Aleppo; Erdogan spoke.', 'tagged')")
    c.execute("""INSERT INTO entities (key, name, label, wikidata_id, aliases)
                 VALUES ('name:idlib', 'Idlib', 'GPE', NULL, '{Idleb}'), ('Q41183', 'Aleppo', 'GPE', 'Q41183', '{}'),
                        ('Q39259', 'Recep Tayyip Erdoğan', 'PERSON', 'Q39259', '{Erdogan}')""")
    c.execute("""INSERT INTO article_entities (article_id, start_char, end_char, entity_id, surface, label, model_version)
                 SELECT a.id, v.s, v.e, en.id, v.surface, en.label, 'old-model'
                   FROM articles a, (VALUES (10, 15, 'Idlib', 'name:idlib'), (20, 26, 'Aleppo', 'Q41183'),
                                            (28, 35, 'Erdogan', 'Q39259')) v(s, e, surface, k)
                   JOIN entities en ON en.key = v.k""")


def test_0009_keeps_the_rows_and_adds_null_place_columns(empty_db_dsn, tmp_path):
    with _at_0008(empty_db_dsn, tmp_path) as c:
        _stored(c)
        entities = c.execute("SELECT id, key, name, label, wikidata_id, aliases, created_at, updated_at "
                             "FROM entities ORDER BY id").fetchall()
        mentions = c.execute("SELECT article_id, start_char, end_char, entity_id, surface, label, model_version "
                             "FROM article_entities ORDER BY start_char").fetchall()
        assert len(entities) == 3 and len(mentions) == 3

        assert store.migrations.migrate(c)[0] == "0009_places.sql"  # and any later ones
        assert c.execute("SELECT id, key, name, label, wikidata_id, aliases, created_at, updated_at "
                         "FROM entities ORDER BY id").fetchall() == entities
        assert c.execute("SELECT article_id, start_char, end_char, entity_id, surface, label, model_version "
                         "FROM article_entities ORDER BY start_char").fetchall() == mentions
        assert c.execute("SELECT count(*) FROM entities WHERE country IS NOT NULL OR geonames_id IS NOT NULL "
                         "OR iso_code IS NOT NULL OR place_kind IS NOT NULL").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM article_entities WHERE link_rule IS NOT NULL").fetchone()[0] == 0
        indexes = {r[0] for r in c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'entities'").fetchall()}
        assert {"entities_country_idx", "entities_geonames_idx"} <= indexes
        assert store.migrations.migrate(c) == []  # applied once


@pytest.mark.parametrize(("table", "column", "value"), [
    ("entities", "country", "sy"), ("entities", "country", "SYR"), ("entities", "country", "S"),
    ("entities", "country", ""), ("entities", "geonames_id", 0), ("entities", "geonames_id", -169389),
    ("entities", "iso_code", "SYR-1"), ("entities", "iso_code", "sy-id"), ("entities", "iso_code", "SY-"),
    ("entities", "iso_code", "SY-ABCD"), ("entities", "iso_code", "SY_ID"),
    ("entities", "place_kind", "planet"), ("entities", "place_kind", "City"), ("entities", "place_kind", ""),
    ("article_entities", "link_rule", "guess"), ("article_entities", "link_rule", "GAZETTEER"),
    ("article_entities", "link_rule", ""),
])
def test_0009_checks_refuse_bad_values(conn, table, column, value):
    _stored(conn)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(psycopg.sql.SQL("UPDATE {} SET {} = %s").format(psycopg.sql.Identifier(table),
                                                                      psycopg.sql.Identifier(column)), (value,))


def test_0009_checks_take_what_the_pipeline_writes(conn):
    _stored(conn)
    for kind in PlaceKind:
        conn.execute("UPDATE entities SET place_kind = %s WHERE key = 'name:idlib'", (kind.value,))
    for rule in LinkRule:
        conn.execute("UPDATE article_entities SET link_rule = %s", (rule.value,))
    for iso in ("SY", "SY-ID", "TR-31", "GB-ENG", "US-CA", "FR-75C"):
        conn.execute("UPDATE entities SET iso_code = %s WHERE key = 'name:idlib'", (iso,))
    conn.execute("UPDATE entities SET country = 'SY', geonames_id = 169389, iso_code = NULL, place_kind = 'city' "
                 "WHERE key = 'name:idlib'")
    conn.execute("UPDATE entities SET country = NULL, geonames_id = NULL, iso_code = NULL, place_kind = NULL "
                 "WHERE key = 'name:idlib'")  # NULL is always allowed
