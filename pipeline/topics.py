"""Topic tagging: explainable, user-editable rules over an article's terms and entities.

The rules live in a YAML file (pipeline/data/topics.yaml by default, NEWSROOM_TOPICS to use
another; its header documents the format). A topic is tagged when every one of its required
groups matches, no exclusion matches, and its score reaches its threshold. Each tag carries
the evidence: which items matched, how often, and what they added to the score.

Pure: text and mentions in, `TopicTag` records out.

Why one module of this size: the rules file's model and the matcher that evaluates it are one
format; the evidence a tag stores names the rules' items as the file spells them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from pipeline.config_files import ConfigFile, FileKind, Model, Text, load, matching, problem, short
from pipeline.records import Mention, TopicDef, TopicTag
from pipeline.text import fold, name_key

log = logging.getLogger(__name__)

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LABEL_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


# --- the rules ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Item:
    """One term ("term"), canonical entity name ("entity") or entity label ("label")."""

    kind: str
    value: str  # as written in the rules
    key: str  # folded term, entity name key, or label
    weight: float = 1.0

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    items: tuple[Item, ...]
    min_count: int = 1


@dataclass(frozen=True, slots=True)
class Topic:
    slug: str
    name: str
    description: str
    threshold: float
    required: tuple[Group, ...]
    supporting: tuple[Item, ...] = ()
    exclude: tuple[Item, ...] = ()
    language: str = "en"  # the language of its terms: only articles in it are matched


RULES_LANGUAGE = "en"  # the language of a topic's own terms; others are under its `languages`


@dataclass(frozen=True, slots=True)
class RuleSet:
    topics: tuple[Topic, ...]  # as the file lists them, with their own (English) terms
    version: str  # short hash of the file's bytes
    path: Path | None = None
    title_boost: float = 1.0  # a title match adds this times the item's weight, once
    # The topics written for other languages: ((language, (Topic, ...)), ...)
    translations: tuple[tuple[str, tuple[Topic, ...]], ...] = ()

    def for_language(self, language: str | None) -> tuple[Topic, ...]:
        """The rules that may match an article in `language`: those written for it, none for a
        language no rule is written for (an English term says nothing about a French text)."""
        if language == RULES_LANGUAGE:
            return self.topics
        return dict(self.translations).get(language or "", ())

    @property
    def languages(self) -> tuple[str, ...]:
        return (RULES_LANGUAGE, *(lang for lang, _ in self.translations))


# --- the file: pydantic models, converted into the records above -----------------------------

def _term(value: str) -> Item:
    body = value[:-1] if value.endswith("*") else value
    if "*" in body or not any(c.isalnum() for c in body):
        raise problem(f"term {value!r}: needs letters or digits; '*' is allowed only at the end")
    return Item("term", value, fold(value))


def _entity(value: str) -> Item:
    if value.startswith("label:"):
        label = value[len("label:"):].strip()
        if not _LABEL_RE.match(label):
            raise problem(f"{value!r}: a label must be upper case, like label:WEAPON")
        return Item("label", label, label)
    key = name_key(value)
    if not key:
        raise problem(f"entity {value!r} has no letters or digits")
    return Item("entity", value, key)


def _nonzero(weight: float) -> float:
    if weight == 0:
        raise problem("a weight of 0 does nothing; remove the item")
    return weight


_Term = Annotated[Text, AfterValidator(_term)]
_Entity = Annotated[Text, AfterValidator(_entity)]
_Weight = Annotated[float, AfterValidator(_nonzero)]
_Slug = matching(_SLUG_RE.pattern, "lower-case words joined by hyphens")


def _weighted(item: Any) -> Any:
    """A list of items (weight 1) or a mapping of item: weight. The input's type picks the form,
    so an error is reported for that form only."""
    return Annotated[Annotated[list[item], Tag("list")] | Annotated[dict[item, _Weight], Tag("mapping")],
                     Discriminator(lambda v: "mapping" if isinstance(v, dict) else "list")] | None


_WeightedTerms = _weighted(_Term)
_WeightedEntities = _weighted(_Entity)


class _Section(Model):
    terms: list[_Term] | None = None
    entities: list[_Entity] | None = None

    def items(self) -> list[Item]:
        return [*(self.terms or ()), *(self.entities or ())]


class _Supporting(Model):
    terms: _WeightedTerms = None
    entities: _WeightedEntities = None

    def items(self) -> list[Item]:
        out: list[Item] = []
        for values in (self.terms, self.entities):
            out += [replace(x, weight=w) for x, w in values.items()] if isinstance(values, dict) else values or []
        return out


class _Group(_Section):
    name: Text = ""  # "group N" when left out
    min_count: int = Field(1, ge=1)
    weight: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _not_empty(self) -> _Group:
        if not self.items():
            raise problem("needs at least one term or entity")
        return self


class _Rule(Model):
    """What decides a topic in one language: required groups, supporting items, exclusions."""

    required: list[_Group] = Field(min_length=1)
    supporting: _Supporting | None = None
    exclude: _Section | None = None

    @model_validator(mode="after")
    def _each_item_once(self) -> _Rule:
        # Within one list an item once; an item may be both required and supporting (it then
        # scores in both), but never both wanted and excluded.
        wanted: set[tuple[str, str]] = set()
        for loc, items in [*((("required", k), g.items()) for k, g in enumerate(self.required)),
                           (("supporting",), self.supporting.items() if self.supporting else []),
                           (("exclude",), self.exclude.items() if self.exclude else [])]:
            keys = Counter((x.kind, x.key) for x in items)
            for x in items:
                if keys[x.kind, x.key] > 1:
                    raise problem(f"{x.ref!r} is listed twice", *loc)
                if loc == ("exclude",) and (x.kind, x.key) in wanted:
                    raise problem(f"{x.ref!r} is both wanted and excluded", *loc)
            wanted.update(keys)
        return self

    def parts(self) -> tuple[tuple[Group, ...], tuple[Item, ...], tuple[Item, ...]]:
        groups = (Group(g.name or f"group {k}", tuple(replace(x, weight=g.weight) for x in g.items()), g.min_count)
                  for k, g in enumerate(self.required, 1))
        return (tuple(groups), tuple(self.supporting.items() if self.supporting else ()),
                tuple(self.exclude.items() if self.exclude else ()))


_Language = matching(r"[a-z]{2,3}", "a lower-case language code like fr")


class _Translation(_Rule):
    """The topic's rule for articles in another language: its own terms (entities are the same
    canonical names in every language); the threshold is the topic's unless given."""

    threshold: float | None = Field(None, ge=0)


