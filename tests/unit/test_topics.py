"""Topic rules: the shipped rules on short handwritten articles (each topic tags its article and
not a near-miss), the matching semantics on tiny rule files, and the validation errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipeline import nlp
from pipeline.config import PACKAGE_DATA, Settings
from pipeline.errors import ConfigError
from pipeline.records import Mention, TopicDef
from pipeline.topics import explain, load_rules, tag_topics, topic_defs

MODEL = Settings().spacy_model
GAZETTEER = PACKAGE_DATA / "gazetteer.yaml"
TOPICS = PACKAGE_DATA / "topics.yaml"

# --- handwritten articles: (title, body) ---------------------------------------------------

IDLIB_POS = ("Thousands flee as Syrian forces push into Idlib", """Syrian government forces backed by Russian warplanes pressed their offensive in Idlib province on Tuesday, capturing two villages south of Maarat al-Numan, according to the Syrian Observatory for Human Rights. Air strikes and artillery shelling hit the town of Saraqib overnight, killing at least nine civilians, the White Helmets rescue group said.

Idlib is the last major rebel stronghold in Syria and is dominated by Hayat Tahrir al-Sham, a jihadist alliance led by former al-Qaeda affiliates. The region is meant to be protected by a de-escalation zone agreed by Russia and Turkey in Sochi in 2018, and Turkey maintains 12 observation posts there.

The United Nations says more than 200,000 people have fled their homes since December, most of them heading north towards the Turkish border, where camps are already overcrowded.""")
NE_SYRIA = ("Turkey and Russia begin joint patrols in northeast Syria", """Turkish and Russian troops began joint patrols on Friday along a stretch of the Syrian border east of the Euphrates, under a deal that halted Turkey's offensive against the Kurdish YPG militia. The patrols near Kobani and Qamishli passed without incident, the Turkish Defence Ministry said.

Kurdish fighters have withdrawn 30 kilometres from the frontier, according to Moscow, although the Syrian Democratic Forces say clashes continue around Tal Abyad. Separately, officials said talks on Idlib would resume next month.""")
WEATHER = ("Cold snap to bring snow to the Levant", """Heavy rain and snow are forecast across the Levant this weekend. Syria's meteorological department expects temperatures to drop below freezing in Aleppo, Idlib, Hama and Homs, with up to 40 millimetres of rain on the coast around Latakia.

Snow may settle on higher ground in Idlib on Sunday, and drivers have been told to take care on mountain roads. Temperatures should recover by Wednesday.""")
S400_POS = ("US warns Turkey of sanctions as S-400 deliveries continue", """The United States has warned Turkey that it faces sanctions under CAATSA after Ankara took delivery of a second batch of Russian S-400 missile systems. Washington suspended Turkey from the F-35 programme in July, saying the Russian system was incompatible with NATO equipment and could be used to gather data on the stealth fighter.

Turkish companies that make parts for the F-35 are being removed from the supply chain, the Pentagon said. President Recep Tayyip Erdoğan has said Turkey could buy Russian Su-35 or Su-57 jets if Washington does not sell it the F-35. Defence Minister Hulusi Akar said the S-400s would be activated next year.""")
INDIA_S400 = ("India to receive first S-400 despite sanctions risk", """India expects to receive the first of five S-400 air defence systems by 2021, Russian officials said on Monday, despite the risk of US sanctions under CAATSA. New Delhi signed the $5.4 billion deal with Moscow in 2018 and has already made an advance payment.

