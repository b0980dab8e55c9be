"""`newsroom feeds status` as a user and a script see it: a table that stays readable at 80
columns, json and csv with every column and ISO datetimes, --failing with each, and an empty
result as a valid empty document with exit 1 (like the query commands). No network: the feeds'
health is written straight into the database."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime

import pytest

LONG_ERROR = ("connection refused while talking to the upstream server " * 8).strip()


def _run(args, env):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "feeds", "status", *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


@pytest.fixture
def env(db_dsn, tmp_path):
    return {"NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_STATE_DIR": str(tmp_path), "COLUMNS": "80"}


@pytest.fixture
def feeds(conn):
    """An ok feed, a failing one with a long error, a disabled one, a silent one, a new one."""
    rows = [
        # url, name, enabled, polled ago, failures, error class, error, newest ago, next in, tags
        ("https://ok.example/rss", "Ok Daily", True, "5 minutes", 0, None, None, "1 hour", "25 minutes",
         ["world", "europe"]),
        ("https://bad.example/rss", "A feed with a rather long name that will not fit at all", True, "3 minutes", 4,
         "http_5xx", LONG_ERROR, None, "2 hours", []),
        ("https://old.example/rss", "Old", False, "40 days", 0, None, None, "40 days", "-1 day", []),
        ("https://quiet.example/rss", "Quiet", True, "10 minutes", 0, None, None, "20 days", "-5 minutes", []),
        ("https://new.example/rss", "New [bold]markup[/bold]\x1b[31m", True, None, 0, None, None, None, "-1 minute", []),
    ]
    for url, name, enabled, polled, fails, eclass, error, newest, nxt, tags in rows:
        conn.execute(
            """INSERT INTO feeds (url, name, enabled, disabled_reason, tags, last_polled_at, last_success_at,
                                  consecutive_failures, last_error_class, last_error, last_new_article_at,
                                  next_poll_at, created_at, last_http_status, last_status)
               VALUES (%s, %s, %s, %s, %s, now() - %s::interval, now() - %s::interval, %s, %s, %s,
                       now() - %s::interval, now() + %s::interval, now() - interval '30 days', %s, %s)""",
            (url, name, enabled, None if enabled else "paused", tags, polled, polled, fails, eclass, error, newest, nxt,
             None if polled is None else 503 if fails else 200,
             None if polled is None else "error" if fails else "ok"))
    conn.commit()
    return rows


def test_table_fits_80_columns_without_squeezing_a_column(env, feeds):
    out = _run([], env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n" + out.stdout
    header = next(line for line in lines if "state" in line)
    for col in ("state", "feed", "polled", "http", "fails", "newest", "next", "articles"):
        assert col in header, "\n" + out.stdout
    text = out.stdout
    for state in ("ok", "failing", "paused", "silent", "new"):
        assert re.search(rf"^\s*{state}\s", text, re.M), (state, text)
    for word in ("5m ago", "in 25m", "due", "503", "4"):  # short columns are whole, never folded
        assert word in text, (word, text)
    # the long error is folded under its feed and cut, not spread over the screen
    assert "http_5xx: connection refused" in " ".join(text.split())
    assert LONG_ERROR not in " ".join(text.split()) and "…" in text
    assert "[bold]markup[/bold]" in text and "\x1b" not in text  # shown as written, no terminal escapes
    assert "1 failing, 1 new, 1 ok, 1 paused, 1 silent" in text


def test_wide_terminal_keeps_each_feed_on_few_lines(env, feeds):
    out = _run([], {**env, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= 200
    assert any("A feed with a rather long name that will not fit at all" in line for line in out.stdout.splitlines())


def test_json_carries_every_column_with_iso_datetimes(env, feeds):
    out = _run(["--format", "json"], env)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 5
    bad = next(r for r in rows if r["url"] == "https://bad.example/rss")
    assert bad["state"] == "failing" and bad["last_error"] == LONG_ERROR  # whole, not cut
    assert bad["consecutive_failures"] == 4 and bad["last_http_status"] == 503 and bad["last_error_class"] == "http_5xx"
    ok = next(r for r in rows if r["name"] == "Ok Daily")
    assert ok["tags"] == ["world", "europe"] and ok["enabled"] is True
    for key in ("last_polled_at", "last_success_at", "last_new_article_at", "next_poll_at", "created_at"):
        assert datetime.fromisoformat(ok[key]).tzinfo is not None
    assert next(r for r in rows if r["url"] == "https://new.example/rss")["last_polled_at"] is None


def test_csv_carries_every_column(env, feeds):
    out = _run(["--format", "csv"], env)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 5 and {"id", "url", "state", "last_error", "next_poll_at", "tags"} <= set(rows[0])
    ok = next(r for r in rows if r["name"] == "Ok Daily")
    assert ok["tags"] == "world; europe" and datetime.fromisoformat(ok["next_poll_at"])
    assert next(r for r in rows if r["state"] == "failing")["last_error"] == LONG_ERROR


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_failing_works_with_every_format(env, feeds, fmt):
    out = _run(["--failing", "--format", fmt], env)
    assert out.returncode == 0, out.stderr
    if fmt == "json":
        assert sorted(r["state"] for r in json.loads(out.stdout)) == ["failing", "silent"]
    elif fmt == "csv":
        assert sorted(r["state"] for r in csv.DictReader(io.StringIO(out.stdout))) == ["failing", "silent"]
    else:
        assert "Quiet" in out.stdout and "Ok Daily" not in out.stdout and "Old" not in out.stdout


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_no_feeds_is_a_valid_empty_document_and_exit_1(env, fmt):
    out = _run(["--format", fmt], env)
    assert out.returncode == 1
    assert "newsroom feeds sync" in out.stderr and out.stderr.count("\n") == 1
    if fmt == "json":
        assert json.loads(out.stdout) == []
    elif fmt == "csv":
        assert out.stdout.splitlines()[0].startswith("id,name,url,state") and len(out.stdout.splitlines()) == 1
    else:
        assert out.stdout == ""


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_nothing_failing_says_so(env, conn, fmt):
    conn.execute("INSERT INTO feeds (url, name) VALUES ('https://a.example/rss', 'A')")
    conn.commit()
    out = _run(["--failing", "--format", fmt], env)
    assert out.returncode == 1 and "no feed is failing or silent (1 new)" in out.stderr
    assert fmt != "json" or json.loads(out.stdout) == []


def test_bad_format_is_exit_2(env):
    out = _run(["--format", "xml"], env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