class _Topic(_Rule):
    slug: _Slug
    name: Text
    description: str = ""
    threshold: float = Field(ge=0, description="the score a matching article must reach")
    # Rules for articles in other languages, by language code; the topic's own are English.
    languages: dict[_Language, _Translation] | None = None

    @model_validator(mode="after")
    def _not_english_twice(self) -> _Topic:
        if RULES_LANGUAGE in (self.languages or {}):
            raise problem(f"the topic's own terms are the {RULES_LANGUAGE!r} ones; list only other languages here",
                          "languages")
        return self

    def record(self, language: str = RULES_LANGUAGE) -> Topic:
        rule: _Rule = self if language == RULES_LANGUAGE else (self.languages or {})[language]
        threshold = self.threshold if getattr(rule, "threshold", None) is None else rule.threshold
        return Topic(self.slug, self.name, " ".join(self.description.split()), threshold, *rule.parts(),
                     language=language)


class TopicsFile(ConfigFile):
    kind: ClassVar[FileKind] = FileKind("topic rules", "NEWSROOM_TOPICS",
                                      "a mapping with a non-empty 'topics' list", "topics")

    title_boost: float = Field(1.0, ge=0)
    topics: list[_Topic] = Field(min_length=1)

    @classmethod
    def entry_name(cls, n: int, raw: Any) -> str:
        slug = raw.get("slug") if isinstance(raw, dict) else None
        return f"topic {short(slug)}" if isinstance(slug, str) and _SLUG_RE.match(slug) else f"topic #{n}"

    @model_validator(mode="after")
    def _slugs_unique(self) -> TopicsFile:
        slugs = Counter(t.slug for t in self.topics)
        for i, t in enumerate(self.topics):
            if slugs[t.slug] > 1:
                raise problem("is used by more than one topic", "topics", i, "slug")
        return self