The United States has said it has not decided whether to grant India a waiver. India's air force says the long-range S-400 is needed to counter threats from China and Pakistan.""")
RT_DEF_POS = ("Russia and Turkey in talks on joint production of S-400 parts", """Russia and Turkey are negotiating a new contract for a second batch of S-400 systems that would include technology transfer and joint production of some components, the head of Russia's Federal Service for Military-Technical Cooperation, Dmitry Shugaev, said at the MAKS air show near Moscow.

Rosoboronexport has also offered Ankara the Su-35 and the Su-57 fighter jets, and Turkish officials inspected the aircraft during the show. Ismail Demir, head of Turkey's Presidency of Defence Industries, said Turkey wanted localisation of production rather than an off-the-shelf purchase. Military-technical cooperation between the two countries has grown since Turkey signed the $2.5 billion S-400 deal in 2017.""")
TURKSTREAM = ("Putin and Erdogan open TurkStream gas pipeline", """Vladimir Putin and Recep Tayyip Erdoğan on Wednesday inaugurated the TurkStream pipeline, which carries Russian natural gas under the Black Sea to Turkey and on to southern Europe.

The two leaders also discussed the Akkuyu nuclear power plant that Rosatom is building on Turkey's Mediterranean coast, and the return of Russian tourists, who made up the largest group of visitors to Turkish resorts last year. Erdogan said annual trade between the two countries should reach $100 billion.""")
FOOTBALL = ("Syria beat the Maldives in World Cup qualifier", """Syria's national football team beat the Maldives 2-1 on Tuesday to stay top of their World Cup qualifying group. Omar Al Somah scored twice for the visitors in the first half.

The Syrians, who play their home games in the United Arab Emirates, travel to Damascus next month for a friendly, their first match in the capital for eight years. Coach Fajr Ibrahim praised his players' discipline.""")
WHITE_HOUSE = ("Erdogan to visit White House despite tensions", """President Donald Trump will host Recep Tayyip Erdoğan at the White House on November 13, the Turkish presidency said, despite tensions between the NATO allies over Turkey's offensive in northern Syria and its purchase of Russian S-400 missiles. Trump invited Erdogan during a phone call last month.

Relations between Washington and Ankara have been strained by US support for the Kurdish YPG, the case against the state-owned Halkbank in New York and Turkey's demand for the extradition of the cleric Fethullah Gülen. Mr. Trump has threatened to destroy Turkey's economy with sanctions if it crossed a line in Syria.""")
MARKETS = ("Stocks slide as Trump says China deal can wait", """Stocks fell on Wall Street on Tuesday after President Donald Trump said a trade deal with China could wait until after the 2020 election. The Dow Jones Industrial Average closed down 1 percent, and the S&P 500 lost 0.7 percent.

Markets in Europe also declined, as did emerging-market currencies from Turkey to Brazil. Yields on 10-year US Treasury notes fell to 1.78 percent as investors bought safer assets.""")
AIRSHOW = ("Dubai Airshow: UAE signs $1 billion in deals for drones and missiles", """The United Arab Emirates signed contracts worth more than $1 billion on the second day of the Dubai Airshow, including an order for guided missiles from Raytheon and a purchase of Chinese-made drones, officials said.

Lockheed Martin used the show to promote the F-35, which the UAE has long sought to buy, while Russia's Rosoboronexport displayed the Su-35 and the Su-57 for export customers. Arms exports to the Gulf have risen sharply over the past decade.""")
AEGEAN = ("Greek and Turkish jets in mock dogfight over Aegean", """Greek F-16 fighter jets intercepted two Turkish F-16s over the Aegean on Monday, the Greek defence ministry said, in the latest of a series of mock dogfights between the NATO allies.

The Turkish jets entered the Athens flight information region without filing flight plans and were identified and intercepted, the ministry said. No shots were fired and both pairs of aircraft returned to base.""")

FIXTURES: dict[str, tuple[str, str]] = {
    "idlib_offensive": IDLIB_POS, "northeast_syria_patrols": NE_SYRIA, "levant_weather": WEATHER,
    "s400_sanctions": S400_POS, "india_s400": INDIA_S400, "russia_turkey_joint_production": RT_DEF_POS,
    "turkstream": TURKSTREAM, "syria_football": FOOTBALL, "white_house_visit": WHITE_HOUSE,
    "markets": MARKETS, "dubai_airshow": AIRSHOW, "aegean_dogfight": AEGEAN,
}

