"""Full-text search at scale: build db_bench's synthetic database once, keep it, and time
`queries.search` over a realistic set of questions (the UI's defaults: newest 20 results, any
time or the last 30 days), against the search SQL of a baseline git revision.

    .venv/bin/python bench/search_bench.py --articles 350000 --days 128 --no-migrate --phase before
    .venv/bin/python bench/search_bench.py --articles 350000 --days 128 --phase after   # applies 0011
    .venv/bin/python bench/search_bench.py --articles 350000 --days 128 --explain after --only government
    .venv/bin/python bench/search_bench.py --stop       # stop the kept server (its data stays)

The database lives in an embedded server under --pgdata (default /tmp/nrsearch/pg), started and
left running so repeated runs skip the load; with NEWSROOM_DATABASE_URL set, the database
--dbname on that server is used instead. The load is db_bench.load (same seed); --days spreads
publication over fewer days than db_bench's year, so 350,000 articles over 128 days are the
newest 128 days of a 1,000,000-a-year archive at its density (the full 1M load took over an hour
on the shared machine). --no-migrate leaves the schema at 0009 (the layout before 0011); without
it pending migrations are applied (and timed) first.

Per query: median, p90 and max of --runs timed runs (after one warm-up) of the current
`queries.search` and of --before's (`git show REV:pipeline/queries.py`), and whether both return
the same rows, order and snippets (compared inside one transaction, so now() and the recency
factor are the same). A digest of each query's rows (without the score, which moves with the
clock) is compared across phases. Writes bench/results/search.json (the phase under --phase)
with the machine (lscpu, RAM, Postgres version and settings). Asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
import db_bench
from common import write_result
from db_bench import _vocabulary, load

from pipeline import embedded, queries, store

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "16e4521"  # pipeline/queries.py before this change (git revision)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def admin_dsn(pgdata: Path) -> str:
    external = os.environ.get("NEWSROOM_DATABASE_URL")
    if external:
        return external
    return embedded.start(pgdata)


def ensure_built(admin: str, dbname: str, articles: int, seed: int, days: int, migrate: bool = True) -> str:
    """The kept database: built (migrated + loaded) on first use, migrated on later ones."""
    dsn = psycopg.conninfo.make_conninfo(admin, dbname=dbname)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    complete = False
    if exists:
        with psycopg.connect(dsn, autocommit=True) as conn:
            has_meta = conn.execute("SELECT to_regclass('bench_search_meta') IS NOT NULL").fetchone()[0]
            if has_meta:
                row = conn.execute("SELECT articles, seed, days FROM bench_search_meta").fetchone()
                complete = row == (articles, seed, days)
    if not complete:
        if exists:
            log(f"database {dbname} is incomplete or differs; rebuilding")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
        store.db.ensure_database(admin, dbname)
        with psycopg.connect(dsn, autocommit=True) as conn:
            store.migrations.migrate(conn, _through("0009") if not migrate else None)
        log(f"loading {articles:,} articles over {days} days into {dbname} ...")
        t = time.perf_counter()
        db_bench.SPAN_DAYS = days
        loaded = load(dsn, articles, 20_000, seed, log)
        loaded.pop("_gen", None)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_search_meta (articles int, seed bigint, days int, "
                         "built_at timestamptz DEFAULT now())")
            conn.execute("INSERT INTO bench_search_meta (articles, seed, days) VALUES (%s, %s, %s)",
                         (articles, seed, days))
        log(f"built in {time.perf_counter() - t:.0f}s")
    if migrate:
        with psycopg.connect(dsn, autocommit=True) as conn:
            t = time.perf_counter()
            applied = store.migrations.migrate(conn)
            if applied:
                log(f"applied {applied} in {time.perf_counter() - t:.0f}s")
                MIGRATION_SECONDS[",".join(applied)] = round(time.perf_counter() - t, 1)
    return dsn


MIGRATION_SECONDS: dict[str, float] = {}


def _through(last: str) -> Path:
    """A copy of sql/ with the migrations up to `last` only (the database as it was before this change)."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="nrsql"))
    shutil.copytree(store.migrations.sql_dir() / "views", root / "views")
    (root / "migrations").mkdir()
    for path in sorted((store.migrations.sql_dir() / "migrations").glob("*.sql")):
        if path.name[:4] <= last:
            shutil.copy(path, root / "migrations" / path.name)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=365,
                    help="spread publication over this many days (--articles 350000 --days 128: the newest "
                         "128 days of a 1,000,000-a-year archive)")
    ap.add_argument("--seed", type=int, default=20191001)
    ap.add_argument("--pgdata", type=Path, default=Path("/tmp/nrsearch/pg"))
    ap.add_argument("--dbname", default="search_1m")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--before", default=BASELINE, help="git revision of pipeline/queries.py to compare with "
                    "('' to time only the current code)")
    ap.add_argument("--only", nargs="*", help="only the queries whose name contains one of these")
    ap.add_argument("--explain", choices=["after", "before"], help="print EXPLAIN (ANALYZE, BUFFERS) instead")
    ap.add_argument("--no-migrate", action="store_true",
                    help="leave the database's schema as it is (time the layout before 0011)")
    ap.add_argument("--phase", default="after", help="the key this run is stored under in search.json")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/results/search.json")
    ap.add_argument("--stop", action="store_true")
    args = ap.parse_args()
    if args.stop:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            embedded.stop(args.pgdata)
        return
    dsn = ensure_built(admin_dsn(args.pgdata), args.dbname, args.articles, args.seed, args.days,
                       migrate=not args.no_migrate)
    if args.build_only:
        print(dsn)
        return
    words, _ = _vocabulary(random.Random(args.seed))  # the loader's vocabulary: its rarest words
    before = baseline_module(args.before) if args.before else None
    with psycopg.connect(dsn, autocommit=True) as conn:
        cases = query_set(conn, words)
        if args.only:
            cases = [c for c in cases if any(o in c[0] for o in args.only)]
        if args.explain:
            explain(conn, cases, args.explain)
            return
        out = run(conn, cases, args.runs, before)
        settings = dict(conn.execute(
            """SELECT name, current_setting(name) FROM pg_settings
                WHERE name IN ('shared_buffers', 'work_mem', 'effective_cache_size', 'server_version',
                               'max_parallel_workers_per_gather', 'random_page_cost', 'jit')""").fetchall())
        counts = {"articles": conn.execute("SELECT count(*) FROM articles").fetchone()[0]}
        schema = {"migrations": [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")],
                  "search_storage": conn.execute(
                      "SELECT attstorage FROM pg_attribute WHERE attrelid = 'articles'::regclass "
                      "AND attname = 'search'").fetchone()[0],
                  "articles_heap_bytes": conn.execute("SELECT pg_relation_size('articles')").fetchone()[0],
                  "articles_toast_bytes": conn.execute(
                      "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'articles'").fetchone()[0]}
    report(out, before is not None)
    if not args.no_write:
        previous = {}
        target = Path(__file__).parent / "results" / "search.json"
        if target.exists():
            previous = json.loads(target.read_text()).get("phases", {})
        earlier = {q["query"]: q.get("digest") for p in previous.values() if p is not previous.get(args.phase)
                   for q in p.get("queries", [])}
        for q in out:
            if q["query"] in earlier:
                q["same_digest_as_other_phase"] = q["digest"] == earlier[q["query"]]
        previous[args.phase] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "schema": schema,
            "load_average": os.getloadavg(), "runs_per_query": args.runs,
            "baseline_sql": args.before or None, "migration_seconds": MIGRATION_SECONDS,
            "queries": out, "summary": summary(out, before is not None)}
        path = write_result("search", {
            "what": __doc__.split("\n\n")[0], "lscpu": _cmd(["lscpu"]),
            "meminfo_total": _cmd(["grep", "MemTotal", "/proc/meminfo"]),
            "postgres": settings, "database": counts, "phases": previous})
        print(f"wrote {path}")