def load_rules(path: Path) -> RuleSet:
    """Read and validate a topic rules file. Raises ConfigError naming file, topic and field."""
    raw, rules = load(path, TopicsFile)
    others = sorted({lang for t in rules.topics for lang in t.languages or ()})
    translations = tuple((lang, tuple(t.record(lang) for t in rules.topics if lang in (t.languages or ())))
                         for lang in others)
    return RuleSet(tuple(t.record() for t in rules.topics), hashlib.sha256(raw).hexdigest()[:12], Path(path),
                   rules.title_boost, translations)


def topic_defs(rules: RuleSet) -> list[TopicDef]:
    return [TopicDef(slug=t.slug, name=t.name, description=t.description, rules_version=rules.version)
            for t in rules.topics]


# --- matching -----------------------------------------------------------------------------

@lru_cache(maxsize=8192)
def _fold_char(c: str) -> str:
    return fold(c)


def _fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """Folded text and, for each of its characters, the index of the source character (plus a
    sentinel), so matches map back to offsets in the original text."""
    if text.isascii():
        return text.lower().replace("`", "'"), list(range(len(text) + 1))
    table = {ord(c): _fold_char(c) for c in set(text)}
    if all(len(f) == 1 for f in table.values()):
        # Every character folds to exactly one: offsets are unchanged (the usual case).
        return text.translate(table), list(range(len(text) + 1))
    out: list[str] = []
    idx: list[int] = []
    for i, c in enumerate(text):
        f = table[ord(c)]
        out.append(f)
        idx.extend([i] * len(f))
    idx.append(len(text))
    return "".join(out), idx


@lru_cache(maxsize=4096)
def _term_regex(folded_term: str) -> re.Pattern[str]:
    """Word-bounded, case- and accent-insensitive (the text is folded too); a space matches any
    run of spaces or hyphens, a hyphen is optional, an apostrophe is optional, and a trailing
    '*' matches any word ending ("airstrike*" -> airstrikes)."""
    wildcard = folded_term.endswith("*")
    term = " ".join(folded_term.rstrip("*").split())
    parts: list[str] = []
    for ch in term:
        if ch == " ":
            parts.append(r"[\s\-]+")
        elif ch == "-":
            parts.append(r"[\s\-]?")
        elif ch == "'":
            parts.append("'?")
        else:
            parts.append(re.escape(ch))
    return re.compile(r"(?<!\w)" + "".join(parts) + (r"\w*" if wildcard else "") + r"(?!\w)")


@lru_cache(maxsize=4096)
def _anchor(folded_term: str) -> str:
    """The term's leading literal run: if the text does not contain it, the regex cannot match
    (a substring test is far cheaper than running hundreds of regexes per article)."""
    m = re.match(r"[^\s\-'*]+", folded_term)
    return m.group() if m else ""


class _Text:
    """One article prepared for matching: folded body and title, mentions by key and label."""

    def __init__(self, text: str, mentions: Sequence[Mention], title: str | None) -> None:
        self.body, self.idx = _fold_with_offsets(text)
        self.title = _fold_with_offsets(title)[0] if title else ""
        self.by_key: dict[str, list[tuple[int, int]]] = {}
        self.by_label: dict[str, list[tuple[int, int]]] = {}
        for m in mentions:
            self.by_key.setdefault(name_key(m.canonical or m.surface), []).append((m.start, m.end))
            self.by_label.setdefault(m.label, []).append((m.start, m.end))
        self._spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._title: dict[tuple[str, str], int] = {}

    def spans(self, item: Item) -> list[tuple[int, int]]:
        """Where the item occurs in the body, as offsets into the original text."""
        k = (item.kind, item.key)
        hit = self._spans.get(k)
        if hit is None:
            if item.kind == "term":
                hit = [] if _anchor(item.key) not in self.body else [
                    (self.idx[m.start()], self.idx[m.end() - 1] + 1)
                    for m in _term_regex(item.key).finditer(self.body)]
            elif item.kind == "entity":
                hit = self.by_key.get(item.key, [])
            else:
                hit = self.by_label.get(item.key, [])
            self._spans[k] = hit
        return hit

    def title_count(self, item: Item) -> int:
        """Occurrences in the title; an entity counts by its name as a term, a label not at all."""
        if not self.title or item.kind == "label":
            return 0
        k = (item.kind, item.key)
        if k not in self._title:
            term = item.key if item.kind == "term" else fold(item.value)
            found = _anchor(term) in self.title
            self._title[k] = sum(1 for _ in _term_regex(term).finditer(self.title)) if found else 0
        return self._title[k]


