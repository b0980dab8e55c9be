"""Topic tagging: explainable, user-editable rules over an article's terms and entities.

The rules live in a YAML file (pipeline/data/topics.yaml by default, NEWSROOM_TOPICS to use
another; its header documents the format). A topic is tagged when every one of its required
groups matches, no exclusion matches, and its score reaches its threshold. Each tag carries
the evidence: which items matched, how often, and what they added to the score.

Pure: text and mentions in, `TopicTag` records out.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.config import read_yaml
from pipeline.errors import ConfigError
from pipeline.records import Mention, TopicDef, TopicTag
from pipeline.text import fold, name_key

log = logging.getLogger(__name__)

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LABEL_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TOP_FIELDS = {"topics", "title_boost"}
_TOPIC_FIELDS = {"slug", "name", "description", "threshold", "required", "supporting", "exclude"}
_GROUP_FIELDS = {"name", "terms", "entities", "min_count", "weight"}
_LIST_FIELDS = {"terms", "entities"}


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


@dataclass(frozen=True, slots=True)
class RuleSet:
    topics: tuple[Topic, ...]
    version: str  # short hash of the file's bytes
    path: Path | None = None
    title_boost: float = 1.0  # a title match adds this times the item's weight, once


class _Err:
    """Builds ConfigErrors that name the file, topic and field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, topic: str | None, fld: str | None, message: str) -> ConfigError:
        where = [str(self.path)]
        if topic is not None:
            where.append(f"topic {topic}")
        if fld is not None:
            where.append(f"field {fld!r}")
        return ConfigError(f"{': '.join(where)}: {message} (topic rules; NEWSROOM_TOPICS selects the file)")


