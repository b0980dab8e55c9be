"""How long migration 0008 (languages: the `search` column regenerated per article language) takes
on a bench-sized database, and what searches cost afterwards.

The same method as bench/migration_bench.py (which measured 0004 against the code before it), but
on this tree alone: the migrations before 0008 are applied from this tree's sql/migrations (no
views: this tree's views already name 0008's column), the database is loaded with this tree's
bench/db_bench.py (synthetic English articles), a share of the articles is then marked French and
some left without a language (so the new expression takes each of its branches), VACUUM ANALYZE,
and 0008 is applied in one transaction, as the migration runner does. Then the views, and a few
searches (pipeline.queries.search) timed on the migrated database.

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/migration_bench_0008.py --articles 100000

Uses a throwaway embedded server (short data dir under /tmp, --pgdata) and removes it afterwards.
Appends a run to bench/results/migration_0008.json (replacing a previous run of the same size).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VERSION = "0008"
MIGRATION = ROOT / "sql" / "migrations" / "0008_languages.sql"
VIEWS = ROOT / "sql" / "views"
RESULT = HERE / "results" / "migration_0008.json"
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import db_bench  # noqa: E402
import psycopg  # noqa: E402

from pipeline import embedded, queries, store  # noqa: E402

SEARCHES = ["S-400", "Idlib offensive", "sanctions -Russia", '"air defence"', "élection"]

# The search before 0008 (pipeline/queries.py at a64ddda): English stemming for every article.
# Timed on the same database as the baseline of the language-aware search.
ENGLISH_ONLY_SEARCH = """
WITH matches AS (
    -- The newest max_candidates matches (all when NULL: LIMIT NULL is no limit). For a common
    -- word the planner walks the publication-time index backwards, checking each article.
    SELECT a.id, a.first_feed_id, a.search,
           a.published_effective AS published_at
      FROM articles a
     WHERE a.search @@ websearch_to_tsquery('english'::regconfig, newsroom_fold(%(text)s))
       AND (%(since)s::timestamptz IS NULL
            OR a.published_effective >= %(since)s::timestamptz)
       AND (%(until)s::timestamptz IS NULL
            OR a.published_effective < %(until)s::timestamptz)
       /*arrived*/
       /*topic*/
       /*entities*/
     ORDER BY a.published_effective DESC
     LIMIT %(candidates)s),
ranked AS (
    -- title (weight A) and body (B) ranked together; length-normalised, scaled to 0..1
    SELECT m.id, m.first_feed_id, m.published_at,
           ts_rank_cd(m.search, websearch_to_tsquery('english'::regconfig, newsroom_fold(%(text)s)), 1 | 32) AS rank
      FROM matches m),
best AS (
    SELECT r.*,
           r.rank * (0.5 + 0.5 / (1 + greatest(extract(epoch FROM now() - r.published_at), 0)
                                      / (86400.0 * %(recency_days)s))) AS score
      FROM ranked r
     ORDER BY score DESC, r.published_at DESC, r.id
     LIMIT %(limit)s)
-- Snippets only for the rows returned: ts_headline re-parses the whole body.
SELECT b.id, a.title, a.url, f.name AS outlet, b.published_at, a.language, a.cluster_id, a.is_original,
       round(b.rank::numeric, 4)::float AS rank, round(b.score::numeric, 4)::float AS score,
       ts_headline('english'::regconfig,
                   left(coalesce(nullif(a.body, ''), a.summary, a.title, ''), 100000),
                   -- the body is not folded: highlight the words as typed and as folded
                   websearch_to_tsquery('english'::regconfig, %(text)s)
                   || websearch_to_tsquery('english'::regconfig, newsroom_fold(%(text)s)), %(headline)s) AS snippet,
       ARRAY(SELECT t.slug FROM article_topics at JOIN topics t ON t.id = at.topic_id
              WHERE at.article_id = b.id ORDER BY at.score DESC, t.slug) AS topics
  FROM best b
  JOIN articles a ON a.id = b.id
  LEFT JOIN feeds f ON f.id = b.first_feed_id
 ORDER BY b.score DESC, b.published_at DESC, b.id
