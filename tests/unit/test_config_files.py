"""The shared loader of the user-editable YAML files (pipeline.config_files): every problem in
the feed list, the topic rules or the gazetteer is one ConfigError naming the file, the entry,
the field and the setting; odd or huge input loads or ends in a ConfigError, nothing else."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.feeds import load_feed_list
from pipeline.nlp import load_gazetteer
from pipeline.records import FeedSpec
from pipeline.topics import Topic, load_rules

FEEDS = (load_feed_list, "NEWSROOM_FEEDS")
TOPICS = (load_rules, "NEWSROOM_TOPICS")
GAZETTEER = (load_gazetteer, "NEWSROOM_GAZETTEER")

TOPIC = "  - slug: {slug}\n    name: N\n    threshold: 1\n    required: [{{terms: [x]}}]\n"
ENTRY = "  - name: {name}\n    label: {label}\n"


def _fails(tmp_path: Path, loader, body: str) -> str:
    """The message of the one ConfigError loading `body` gives; it names the file and the setting."""
    load, setting = loader
    path = tmp_path / "config.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and setting in message, message
    assert "\n" not in message and len(message) < 1000, message
    return message


def _has(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, (part, message)


# --- a bad field: file, entry and field named -----------------------------------------------

@pytest.mark.parametrize(("loader", "body", "parts"), [
    (FEEDS, "feeds:\n  - url: https://a.example/rss\n  - url: https://b.example/rss\n    poll_interval: 10",
     ["feed entry 2", "field 'poll_interval'", "at least 60s"]),
    (TOPICS, TOPIC.format(slug="fine") + TOPIC.format(slug="idlib-offensive").replace("[x]", "[x], weight: -2"),
     ["topic 'idlib-offensive'", "field 'required[1].weight'", "at least 0", "-2"]),
    (GAZETTEER, ENTRY.format(name="A", label="ORG") + ENTRY.format(name="B", label="ORG")
     + ENTRY.format(name="Erdoğan", label="person"), ["entry 3 ('Erdoğan')", "field 'label'", "'person'"]),
])
def test_a_bad_field_names_file_entry_and_field(tmp_path, loader, body, parts):
    if loader is not FEEDS:
        body = ("topics:\n" if loader is TOPICS else "entities:\n") + body
    _has(_fails(tmp_path, loader, body), *parts)


@pytest.mark.parametrize(("loader", "body", "parts"), [
    (FEEDS, "feeds:\n  - url: https://a.example/rss\n    interval: 2h", ["feed entry 1", "'interval'"]),
    (FEEDS, "feeds: []\nversion: 2", ["field 'version'", "allowed: feeds"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a") + "    colour: red", ["topic 'a'", "'colour'"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("[x]", "[x], count: 2"),
     ["topic 'a'", "'required[1].count'", "min_count"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a") + "    exclude: {words: [y]}", ["'exclude.words'", "terms"]),
    (GAZETTEER, "entities:\n" + ENTRY.format(name="Acme", label="ORG") + "    qid: Q1",
     ["entry 1 ('Acme')", "'qid'", "wikidata"]),
])
def test_an_unknown_field_is_refused_and_the_allowed_ones_listed(tmp_path, loader, body, parts):
    _has(_fails(tmp_path, loader, body), "unknown field", *parts)


def test_a_misspelt_required_field_is_reported_as_unknown_not_missing(tmp_path):
    body = "topics:\n  - slug: a\n    name: A\n    treshold: 1\n    required: [{terms: [x]}]"
    message = _fails(tmp_path, TOPICS, body)
    _has(message, "'treshold'", "unknown field")
    assert "is required" not in message


# --- wrong types ------------------------------------------------------------------------------

@pytest.mark.parametrize(("loader", "body", "parts"), [
    # a bool is not a number
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("threshold: 1", "threshold: true"),
     ["'threshold'", "number", "True"]),
    (TOPICS, "title_boost: yes\ntopics:\n" + TOPIC.format(slug="a"), ["'title_boost'", "number"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("[x]", "[x], min_count: true"),
     ["'required[1].min_count'", "whole number"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a") + "    supporting: {terms: {y: false}}",
     ["'supporting.terms.y'", "number"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a") + "    supporting: {terms: {y: 0}}",
     ["'supporting.terms.y'", "weight of 0"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("threshold: 1", "threshold: .nan"),
     ["'threshold'", "finite"]),
    (GAZETTEER, "entities:\n" + ENTRY.format(name="Acme", label="ORG") + "    case_sensitive: 1",
     ["'case_sensitive'", "true or false"]),
    # a list is not a string
    (TOPICS, "topics:\n" + TOPIC.format(slug="[a]"), ["topic #1", "'slug'"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("name: N", "name: [N]"), ["'name'", "string"]),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("[x]", "[[x]]"), ["'required[1].terms", "string"]),
    (GAZETTEER, "entities:\n" + ENTRY.format(name="[Acme]", label="ORG"), ["entry 1", "'name'", "string"]),
    (GAZETTEER, "entities:\n" + ENTRY.format(name="Acme", label="[ORG]"), ["'label'", "upper-case"]),
    (GAZETTEER, "entities:\n" + ENTRY.format(name="Acme", label="ORG") + "    aliases: [[A]]",
     ["field 'aliases[1]'", "string"]),
    (GAZETTEER, "entities:\n" + ENTRY.format(name="Acme", label="ORG") + "    wikidata: [Q1]",
     ["'wikidata'", "Q123"]),
    (FEEDS, "feeds:\n  - url: [https://a.example/rss]", ["feed entry 1", "'url'", "string"]),
    (FEEDS, "feeds:\n  - url: https://a.example/rss\n    tags: [[a]]", ["field 'tags[1]'", "string"]),
    # not empty, once stripped
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("name: N", "name: '  '"), ["'name'", "non-empty"]),
])
def test_a_wrong_type_is_refused(tmp_path, loader, body, parts):
    _has(_fails(tmp_path, loader, body), *parts)


@pytest.mark.parametrize("loader", [FEEDS, TOPICS, GAZETTEER])
@pytest.mark.parametrize("body", ["just a string", "42", "", "~", "true", "2024-01-01"])
def test_a_file_that_is_not_a_mapping_or_list_is_refused(tmp_path, loader, body):
    _has(_fails(tmp_path, loader, body), "the file must be")


@pytest.mark.parametrize(("loader", "parts"), [(TOPICS, ["'topics'"]), (GAZETTEER, ["'entities' list"])])
def test_a_list_at_the_top_is_refused_where_a_mapping_is_wanted(tmp_path, loader, parts):
    _has(_fails(tmp_path, loader, "- name: X\n  label: ORG\n"), "the file must be", *parts)


# --- the records that leave the loaders ---------------------------------------------------------

def test_loaders_return_the_frozen_records(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- https://a.example/rss\n")
    (feed,) = load_feed_list(path)
    path.write_text("topics:\n" + TOPIC.format(slug="a"))
    (topic,) = load_rules(path).topics
    path.write_text("entities:\n" + ENTRY.format(name="Acme", label="ORG"))
    (entry,) = load_gazetteer(path).entries
    assert isinstance(feed, FeedSpec) and isinstance(topic, Topic)
    for record in (feed, topic, topic.required[0], topic.required[0].items[0], entry):
        assert dataclasses.is_dataclass(record)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, dataclasses.fields(record)[0].name, "changed")


def test_a_feed_listed_twice_is_kept_once_with_a_warning_naming_file_and_entry(tmp_path, caplog):
    path = tmp_path / "feeds.yaml"
    path.write_text("- https://a.example/rss\n- {url: https://b.example/rss}\n- https://A.example/rss#x\n")
    with caplog.at_level(logging.WARNING, logger="pipeline.feeds"):
        assert [f.url for f in load_feed_list(path)] == ["https://a.example/rss", "https://b.example/rss"]
    assert f"{path}: feed entry 3: https://a.example/rss is listed twice" in caplog.text


# --- huge and odd input -------------------------------------------------------------------------

def _many(loader, n: int) -> str:
    if loader is FEEDS:
        return "feeds:\n" + "".join(f"  - url: https://h{i}.example/rss\n" for i in range(n))
    if loader is TOPICS:
        return "topics:\n" + "".join(f"- {{slug: t{i}, name: T, threshold: 1, required: [{{terms: [x{i}]}}]}}\n"
                                     for i in range(n))
    return "entities:\n" + "".join(f"- {{name: E{i}, label: ORG, aliases: [Alias {i}]}}\n" for i in range(n))


@pytest.mark.parametrize("loader", [FEEDS, TOPICS, GAZETTEER])
def test_ten_thousand_entries_load_and_a_bad_last_one_is_named(tmp_path, loader):
    load, _ = loader
    path = tmp_path / "big.yaml"
    path.write_text(_many(loader, 10_000))
    loaded = load(path)
    assert len(getattr(loaded, "topics", getattr(loaded, "entries", loaded))) == 10_000
    if loader is not TOPICS:  # (the slowest to parse; the naming is shared)
        entry = {FEEDS: "feed entry 10001", GAZETTEER: "entry 10001"}[loader]
        bad = {FEEDS: "  - url: 3\n", GAZETTEER: "- {name: 3}\n"}[loader]
        _has(_fails(tmp_path, loader, _many(loader, 10_000) + bad), entry)


@pytest.mark.parametrize("loader", [FEEDS, TOPICS, GAZETTEER])
@pytest.mark.parametrize("depth", [50, 100_000])
def test_a_deeply_nested_value_is_a_config_error(tmp_path, loader, depth):
    nested = "[" * depth + "]" * depth
    body = {FEEDS: f"feeds:\n  - url: {nested}\n", TOPICS: "topics:\n" + TOPIC.format(slug="a") + f"    supporting: {nested}",
            GAZETTEER: "entities:\n" + ENTRY.format(name="A", label=nested)}[loader]
    _fails(tmp_path, loader, body)


@pytest.mark.parametrize(("loader", "body"), [
    # an alias to itself: a list that contains itself
    (GAZETTEER, "entities:\n  - &e {name: A, label: ORG, aliases: [*e]}\n"),
    (TOPICS, "topics: &t [*t]\n"),
    # numbers no float holds, and too many digits for Python to read
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("threshold: 1", "threshold: 1" + "0" * 400)),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("threshold: 1", "threshold: 1" + "0" * 5000)),
    (FEEDS, "feeds:\n  - url: https://a.example/rss\n    poll_interval: " + "9" * 5000 + "d"),
    # keys that are not strings, a date where a string is wanted, a megabyte of one word
    (GAZETTEER, "entities:\n  - {name: A, label: ORG, 7: x}\n"),
    (FEEDS, "feeds:\n  - {url: https://a.example/rss, [1, 2]: x}\n"),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a").replace("name: N", "name: 2024-01-01")),
    (GAZETTEER, "entities:\n" + ENTRY.format(name="A", label="org" * 400_000)),
    (TOPICS, "topics:\n" + TOPIC.format(slug="a") + "    " + "x" * 1_000_000 + ": 1"),
])
def test_odd_input_is_a_config_error(tmp_path, loader, body):
    _fails(tmp_path, loader, body)


# --- any document: loads or a ConfigError ----------------------------------------------------------

_WORDS = ["url", "name", "tags", "poll_interval", "feeds", "topics", "slug", "threshold", "required", "terms",
          "entities", "supporting", "exclude", "min_count", "weight", "title_boost", "label", "aliases", "wikidata",
          "case_sensitive", "description"]
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
            | st.sampled_from(["x", "a-b", "GPE", "Q7", "label:WEAPON", "https://a.example/rss", "15m", "x*", " "]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.sampled_from(_WORDS) | st.text(max_size=6), inner, max_size=5),
                       max_leaves=25)
_VALID = {
    FEEDS: {"feeds": ["https://a.example/rss", {"url": "https://b.example/rss", "name": "B", "tags": ["t"],
                                                 "poll_interval": "2h"}]},
    TOPICS: {"title_boost": 1.0, "topics": [{
        "slug": "a", "name": "A", "threshold": 1, "required": [{"terms": ["x", "y*"], "entities": ["E"]}],
        "supporting": {"terms": {"s": 2}, "entities": ["label:WEAPON"]}, "exclude": {"terms": ["z"]}}]},
    GAZETTEER: {"entities": [{"name": "Acme", "label": "ORG", "wikidata": "Q5", "aliases": ["Acme Corp"],
                              "case_sensitive": True}, {"name": "F-35", "label": "WEAPON"}]},
}


def _loads_or_config_error(loader, document) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        try:
            loader[0](path)
        except ConfigError as exc:
            assert str(path) in str(exc) and loader[1] in str(exc)


_SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_SETTINGS
@given(loader=st.sampled_from([FEEDS, TOPICS, GAZETTEER]), document=_VALUES)
def test_any_document_loads_or_is_a_config_error(loader, document):
    _loads_or_config_error(loader, document)


@_SETTINGS
@given(loader=st.sampled_from([FEEDS, TOPICS, GAZETTEER]), key=st.sampled_from(_WORDS), value=_VALUES,
       where=st.integers(0, 3))
def test_any_value_in_a_valid_file_loads_or_is_a_config_error(loader, key, value, where):
    document = yaml.safe_load(yaml.safe_dump(_VALID[loader]))  # a deep copy
    entries = document[{FEEDS: "feeds", TOPICS: "topics", GAZETTEER: "entities"}[loader]]
    targets = [document, entries[-1] if isinstance(entries[-1], dict) else document]
    if loader is TOPICS:
        targets += [entries[0]["required"][0], entries[0]["supporting"]]
    targets[where % len(targets)][key] = value
    _loads_or_config_error(loader, document)