def _number(err: _Err, topic: str, fld: str, value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise err(topic, fld, f"must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise err(topic, fld, f"must be at least {minimum}, got {value!r}")
    return float(value)


def _item(err: _Err, topic: str, fld: str, kind: str, value: Any, weight: float = 1.0) -> Item:
    if not isinstance(value, str) or not value.strip():
        raise err(topic, fld, f"items must be non-empty strings, got {value!r}")
    value = value.strip()
    if kind == "entities":
        if value.startswith("label:"):
            label = value[len("label:"):].strip()
            if not _LABEL_RE.match(label):
                raise err(topic, fld, f"{value!r}: a label must be upper case, like label:WEAPON")
            return Item("label", label, label, weight)
        key = name_key(value)
        if not key:
            raise err(topic, fld, f"entity {value!r} has no letters or digits")
        return Item("entity", value, key, weight)
    body = value[:-1] if value.endswith("*") else value
    if "*" in body or not any(c.isalnum() for c in body):
        raise err(topic, fld, f"term {value!r}: needs letters or digits; '*' is allowed only at the end")
    return Item("term", value, fold(value), weight)


def _items(err: _Err, topic: str, fld: str, raw: Any, *, weighted: bool) -> list[Item]:
    """`raw` is a mapping (section) with optional `terms` and `entities`, each a list of
    strings or (if weighted) a mapping string -> weight."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise err(topic, fld, "must be a mapping with 'terms' and/or 'entities'")
    unknown = set(raw) - _LIST_FIELDS
    if unknown:
        raise err(topic, f"{fld}.{sorted(map(str, unknown))[0]}", "unknown field; use 'terms' or 'entities'")
    out: list[Item] = []
    for kind in ("terms", "entities"):
        values = raw.get(kind)
        f = f"{fld}.{kind}"
        if values is None:
            continue
        if weighted and isinstance(values, dict):
            for v, w in values.items():
                weight = _number(err, topic, f"{f}.{v}", w)
                if weight == 0:
                    raise err(topic, f"{f}.{v}", "a weight of 0 does nothing; remove the item")
                out.append(_item(err, topic, f, kind, v, weight))
        elif isinstance(values, list):
            out.extend(_item(err, topic, f, kind, v) for v in values)
        else:
            raise err(topic, f, "must be a list" + (" or a mapping of item: weight" if weighted else ""))
    return out


def _topic(err: _Err, i: int, raw: Any) -> Topic:
    label = f"#{i}"
    if not isinstance(raw, dict):
        raise err(label, None, "must be a mapping with slug, name, threshold, required")
    slug = raw.get("slug")
    if not isinstance(slug, str) or not _SLUG_RE.match(slug):
        raise err(label, "slug", f"must be lower-case words joined by hyphens, got {slug!r}")
    t = repr(slug)
    unknown = set(raw) - _TOPIC_FIELDS
    if unknown:
        raise err(t, sorted(map(str, unknown))[0], f"unknown field; allowed: {', '.join(sorted(_TOPIC_FIELDS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise err(t, "name", "must be a non-empty string")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise err(t, "description", "must be a string")
    if "threshold" not in raw:
        raise err(t, "threshold", "is required (the score a matching article must reach)")
    threshold = _number(err, t, "threshold", raw["threshold"], minimum=0)
    req = raw.get("required")
    if not isinstance(req, list) or not req:
        raise err(t, "required", "must be a non-empty list of groups (each: terms and/or entities)")
    groups: list[Group] = []
    for g, graw in enumerate(req, 1):
        f = f"required[{g}]"
        if not isinstance(graw, dict):
            raise err(t, f, "must be a mapping with 'terms' and/or 'entities'")
        unknown = set(graw) - _GROUP_FIELDS
        if unknown:
            raise err(t, f"{f}.{sorted(map(str, unknown))[0]}", f"unknown field; allowed: {', '.join(sorted(_GROUP_FIELDS))}")
        gname = graw.get("name", f"group {g}")
        if not isinstance(gname, str) or not gname.strip():
            raise err(t, f"{f}.name", "must be a non-empty string")
        min_count = graw.get("min_count", 1)
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise err(t, f"{f}.min_count", f"must be a whole number of at least 1, got {min_count!r}")
        weight = _number(err, t, f"{f}.weight", graw.get("weight", 1.0), minimum=0)
        items = [Item(x.kind, x.value, x.key, weight)
                 for x in _items(err, t, f, {k: graw[k] for k in _LIST_FIELDS if k in graw}, weighted=False)]
        if not items:
            raise err(t, f, "needs at least one term or entity")
        groups.append(Group(gname.strip(), tuple(items), min_count))
    supporting = _items(err, t, "supporting", raw.get("supporting"), weighted=True)
    exclude = _items(err, t, "exclude", raw.get("exclude"), weighted=False)
    # Within one list an item once; an item may be both required and supporting (it then
    # scores in both), but never both wanted and excluded.
    wanted: set[tuple[str, str]] = set()
    for where, items in [*((f"required[{k}]", g.items) for k, g in enumerate(groups, 1)),
                         ("supporting", supporting), ("exclude", exclude)]:
        keys = [(x.kind, x.key) for x in items]
        for x, k in zip(items, keys, strict=True):
            if keys.count(k) > 1:
                raise err(t, where, f"{x.ref!r} is listed twice")
            if where == "exclude" and k in wanted:
                raise err(t, where, f"{x.ref!r} is both wanted and excluded")
        wanted.update(keys)
    return Topic(slug, name.strip(), " ".join(description.split()), threshold, tuple(groups),
                 tuple(supporting), tuple(exclude))


def load_rules(path: Path) -> RuleSet:
    """Read and validate a topic rules file. Raises ConfigError naming file, topic and field."""
    path = Path(path)
    err = _Err(path)
    raw, data = read_yaml(path, what="topic rules", setting="NEWSROOM_TOPICS")
    if not isinstance(data, dict) or not isinstance(data.get("topics"), list) or not data["topics"]:
        raise err(None, "topics", "the file must be a mapping with a non-empty 'topics' list")
    unknown = set(data) - _TOP_FIELDS
    if unknown:
        raise err(None, sorted(map(str, unknown))[0], f"unknown top-level field; allowed: {', '.join(sorted(_TOP_FIELDS))}")
    title_boost = _number(err, "(all)", "title_boost", data.get("title_boost", 1.0), minimum=0)
    topics = [_topic(err, i, t) for i, t in enumerate(data["topics"], 1)]
    slugs = [t.slug for t in topics]
    for s in slugs:
        if slugs.count(s) > 1:
            raise err(repr(s), "slug", "is used by more than one topic")
    return RuleSet(tuple(topics), hashlib.sha256(raw).hexdigest()[:12], path, title_boost)


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
    return passed, score, evidence


def explain(text: str, mentions: Sequence[Mention], rules: RuleSet, *,
            title: str | None = None) -> dict[str, dict[str, Any]]:
    """Evidence for every topic, tagged or not ("passed"): for debugging rules."""
    doc = _Text(text, mentions, title)
    out = {}
    for topic in rules.topics:
        passed, _, evidence = _evaluate(topic, doc, rules)
        out[topic.slug] = {"passed": passed, **evidence}
    return out


def tag_topics(text: str, mentions: Sequence[Mention], rules: RuleSet, *,
               title: str | None = None) -> list[TopicTag]:
    """The topics this article is about, best first, each with its score and evidence."""
    doc = _Text(text, mentions, title)
    tags = []
    for topic in rules.topics:
        passed, score, evidence = _evaluate(topic, doc, rules)
        if passed:
            tags.append(TopicTag(slug=topic.slug, score=score, evidence=evidence))
    tags.sort(key=lambda t: (-t.score, t.slug))
    return tags