def _counts(doc: _Text, items: Sequence[Item]) -> dict[Item, int]:
    """Body occurrences per item, where overlapping matches of items in the same list count
    once, for the longest ("Idlib province" and "Idlib" do not both count)."""
    found = [(s, e, n, x) for n, x in enumerate(items) for s, e in doc.spans(x)]
    # Same span: an entity wins over a term (its evidence names the normalised entity).
    found.sort(key=lambda f: (f[0], -(f[1] - f[0]), f[3].kind == "term", f[2]))
    counts: dict[Item, int] = {}
    end = -1
    for s, e, _, x in found:
        if s >= end:  # sorted by start, longest first: a later overlap loses
            counts[x] = counts.get(x, 0) + 1
            end = e
    return counts


def _contribution(weight: float, count: int, title: int, title_boost: float) -> float:
    """Diminishing returns: the first mention counts `weight`, n mentions weight * (1 + ln n);
    a title match adds title_boost * weight once."""
    score = weight * (1 + math.log(count)) if count else 0.0
    return score + (title_boost * weight if title else 0.0)


def _evidence_item(x: Item, count: int, title: int, boost: float) -> dict[str, Any]:
    return {"item": x.ref, "count": count, "title": title, "weight": x.weight,
            "score": round(_contribution(x.weight, count, title, boost), 3)}


def _fired(doc: _Text, items: Sequence[Item], boost: float) -> list[dict[str, Any]]:
    """Evidence for each item found in the text or the title, in the rule's order."""
    counts = _counts(doc, items)
    fired = []
    for x in items:
        n, t = counts.get(x, 0), doc.title_count(x)
        if n or t:
            fired.append(_evidence_item(x, n, t, boost))
    return fired


def _evaluate(topic: Topic, doc: _Text, rules: RuleSet) -> tuple[bool, float, dict[str, Any]]:
    boost = rules.title_boost
    score = 0.0
    required: list[dict[str, Any]] = []
    missing: list[str] = []
    for g in topic.required:
        matched = _fired(doc, g.items, boost)
        score += sum(ev["score"] for ev in matched)
        total = sum(ev["count"] + ev["title"] for ev in matched)
        ok = total >= g.min_count
        if not ok:
            missing.append(g.name)
        required.append({"group": g.name, "min_count": g.min_count, "count": total, "matched": matched,
                         "ok": ok})
    supporting = _fired(doc, topic.supporting, boost)
    score += sum(ev["score"] for ev in supporting)
    excluded = [x.ref for x in topic.exclude if doc.spans(x) or doc.title_count(x)]
    score = round(score, 3)
    passed = not missing and not excluded and score >= topic.threshold
    evidence = {"score": score, "threshold": topic.threshold, "required": required,
                "supporting": supporting, "rules_version": rules.version}
    if missing:
        evidence["missing_groups"] = missing
    if excluded:
        evidence["excluded_by"] = excluded
    if topic.language != RULES_LANGUAGE:
        evidence["language"] = topic.language
    return passed, score, evidence


def explain(text: str, mentions: Sequence[Mention], rules: RuleSet, *,
            title: str | None = None, language: str | None = RULES_LANGUAGE) -> dict[str, dict[str, Any]]:
    """Evidence for every topic written for `language`, tagged or not ("passed"): for debugging rules."""
    doc = _Text(text, mentions, title)
    out = {}
    for topic in rules.for_language(language):
        passed, _, evidence = _evaluate(topic, doc, rules)
        out[topic.slug] = {"passed": passed, **evidence}
    return out


def tag_topics(text: str, mentions: Sequence[Mention], rules: RuleSet, *,
               title: str | None = None, language: str | None = RULES_LANGUAGE) -> list[TopicTag]:
    """The topics this article is about, best first, each with its score and evidence. Only the
    rules written for the article's `language` are tried: none, for a language without any."""
    doc = _Text(text, mentions, title)
    tags = []
    for topic in rules.for_language(language):
        passed, score, evidence = _evaluate(topic, doc, rules)
        if passed:
            tags.append(TopicTag(slug=topic.slug, score=score, evidence=evidence))
    tags.sort(key=lambda t: (-t.score, t.slug))
    return tags
