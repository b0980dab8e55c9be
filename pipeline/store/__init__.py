"""PostgreSQL: every write, and the only package that imports psycopg (docs/architecture.md).

- `db`: connections, sessions, how database errors are judged, DSN redaction;
- `migrations`: the migration runner;
- `queue`: the work queue: claims, leases, the fence every result is written behind, failures;
- `feeds`: the feed list, polls and their entries;
- `articles`: stage results (page, extraction, tagged) and near-duplicate clusters;
- `backfill`: articles listed by a backfill (sitemaps, URL lists), enqueued as backlog;
- `annotations`: entities, mentions, topics;
- `runs`: `ingest_runs` bookkeeping;
- `maintenance`: pruning old raw pages and polls, VACUUM (ANALYZE), table sizes;
- `rollup`: the topic-per-day rollup (compaction of its deltas, a check against the base tables).

Every write is an upsert against a natural key, so re-running a stage never duplicates rows.
The read side for users' questions is pipeline/queries.py.
"""

import psycopg

from pipeline.store import (
    annotations,
    articles,
    backfill,
    db,
    feeds,
    maintenance,
    migrations,
    queue,
    rollup,
    runs,
)

__all__ = ["annotations", "articles", "backfill", "db", "feeds", "maintenance", "migrate", "migrations", "queue", "rollup", "runs"]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations (an autocommit connection), then the data steps SQL cannot do
    (the sites of articles stored before 0006). Returns the migrations applied."""
    applied = migrations.migrate(conn)
    feeds.fill_sites(conn)
    return applied
