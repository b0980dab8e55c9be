"""Entity look-up against a real database (issue 13): `--entity` finds what the gazetteer knows.

The tag stage merges every gazetteer name and alias of an entity into `entities.aliases`
(store.annotations.upsert_entities and merge_aliases); queries.resolve_entity matches names
and aliases folded (case, accents), then a lone surname among stored people."""

from __future__ import annotations

import pytest

from pipeline import nlp, queries, store
from pipeline.config import PACKAGE_DATA
from pipeline.errors import NotFound
from pipeline.places import load_places
from pipeline.records import Extraction, FeedEntry, FeedSpec, Mention

KNOWN = nlp.entity_aliases(nlp.with_places(nlp.load_gazetteer(PACKAGE_DATA / "gazetteer.yaml"),
                                           load_places(PACKAGE_DATA / "places.yaml")))


def _person(canonical: str, qid: str | None = None, surface: str | None = None) -> Mention:
    surface = surface or canonical
    return Mention(start=0, end=len(surface), surface=surface, label="PERSON", canonical=canonical, wikidata_id=qid)


def _articles(conn, texts: list[str]) -> list[int]:
    store.feeds.upsert_feeds(conn, [FeedSpec(url="http://127.0.0.1/f.xml", name="F")])
    fid = conn.execute("SELECT id FROM feeds").fetchone()[0]
    ids = store.feeds.upsert_entries(conn, fid, [FeedEntry(url=f"http://127.0.0.1/{i}", entry_url=f"http://127.0.0.1/{i}")
                                                 for i in range(len(texts))])
    for aid, text in zip(ids, texts, strict=True):
        store.articles.save_extraction(conn, aid, Extraction(text=text, title=text[:20], word_count=len(text.split())))
    return ids


def _tag(conn, aid: int, text: str, *mentions: tuple[str, str, str, str | None], known=None) -> None:
    """Mentions as (surface, label, canonical, wikidata id), located in `text` by their surface."""
    ms, at = [], 0
    for surface, label, canonical, qid in mentions:
        start = text.index(surface, at)
        at = start + len(surface)
        ms.append(Mention(start=start, end=at, surface=surface, label=label, canonical=canonical, wikidata_id=qid))
    ids = store.annotations.upsert_entities(conn, ms, known)
    store.annotations.replace_mentions(conn, aid, ms, "m1", ids)


TEXTS = [
    "Vladimir Putin met Recep Tayyip Erdoğan in Sochi to discuss Idlib.",
    "Bashar al-Assad sent troops towards Idlib. John Mitchell, an analyst, doubted it.",
    "Andrea Mitchell asked Kemal Kılıçdaroğlu about the S-400 Triumf and Idlib.",
]


@pytest.fixture
def tagged(conn):
    """Three articles tagged as the tag stage of a release before this one stored them: only the
    spellings seen in the text are aliases (here none: each is written in full)."""
    a, b, c = _articles(conn, TEXTS)
    _tag(conn, a, TEXTS[0], ("Vladimir Putin", "PERSON", "Vladimir Putin", "Q7747"),
         ("Recep Tayyip Erdoğan", "PERSON", "Recep Tayyip Erdoğan", "Q39259"), ("Sochi", "GPE", "Sochi", None),
         ("Idlib", "GPE", "Idlib", None))
    _tag(conn, b, TEXTS[1], ("Bashar al-Assad", "PERSON", "Bashar al-Assad", "Q44329"),
         ("Idlib", "GPE", "Idlib", None), ("John Mitchell", "PERSON", "John Mitchell", None))
    _tag(conn, c, TEXTS[2], ("Andrea Mitchell", "PERSON", "Andrea Mitchell", None),
         ("Kemal Kılıçdaroğlu", "PERSON", "Kemal Kılıçdaroğlu", None),
         ("S-400 Triumf", "WEAPON", "S-400", None), ("Idlib", "GPE", "Idlib", None))
    conn.commit()
    return {"putin": a, "assad": b, "mitchell": c}


def _names(conn, typed: str) -> list[str]:
    return [r["name"] for r in queries.resolve_entity(conn, typed)]


def test_putin_and_assad_by_surname_on_a_database_tagged_before(conn, tagged):
    assert _names(conn, "Putin") == ["Vladimir Putin"]
    assert _names(conn, "Assad") == ["Bashar al-Assad"]
    assert _names(conn, "al-Assad") == ["Bashar al-Assad"]
    assert _names(conn, "ASSAD") == ["Bashar al-Assad"]
    # the command: newsroom search Idlib --entity Putin / --entity Assad
    assert [r["id"] for r in queries.search(conn, "Idlib", entity="Putin")] == [tagged["putin"]]
    assert [r["id"] for r in queries.search(conn, "Idlib", entity="Assad")] == [tagged["assad"]]


def test_erdogan_with_or_without_accents_and_in_any_case(conn, tagged):
    for typed in ("Erdoğan", "Erdogan", "erdogan", "ERDOĞAN", "Recep Tayyip Erdogan", "recep  tayyip ERDOĞAN"):
        assert _names(conn, typed) == ["Recep Tayyip Erdoğan"], typed
    assert _names(conn, "Kilicdaroglu") == ["Kemal Kılıçdaroğlu"]  # a surname the gazetteer does not list


