"""Every example in the README and docs/ answers something on the demo's data.

The demo site is served with its dates anchored to a fixed NOW, the whole pipeline runs against
it once (poll, download, extract, tag, cluster), and then, with the clock set to NOW on both
sides (Python's `queries.current_time`, and SQL's `now()` shadowed by a function ahead of
pg_catalog on the search path), each ```sql block and each query command in a ```sh block runs
and must return rows. So the examples cannot rot, and the test does not depend on the day it
runs.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pipeline import demo, ingest, queries
from pipeline.cli import main
from pipeline.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A fixed "now", in the past so no demo date is in the real future (extraction refuses those).
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# Commands that ask questions of stored data; the others (db, ingest, demo, airflow, ...) act.
QUERY_COMMANDS = {"search", "articles", "topics", "entities", "article", "report"}


def _blocks(lang: str) -> list[tuple[str, str]]:
    """(where, text) of every ```lang block in the docs, named by file and nearest heading."""
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(rf"^```{lang}[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M):
            headings = re.findall(r"^#+\s+(.+)$", text[: m.start()], re.M)
            out.append((f"{doc.name}: {headings[-1] if headings else '(top)'}", m.group(1)))
    return out


def sql_examples() -> list[tuple[str, str]]:
    return _blocks("sql")


def cli_examples() -> list[tuple[str, list[str]]]:
    """(where, argv) of every `newsroom <query command>` line, comments and redirections cut."""
    out = []
    for where, block in _blocks("sh"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if not words or words[0] != "newsroom":
                continue
            for stop in (">", "|", "&&", ";"):
                if stop in words:
                    words = words[: words.index(stop)]
            args = [w for w in words[1:] if w != "--demo"]  # the test's database is the demo's
            if args and args[0] in QUERY_COMMANDS or args[:2] == ["feeds", "status"]:
                out.append((f"{where}: {' '.join(words)}", args))
    return out


@pytest.fixture(scope="module")
def demo_dsn(make_db, tmp_path_factory):
    """A database holding what the demo site publishes at NOW, run through the whole pipeline."""
    dsn = make_db()
    tmp = tmp_path_factory.mktemp("demo")
    site = demo.DemoSite(port=0, now=NOW).start()
    try:
        feeds = tmp / "feeds.yaml"
        feeds.write_text(demo.feeds_yaml(site.base))
        settings = Settings(database_url=dsn, state_dir=tmp / "state", feeds_file=feeds,
                            allow_private_networks=True, per_host_delay=0.0)
        ingest.ingest_once(settings)
    finally:
        site.stop()
    with psycopg.connect(dsn) as conn:
        # The pipeline ran at the real time: move what it stamped then (discovery, the run, polls)
        # to NOW, so questions about arrival time are asked at the same "now" as the others.
        shift = conn.execute("SELECT %s::timestamptz - now()", (NOW,)).fetchone()[0]
        for table, columns in (("articles", ("discovered_at", "fetched_at", "extracted_at", "tagged_at")),
                               ("article_sources", ("first_seen_at", "last_seen_at")),
                               ("ingest_runs", ("started_at", "finished_at")),
                               ("feed_polls", ("started_at", "finished_at"))):
            sets = ", ".join(f"{c} = {c} + %(shift)s" for c in columns)
            conn.execute(f"UPDATE {table} SET {sets}", {"shift": shift})  # noqa: S608 (fixed names)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # SQL's now() at NOW for the examples' own text (views and defaults were bound to
        # pg_catalog.now() when they were created and are not affected).
        conn.execute("CREATE SCHEMA test_clock")
        conn.execute(f"CREATE FUNCTION test_clock.now() RETURNS timestamptz LANGUAGE sql IMMUTABLE "
                     f"AS $$ SELECT '{NOW.isoformat()}'::timestamptz $$")
    return dsn


@pytest.fixture
def at_now(monkeypatch):
    monkeypatch.setattr(queries, "current_time", lambda: NOW)


def test_the_demo_publishes_recent_news_spread_over_weeks():
    routes = demo.build_site("http://demo", now=NOW)
    dates = sorted(datetime.fromisoformat(m) for path, (_, body) in routes.items() if path.endswith(".html")
                   for m in re.findall(rb'published_time" content="([^"]+)"', body)[:1] for m in [m.decode()])
    assert len(dates) == demo.article_count() >= 10
    assert all(d <= NOW for d in dates) and (NOW - dates[-1]).total_seconds() < 3600  # the bulletin
    assert (NOW - dates[0]).days >= 21  # a month's shape, not one day
    assert sum((NOW - d).days < 7 for d in dates) >= 4 and sum((NOW - d).days >= 7 for d in dates) >= 3
    assert demo.build_site("http://demo", now=NOW) == routes  # the same site for the same now


def test_the_demo_site_publishes_a_new_bulletin_on_each_start():
    first, later = demo.build_site("http://demo", now=NOW), demo.build_site("http://demo", now=NOW.replace(hour=13))
    assert len(set(later) - set(first)) == 1


def test_arrival_questions_are_asked_at_the_same_now(demo_dsn, at_now):
    with psycopg.connect(demo_dsn) as conn:
        everything = queries.articles(conn, arrived=queries.arrival_window(conn, "today"))
        assert len(everything) == demo.article_count()
        assert queries.articles(conn, arrived=queries.arrival_window(conn, "last-run")) == everything
        assert all(abs((r["discovered_at"] - NOW).total_seconds()) < 600 for r in everything)
        # arrived today, published in the week before
        week = queries.articles(conn, arrived=queries.arrival_window(conn, "today"),
                                since=queries.parse_since("7d"))
        assert 4 <= len(week) < len(everything)


def test_every_doc_has_examples_to_check():
    assert len(sql_examples()) >= 13
    commands = {args[0] for _, args in cli_examples()}
    assert {"search", "articles", "topics", "entities", "article", "report"} <= commands


@pytest.mark.parametrize(("where", "query"), sql_examples(), ids=[w for w, _ in sql_examples()])
def test_sql_example_returns_rows_on_the_demo(demo_dsn, where, query):
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("SET search_path = test_clock, pg_catalog, public")
        rows = conn.execute(query).fetchall()
    assert rows, f"no rows on the demo data for: {where}"


@pytest.mark.parametrize(("where", "args"), cli_examples(), ids=[w for w, _ in cli_examples()])
def test_cli_example_returns_rows_on_the_demo(demo_dsn, at_now, tmp_path, where, args):
    if "--out" in args:  # the report goes to a temporary directory
        args = [*args[: args.index("--out") + 1], str(tmp_path / "report"), *args[args.index("--out") + 2:]]
    env = {"NEWSROOM_DATABASE_URL": demo_dsn, "NEWSROOM_STATE_DIR": str(tmp_path / "state"),
           "NEWSROOM_LOG_LEVEL": "WARNING", "COLUMNS": "100"}
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"{where}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), where