# Each shipped topic: the article it must tag, and near-misses it must not.
CASES = [
    ("idlib-conflict", "idlib_offensive", ["northeast_syria_patrols", "levant_weather"]),
    ("s400-f35-dispute", "s400_sanctions", ["india_s400", "russia_turkey_joint_production"]),
    ("russia-turkey-defence-cooperation", "russia_turkey_joint_production", ["turkstream", "white_house_visit"]),
    ("syria-war", "northeast_syria_patrols", ["syria_football", "levant_weather"]),
    ("us-turkey-relations", "white_house_visit", ["markets", "aegean_dogfight"]),
    ("arms-trade", "dubai_airshow", ["aegean_dogfight", "turkstream"]),
]


@pytest.fixture(scope="module")
def rules():
    return load_rules(TOPICS)


@pytest.fixture(scope="module")
def mentions() -> dict[str, list[Mention]]:
    """Entities of every fixture article, from the real pipeline (loaded once per process)."""
    names = list(FIXTURES)
    tagged = nlp.tag_entities([FIXTURES[n][1] for n in names], model=MODEL, gazetteer=GAZETTEER)
    return dict(zip(names, tagged, strict=True))


def _slugs(name, rules, mentions) -> set[str]:
    title, body = FIXTURES[name]
    return {t.slug for t in tag_topics(body, mentions[name], rules, title=title)}


# --- the shipped rules --------------------------------------------------------------------

def test_shipped_rules_load_with_every_topic(rules):
    assert {t.slug for t in rules.topics} >= {
        "idlib-conflict", "s400-f35-dispute", "russia-turkey-defence-cooperation",
        "syria-war", "us-turkey-relations", "arms-trade"}
    assert len(rules.version) == 12 and int(rules.version, 16) >= 0
    defs = topic_defs(rules)
    assert all(isinstance(d, TopicDef) and d.rules_version == rules.version and d.name and d.description
               for d in defs)
    assert [d.slug for d in defs] == [t.slug for t in rules.topics]


@pytest.mark.parametrize(("slug", "positive", "near_misses"), CASES, ids=[c[0] for c in CASES])
def test_topic_tags_its_article_and_not_the_near_misses(slug, positive, near_misses, rules, mentions):
    assert slug in _slugs(positive, rules, mentions)
    for name in near_misses:
        assert slug not in _slugs(name, rules, mentions), name


def test_idlib_in_passing_is_not_the_idlib_conflict(rules, mentions):
    # One "Idlib" in a story about the northeast: the place group wants two mentions.
    title, body = FIXTURES["northeast_syria_patrols"]
    ev = explain(body, mentions["northeast_syria_patrols"], rules, title=title)["idlib-conflict"]
    assert not ev["passed"] and ev["missing_groups"] == ["Idlib area"]
    # A weather report names Idlib twice, but nothing is fighting there.
    title, body = FIXTURES["levant_weather"]
    ev = explain(body, mentions["levant_weather"], rules, title=title)["idlib-conflict"]
    assert not ev["passed"] and ev["missing_groups"] == ["fighting"]
    # Without the entities (terms only) the passing mention is still not enough.
    title, body = FIXTURES["levant_weather"]
    assert "idlib-conflict" not in {t.slug for t in tag_topics(body, [], rules, title=title)}


def test_an_article_can_have_several_topics_best_first(rules, mentions):
    title, body = FIXTURES["s400_sanctions"]
    tags = tag_topics(body, mentions["s400_sanctions"], rules, title=title)
    slugs = [t.slug for t in tags]
    assert slugs[0] == "s400-f35-dispute"
    assert {"us-turkey-relations", "arms-trade"} <= set(slugs)
    assert [t.score for t in tags] == sorted((t.score for t in tags), reverse=True)