def test_gazetteer_aliases_resolve_once_merged(conn, tagged):
    # Never written in any article: known only from the gazetteer.
    with pytest.raises(NotFound):
        queries.resolve_entity(conn, "Wladimir Putin")
    # Putin, Erdoğan and Assad (keyed by Wikidata id), S-400 (by name); Sochi has no alias. Idlib,
    # stored by name before places had keys, is now keyed by its GeoNames id: its row takes that
    # key and the place's names the first time the tag stage links it (test_places_store.py).
    assert store.annotations.merge_aliases(conn, KNOWN) == 4
    assert store.annotations.merge_aliases(conn, KNOWN) == 0  # once merged, a no-op
    for typed, name in [("Wladimir Putin", "Vladimir Putin"), ("Vladimir V. Putin", "Vladimir Putin"),
                        ("Tayyip Erdogan", "Recep Tayyip Erdoğan"), ("Bashar el-Assad", "Bashar al-Assad"),
                        ("s400", "S-400"), ("SA-21 Growler", "S-400")]:
        assert _names(conn, typed) == [name], typed
    aliases = conn.execute("SELECT aliases FROM entities WHERE wikidata_id = 'Q39259'").fetchone()[0]
    assert aliases == ["Erdoğan", "Recep Erdoğan", "Tayyip Erdoğan"]  # not the canonical name itself
    # SQL users find them too
    assert conn.execute("SELECT name FROM entities WHERE 'Wladimir Putin' = ANY (aliases)").fetchall() == \
        [("Vladimir Putin",)]


def test_a_new_entity_takes_the_gazetteer_aliases_when_stored(conn):
    [aid] = _articles(conn, ["Putin spoke."])
    _tag(conn, aid, "Putin spoke.", ("Putin", "PERSON", "Vladimir Putin", "Q7747"), known=KNOWN)
    aliases = conn.execute("SELECT aliases FROM entities WHERE key = 'Q7747'").fetchone()[0]
    assert aliases == sorted(["Putin", "Vladimir Vladimirovich Putin", "Vladimir V. Putin", "Wladimir Putin"])
    assert _names(conn, "wladimir putin") == ["Vladimir Putin"]


def test_wikidata_ids(conn, tagged):
    assert _names(conn, "Q39259") == ["Recep Tayyip Erdoğan"]
    assert _names(conn, "q7747") == ["Vladimir Putin"]
    with pytest.raises(NotFound, match="unknown entity 'Q1'"):
        queries.resolve_entity(conn, "Q1")


def test_an_ambiguous_surname_names_the_people_it_may_mean(conn, tagged):
    with pytest.raises(NotFound) as exc:
        queries.resolve_entity(conn, "Mitchell")
    message = str(exc.value)
    assert "'Mitchell' is ambiguous" in message
    assert "Andrea Mitchell (1 article), John Mitchell (1 article)" in message
    assert "full name or the Wikidata id" in message
    # the full name is not ambiguous
    assert _names(conn, "john mitchell") == ["John Mitchell"]


def test_the_surname_rule_is_for_one_word_and_people_only(conn, tagged):
    with pytest.raises(NotFound):
        queries.resolve_entity(conn, "Hafez Assad")  # two words: a name, not a surname
    with pytest.raises(NotFound):
        queries.resolve_entity(conn, "Triumf")  # the last word of a weapon's alias, not of a person


def test_an_unknown_name_gets_a_hint(conn, tagged):
    with pytest.raises(NotFound) as exc:
        queries.resolve_entity(conn, "Vladimir")  # a first name is not a surname
    assert str(exc.value) == "unknown entity 'Vladimir'; did you mean: Vladimir Putin?"
    with pytest.raises(NotFound) as exc:
        queries.resolve_entity(conn, "Zelensky")
    assert str(exc.value) == "unknown entity 'Zelensky'"


def test_a_name_and_an_alias_alike_return_both_names_first(conn):
    [aid] = _articles(conn, ["Georgia and Georgia."])
    _tag(conn, aid, "Georgia and Georgia.", ("Georgia", "GPE", "Georgia", "Q230"),
         ("Georgia", "PERSON", "Georgia Meloni", None))
    assert [(r["name"], r["label"]) for r in queries.resolve_entity(conn, "georgia")] == \
        [("Georgia", "GPE"), ("Georgia Meloni", "PERSON")]


def test_lookups_use_the_indexes(conn):
    conn.execute("SET enable_seqscan = off")
    for query, index in [
        ("SELECT id FROM entities WHERE newsroom_entity_names(name, aliases) @> ARRAY[newsroom_entity_key('x', NULL)]",
         "entities_names_idx"),
        ("SELECT id FROM entities WHERE label = 'PERSON' AND newsroom_surname_key(name) = newsroom_surname_key('x')",
         "entities_surname_idx"),
    ]:
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query).fetchall())
        assert index in plan, plan