"""


def english_only_search(conn: psycopg.Connection, text: str) -> list:
    query = queries._with(ENGLISH_ONLY_SEARCH, topic=False, entities=False, arrived=False)
    return queries._rows(conn, query, {
        "text": text, "limit": 20, "headline": queries.HEADLINE_OPTIONS, "recency_days": queries.RECENCY_DAYS,
        "candidates": queries.MAX_CANDIDATES, "since": None, "until": None, "arrived_from": None,
        "arrived_to": None, "topic": None, "entities": None})


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def snapshot(conn: psycopg.Connection) -> dict:
    one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
    return {
        "articles_bytes": one("SELECT pg_total_relation_size('articles')"),
        "articles_heap_bytes": one("SELECT pg_relation_size('articles')"),
        "search_index_bytes": one("SELECT pg_relation_size('articles_search_idx')"),
        "db_bytes": one("SELECT pg_database_size(current_database())"),
        "languages": dict(conn.execute(
            "SELECT coalesce(language, 'NULL'), count(*) FROM articles GROUP BY 1 ORDER BY 1").fetchall()),
    }


def backend_cpu_seconds(conn: psycopg.Connection) -> float:
    """CPU time (user + system) the connection's server process has used: the machine is shared,
    and wall time under contention overstates what the migration costs."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_searches(dsn: str, repeat: int) -> list[dict]:
    out = []
    with psycopg.connect(dsn) as conn:
        for text in SEARCHES:
            for language in (None, "fr", "english-only (before 0008)"):
                times, n = [], 0
                for _ in range(repeat):
                    t = time.perf_counter()
                    if language is None or len(language) == 2:
                        n = len(queries.search(conn, text, limit=20, language=language))
                    else:
                        n = len(english_only_search(conn, text))
                    times.append(time.perf_counter() - t)
                    conn.rollback()
                out.append({"text": text, "language": language, "rows": n,
                            "median_ms": round(1000 * statistics.median(times), 1),
                            "max_ms": round(1000 * max(times), 1)})
                log(f"search {text!r} language={language}: {out[-1]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=20_000, help="articles per COPY batch (as db_bench)")
    ap.add_argument("--seed", type=int, default=20191001)
    ap.add_argument("--french-every", type=int, default=10, help="every n-th article is marked French")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each timed search")
    ap.add_argument("--pgdata", default="/tmp/mb8", help="throwaway embedded server's data dir (keep it short)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    sql = MIGRATION.read_text(encoding="utf-8")
    checksum = hashlib.sha256(sql.encode()).hexdigest()
    pgdata = Path(args.pgdata)
    if pgdata.exists():
        sys.exit(f"{pgdata} exists: remove it (or pass another --pgdata)")
    run: dict = {"articles": args.articles, "french_every": args.french_every}
    settings: dict = {}
    error = None
    t_all = time.perf_counter()
    before_root = Path(tempfile.mkdtemp(prefix="mb8sql"))
    (before_root / "migrations").mkdir()
    for path in sorted((ROOT / "sql" / "migrations").glob("*.sql")):
        if path.name[:4] < VERSION:
            shutil.copy(path, before_root / "migrations" / path.name)
    try:
        admin = embedded.start(pgdata)
        store.db.ensure_database(admin, "mbench")
        dsn = psycopg.conninfo.make_conninfo(admin, dbname="mbench")
        with psycopg.connect(dsn, autocommit=True) as conn:
            applied = store.migrations.migrate(conn, before_root)
            log(f"migrations before {VERSION} applied: {applied}")
            # Views as they were before 0008 (v_articles etc. only read columns 0008 keeps).
            for path in sorted(VIEWS.glob("*.sql")):
                text = path.read_text(encoding="utf-8")
                if "tag_skipped" not in text:
                    conn.execute(text)
            settings = dict(conn.execute(
                """SELECT name, current_setting(name) FROM pg_settings
                    WHERE name IN ('server_version', 'shared_buffers', 'work_mem', 'maintenance_work_mem',
                                   'max_wal_size', 'synchronous_commit', 'fsync',
                                   'max_parallel_maintenance_workers')""").fetchall())
        log(f"loading {args.articles:,} articles with bench/db_bench.load ...")
        t = time.perf_counter()
        loaded = db_bench.load(dsn, args.articles, args.chunk, args.seed, log)
        loaded.pop("_gen", None)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE articles SET language = 'fr' WHERE id %% %s = 0", (args.french_every,))
            conn.execute("UPDATE articles SET language = NULL WHERE id % 50 = 1")
            conn.execute("VACUUM ANALYZE articles")
        run["load_seconds"] = round(time.perf_counter() - t, 1)
        run["load"] = {k: loaded[k] for k in ("articles", "mention_rows", "topic_rows", "source_rows", "entities",
                                              "load_seconds", "gin_index_seconds", "vacuum_analyze_seconds")}
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = snapshot(conn)
            log(f"before: {before}")
            log(f"applying {VERSION} in one transaction ...")
            cpu = backend_cpu_seconds(conn)
            t = time.perf_counter()
            try:
                with conn.transaction():  # as the runner (pipeline/store/migrations.py) does
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                 (VERSION, MIGRATION.name, checksum))
            except psycopg.Error as exc:
                secs = time.perf_counter() - t
                error = f"SQLSTATE {exc.sqlstate}: {str(exc).strip()}"
                log(f"{VERSION} FAILED after {secs:.1f}s: {error}")
                run[f"migration_{VERSION}_seconds"] = None
                run["error"] = error
                raise
            run[f"migration_{VERSION}_seconds"] = round(time.perf_counter() - t, 1)
            run[f"migration_{VERSION}_server_cpu_seconds"] = round(backend_cpu_seconds(conn) - cpu, 1)
            run["load_average_after"] = os.getloadavg()
            log(f"{VERSION} applied in {run[f'migration_{VERSION}_seconds']}s")
            t = time.perf_counter()
            with conn.transaction():
                for path in sorted(VIEWS.glob("*.sql")):
                    conn.execute(path.read_text(encoding="utf-8"))
            run["views_seconds"] = round(time.perf_counter() - t, 2)
            conn.execute("ANALYZE articles")
            after = snapshot(conn)
            log(f"after: {after}")
        run["searches_after"] = time_searches(dsn, args.repeat)
        run.update({"before": before, "after": after})
    except psycopg.Error as exc:
        error = error or f"SQLSTATE {exc.sqlstate}: {str(exc).strip()}"
        run.setdefault("error", error)
        log(f"FAILED: {error}")
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                embedded.stop(pgdata)
            except Exception as exc:
                log(f"stopping the server: {exc}")
        shutil.rmtree(pgdata, ignore_errors=True)
        shutil.rmtree(before_root, ignore_errors=True)
    run["total_seconds"] = round(time.perf_counter() - t_all, 1)
    run["migration_sha256"] = checksum
    print(json.dumps(run, indent=2, default=str))

    if not args.no_write:
        data = json.loads(RESULT.read_text()) if RESULT.exists() else {}
        data["machine"] = {**common.machine(), "postgres": settings.get("server_version")}
        data["what"] = ("bench/migration_bench_0008.py: database built by this tree (migrations 0001-0005, "
                        "bench/db_bench.py load, every n-th article marked French, every 50th without a "
                        "language), then 0008 applied in one transaction on a throwaway embedded server; "
                        "searches timed after it")
        data["postgres"] = settings
        runs = [r for r in data.get("runs", []) if r.get("articles") != args.articles]
        data["runs"] = sorted(runs + [run], key=lambda r: r["articles"])
        data.setdefault("note", "")
        RESULT.parent.mkdir(exist_ok=True)
        RESULT.write_text(json.dumps(data, indent=2, default=str) + "\n")
        log(f"wrote {RESULT}")
    if error:
        sys.exit(f"migration {VERSION} failed: {error}")


if __name__ == "__main__":
    main()