def test_evidence_explains_the_tag(rules, mentions):
    title, body = FIXTURES["idlib_offensive"]
    tag = next(t for t in tag_topics(body, mentions["idlib_offensive"], rules, title=title)
               if t.slug == "idlib-conflict")
    ev = tag.evidence
    json.dumps(ev)  # stored as JSON
    assert ev["threshold"] == 7 and ev["score"] == tag.score >= 7
    assert ev["rules_version"] == rules.version
    groups = {g["group"]: g for g in ev["required"]}
    assert set(groups) == {"Idlib area", "fighting"} and all(g["ok"] for g in groups.values())
    place = {m["item"]: m for m in groups["Idlib area"]["matched"]}
    # "Idlib province" counts once, as the governorate, not also as "Idlib".
    assert place["entity:Idlib Governorate"]["count"] == 1
    assert place["entity:Idlib"]["count"] == 1 and place["entity:Idlib"]["title"] == 1
    assert {"entity:Maarat al-Numan", "entity:Saraqib"} <= set(place)
    supporting = {s["item"]: s for s in ev["supporting"]}
    assert supporting["term:de-escalation zone*"] == {
        "item": "term:de-escalation zone*", "count": 1, "title": 0, "weight": 2.0, "score": 2.0}
    assert "term:observation post*" in supporting and "entity:Hayat Tahrir al-Sham" in supporting


# --- matching semantics on small rule files -----------------------------------------------

def _rules(tmp_path: Path, body: str, name: str = "t.yaml"):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return load_rules(path)


SIMPLE = """
topics:
  - slug: t
    name: T
    threshold: 0
    required:
      - terms: [{terms}]
"""


def _tag(tmp_path, terms: str, text: str, *, title: str | None = None, mentions=()):
    r = _rules(tmp_path, SIMPLE.format(terms=terms))
    return tag_topics(text, list(mentions), r, title=title)


@pytest.mark.parametrize(("term", "text", "hit"), [
    ("idlib", "Shelling in IDLIB continued.", True),  # case
    ("idlib", "The Idlibi refugees.", False),  # word boundary
    ("erdogan", "President Erdoğan spoke.", True),  # accents in the text
    ("erdoğan", "President Erdogan spoke.", True),  # accents in the term
    ("cavusoglu", "Mevlüt Çavuşoğlu said.", True),
    ("airstrike*", "Two airstrikes hit the town.", True),  # trailing wildcard
    ("airstrike", "Two airstrikes hit the town.", False),
    ("air strike", "An air-strike hit the town.", True),  # space matches a hyphen
    ("de-escalation zone", "the deescalation zone", True),  # hyphen optional
    ("de-escalation zone", "the de escalation zone", True),
    ("ma'arrat al-nu'man", "fighting near Maarrat al-Numan", True),  # apostrophe optional
    ("s-400", "two S-400s", False),
    ("s-400", "the S-400, Turkey said", True),
    ("nato", "renovation", False),
])
def test_term_matching(tmp_path, term, text, hit):
    assert bool(_tag(tmp_path, json.dumps(term), text)) is hit


def test_repeats_have_diminishing_returns_and_titles_weigh_more(tmp_path):
    def score(text, title=None):
        (tag,) = _tag(tmp_path, "siege", text, title=title)
        return tag.score

    one, two, four = score("the siege."), score("the siege. the siege."), score("siege " * 4)
    assert one == 1.0 and two == pytest.approx(1 + math.log(2), abs=1e-3)
    assert four == pytest.approx(1 + math.log(4), abs=1e-3)
    assert two - one > four - two - 1e-9 and four < 4  # each repeat adds less
    assert score("the siege.", title="Siege of the town") == 2.0  # title_boost 1.0 adds the weight once


