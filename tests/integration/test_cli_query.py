"""`newsroom search | topics | entities | article | report` as a user runs them: formats, exit
codes (0 found, 1 nothing found, 2 bad input) and one-line errors without tracebacks."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from test_views import build_corpus

from pipeline.cli import main
from pipeline.cli_query import COMMANDS

# Until the lead registers them in pipeline/cli.py.
for _command in COMMANDS:
    if _command.name not in main.commands:
        main.add_command(_command)


@pytest.fixture
def run(db_dsn, tmp_path):
    env = {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path / "state"),
           "NEWSROOM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def corpus(conn):
    return build_corpus(conn)


def _one_line_error(result, code: int, *needles: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


# --- search ---------------------------------------------------------------------------------

def test_search_table_json_and_csv(run, corpus):
    table = run("search", "S-400 sanctions")
    assert table.exit_code == 0, table.stderr
    assert "Turkey says S-400 deliveries will go ahead" in table.stdout and "Daily Sabah" in table.stdout
    assert "sanctions" in table.stdout and "<b>" not in table.stdout  # highlights rendered, not raw tags

    as_json = run("search", "S-400", "--format", "json", "--limit", "2")
    assert as_json.exit_code == 0
    rows = json.loads(as_json.stdout)
    assert len(rows) == 2 and {r["id"] for r in rows} == {corpus.ids["a1"], corpus.ids["a3"]}
    assert rows[0]["published_at"].startswith("20") and "<b>" in rows[0]["snippet"]

    as_csv = run("search", "Idlib", "--format", "csv", "--topic", "syria-war", "--since", "30d")
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {int(r["id"]) for r in rows} == {corpus.ids["a2"], corpus.ids["a4"]}
    assert rows[0]["topics"].count(";") == 1  # arrays as "a; b"


def test_search_filters_by_entity(run, corpus):
    result = run("search", "Idlib", "--entity", "Bashar al-Assad", "--format", "json")
    assert [r["id"] for r in json.loads(result.stdout)] == [corpus.ids["a4"]]


def test_search_with_no_results_exits_1_and_keeps_stdout_parseable(run, corpus):
    result = run("search", "zeppelin", "--format", "json")
    _one_line_error(result, 1, "no articles match 'zeppelin'")
    assert json.loads(result.stdout) == []
    assert run("search", "zeppelin").stdout == ""
    result = run("search", "Idlib", "--since", "1h")
    _one_line_error(result, 1, "no articles match", "since")


def test_search_errors_are_one_line_with_the_right_exit_code(run, corpus):
    _one_line_error(run("search", "Idlib", "--topic", "nope"), 1, "unknown topic 'nope'", "idlib-conflict")
    _one_line_error(run("search", "Idlib", "--entity", "Nobody Atall"), 1, "unknown entity")
    _one_line_error(run("search", "Idlib", "--since", "last tuesday"), 2, "--since", "2019-10-01")
    _one_line_error(run("search", "   "), 2, "empty")
    assert run("search", "Idlib", "--limit", "0").exit_code == 2  # click's own range check
    assert run("search", "Idlib", "--format", "xml").exit_code == 2


def test_sql_looking_search_is_just_text(run, corpus, conn):
    result = run("search", "'; DROP TABLE articles; --", "--format", "json")
    assert result.exit_code == 0
    assert [r["id"] for r in json.loads(result.stdout)] == [corpus.ids["a6"]]
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 7


# --- topics ---------------------------------------------------------------------------------

def test_topics_table_json_csv(run, corpus):
    table = run("topics", "--since", "7d")
    assert table.exit_code == 0, table.stderr
    assert "s400-f35-dispute" in table.stdout and "new" in table.stdout and "flat" in table.stdout
    rows = {r["slug"]: r for r in json.loads(run("topics", "--since", "7d", "--format", "json").stdout)}
    assert (rows["s400-f35-dispute"]["articles"], rows["s400-f35-dispute"]["trend"]) == (2, "new")
    lines = list(csv.DictReader(io.StringIO(run("topics", "--format", "csv").stdout)))
    month = {r["slug"]: r for r in lines}
    assert month["s400-f35-dispute"]["trend"] == "up" and month["s400-f35-dispute"]["change_pct"] == "100.0"


def test_topics_without_data_exit_1(run):
    _one_line_error(run("topics"), 1, "no topics are defined")


def test_topics_bad_since_exit_2(run, corpus):
    _one_line_error(run("topics", "--since", "2999-01-01"), 2, "future")


# --- entities -------------------------------------------------------------------------------

def test_entities_by_topic_label_and_since(run, corpus):
    table = run("entities", "--topic", "idlib-conflict", "--label", "person")
    assert table.exit_code == 0, table.stderr
    assert "Bashar al-Assad" in table.stdout and "PERSON" in table.stdout
    rows = json.loads(run("entities", "--label", "WEAPON", "--since", "7d", "--format", "json").stdout)
    assert [(r["name"], r["articles"]) for r in rows] == [("S-400", 3), ("F-35", 2)]
    rows = list(csv.DictReader(io.StringIO(run("entities", "--limit", "3", "--format", "csv").stdout)))
    assert len(rows) == 3 and rows[0]["name"] == "S-400"


def test_entities_errors(run, corpus):
    _one_line_error(run("entities", "--label", "TANK"), 1, "no entities with label 'TANK'", "WEAPON")
    _one_line_error(run("entities", "--topic", "arms-trade"), 1, "no entity mentions", "arms-trade")
    _one_line_error(run("entities", "--since", "7x"), 2, "--since")


# --- article --------------------------------------------------------------------------------

def test_article_table_and_json(run, corpus):
    table = run("article", str(corpus.ids["a3"]))
    assert table.exit_code == 0, table.stderr
    out = table.stdout
    for needle in ("Erdoğan: S-400 deliveries will go ahead", "Al-Monitor", "s400-f35-dispute", "S-400 ×3",
                   "Recep Tayyip Erdoğan", "other copies of this story", "copy"):
        assert needle in out, needle
    data = json.loads(run("article", str(corpus.ids["a1"]), "--format", "json").stdout)
    assert data["id"] == corpus.ids["a1"] and data["is_original"] is True
    assert {"entities", "topic_tags", "sources", "copies"} <= set(data)
    assert data["topic_tags"][0]["evidence"]["required"]
    assert [c["id"] for c in data["copies"]] == [corpus.ids["a3"]]


def test_article_not_found_and_bad_id(run, corpus):
    _one_line_error(run("article", "424242"), 1, "no article with id 424242")
    assert run("article", "abc").exit_code == 2
    _one_line_error(run("article", "0"), 2, "positive")


# --- report ---------------------------------------------------------------------------------

def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_writes_html_and_charts(run, corpus, tmp_path):
    out = tmp_path / "report"
    result = run("report", "--since", "30d", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    index = out / "index.html"
    assert result.stdout.strip() == str(index)
    page = index.read_text(encoding="utf-8")
    for png in ("topic_volume.png", "top_entities.png", "feed_health.png"):
        assert _is_png(out / png) and f"src='{png}'" in page
        assert (out / png).stat().st_size > 5_000  # an actual chart
    for needle in ("S-400 and F-35 dispute", "Recep Tayyip Erdoğan", "Al-Monitor", "failing", "503 Service Unavailable"):
        assert needle in page, needle


def test_report_on_an_empty_database_says_no_data(run, tmp_path):
    out = tmp_path / "empty"
    result = run("report", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "No tagged articles in this period" in page and "No feeds yet" in page
    assert all(_is_png(out / p) for p in ("topic_volume.png", "top_entities.png", "feed_health.png"))


def test_report_needs_out_and_a_writable_place(run, corpus, tmp_path):
    assert run("report").exit_code == 2
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _one_line_error(run("report", "--out", str(blocker / "sub")), 2, "cannot write the report")


def test_report_over_years_counts_per_month_and_until_ends_the_period(run, corpus, tmp_path):
    years = run("report", "--since", "2920d", "--out", str(tmp_path / "years"))
    assert years.exit_code == 0, years.stderr
    page = (tmp_path / "years" / "index.html").read_text(encoding="utf-8")
    assert "One bar per month (UTC)" in page and "S-400 and F-35 dispute" in page

    old = run("report", "--since", "2011-01-01", "--until", "2019-01-01", "--out", str(tmp_path / "old"))
    assert old.exit_code == 0, old.stderr
    page = (tmp_path / "old" / "index.html").read_text(encoding="utf-8")
    assert "2011-01-01 00:00 to 2019-01-01 00:00 UTC" in page and "No tagged articles in this period" in page
    assert all(_is_png(tmp_path / "old" / p) for p in ("topic_volume.png", "top_entities.png", "feed_health.png"))

    # --until alone: the 30 days before it; durations count back from now, as --since's do
    alone = run("report", "--until", "2019-01-01", "--out", str(tmp_path / "alone"))
    assert alone.exit_code == 0, alone.stderr
    assert "2018-12-02 00:00 to 2019-01-01 00:00 UTC" in (tmp_path / "alone" / "index.html").read_text(encoding="utf-8")
    weeks = run("report", "--since", "14d", "--until", "7d", "--out", str(tmp_path / "weeks"))
    assert weeks.exit_code == 0, weeks.stderr
    assert "One bar per day (UTC)" in (tmp_path / "weeks" / "index.html").read_text(encoding="utf-8")


def test_report_until_errors_are_one_line(run, tmp_path):
    out = str(tmp_path / "r")
    _one_line_error(run("report", "--since", "2019-02-01", "--until", "2019-01-01", "--out", out), 2,
                    "--since '2019-02-01'", "must be before --until '2019-01-01'")
    _one_line_error(run("report", "--since", "2019-01-01", "--until", "2019-01-01", "--out", out), 2,
                    "must be before --until")
    _one_line_error(run("report", "--since", "7d", "--until", "30d", "--out", out), 2, "must be before --until")
    _one_line_error(run("report", "--until", "next tuesday", "--out", out), 2, "--until 'next tuesday' is not a")
    _one_line_error(run("report", "--until", "2999-01-01", "--out", out), 2, "--until '2999-01-01' is in the future")
    _one_line_error(run("report", "--since", "soon", "--out", out), 2, "--since 'soon' is not a")
    assert not (tmp_path / "r").exists()


# --- as a real process ----------------------------------------------------------------------

def test_real_process_errors_are_one_line(db_dsn, tmp_path, corpus):
    # The commands registered the way the lead will, then run as `newsroom` would run.
    script = ("from pipeline.cli import main\nfrom pipeline.cli_query import COMMANDS\n"
              "for c in COMMANDS:\n    main.commands.get(c.name) or main.add_command(c)\nmain()\n")
    env = {**os.environ, "NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path)}

    def cli(*args: str):
        return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                              timeout=120)

    ok = cli("search", "Idlib", "--format", "json")
    assert ok.returncode == 0 and len(json.loads(ok.stdout)) == 2
    bad = cli("entities", "--since", "soon")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    missing = cli("article", "999999")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no article with id 999999"
