"""Run bookkeeping: one `ingest_runs` row per run (CLI cycle or DAG run), its counts, durations,
errors and the reasons of failed tasks."""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from pipeline.states import RunStatus
from pipeline.store.db import clean

_RUN_COUNTERS = ("feeds_polled", "feeds_ok", "feeds_failed", "articles_new", "pages_fetched",
                 "pages_failed", "articles_extracted", "articles_tagged", "articles_failed")


def start_run(conn: psycopg.Connection, run_key: str, trigger: str) -> int:
    """Create (or find, on a retry) the `ingest_runs` row for this run."""
    return conn.execute(
        """INSERT INTO ingest_runs (run_key, trigger) VALUES (%s, %s)
           ON CONFLICT (run_key) DO UPDATE SET status = 'running', finished_at = NULL, errors = '[]'
           RETURNING id""",
        (clean(run_key), trigger),
    ).fetchone()[0]


def finish_run(conn: psycopg.Connection, run_key: str, *, status: RunStatus, counts: dict[str, int],
               durations: dict[str, float] | None = None, errors: list[dict] | None = None,
               details: dict | None = None) -> RunStatus | None:
    """Set a run's final counts (replacing, not adding to, any earlier attempt's). A run that a
    failed task already marked failed stays failed, with that task's reason. Returns the status."""
    unknown = set(counts) - set(_RUN_COUNTERS)
    if unknown:
        raise ValueError(f"unknown run counters: {sorted(unknown)}")
    sets = sql.SQL("").join(
        sql.SQL(", {} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in counts
    )
    params = {**counts, "status": status, "key": run_key, "durations": Jsonb(durations or {}),
              "errors": Jsonb(errors or []), "details": Jsonb(details or {})}
    row = conn.execute(
        sql.SQL(
            """UPDATE ingest_runs SET
                      -- a task that failed earlier in this run (fail_run) keeps the run failed
                      status = CASE WHEN status = 'failed' THEN 'failed' ELSE %(status)s END,
                      finished_at = now(), durations = %(durations)s,
                      errors = coalesce((SELECT jsonb_agg(e) FROM jsonb_array_elements(errors) e
                                          WHERE e->>'stage' = 'airflow'), '[]'::jsonb) || %(errors)s,
                      details = %(details)s{sets}
                WHERE run_key = %(key)s
            RETURNING status"""
        ).format(sets=sets),
        params,
    ).fetchone()
    return RunStatus(row[0]) if row else None


def fail_run(conn: psycopg.Connection, run_key: str, reason: str) -> None:
    conn.execute(
        """UPDATE ingest_runs SET status = 'failed', finished_at = now(),
                  errors = errors || jsonb_build_array(jsonb_build_object('stage', 'airflow', 'message', %s::text))
            WHERE run_key = %s""", (clean(reason)[:2000], run_key))


def failed_task_reasons(conn: psycopg.Connection, run_key: str) -> list[str]:
    """Why tasks of this run failed, as their failure callbacks recorded it (fail_run)."""
    return [r[0] for r in conn.execute(
        """SELECT e->>'message' FROM ingest_runs, jsonb_array_elements(errors) e
            WHERE run_key = %s AND e->>'stage' = 'airflow'""", (run_key,)).fetchall()]


def top_topics_of_run(conn: psycopg.Connection, run_key: str, limit: int = 5) -> list[tuple[str, int]]:
    """Topics most tagged since the run started."""
    return [tuple(r) for r in conn.execute(
        """SELECT t.slug, count(*) FROM article_topics at JOIN topics t ON t.id = at.topic_id
            WHERE at.tagged_at >= (SELECT started_at FROM ingest_runs WHERE run_key = %s)
            GROUP BY t.slug ORDER BY count(*) DESC, t.slug LIMIT %s""", (run_key, limit)).fetchall()]
