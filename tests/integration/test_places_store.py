"""Places in the database: entities keep their country and ids (GeoNames, ISO 3166, Wikidata),
each mention which rule linked it; a row stored before under its name's key ("name:idlib") is
re-keyed in place to its stable key ("geonames:169389"), so old articles follow; the tag stage
and `newsroom retag` link them; `newsroom entities --country` and `newsroom article` show them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from pipeline import ingest, nlp, queries, store
from pipeline.cli import main
from pipeline.cli_query import COMMANDS
from pipeline.records import Mention
from pipeline.states import LinkRule, PlaceKind

for _command in COMMANDS:  # as test_cli_query does, should the lead not have registered them
    if _command.name not in main.commands:
        main.add_command(_command)

upsert = store.annotations.upsert_entities

IDLIB = {"key": "geonames:169389", "country": "SY", "geonames_id": 169389, "place_kind": PlaceKind.CITY}
IDLIB_GOV = {"key": "iso:SY-ID", "country": "SY", "iso_code": "SY-ID", "place_kind": PlaceKind.REGION}
ALEPPO = {"key": "Q41183", "wikidata_id": "Q41183", "country": "SY", "geonames_id": 170063,
          "place_kind": PlaceKind.CITY}
TURKEY = {"key": "Q43", "wikidata_id": "Q43", "country": "TR", "geonames_id": 298795, "iso_code": "TR",
          "place_kind": PlaceKind.COUNTRY}


def _m(surface: str, canonical: str | None = None, *, start: int = 0, label: str = "GPE", **kw) -> Mention:
    return Mention(start=start, end=start + len(surface), surface=surface, label=label,
                   canonical=canonical or surface, **kw)


def _article(conn, n: int = 1, *, status: str = "tagged", body: str | None = None, title: str = "A story") -> int:
    return conn.execute(
        """INSERT INTO articles (url, first_url, status, language, title, body, pipeline_version, published_at)
           VALUES (%s, %s, %s, 'en', %s, %s, 'test', now() - interval '1 hour') RETURNING id""",
        (f"http://127.0.0.1/a/{n}", f"http://127.0.0.1/a/{n}", status, title,
         body if body is not None else "Idlib " * 20),
    ).fetchone()[0]


def _row(conn, key: str) -> tuple | None:
    return conn.execute("SELECT key, name, label, wikidata_id, country, geonames_id, iso_code, place_kind "
                        "FROM entities WHERE key = %s", (key,)).fetchone()


def _by_id(conn, entity_id: int) -> tuple:
    return conn.execute("SELECT key, name, label, wikidata_id, country, geonames_id, iso_code, place_kind, "
                        "updated_at FROM entities WHERE id = %s", (entity_id,)).fetchone()


def _count(conn) -> int:
    return conn.execute("SELECT count(*) FROM entities").fetchone()[0]


# --- upsert_entities ----------------------------------------------------------------------------

def test_place_mentions_store_country_and_ids(conn):
    ids = upsert(conn, [_m("Idlib", **IDLIB, rule=LinkRule.GAZETTEER),
                        _m("Idlib province", "Idlib Governorate", start=10, **IDLIB_GOV),
                        _m("Turkey", start=30, **TURKEY),
                        _m("Erdogan", "Recep Tayyip Erdoğan", start=40, label="PERSON", wikidata_id="Q39259")])
    assert set(ids) == {"geonames:169389", "iso:SY-ID", "Q43", "Q39259"}
    assert _row(conn, "geonames:169389") == ("geonames:169389", "Idlib", "GPE", None, "SY", 169389, None, "city")
    assert _row(conn, "iso:SY-ID") == ("iso:SY-ID", "Idlib Governorate", "GPE", None, "SY", None, "SY-ID", "region")
    assert _row(conn, "Q43") == ("Q43", "Turkey", "GPE", "Q43", "TR", 298795, "TR", "country")
    assert _row(conn, "Q39259")[4:] == (None, None, None, None)  # not a place
    assert _count(conn) == 4


def test_changed_place_data_updates_the_row(conn):
    [first] = upsert(conn, [_m("Idlib", **IDLIB)]).values()
    changed = {**IDLIB, "geonames_id": 169388, "place_kind": PlaceKind.REGION, "iso_code": "SY-ID"}
    assert upsert(conn, [_m("Idleb", "Idlib City", label="LOC", **changed)]) == {"geonames:169389": first}
    assert _row(conn, "geonames:169389") == ("geonames:169389", "Idlib City", "LOC", None, "SY", 169388, "SY-ID",
                                             "region")
    # the place index drops a field: the row follows (no stale id left behind)
    upsert(conn, [_m("Idlib", **{**IDLIB, "geonames_id": None})])
    assert _row(conn, "geonames:169389")[1:] == ("Idlib", "GPE", None, "SY", None, None, "city")
    # a country's Wikidata id and ISO code
    upsert(conn, [_m("Turkey", **TURKEY)])
    upsert(conn, [_m("Türkiye", **{**TURKEY, "iso_code": "TR", "geonames_id": 298796})])
    assert _row(conn, "Q43")[1:] == ("Türkiye", "GPE", "Q43", "TR", 298796, "TR", "country")
    assert _count(conn) == 2


def test_a_mention_nobody_vouches_for_never_overwrites_a_row(conn):
    [hts] = upsert(conn, [_m("Hayat Tahrir al-Sham", label="ORG")]).values()
    before = _by_id(conn, hts)
    # the same name's key, another spelling and label from the model: the row keeps its own
    assert upsert(conn, [_m("hayat tahrir al-sham", "Hayat Tahrir Al-Sham", label="PERSON")]) == {
        "name:hayat tahrir al-sham": hts}
    assert _by_id(conn, hts)[:8] == before[:8]
    # a place linked once, then the model alone names it (no key, no place): it stays the place
    [aleppo] = upsert(conn, [_m("Aleppo", **ALEPPO)]).values()
    placed = _by_id(conn, aleppo)
    upsert(conn, [_m("Aleppo", label="LOC")])  # the model's mention: key name:aleppo, another row
    assert _by_id(conn, aleppo) == placed


def test_link_rule_is_stored_per_mention_and_null_for_the_rest(conn):
    aid = _article(conn)
    mentions = [_m("Idlib", **IDLIB, rule=LinkRule.GAZETTEER),
                _m("Aleppo", start=10, **ALEPPO, rule=LinkRule.CONTEXT),
                _m("Turkey", start=20, **TURKEY, rule=LinkRule.SINGLE),
                _m("Idlib", start=40, **IDLIB, rule=LinkRule.PREPOSITION),
                _m("Erdogan", "Recep Tayyip Erdoğan", start=50, label="PERSON", wikidata_id="Q39259"),
                _m("HTS", "Hayat Tahrir al-Sham", start=60, label="ORG")]
    assert store.annotations.replace_mentions(conn, aid, mentions, "m1") == 6
    rules = dict(conn.execute("SELECT start_char, link_rule FROM article_entities WHERE article_id = %s",
                              (aid,)).fetchall())
    assert rules == {0: "gazetteer", 10: "context", 20: "single", 40: "preposition", 50: None, 60: None}
    # every rule the enum has is one the table takes
    for i, rule in enumerate(LinkRule):
        store.annotations.replace_mentions(conn, aid, [_m("Idlib", **IDLIB, rule=rule)], "m1")
        assert conn.execute("SELECT link_rule FROM article_entities WHERE article_id = %s", (aid,)).fetchone() == (
            rule.value,), i


# --- legacy rows: re-keyed in place -------------------------------------------------------------

def _legacy(conn, name: str = "Idlib", key: str | None = None, *, wikidata_id: str | None = None) -> tuple[int, int]:
    """A row stored by a release before places (its name's key, no place) and an article's mention
    of it."""
    eid = conn.execute("INSERT INTO entities (key, name, label, wikidata_id) VALUES (%s, %s, 'GPE', %s) RETURNING id",
                       (key or f"name:{name.lower()}", name, wikidata_id)).fetchone()[0]
    aid = _article(conn, 100 + eid)
    conn.execute("""INSERT INTO article_entities (article_id, start_char, end_char, entity_id, surface, label,
                                                  model_version) VALUES (%s, 0, %s, %s, %s, 'GPE', 'old-model')""",
                 (aid, len(name), eid, name))
    return eid, aid


def test_a_legacy_name_keyed_row_is_re_keyed_in_place(conn):
    eid, aid = _legacy(conn)
    ids = upsert(conn, [_m("Idlib", **IDLIB)])
    assert ids == {"geonames:169389": eid}  # the SAME row
    assert _row(conn, "geonames:169389") == ("geonames:169389", "Idlib", "GPE", None, "SY", 169389, None, "city")
    assert _row(conn, "name:idlib") is None and _count(conn) == 1
    assert conn.execute("SELECT entity_id FROM article_entities WHERE article_id = %s", (aid,)).fetchone() == (eid,)
    # idempotent: again, nothing changes (not even updated_at)
    before = _by_id(conn, eid)
    assert upsert(conn, [_m("Idlib", **IDLIB)]) == {"geonames:169389": eid}
    assert _by_id(conn, eid) == before and _count(conn) == 1


def test_a_legacy_row_under_a_surfaces_key_is_re_keyed(conn):
    eid, aid = _legacy(conn, "Idleb")
    assert upsert(conn, [_m("Idleb", "Idlib", **IDLIB)]) == {"geonames:169389": eid}
    assert _row(conn, "geonames:169389")[1] == "Idlib" and _count(conn) == 1
    assert "Idleb" in conn.execute("SELECT aliases FROM entities WHERE id = %s", (eid,)).fetchone()[0]


def test_a_legacy_row_keyed_by_name_re_keys_to_a_wikidata_key(conn):
    # Aleppo's stable key is its Wikidata id: the row takes the id too
    eid, _ = _legacy(conn, "Aleppo")
    assert upsert(conn, [_m("Aleppo", **ALEPPO)]) == {"Q41183": eid}
    assert _row(conn, "Q41183") == ("Q41183", "Aleppo", "GPE", "Q41183", "SY", 170063, None, "city")
    assert _count(conn) == 1


def test_legacy_and_stable_rows_both_stored_the_stable_one_is_used(conn):
    [stable] = upsert(conn, [_m("Idlib", **IDLIB)]).values()
    legacy, aid = _legacy(conn)
    assert upsert(conn, [_m("Idlib", **IDLIB)]) == {"geonames:169389": stable}
    assert _row(conn, "name:idlib") == ("name:idlib", "Idlib", "GPE", None, None, None, None, None)
    assert _row(conn, "geonames:169389")[4:] == ("SY", 169389, None, "city")
    assert _count(conn) == 2  # the old article's mention is moved by retag, not here
    assert conn.execute("SELECT entity_id FROM article_entities WHERE article_id = %s", (aid,)).fetchone() == (legacy,)
    # the old article re-tagged: its mention on the stable row
    store.annotations.replace_mentions(conn, aid, [_m("Idlib", **IDLIB, rule=LinkRule.GAZETTEER)], "new-model")
    assert conn.execute("SELECT entity_id, link_rule FROM article_entities WHERE article_id = %s",
                        (aid,)).fetchone() == (stable, "gazetteer")


def test_a_legacy_row_with_a_wikidata_id_is_not_re_keyed(conn):
    eid, aid = _legacy(conn, "Idlib", "name:idlib", wikidata_id="Q207221")
    ids = upsert(conn, [_m("Idlib", **IDLIB)])
    assert ids["geonames:169389"] != eid
    assert _row(conn, "name:idlib") == ("name:idlib", "Idlib", "GPE", "Q207221", None, None, None, None)
    assert _count(conn) == 2
    assert upsert(conn, [_m("Idlib", **IDLIB)]) == ids and _count(conn) == 2


def test_re_keying_many_in_one_batch_is_idempotent(conn):
    rows = {name: _legacy(conn, name)[0] for name in ("Idlib", "Aleppo", "Turkey")}
    batch = [_m("Idlib", **IDLIB), _m("Aleppo", start=10, **ALEPPO), _m("Turkey", start=20, **TURKEY),
             _m("Idlib", start=30, **IDLIB)]
    want = {"geonames:169389": rows["Idlib"], "Q41183": rows["Aleppo"], "Q43": rows["Turkey"]}
    assert upsert(conn, batch) == want
    snapshot = conn.execute("SELECT * FROM entities ORDER BY id").fetchall()
    assert upsert(conn, batch) == want
    assert conn.execute("SELECT * FROM entities ORDER BY id").fetchall() == snapshot


# --- a gazetteer rename with `key:` -------------------------------------------------------------

def test_a_gazetteer_entry_renamed_with_key_keeps_its_row(conn, tmp_path):
    path = tmp_path / "gazetteer.yaml"
    path.write_text("entities:\n  - name: Hayat Tahrir al-Sham\n    label: ORG\n    aliases: [HTS]\n")
    [entry] = nlp.load_gazetteer(path).entries
    assert entry.key == "name:hayat tahrir al-sham"
    [eid] = upsert(conn, [_m("HTS", entry.name, label=entry.label, key=entry.key)]).values()
    aid = _article(conn)
    store.annotations.replace_mentions(conn, aid, [_m("HTS", entry.name, label="ORG", key=entry.key)], "m1")

    path.write_text("entities:\n  - name: Tahrir al-Sham Committee\n    key: Hayat Tahrir al-Sham\n"
                    "    label: ORG\n    aliases: [HTS, Hayat Tahrir al-Sham]\n")
    [renamed] = nlp.load_gazetteer(path).entries
    assert renamed.key == entry.key
    assert upsert(conn, [_m("HTS", renamed.name, label="ORG", key=renamed.key)]) == {entry.key: eid}
    assert _row(conn, entry.key)[1:3] == ("Tahrir al-Sham Committee", "ORG")
    assert _count(conn) == 1
    assert conn.execute("SELECT entity_id FROM article_entities WHERE article_id = %s", (aid,)).fetchone() == (eid,)
    # without `key:`, the rename would be a new row under the new name's key
    path.write_text("entities:\n  - name: Tahrir al-Sham Committee\n    label: ORG\n")
    assert nlp.load_gazetteer(path).entries[0].key == "name:tahrir al-sham committee"


# --- the tag stage and retag ----------------------------------------------------------------------

BODY = ("Clashes in Idlib and Aleppo left dozens of civilians dead on Monday, monitors said. Turkey's army sent "
        "more troops to the border, while thousands of families fled south and arrived in Jordan by the end of "
        "the week. Officials in Idlib said the shelling continued.")
BODY2 = ("DAMASCUS (Reuters) - Fighting near Idlib province continued as President Recep Tayyip Erdogan spoke in "
         "Ankara about the refugees in Turkey.")


def _places(conn) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT name, id, key, wikidata_id, country, geonames_id, iso_code, place_kind FROM entities "
        "WHERE country IS NOT NULL").fetchall()}


def _rules(conn, aid: int) -> dict[str, set]:
    out: dict[str, set] = {}
    for surface, rule in conn.execute("SELECT surface, link_rule FROM article_entities WHERE article_id = %s",
                                      (aid,)).fetchall():
        out.setdefault(surface, set()).add(rule)
    return out


@pytest.fixture
def tagged(settings, conn):
    a1 = _article(conn, 1, status="extracted", body=BODY, title="Clashes in Idlib")
    a2 = _article(conn, 2, status="extracted", body=BODY2, title="Fighting near Idlib")
    conn.commit()
    result = ingest.tag_articles(settings)
    assert result.counts["tagged"] == 2 and not result.errors
    conn.rollback()
    return a1, a2


def test_the_tag_stage_links_places(tagged, conn):
    a1, a2 = tagged
    places = _places(conn)
    assert places["Idlib"][1:] == ("geonames:169389", None, "SY", 169389, None, "city")
    assert places["Aleppo"][1:] == ("Q41183", "Q41183", "SY", 170063, None, "city")
    assert places["Turkey"][1:] == ("Q43", "Q43", "TR", 298795, "TR", "country")
    assert places["Jordan"][1:] == ("Q810", "Q810", "JO", 248816, "JO", "country")
    assert places["Idlib Governorate"][1:] == ("iso:SY-ID", None, "SY", None, "SY-ID", "region")
    assert places["Damascus"][3] == "SY" and places["Ankara"][3] == "TR"
    rules = _rules(conn, a1)
    assert rules["Idlib"] == {"gazetteer"} and rules["Aleppo"] == {"gazetteer"}
    assert rules["Turkey"] <= {r.value for r in LinkRule} and rules["Jordan"] <= {r.value for r in LinkRule}
    assert _rules(conn, a2)["Recep Tayyip Erdogan"] == {None}  # not a place
    # each mention points into the body, and every linked mention's entity has a country
    body = dict(conn.execute("SELECT id, body FROM articles").fetchall())
    for aid, start, end, surface, rule, country in conn.execute(
            """SELECT ae.article_id, ae.start_char, ae.end_char, ae.surface, ae.link_rule, e.country
                 FROM article_entities ae JOIN entities e ON e.id = ae.entity_id""").fetchall():
        assert body[aid][start:end] == surface
        assert rule is None or country is not None, surface
    # the place index's names are the entities' aliases: a look-up by any of them finds the place
    aliases = dict(conn.execute("SELECT name, aliases FROM entities WHERE country = 'SY'").fetchall())
    assert "Idleb" in aliases["Idlib"] and {"Halab", "Alep"} <= set(aliases["Aleppo"])
    assert "Idlib province" in aliases["Idlib Governorate"]
    assert [r["name"] for r in queries.resolve_entity(conn, "Idleb")] == ["Idlib"]
    # one row per place
    assert conn.execute("SELECT count(*) FROM entities WHERE country IS NOT NULL").fetchone()[0] == len(places)


def test_retag_re_links_an_old_articles_places_without_duplicates(tagged, settings, conn):
    a1, a2 = tagged
    places = _places(conn)
    before_rows = _count(conn)
    before_mentions = sorted(conn.execute("SELECT article_id, start_char, end_char, entity_id, link_rule "
                                          "FROM article_entities").fetchall())
    # The state a release before places left: name keys, no place columns, no link rule, old model;
    # Aleppo under its name without its Wikidata id.
    conn.execute("UPDATE entities SET country = NULL, geonames_id = NULL, iso_code = NULL, place_kind = NULL")
    conn.execute("UPDATE entities SET key = 'name:idlib' WHERE key = 'geonames:169389'")
    conn.execute("UPDATE entities SET key = 'name:aleppo', wikidata_id = NULL WHERE key = 'Q41183'")
    conn.execute("UPDATE article_entities SET link_rule = NULL, model_version = 'old-model'")
    conn.commit()

    out = CliRunner().invoke(main, ["retag"], env={"NEWSROOM_DATABASE_URL": settings.database_url,
                                                   "NEWSROOM_STATE_DIR": str(settings.state_dir),
                                                   "NEWSROOM_LOG_LEVEL": "WARNING"}, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "tag: " in out.output and "tagged 2" in out.output
    conn.rollback()
    assert _places(conn) == places  # the same rows (ids), keys and ids again
    assert _count(conn) == before_rows
    after = sorted(conn.execute("SELECT article_id, start_char, end_char, entity_id, link_rule "
                                "FROM article_entities").fetchall())
    assert after == before_mentions
    assert conn.execute("SELECT count(*) FROM article_entities WHERE model_version = 'old-model'").fetchone()[0] == 0
    assert _rules(conn, a1)["Idlib"] == {"gazetteer"}
    # and again: the entities are left exactly as they are (no write, not even updated_at)
    snapshot = conn.execute("SELECT * FROM entities ORDER BY id").fetchall()
    conn.rollback()
    assert ingest.reprocess(settings)["tag"]["tagged"] == 2
    assert conn.execute("SELECT * FROM entities ORDER BY id").fetchall() == snapshot


def test_retag_moves_a_legacy_duplicates_mentions_to_the_stable_row(tagged, settings, conn):
    a1, _ = tagged
    turkey = _places(conn)["Turkey"][0]
    # an old article whose "Turkey" was stored under name:turkey while Q43 exists already
    legacy, old = _legacy(conn, "Turkey")
    conn.execute("UPDATE articles SET body = %s, status = 'tagged' WHERE id = %s",
                 ("Turkey said on Monday that the talks with Russia would go on for another week at least.", old))
    conn.commit()
    assert ingest.reprocess(settings, ids=[old])["tag"]["tagged"] == 1
    conn.rollback()
    rows = conn.execute("SELECT entity_id, link_rule FROM article_entities WHERE article_id = %s AND surface = 'Turkey'",
                        (old,)).fetchall()
    assert rows and {r[0] for r in rows} == {turkey} and None not in {r[1] for r in rows}
    assert conn.execute("SELECT count(*) FROM article_entities WHERE entity_id = %s", (legacy,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM entities WHERE key = 'Q43'").fetchone()[0] == 1


# --- the CLI ------------------------------------------------------------------------------------

@pytest.fixture
def corpus(conn) -> dict[str, int]:
    """Two articles: Syrian and Turkish places, a country, a person."""
    a1, a2 = _article(conn, 1), _article(conn, 2)
    m1 = [_m("Idlib", **IDLIB, rule=LinkRule.GAZETTEER), _m("Aleppo", start=10, **ALEPPO, rule=LinkRule.SINGLE),
          _m("Idlib", start=20, **IDLIB, rule=LinkRule.PREPOSITION),
          _m("Idlib province", "Idlib Governorate", start=30, **IDLIB_GOV, rule=LinkRule.GAZETTEER),
          _m("Turkey", start=50, **TURKEY, rule=LinkRule.PROMINENT),
          _m("Erdogan", "Recep Tayyip Erdoğan", start=60, label="PERSON", wikidata_id="Q39259")]
    m2 = [_m("Idlib", **IDLIB, rule=LinkRule.CONTEXT), _m("Turkey", start=10, **TURKEY, rule=LinkRule.GAZETTEER)]
    store.annotations.replace_mentions_many(conn, {a1: m1, a2: m2}, "m1", upsert(conn, [*m1, *m2]))
    conn.commit()
    return {"a1": a1, "a2": a2}


def test_entities_country_lists_only_that_countrys_places(run, corpus):
    table = run("entities", "--country", "SY")
    assert table.exit_code == 0, table.stderr
    for needle in ("Idlib", "Aleppo", "Idlib Governorate", "geonames:169389", "Q41183", "ISO SY-ID", "country",
                   "ids"):
        assert needle in table.stdout, needle
    assert "Turkey" not in table.stdout and "Erdoğan" not in table.stdout
    rows = json.loads(run("entities", "--country", " sy ", "--format", "json").stdout)
    assert {r["name"] for r in rows} == {"Idlib", "Aleppo", "Idlib Governorate"} and {r["country"] for r in rows} == {
        "SY"}
    assert rows[0]["name"] == "Idlib" and rows[0]["articles"] == 2 and rows[0]["mentions"] == 3
    tr = json.loads(run("entities", "--country", "tr", "--format", "json").stdout)
    assert [r["name"] for r in tr] == ["Turkey"]
    narrow = run("entities", "--country", "SY", columns=80)
    assert narrow.exit_code == 0 and all(len(line) <= 80 for line in narrow.stdout.splitlines())
    assert "Idlib" in narrow.stdout


def test_entities_bad_or_unknown_country(run, corpus):
    for bad in ("XYZ", "S", "1Y", "S\x00Y", "ŞY", "SY; DROP TABLE entities"):
        out = run("entities", "--country", bad)
        # a malformed value is bad input: exit 2, as every other bad option (cli_support.EXIT_BAD_INPUT)
        assert out.exit_code == 2, (bad, out.stdout, out.stderr)
        err = out.stderr.strip()
        assert err and "\n" not in err and "Traceback" not in err and "--country" in err, err
    none = run("entities", "--country", "FR")  # well formed, no such places: nothing found
    assert none.exit_code == 1 and "country FR" in none.stderr and "\n" not in none.stderr.strip()


def test_entities_csv_and_json_have_the_place_columns(run, corpus):
    rows = list(csv.DictReader(io.StringIO(run("entities", "--format", "csv").stdout)))
    assert {"country", "geonames_id", "iso_code", "place_kind"} <= set(rows[0])
    by = {r["name"]: r for r in rows}
    assert (by["Idlib"]["country"], by["Idlib"]["geonames_id"], by["Idlib"]["iso_code"], by["Idlib"]["place_kind"]) \
        == ("SY", "169389", "", "city")
    assert (by["Turkey"]["iso_code"], by["Turkey"]["wikidata_id"], by["Turkey"]["place_kind"]) == ("TR", "Q43", "country")
    assert by["Recep Tayyip Erdoğan"]["country"] == "" and by["Recep Tayyip Erdoğan"]["place_kind"] == ""
    data = {r["name"]: r for r in json.loads(run("entities", "--format", "json").stdout)}
    assert data["Idlib Governorate"]["iso_code"] == "SY-ID" and data["Idlib Governorate"]["geonames_id"] is None
    assert data["Recep Tayyip Erdoğan"]["country"] is None
    empty = run("entities", "--country", "FR", "--format", "csv")
    assert empty.exit_code == 1 and "place_kind" in empty.stdout.splitlines()[0]


def test_article_shows_country_ids_and_linked_by(run, corpus):
    table = run("article", str(corpus["a1"]))
    assert table.exit_code == 0, table.stderr
    for needle in ("country", "ids", "linked by", "geonames:169389", "ISO SY-ID", "Q41183", "gazetteer, preposition",
                   "prominent"):
        assert needle in table.stdout, needle
    data = json.loads(run("article", str(corpus["a1"]), "--format", "json").stdout)
    ents = {e["name"]: e for e in data["entities"]}
    assert ents["Idlib"]["link_rules"] == ["gazetteer", "preposition"] and ents["Idlib"]["mentions"] == 2
    assert (ents["Idlib"]["country"], ents["Idlib"]["geonames_id"], ents["Idlib"]["place_kind"]) == ("SY", 169389,
                                                                                                      "city")
    assert ents["Turkey"]["link_rules"] == ["prominent"] and ents["Turkey"]["iso_code"] == "TR"
    assert ents["Recep Tayyip Erdoğan"]["link_rules"] == [] and ents["Recep Tayyip Erdoğan"]["country"] is None
    # narrow terminals drop columns rather than break
    narrow = run("article", str(corpus["a1"]), columns=80)
    assert narrow.exit_code == 0 and all(len(line) <= 80 for line in narrow.stdout.splitlines())


# --- found while writing these tests (both were bugs) -------------------------------------------

def test_the_gazetteers_mention_wins_whatever_the_order_in_the_batch(conn):
    # GRU (case-sensitive gazetteer ORG, no Wikidata id: key name:gru) and the model's "Gru" (a film
    # character: not the entry, the case differs) share the key name:gru.
    gru = _m("GRU", label="ORG", key="name:gru")
    character = _m("Gru", start=10, label="PERSON")
    assert character.entity_key == gru.entity_key == "name:gru"
    upsert(conn, [character, gru])
    assert _row(conn, "name:gru")[1:3] == ("GRU", "ORG")


def test_a_legacy_row_of_another_kind_is_not_re_keyed_to_a_place(conn):
    eid = conn.execute("INSERT INTO entities (key, name, label) VALUES ('name:victoria', 'Victoria', 'PERSON') "
                       "RETURNING id").fetchone()[0]
    place = {"key": "geonames:6174041", "country": "CA", "geonames_id": 6174041, "place_kind": PlaceKind.CITY}
    ids = upsert(conn, [_m("Victoria", **place)])
    assert ids["geonames:6174041"] != eid
    assert _row(conn, "name:victoria") == ("name:victoria", "Victoria", "PERSON", None, None, None, None, None)