def test_required_groups_min_count_support_threshold_and_exclusions(tmp_path):
    r = _rules(tmp_path, """
title_boost: 2
topics:
  - slug: harbour-strike
    name: Harbour strike
    threshold: 4
    required:
      - name: place
        min_count: 2
        terms: [harbour, port]
      - name: action
        terms: [strike*, walkout]
    supporting:
      terms: {pickets: 2, "dock workers": 1.5, "sunny": -3}
    exclude:
      terms: [fire drill]
""")
    text = "Dock workers began a strike at the harbour. Pickets blocked the port gates."
    (tag,) = tag_topics(text, [], r)
    ev = tag.evidence
    assert ev["required"][0] == {"group": "place", "min_count": 2, "count": 2, "ok": True, "matched": [
        {"item": "term:harbour", "count": 1, "title": 0, "weight": 1.0, "score": 1.0},
        {"item": "term:port", "count": 1, "title": 0, "weight": 1.0, "score": 1.0}]}
    assert [s["item"] for s in ev["supporting"]] == ["term:pickets", "term:dock workers"]
    assert tag.score == pytest.approx(1 + 1 + 1 + 2 + 1.5)
    # One place mention is not enough, whatever the rest scores.
    assert tag_topics("Dock workers began a strike at the harbour. Pickets everywhere.", [], r) == []
    # Below the threshold: a negative weight pulls the score down.
    assert tag_topics("A strike at the harbour and the port. Sunny.", [], r) == []
    ev = explain("A strike at the harbour and the port. Sunny.", [], r)["harbour-strike"]
    assert ev["score"] == pytest.approx(3 - 3) and "missing_groups" not in ev
    # An exclusion vetoes, and says so.
    ev = explain(text + " It was only a fire drill.", [], r)["harbour-strike"]
    assert not ev["passed"] and ev["excluded_by"] == ["term:fire drill"]
    # A title match counts toward min_count and adds title_boost * weight.
    (tag,) = tag_topics("A strike at the port.", [], r, title="Harbour at a standstill")
    # port 1.0 + harbour in the title 2 * 1.0 + strike 1.0
    assert tag.evidence["required"][0]["count"] == 2 and tag.score == pytest.approx(1 + 2 + 1)


def test_entities_and_labels(tmp_path):
    r = _rules(tmp_path, """
topics:
  - slug: jets
    name: Jets
    threshold: 3
    required:
      - entities: [Recep Tayyip Erdoğan]
      - entities: ["label:WEAPON"]
    supporting:
      entities: {Su-35: 2}
""")
    text = "Erdogan said Turkey could buy Su-35 jets or more F-16s."
    su, f16 = text.index("Su-35"), text.index("F-16s")
    m = [Mention(start=0, end=7, surface="Erdogan", label="PERSON", canonical="Recep Tayyip Erdogan"),
         Mention(start=su, end=su + 5, surface="Su-35", label="WEAPON", canonical="Su-35"),
         Mention(start=f16, end=f16 + 5, surface="F-16s", label="WEAPON", canonical="F-16")]
    (tag,) = tag_topics(text, m, r)
    ev = tag.evidence
    # The entity matches on the accent-folded canonical name, not on the surface.
    assert ev["required"][0]["matched"][0]["item"] == "entity:Recep Tayyip Erdoğan"
    assert ev["required"][1]["matched"][0] == {"item": "label:WEAPON", "count": 2, "title": 0,
                                              "weight": 1.0, "score": pytest.approx(1 + math.log(2), abs=1e-3)}
    assert tag.score == pytest.approx(1 + 1 + math.log(2) + 2, abs=1e-3)
    # No mentions, no entity matches: the surface text alone does not count.
    assert tag_topics(text, [], r) == []
    # In a title, an entity counts by its canonical name.
    assert explain("", [], r, title="Recep Tayyip Erdogan visits")["jets"]["required"][0]["count"] == 1


