"""One folding rule: Python's `fold` (entity keys, name matching, topic terms) and SQL's
`newsroom_fold` (the search column, every search query) give the same answer."""

from pathlib import Path

import pytest

from pipeline import store
from pipeline.records import Mention
from pipeline.text import entity_key, fold, name_key, sql_fold_function

# Letters Unicode decomposition leaves alone, Turkish and Azerbaijani, Latin transliterations of
# Arabic and Cyrillic names (with the ayn/hamza marks and the soft-sign prime), Vietnamese stacked
# accents, the scripts themselves, and the punctuation variants copy-editors use.
NAMES = [
    "Sørensen", "Ærø", "Straße", "STRASSE", "Łódź", "Wałęsa", "Đoković", "Þórshöfn", "Hafnarfjörður",
    "Diyarbakır", "İdlib", "Erdoğan", "Şanlıurfa", "Çavuşoğlu", "İlham Əliyev", "Ħamrun",
    "Ḩalab", "Ḥamāh", "Dayr az-Zawr", "ʿAyn al-ʿArab", "Hayʾat Taḥrīr al-Shām", "Maʿarrat al-Nuʿmān",
    "Zelensʹkyi", "Zelens’kyj", "Šojgu", "Lavrov", "Dmitrij Peskov", "Oʻzbekiston",
    "Nguyễn Phú Trọng", "Ǆemal", "ﬁnance", "Ｅｒｄｏｇａｎ",
    "Шойгу", "ДЕЙР-ЭЗ-ЗОР", "Йемен", "Ёлкин", "بَشّار الأسد", "حلب", "Ἀθῆναι", "東京",
    "a\u00a0b", "´quoted´", "“Idlib”", "F‐35 – S‑400 — x−y", "O'Brien", "O’Brien",
]


def test_python_and_sql_fold_agree_on_names(conn):
    for name in NAMES:
        assert conn.execute("SELECT newsroom_fold(%s)", (name,)).fetchone()[0] == fold(name, lower=False), name


@pytest.mark.parametrize(("a", "b"), [
    ("Sørensen", "Sorensen"), ("Łódź", "Lodz"), ("Straße", "Strasse"), ("Ærø", "Aero"),
    ("Đoković", "Dokovic"), ("Diyarbakır", "Diyarbakir"), ("Erdoğan", "Erdogan"), ("Şanlıurfa", "Sanliurfa"),
    ("Ḩalab", "Halab"), ("ʿAyn al-ʿArab", "'Ayn al-'Arab"), ("Zelensʹkyi", "Zelens'kyi"), ("İlham Əliyev", "Ilham Aliyev"),
])
def test_fold_merges_spellings(a, b):
    assert fold(a) == fold(b)
    assert name_key(a) == name_key(b)
    assert entity_key(a) == entity_key(b)


KEY_CASES = NAMES + ["Σωκράτης", "ΤΣΙΠΡΑΣ", "Τσίπρας", "Foo\t", " padded  name ", "a\x85b", "x\x1fy",
                     "a\u2003b", "a\u3000b", " ", "\u0301", "\u0301\u0301 x", ""]


def test_python_and_sql_entity_keys_agree(conn):
    """Migration 0004 re-keys stored entities in SQL (newsroom_entity_key); the tagger computes keys
    in Python. They must agree, or a migrated entity would get a twin on its next mention."""
    for name in KEY_CASES:
        assert conn.execute("SELECT newsroom_entity_key(%s, NULL)", (name,)).fetchone()[0] == entity_key(name), \
            repr(name)
    assert conn.execute("SELECT newsroom_entity_key('x', 'Q1')").fetchone()[0] == entity_key("x", "Q1") == "Q1"


def test_names_that_fold_to_nothing_stay_apart():
    assert entity_key("\u0301") != entity_key("\u0301\u0301 x") != entity_key("")


def test_fold_is_idempotent():
    for name in NAMES:
        assert fold(fold(name)) == fold(name), name


def test_the_search_column_folds_both_ways(conn):
    """The deliberate fix: "Sorensen" finds "Sørensen" and the other way round (the old SQL table
    had ł but no ø, ß or æ)."""
    rows = {}
    for i, title in enumerate(["Mette Frederiksen and Sørensen meet", "Straße closed in Łódź", "Ærø ferry"]):
        rows[title] = conn.execute(
            "INSERT INTO articles (url, first_url, title, pipeline_version, language) VALUES (%s, %s, %s, 't', 'en') "
            "RETURNING id",
            (f"http://127.0.0.1/{i}", f"http://127.0.0.1/{i}", title)).fetchone()[0]
    for query, title in [("Sorensen", 0), ("Sørensen", 0), ("strasse", 1), ("Lodz", 1), ("Aero", 2)]:
        want = rows[list(rows)[title]]
        hits = [r[0] for r in conn.execute(
            "SELECT id FROM articles WHERE search @@ websearch_to_tsquery('english', newsroom_fold(%s))", (query,))]
        assert hits == [want], query


def test_the_landed_function_is_the_generated_one():
    """newsroom_fold lands as a migration generated from pipeline/text.py: the newest migration
    that defines it holds exactly what `python -m pipeline.text` prints today."""
    migrations = sorted((store.migrations.sql_dir() / "migrations").glob("*.sql"))
    newest = [p for p in migrations if "FUNCTION newsroom_fold" in p.read_text()][-1]
    assert sql_fold_function() in Path(newest).read_text(), f"{newest.name} differs from sql_fold_function()"


def test_entity_keys_survive_a_relabel(conn):
    """The deliberate fix: an entity without a Wikidata id is keyed by its folded name, so the same
    place labelled GPE in one article and LOC in the next is one entity (it keeps the label it was
    first stored with; every mention keeps its own), and so are "Sørensen" and "Sorensen"."""
    first = store.annotations.upsert_entities(conn, [Mention(start=0, end=5, surface="Afrin", label="GPE",
                                                             canonical="Afrin")])
    again = store.annotations.upsert_entities(conn, [Mention(start=0, end=5, surface="Afrin", label="LOC",
                                                             canonical="Afrin")])
    assert first == again
    assert conn.execute("SELECT count(*), min(label) FROM entities").fetchone() == (1, "GPE")
    a = store.annotations.upsert_entities(conn, [Mention(start=0, end=8, surface="Sørensen", label="PERSON",
                                                         canonical="Sørensen")])
    b = store.annotations.upsert_entities(conn, [Mention(start=0, end=8, surface="Sorensen", label="PERSON",
                                                         canonical="Sorensen")])
    assert list(a.values()) == list(b.values())
