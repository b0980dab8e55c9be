"""`newsroom search | topics | entities | article | report` as a user runs them: formats, exit
codes (0 found, 1 nothing found, 2 bad input) and one-line errors without tracebacks."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys

import pytest
from test_views import build_corpus

from pipeline.cli import main
from pipeline.cli_query import COMMANDS

# Until the lead registers them in pipeline/cli.py.
for _command in COMMANDS:
    if _command.name not in main.commands:
        main.add_command(_command)


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


def _ids(result) -> list[int]:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return [r["id"] for r in json.loads(result.stdout)]


def test_search_excludes_dash_words_and_takes_options_anywhere(run, corpus):
    ids = corpus.ids
    # The web-search exclusion `-word`, as separate words or one quoted argument: the same search.
    assert _ids(run("search", "Erdogan", "-Turkey", "--format", "json")) == [ids["a2"]]
    assert _ids(run("search", "Erdogan -Turkey", "--format", "json")) == [ids["a2"]]
    assert _ids(run("search", "-Turkey", "Erdogan", "--limit", "5", "--format", "json")) == [ids["a2"]]
    assert set(_ids(run("search", "Erdogan", "--format", "json"))) == {ids["a1"], ids["a2"], ids["a3"]}
    assert set(_ids(run("search", "S-400", "-sanctions", "--format", "json"))) == {ids["a2"], ids["a5"]}
    # Options before, between and after the words; --name=value too.
    assert _ids(run("search", "--format", "json", "--limit", "1", "S-400", "-sanctions")) == [ids["a2"]]
    assert _ids(run("search", "S-400", "--format=json", "-sanctions", "--since", "7d")) == [ids["a2"]]
    # An option's value is the option's, even when it starts with a dash.
    _one_line_error(run("search", "Idlib", "--entity", "-Putin"), 1, "unknown entity '-Putin'")
    # After --, every word is search text, even one that looks like an option.
    assert _ids(run("search", "--format", "json", "--", "Erdogan", "-Turkey")) == [ids["a2"]]
    _one_line_error(run("search", "--", "--format", "json"), 1, "no articles match '--format json'")
    # All excluded: whatever does not mention it.
    assert ids["a6"] in _ids(run("search", "-Turkey", "--format", "json", "--limit", "50"))


def test_search_unknown_options_and_missing_text_are_errors(run, corpus):
    typo = run("search", "--typo", "x")
    assert typo.exit_code == 2 and "No such option '--typo'" in typo.stderr and not typo.stdout
    assert run("search", "Idlib", "--limt", "5").exit_code == 2
    assert "Missing argument" in run("search").stderr and run("search").exit_code == 2
    assert run("search", "--format", "json").exit_code == 2  # options but no words


def test_search_score_is_in_json_and_csv_not_in_the_table(run, corpus):
    table = run("search", "S-400").stdout
    header = next(line for line in table.splitlines() if "article" in line)
    assert "score" not in header and "match" not in header
    assert not re.search(r"\b0\.\d{3}\b", table)  # no raw rank floats
    rows = json.loads(run("search", "S-400", "--format", "json").stdout)
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    assert all(r["score"] <= r["rank"] for r in rows)  # text rank times a recency factor of at most 1
    lines = list(csv.DictReader(io.StringIO(run("search", "S-400", "--format", "csv").stdout)))
    assert [float(r["score"]) for r in lines] == scores
    helptext = run("search", "--help").stdout
    assert "score" in helptext and "recency" in helptext and "<b>" in helptext


# --- csv that parses back -------------------------------------------------------------------

HOSTILE = ('Breaking:\n"Erdoğan", <script>alert(1)</script>\tsays\r\n S-400, \u2028 \x1b[31m\x07red; '
           "<<b>img src=x onerror=alert(2)> 'deal'  done, ")


def _hostile_corpus(conn, corpus) -> None:
    ids = corpus.ids
    conn.execute("UPDATE articles SET title = %s, summary = %s WHERE id = %s",
                 (HOSTILE + "x" * 20_000, HOSTILE, ids["a1"]))
    conn.execute("UPDATE articles SET title = %s, body = body || %s WHERE id = %s",
                 ("Line one\nline two\r\n\tand, \"three\"", "\n\n" + HOSTILE + " S-400 <b>fake</b>", ids["a2"]))
    conn.execute("UPDATE topics SET name = %s WHERE slug = 'syria-war'", (HOSTILE,))
    conn.execute("UPDATE entities SET name = %s WHERE name = 'S-400'", ("S-400\n<script>x</script>,\t\"SAM\"",))
    conn.execute("UPDATE feeds SET name = %s, outlet = %s WHERE name = 'TASS'", ("TASS,\n<i>Moscow</i>",) * 2)
    conn.commit()


def _parse_csv(result, rows: int, columns: int) -> list[list[str]]:
    assert result.exit_code == 0, result.stderr
    parsed = list(csv.reader(io.StringIO(result.stdout, newline="")))
    assert len(parsed) == rows + 1 and {len(r) for r in parsed} == {columns}, parsed
    assert result.stdout.count("\n") == rows + 1  # one line per row: no line break inside a cell
    for cell in (c for r in parsed for c in r):
        assert not re.search(r"[\x00-\x1f\x7f\u2028]", cell), cell
        assert not re.search(r"<[a-z/]", cell, re.IGNORECASE) and "  " not in cell and cell == cell.strip(), cell
    return parsed


def test_csv_of_hostile_text_parses_back_one_line_per_row(run, corpus, conn):
    _hostile_corpus(conn, corpus)
    ids = corpus.ids
    rows = _parse_csv(run("search", "S-400", "--format", "csv"), 4, 8)
    by_id = {int(r[0]): dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    title = by_id[ids["a1"]]["title"]
    assert title.startswith('Breaking: "Erdoğan", alert(1) says S-400, [31mred; \'deal\' done, xxx')
    assert title.endswith("x" * 20_000)
    assert by_id[ids["a2"]]["title"] == 'Line one line two and, "three"'
    assert by_id[ids["a2"]]["outlet"] == "TASS, Moscow"
    assert "S-400" in by_id[ids["a2"]]["snippet"]  # the highlight marks gone, the words kept
    as_json = {r["id"]: r for r in json.loads(run("search", "S-400", "--format", "json").stdout)}
    assert "<b>" in as_json[ids["a2"]]["snippet"] and "\n" in as_json[ids["a1"]]["title"]  # json: as stored

    _parse_csv(run("search", "says", "-nothing", "--format", "csv"), 2, 8)
    _parse_csv(run("topics", "--format", "csv"), 6, 8)
    entities = _parse_csv(run("entities", "--format", "csv"), 13, 10)
    assert ["S-400 x, \"SAM\""] == [r[1] for r in entities if r[1].startswith("S-400")]
    article = _parse_csv(run("article", str(ids["a2"]), "--format", "csv", "--full"), 1, 24)
    assert article[0][-1] == "body" and HOSTILE.split()[0] in article[1][-1]


def test_csv_cell_rules():
    from pipeline.cli_support import csv_cell as _cell

    assert _cell("a\x00b\x85c\u2029d\x9be") == "ab c de"
    assert _cell("evil\u202etxt.exe\u2066") == "eviltxt.exe"  # bidi overrides, as in the terminal
    assert _cell("<<b>script>alert(1)<</b>/script>") == "alert(1)"
    assert _cell("1 < 2 and 3 > 2; <b>x</b>") == "1 < 2 and 3 > 2; x"
    assert _cell(["a\nb", None, 3]) == "a b; ; 3" and _cell(True) == "true" and _cell(None) == ""
    # a stranger's text never becomes a spreadsheet formula; numbers stay numbers
    assert [_cell(t) for t in ("=HYPERLINK(\"http://x\")", " +1", "-Turkey", "@SUM(A1)", "a=b")] == \
        ["'=HYPERLINK(\"http://x\")", "'+1", "'-Turkey", "'@SUM(A1)", "a=b"]
    assert _cell(-3) == -3 and _cell(0.5) == 0.5


# --- tables at 80 columns -------------------------------------------------------------------

def _fits(result, width: int, *needles: str) -> str:
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    too_long = [line for line in out.splitlines() if len(line) > width]
    assert not too_long, "\n".join(too_long)
    for n in needles:
        assert n in out, (n, out)
    return out


def _headers(out: str) -> list[str]:
    return [h.strip() for line in out.splitlines() if line.startswith("┃") for h in line.strip("┃").split("┃")]


def test_tables_fit_80_columns(run, corpus):
    ids = corpus.ids
    out = _fits(run("search", "S-400", columns=80), 80, f"│  {ids['a1']} │", "Turkey says S-400 deliveries",
                "Erdoğan: S-400 deliveries will go ahead", "Daily Sabah", corpus.published["a1"].strftime("%Y-%m-%d"),
                "russia-turkey-defence-cooperation")
    assert _headers(out) == ["id", "published", "outlet", "article"]
    out = _fits(run("topics", columns=80), 80, "russia-turkey-defence-cooperation", "s400-f35-dispute", "▲ up",
                "+1 (+100%)")
    assert "…" not in out and {"topic", "articles", "change", "trend"} <= set(_headers(out))
    out = _fits(run("entities", columns=80), 80, "Recep Tayyip Erdoğan", "Hayat Tahrir al-Sham", "Q39259")
    assert _headers(out) == ["#", "entity", "label", "country", "ids", "articles", "mentions"] and "…" not in out
    out = _fits(run("articles", "--topic", "idlib-conflict", columns=80), 80, f"│  {ids['a2']} │",
                "Putin and Erdoğan discuss", corpus.published["a4"].strftime("%Y-%m-%d"))
    assert _headers(out) == ["id", "published", "outlet", "article"]
    out = _fits(run("article", str(ids["a3"]), "--full", columns=80), 80, "Erdoğan: S-400 deliveries will go ahead",
                "russia-turkey-defence-cooperation", "Recep Tayyip Erdoğan ×3", "first reported by Daily Sabah",
                "http://127.0.0.1/news/a3?utm_source=rss")
    assert "…" not in out


def test_tables_stay_within_narrow_and_hostile_widths(run, corpus, conn):
    _hostile_corpus(conn, corpus)
    for width in (80, 60, 40):
        for args in (("search", "S-400"), ("search", "Idlib"), ("topics",), ("entities",), ("articles",),
                     ("articles", "--arrived", "today"),
                     ("article", str(corpus.ids["a1"]), "--full"), ("article", str(corpus.ids["a2"]))):
            out = _fits(run(*args, columns=width), width)
            assert "\x1b" not in out and "\x07" not in out, args  # stored escape codes never reach the terminal
            if width >= 60:
                for header in _headers(out):
                    assert len(header) > 2 or header in ("id", "#"), (args, width, header)  # no squeezed column
    # In a table too, a title is one line (its line breaks and tabs collapsed), shown as written.
    assert 'Breaking: "Erdoğan", <script>alert(1)</script> says S-400, [31mred;' in run("search", "S-400").stdout


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


def test_article_csv_json_body_and_full(run, corpus):
    ids = corpus.ids
    rows = list(csv.reader(io.StringIO(run("article", str(ids["a1"]), "--format", "csv").stdout)))
    assert len(rows) == 2 and "body" not in rows[0]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["id"] == str(ids["a1"]) and row["title"].startswith("Turkey says S-400")
    assert row["topics"] == "s400-f35-dispute; russia-turkey-defence-cooperation"
    assert row["entities"].split("; ")[:2] == ["Recep Tayyip Erdoğan", "S-400"]  # names, most mentioned first
    assert row["copies"] == str(ids["a3"]) and row["is_original"] == "true" and row["outlets"] == "Daily Sabah"
    full = list(csv.DictReader(io.StringIO(run("article", str(ids["a1"]), "--format", "csv", "--full").stdout)))
    assert full[0]["body"].startswith("Turkish President Recep Tayyip Erdoğan said") and "\n" not in full[0]["body"]

    data = json.loads(run("article", str(ids["a3"]), "--format", "json").stdout)
    assert data["body"].endswith("The story was first reported by Daily Sabah.")  # json: always the body
    assert json.loads(run("article", str(ids["a7"]), "--format", "json").stdout)["body"] is None  # not fetched

    plain, full_table = run("article", str(ids["a3"])).stdout, run("article", str(ids["a3"]), "--full").stdout
    assert "first reported by Daily Sabah" not in plain and "first reported by Daily Sabah" in full_table
    assert full_table.index("first reported") < full_table.index("other copies of this story")
    assert "(no body: the article is discovered)" in run("article", str(ids["a7"]), "--full").stdout
    assert "json always has it" in " ".join(run("article", "--help").stdout.split())


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
    _one_line_error(run("report", "--since", "2999-01-01", "--out", out), 2, "--since '2999-01-01' is in the future")
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


# --- articles, --until, --arrived -------------------------------------------------------------

def test_articles_lists_without_search_text_in_every_format(run, corpus):
    table = run("articles", "--topic", "idlib-conflict")
    assert table.exit_code == 0, table.stderr
    assert "Putin and Erdoğan discuss Idlib ceasefire in Sochi" in table.stdout
    rows = json.loads(run("articles", "--entity", "Bashar al-Assad", "--format", "json").stdout)
    assert [r["id"] for r in rows] == [corpus.ids["a4"]]
    as_csv = list(csv.DictReader(io.StringIO(run("articles", "--since", "7d", "--format", "csv").stdout)))
    assert {int(r["id"]) for r in as_csv} == {corpus.ids[k] for k in ("a1", "a2", "a3", "a7")}


def test_until_and_arrived_on_the_listing_commands(run, corpus, conn):
    rows = json.loads(run("search", "S-400", "--until", "7d", "--format", "json").stdout)
    assert [r["id"] for r in rows] == [corpus.ids["a5"]]
    assert run("topics", "--since", "30d", "--until", "7d").exit_code == 0
    assert run("entities", "--since", "30d", "--until", "7d", "--format", "json").exit_code == 0
    _one_line_error(run("articles", "--since", "7d", "--until", "30d"), 2, "period is empty")
    _one_line_error(run("articles", "--until", "soon"), 2, "--until 'soon'")
    _one_line_error(run("articles", "--arrived", "last-run"), 1, "no ingest run has finished yet")
    conn.execute("INSERT INTO ingest_runs (run_key, trigger, status, started_at, finished_at) "
                 "VALUES ('r', 'cli', 'success', now() - interval '1 hour', now())")
    conn.commit()
    arrived = json.loads(run("articles", "--arrived", "last-run", "--format", "json").stdout)
    assert len(arrived) == len(corpus.ids)  # the corpus was just written
    assert run("articles", "--arrived", "today", "--limit", "1").exit_code == 0