def test_overlaps_count_once_even_after_characters_that_fold_to_more_or_fewer(tmp_path):
    r = _rules(tmp_path, """
topics:
  - slug: idlib
    name: Idlib
    threshold: 0
    required:
      - entities: [Idlib]
        terms: [idlib, idlib province]
""")
    # "ß" folds to two characters and a combining accent to none: the term matches must still
    # land on the entity's offsets in the original text, or the overlap would count twice.
    text = "Große Straße, Café\u0301 — Idlib province. Later: Idlib."
    first, second = text.index("Idlib province"), text.rindex("Idlib")
    m = [Mention(start=first, end=first + 5, surface="Idlib", label="GPE", canonical="Idlib"),
         Mention(start=second, end=second + 5, surface="Idlib", label="GPE", canonical="Idlib")]
    (tag,) = tag_topics(text, m, r)
    matched = {x["item"]: x["count"] for x in tag.evidence["required"][0]["matched"]}
    assert matched == {"term:idlib province": 1, "entity:Idlib": 1}
    assert tag.evidence["required"][0]["count"] == 2


def test_explain_covers_every_topic(rules):
    ev = explain("Nothing to see here.", [], rules)
    assert list(ev) == [t.slug for t in rules.topics]
    assert not any(e["passed"] for e in ev.values())
    assert all(e["missing_groups"] for e in ev.values())


def test_version_is_a_hash_of_the_content(tmp_path):
    a = _rules(tmp_path, SIMPLE.format(terms="a"), "a.yaml")
    b = _rules(tmp_path, SIMPLE.format(terms="a"), "b.yaml")
    c = _rules(tmp_path, SIMPLE.format(terms="b"), "c.yaml")
    assert a.version == b.version != c.version


# --- validation ---------------------------------------------------------------------------

GOOD_TOPIC = """
  - slug: good
    name: Good
    threshold: 1
    required:
      - terms: [x]
"""


@pytest.mark.parametrize(("body", "expected"), [
    ("topics: [\n  - slug: a\n   name: broken", ["not valid YAML", "line"]),
    ("- just a list", ["'topics'"]),
    ("topics: []", ["'topics'"]),
    ("topics:\n  - slug: Bad Slug\n    name: X\n    threshold: 1\n    required: [{terms: [x]}]",
     ["topic #1", "'slug'", "'Bad Slug'"]),
    ("topics:\n  - slug: a\n    name: A\n    treshold: 1\n    required: [{terms: [x]}]",
     ["topic 'a'", "'treshold'", "unknown field"]),
    ("topics:\n  - slug: a\n    name: A\n    required: [{terms: [x]}]", ["topic 'a'", "'threshold'", "is required"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: high\n    required: [{terms: [x]}]",
     ["topic 'a'", "'threshold'", "number"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: []", ["topic 'a'", "'required'"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: [{name: g}]",
     ["topic 'a'", "'required[1]'", "at least one"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: [{terms: x}]",
     ["topic 'a'", "'required[1].terms'", "list"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: [{terms: [x], min_count: 0}]",
     ["'required[1].min_count'"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: [{terms: ['air*strike']}]",
     ["'required[1].terms'", "'*'"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: [{entities: ['label:weapon']}]",
     ["'required[1].entities'", "upper case"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: [{terms: [x]}]\n"
     "    supporting: {terms: {y: heavy}}", ["topic 'a'", "'supporting.terms.y'", "number"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: [{terms: [x]}]\n"
     "    exclude: {terms: [x]}", ["topic 'a'", "'exclude'", "wanted and excluded"]),
    ("topics:\n  - slug: a\n    name: A\n    threshold: 1\n    required: [{terms: [x, X]}]",
     ["'required[1]'", "twice"]),
    ("topics:\n" + GOOD_TOPIC + GOOD_TOPIC, ["topic 'good'", "'slug'", "more than one"]),
])
def test_bad_rules_name_the_file_topic_and_field(tmp_path, body, expected):
    path = tmp_path / "bad_topics.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message and "NEWSROOM_TOPICS" in message
    for part in expected:
        assert part in message


def test_missing_rules_file(tmp_path):
    with pytest.raises(ConfigError, match="NEWSROOM_TOPICS"):
        load_rules(tmp_path / "nope.yaml")