def _cmd(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def baseline_module(rev: str) -> ModuleType:
    """pipeline/queries.py as it was at `rev`, imported under another name."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:pipeline/queries.py"],
                            capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("queries_baseline", loader=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["queries_baseline"] = mod  # dataclasses look their module up
    exec(compile(source, f"{rev}:pipeline/queries.py", "exec"), mod.__dict__)
    return mod


Case = tuple[str, dict[str, Any]]


def query_set(conn: psycopg.Connection, words: list[str]) -> list[Case]:
    """What people type: each with the UI's two defaults (any time; the last 30 days)."""
    now = store.db.now(conn)
    month, quarter = now - timedelta(days=30), now - timedelta(days=90)
    base: list[Case] = [
        ("common word 'government'", {"text": "government"}),
        ("very common entity 'Turkey'", {"text": "Turkey"}),
        (f"rare word '{words[-1]}'", {"text": words[-1]}),
        ("phrase '\"Bashar al-Assad\"'", {"text": '"Bashar al-Assad"'}),
        ("two words 'S-400 sanctions'", {"text": "S-400 sanctions"}),
        ("or 'ceasefire or truce'", {"text": "ceasefire or truce"}),
        ("exclusion 'missile -russia'", {"text": "missile -russia"}),
        ("topic 'Erdoğan Putin' topic=idlib-conflict", {"text": "Erdoğan Putin", "topic": "idlib-conflict"}),
        ("entity 'missile' entity=Idlib", {"text": "missile", "entity": "Idlib"}),
        ("language 'ceasefire' language=en", {"text": "ceasefire", "language": "en"}),
        ("no results 'zzyzxqvw'", {"text": "zzyzxqvw"}),
    ]
    cases: list[Case] = []
    for name, kw in base:
        cases.append((f"{name} any time", kw))
        cases.append((f"{name} 30d", {**kw, "since": month}))
    cases.append(("'ceasefire' since 90d until 60d", {"text": "ceasefire", "since": quarter,
                                                      "until": now - timedelta(days=60)}))
    cases.append(("'S-400' (db_bench's) any time", {"text": "S-400"}))
    return cases


def _time(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    got = fn()  # warm: medians describe a database in use, not a cold start
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        got = fn()
        times.append((time.perf_counter() - t) * 1000)
    return times, got


def _stats(times: list[float]) -> dict[str, float]:
    s = sorted(times)
    return {"median_ms": round(statistics.median(s), 1), "p90_ms": round(s[min(len(s) - 1, int(0.9 * len(s)))], 1),
            "max_ms": round(s[-1], 1)}


def run(conn: psycopg.Connection, cases: list[Case], runs: int, before: ModuleType | None) -> list[dict]:
    out = []
    for name, kw in cases:
        times, rows = _time(lambda kw=kw: queries.search(conn, **kw), runs)
        row: dict[str, Any] = {"query": name, "rows": len(rows), "after": _stats(times)}
        row["digest"] = _digest(rows)
        if before is not None:
            btimes, _ = _time(lambda kw=kw: before.search(conn, **kw), runs)
            row["before"] = _stats(btimes)
            with conn.transaction():  # one now(): the recency factor moves with the clock
                rows, brows = queries.search(conn, **kw), before.search(conn, **kw)
            row["same_results"] = rows == brows
            if rows != brows:
                row["differences"] = _diff(brows, rows)
        log(f"  {name:<58} {row['after']['median_ms']:>7.1f} ms"
            + (f"  (before {row['before']['median_ms']:.1f} ms, same: {row['same_results']})" if before else ""))
        out.append(row)
    return out


def _digest(rows: list[dict]) -> str:
    """Rows, order and snippets, without the score (it moves with the clock): to compare phases."""
    import hashlib

    keep = [(r["id"], r["title"], r["url"], r["outlet"], r["rank"], r["snippet"], r["topics"]) for r in rows]
    return hashlib.sha256(repr(keep).encode()).hexdigest()[:16]


def _diff(before: list[dict], after: list[dict]) -> list[str]:
    out = []
    if [r["id"] for r in before] != [r["id"] for r in after]:
        out.append(f"ids before {[r['id'] for r in before]} after {[r['id'] for r in after]}")
    for b, a in zip(before, after, strict=False):
        for k in b:
            if b[k] != a.get(k):
                out.append(f"id {b['id']} {k}: {str(b[k])[:120]!r} -> {str(a.get(k))[:120]!r}")
    return out[:20]


def summary(out: list[dict], with_before: bool) -> dict:
    def agg(key: str) -> dict[str, float]:
        meds = [r[key]["median_ms"] for r in out]
        allp90 = sorted(r[key]["p90_ms"] for r in out)
        return {"median_of_medians_ms": round(statistics.median(meds), 1),
                "p90_of_medians_ms": round(sorted(meds)[min(len(meds) - 1, int(0.9 * len(meds)))], 1),
                "max_of_medians_ms": max(meds), "max_p90_ms": allp90[-1],
                "max_ms": max(r[key]["max_ms"] for r in out)}
    s = {"queries": len(out), "after": agg("after")}
    if with_before:
        s["before"] = agg("before")
        s["all_same_results"] = all(r["same_results"] for r in out)
    return s


def report(out: list[dict], with_before: bool) -> None:
    print()
    head = f"  {'query':<58} {'after med':>9} {'p90':>7}"
    if with_before:
        head += f" {'before med':>10} {'p90':>7}  same"
    print(head)
    for r in out:
        line = f"  {r['query']:<58} {r['after']['median_ms']:>9.1f} {r['after']['p90_ms']:>7.1f}"
        if with_before:
            line += f" {r['before']['median_ms']:>10.1f} {r['before']['p90_ms']:>7.1f}  {r['same_results']}"
        print(line)
    s = summary(out, with_before)
    print()
    for key in ("before", "after"):
        if key in s:
            v = s[key]
            print(f"  {key:<6}: median of medians {v['median_of_medians_ms']} ms, p90 of medians "
                  f"{v['p90_of_medians_ms']} ms, max median {v['max_of_medians_ms']} ms, max {v['max_ms']} ms")
    if with_before:
        print(f"  same rows, order and snippets for every query: {s['all_same_results']}")


def explain(conn: psycopg.Connection, cases: list[Case], module: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each case's search SQL (module: after or before)."""
    captured: list[tuple[str, Any]] = []

    class Spy:
        def __init__(self, real: psycopg.Connection):
            self.real = real

        def execute(self, query: str, params: Any = None, prepare: bool | None = None) -> Any:
            if "ts_headline" in query:
                captured.append((query, params))
            return self.real.execute(query, params, prepare=prepare)

    mod = queries if module == "after" else baseline_module(BASELINE)
    for name, kw in cases:
        captured.clear()
        mod.search(Spy(conn), **kw)
        query, params = captured[-1]
        print(f"\n=== {name}")
        for (line,) in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params, prepare=False):
            print(line)


if __name__ == "__main__":
    main()
