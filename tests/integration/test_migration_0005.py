"""0005 on a database built by the migrations before it: entities stored under a wrong Wikidata
id (the gazetteer had one for Erdoğan) move to the right one, merging into it when it is stored too; a database
with nothing to fix is left as it was; the look-up indexes cover the rows already there."""


import psycopg
import pytest
from sqltree import sql_before

from pipeline import queries, store

OLD, NEW = "Q39723", "Q39259"  # wikidata: superseded (Q39723 is the gazetteer's old, wrong id)


def _old_schema(dsn: str, tmp_path) -> None:
    root = sql_before("0005", tmp_path)
    with psycopg.connect(dsn, autocommit=True) as c:
        assert store.migrations.migrate(c, root)[-1] == "0004_fold_and_publication_time.sql"


def _migrate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        assert store.migrations.migrate(c)[0] == "0005_wikidata_corrections.sql"


def _article(c, n: int) -> int:
    return c.execute("INSERT INTO articles (url, first_url, pipeline_version, body, status) "
                     "VALUES (%s, %s, 'old', 'Erdoğan and Putin.', 'tagged') RETURNING id",
                     (f"http://127.0.0.1/{n}", f"http://127.0.0.1/{n}")).fetchone()[0]


def _entity(c, key: str, name: str, label: str, qid: str | None = None, aliases=()) -> int:
    return c.execute("INSERT INTO entities (key, name, label, wikidata_id, aliases) VALUES (%s, %s, %s, %s, %s) "
                     "RETURNING id", (key, name, label, qid, list(aliases))).fetchone()[0]


def _mention(c, article: int, start: int, entity: int, surface: str, label: str = "PERSON") -> None:
    c.execute("INSERT INTO article_entities (article_id, start_char, end_char, entity_id, surface, label, "
              "model_version) VALUES (%s, %s, %s, %s, %s, %s, 'm')", (article, start, start + len(surface),
                                                                       entity, surface, label))


def _snapshot(c) -> tuple[list, list]:
    return (c.execute("SELECT id, key, name, label, wikidata_id, aliases, updated_at FROM entities ORDER BY id").fetchall(),
            c.execute("SELECT article_id, start_char, end_char, entity_id, surface, label, model_version FROM article_entities ORDER BY article_id, start_char").fetchall())


@pytest.fixture
def old_db(empty_db_dsn, tmp_path) -> str:
    _old_schema(empty_db_dsn, tmp_path)
    return empty_db_dsn


def test_an_entity_under_the_wrong_id_takes_the_right_one(old_db):
    with psycopg.connect(old_db) as c:
        a, b = _article(c, 1), _article(c, 2)
        erdogan = _entity(c, OLD, "Recep Tayyip Erdoğan", "PERSON", OLD, aliases=["Erdoğan"])
        putin = _entity(c, "Q7747", "Vladimir Putin", "PERSON", "Q7747")
        _mention(c, a, 0, erdogan, "Erdoğan")
        _mention(c, b, 0, erdogan, "Erdoğan")
        _mention(c, b, 12, putin, "Putin")
        mentions_before = c.execute("SELECT article_id, start_char, end_char, entity_id, surface, label, model_version FROM article_entities ORDER BY 1, 2").fetchall()
    _migrate(old_db)
    with psycopg.connect(old_db) as c:
        assert c.execute("SELECT id, key, name, wikidata_id, aliases FROM entities ORDER BY id").fetchall() == [
            (erdogan, NEW, "Recep Tayyip Erdoğan", NEW, ["Erdoğan"]), (putin, "Q7747", "Vladimir Putin", "Q7747", [])]
        assert c.execute("SELECT article_id, start_char, end_char, entity_id, surface, label, model_version FROM article_entities ORDER BY 1, 2").fetchall() == mentions_before
        assert [r["id"] for r in queries.resolve_entity(c, NEW)] == [erdogan]
        assert [r["id"] for r in queries.resolve_entity(c, "Erdogan")] == [erdogan]  # the new index, on old rows
        assert [r["id"] for r in queries.resolve_entity(c, "Putin")] == [putin]  # and the surname one


def test_the_wrong_row_merges_into_the_right_one_when_both_are_stored(old_db):
    with psycopg.connect(old_db) as c:
        a, b = _article(c, 1), _article(c, 2)
        # The old row, from before the fix; the new one, from a tag run with the fixed gazetteer.
        wrong = _entity(c, OLD, "Recep Tayyip Erdoğan", "PERSON", OLD, aliases=["Erdogan", "Erdoğan"])
        right = _entity(c, NEW, "Recep Tayyip Erdoğan", "PERSON", NEW, aliases=["Erdoğan", "Tayyip Erdoğan"])
        other = _entity(c, "name:idlib", "Idlib", "GPE")
        _mention(c, a, 0, wrong, "Erdogan")
        _mention(c, a, 20, other, "Idlib", "GPE")
        _mention(c, b, 0, right, "Erdoğan")
        _mention(c, b, 10, wrong, "Erdoğan")
    _migrate(old_db)
    with psycopg.connect(old_db) as c:
        assert c.execute("SELECT id, key, wikidata_id, name, label, aliases FROM entities ORDER BY id").fetchall() == [
            (right, NEW, NEW, "Recep Tayyip Erdoğan", "PERSON", ["Erdogan", "Erdoğan", "Tayyip Erdoğan"]),
            (other, "name:idlib", None, "Idlib", "GPE", [])]
        assert c.execute("SELECT article_id, start_char, entity_id, surface FROM article_entities "
                         "ORDER BY 1, 2").fetchall() == [
            (a, 0, right, "Erdogan"), (a, 20, other, "Idlib"), (b, 0, right, "Erdoğan"), (b, 10, right, "Erdoğan")]


def test_a_database_with_nothing_to_fix_is_left_as_it_was(old_db):
    with psycopg.connect(old_db) as c:
        a = _article(c, 1)
        erdogan = _entity(c, NEW, "Recep Tayyip Erdoğan", "PERSON", NEW, aliases=["Erdoğan"])
        idlib = _entity(c, "name:idlib", "Idlib", "GPE", aliases=["Idleb"])
        _mention(c, a, 0, erdogan, "Erdoğan")
        _mention(c, a, 20, idlib, "Idleb", "GPE")
        before = _snapshot(c)
    _migrate(old_db)
    with psycopg.connect(old_db) as c:
        assert _snapshot(c) == before


def test_an_empty_database_migrates(old_db):
    _migrate(old_db)
    with psycopg.connect(old_db) as c:
        assert c.execute("SELECT count(*) FROM entities").fetchone()[0] == 0


def test_only_the_person_named_is_moved_not_another_use_of_the_old_id(old_db):
    # A custom gazetteer may use Q39723 for what it really is: that row is left alone.
    with psycopg.connect(old_db) as c:
        other = _entity(c, OLD, "Something Else", "ORG", OLD)
    _migrate(old_db)
    with psycopg.connect(old_db) as c:
        assert c.execute("SELECT id, key, wikidata_id FROM entities").fetchall() == [(other, OLD, OLD)]
