"""How long migration 0004 (fold and publication time) takes on a bench-sized database.

Builds the database the way the OLD code did (migrations 0001-0003 and the old views, then the
old bench/db_bench.py load: COPY of N synthetic articles, GIN index, VACUUM ANALYZE), then applies
this tree's sql/migrations/0004_fold_and_publication_time.sql in one transaction, as the migration
runner does, and records its wall time, the size of `articles` and the entity count before/after.

Needs the old code on the path (a worktree of the commit before 0004):

    git worktree add /tmp/oldtree 45e3571
    PYTHONPATH=/tmp/oldtree nice -n 10 .venv/bin/python bench/migration_bench.py --articles 100000

Uses a throwaway embedded server (short data dir under /tmp, --pgdata) and removes it afterwards.
Appends a run to bench/results/migration_0004.json (replacing a previous run of the same size).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
NEW_ROOT = HERE.parent
MIGRATION = NEW_ROOT / "sql" / "migrations" / "0004_fold_and_publication_time.sql"
NEW_VIEWS = NEW_ROOT / "sql" / "views"
RESULT = HERE / "results" / "migration_0004.json"


def _old_tree() -> Path:
    for p in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if p and (Path(p) / "bench" / "db_bench.py").is_file() and Path(p).resolve() != NEW_ROOT:
            return Path(p).resolve()
    sys.exit("run with PYTHONPATH=<worktree of the old code> (e.g. /tmp/oldtree)")


OLD = _old_tree()
# The old bench modules (db_bench imports `common`), ahead of this directory's new ones.
sys.path.insert(0, str(OLD / "bench"))
if str(HERE) in sys.path[1:]:
    sys.path.remove(str(HERE))

import db_bench  # noqa: E402  (the old one)
import psycopg  # noqa: E402

import pipeline  # noqa: E402
from pipeline import embedded, store  # noqa: E402

assert Path(pipeline.__file__).resolve().is_relative_to(OLD), f"pipeline imported from {pipeline.__file__}, not {OLD}"
assert Path(db_bench.__file__).resolve().is_relative_to(OLD), db_bench.__file__


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def snapshot(conn: psycopg.Connection) -> dict:
    one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
    return {
        "articles_bytes": one("SELECT pg_total_relation_size('articles')"),
        "articles_heap_bytes": one("SELECT pg_relation_size('articles')"),
        "entities": one("SELECT count(*) FROM entities"),
        "entities_with_mentions": one("SELECT count(DISTINCT entity_id) FROM article_entities"),
        "mention_rows": one("SELECT count(*) FROM article_entities"),
        "originals": one("SELECT count(*) FROM articles WHERE is_original"),
        "db_bytes": one("SELECT pg_database_size(current_database())"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=20_000, help="articles per COPY batch (as db_bench)")
    ap.add_argument("--seed", type=int, default=20191001)
    ap.add_argument("--pgdata", default="/tmp/mb", help="throwaway embedded server's data dir (keep it short)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    sql = MIGRATION.read_text(encoding="utf-8")
    checksum = hashlib.sha256(sql.encode()).hexdigest()
    pgdata = Path(args.pgdata)
    if pgdata.exists():
        sys.exit(f"{pgdata} exists: remove it (or pass another --pgdata)")
    log(f"old code {OLD}; migration {MIGRATION} sha256 {checksum[:12]}")
    run: dict = {"articles": args.articles}
    settings: dict = {}
    error = None
    t_all = time.perf_counter()
    try:
        admin = embedded.start(pgdata)
        store.ensure_database(admin, "mbench")
        dsn = psycopg.conninfo.make_conninfo(admin, dbname="mbench")
        with psycopg.connect(dsn, autocommit=True) as conn:
            applied = store.migrate(conn)  # the OLD tree's sql/: 0001-0003 and the old views
            log(f"old migrations applied: {applied}")
            assert [a[:4] for a in applied] == ["0001", "0002", "0003"], applied
            settings = dict(conn.execute(
                """SELECT name, current_setting(name) FROM pg_settings
                    WHERE name IN ('server_version', 'shared_buffers', 'work_mem', 'maintenance_work_mem',
                                   'max_wal_size', 'synchronous_commit', 'fsync',
                                   'max_parallel_maintenance_workers')""").fetchall())
        log(f"loading {args.articles:,} articles with the old db_bench.load ...")
        t = time.perf_counter()
        loaded = db_bench.load(dsn, args.articles, args.chunk, args.seed, log)
        loaded.pop("_gen", None)
        run["load_seconds"] = round(time.perf_counter() - t, 1)  # generation + COPY + GIN + VACUUM ANALYZE
        run["load"] = {k: loaded[k] for k in ("articles", "mention_rows", "topic_rows", "source_rows", "entities",
                                              "load_seconds", "gin_index_seconds", "vacuum_analyze_seconds")}
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = snapshot(conn)
            log(f"before: {before}")
            log("applying 0004 in one transaction ...")
            t = time.perf_counter()
            try:
                with conn.transaction():  # as the runner (pipeline/store/migrations.py) does
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                 ("0004", MIGRATION.name, checksum))
            except psycopg.Error as exc:
                secs = time.perf_counter() - t
                error = f"SQLSTATE {exc.sqlstate}: {str(exc).strip()}"
                log(f"0004 FAILED after {secs:.1f}s: {error}")
                run["migration_0004_seconds"] = None
                run["migration_0004_failed_after_seconds"] = round(secs, 1)
                run["error"] = error
                raise
            run["migration_0004_seconds"] = round(time.perf_counter() - t, 1)
            log(f"0004 applied in {run['migration_0004_seconds']}s")
            t = time.perf_counter()
            with conn.transaction():  # what the runner does next: the new views (not part of 0004's time)
                for path in sorted(NEW_VIEWS.glob("*.sql")):
                    conn.execute(path.read_text(encoding="utf-8"))
            run["new_views_seconds"] = round(time.perf_counter() - t, 2)
            after = snapshot(conn)
            log(f"after: {after}")
        run.update({
            "articles_bytes_before": before["articles_bytes"], "articles_bytes_after": after["articles_bytes"],
            "articles_heap_bytes_before": before["articles_heap_bytes"],
            "articles_heap_bytes_after": after["articles_heap_bytes"],
            "entities_before": before["entities"], "entities_after": after["entities"],
            "entities_with_mentions_before": before["entities_with_mentions"],
            "entities_with_mentions_after": after["entities_with_mentions"],
            "mention_rows_before": before["mention_rows"], "mention_rows_after": after["mention_rows"],
            "originals_before": before["originals"], "originals_after": after["originals"],
            "db_bytes_before": before["db_bytes"], "db_bytes_after": after["db_bytes"],
        })
    except psycopg.Error:
        pass  # recorded in run["error"] above
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                embedded.stop(pgdata)
            except Exception as exc:
                log(f"stopping the server: {exc}")
        shutil.rmtree(pgdata, ignore_errors=True)
    run["total_seconds"] = round(time.perf_counter() - t_all, 1)
    run["migration_sha256"] = checksum
    print(json.dumps(run, indent=2))

    if not args.no_write:
        data = json.loads(RESULT.read_text()) if RESULT.exists() else {}
        mem = round(int(next(x for x in open("/proc/meminfo") if x.startswith("MemTotal")).split()[1]) / 2**20, 1)
        cpu = next((x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name")), "")
        data["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu": cpu, "mem_gib": mem,
                           "platform": platform.platform(), "postgres": settings.get("server_version")}
        data["what"] = ("bench/migration_bench.py: database built by the code before 0004 (45e3571: migrations "
                        "0001-0003, old views, old bench/db_bench.py load), then 0004 applied in one transaction "
                        "on a throwaway embedded server")
        data["postgres"] = settings
        runs = [r for r in data.get("runs", []) if r.get("articles") != args.articles]
        data["runs"] = sorted(runs + [run], key=lambda r: r["articles"])
        data.setdefault("note", "")
        RESULT.parent.mkdir(exist_ok=True)
        RESULT.write_text(json.dumps(data, indent=2, default=str) + "\n")
        log(f"wrote {RESULT}")
    if error:
        sys.exit(f"migration 0004 failed: {error}")


if __name__ == "__main__":
    main()
