"""The Airflow UI pages at scale: every Newsroom page served end to end (FastAPI app, queries on a
read-only connection, templates, SVG) against a database of N synthetic articles
(bench/db_bench.py's loader), median and worst of several runs per page, after one warm-up.

    .venv/bin/python bench/ui_bench.py --articles 1000000          # loads first (~11 min)
    .venv/bin/python bench/ui_bench.py --dsn postgresql://...      # a database db_bench loaded

The target (issue 17): every page under 300 ms for periods up to a year at 1,000,000 articles,
search under 100 ms at the median. The login check is Airflow's and is left out here (the app's
`viewer` dependency is replaced by a stub); it costs a JWT decode per request. Asserts nothing;
prints a table and writes bench/results/ui.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_database, write_result


def _pages(conn: psycopg.Connection, rare: str) -> list[tuple[str, str]]:
    feed = conn.execute("SELECT id FROM feeds ORDER BY id LIMIT 1").fetchone()[0]
    article = conn.execute("SELECT id FROM articles WHERE body IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()[0]
    entity = conn.execute("SELECT e.name FROM entities e JOIN article_entities ae ON ae.entity_id = e.id "
                          "GROUP BY e.id ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    conn.execute("INSERT INTO ingest_runs (run_key, trigger, status, started_at, finished_at) "
                 "VALUES ('bench__ui', 'bench', 'success', now() - interval '1 hour', now()) ON CONFLICT DO NOTHING")
    conn.commit()
    return [
        ("feeds", "/feeds"),
        ("feed history", f"/feeds/{feed}"),
        ("topics 7d", "/topics?since=7d"),
        ("topics 30d (default)", "/topics"),
        ("topics 90d", "/topics?since=90d"),
        ("topics 365d", "/topics?since=365d"),
        ("search common word", "/search?q=government"),
        ("search two words", "/search?q=missile+defence"),
        ("search phrase", "/search?q=%22air+defence%22"),
        ("search rare word", f"/search?q={rare}"),
        ("search exclusion", "/search?q=turkey+-russia"),
        ("search + topic", "/search?q=government&topic=idlib-conflict"),
        ("search + entity", f"/search?q=government&entity={entity}"),
        ("search 30 days", "/search?q=government&since=30d"),
        ("search nothing found", "/search?q=zzqxjv"),
        ("articles of a topic (no words)", "/search?topic=idlib-conflict"),
        ("article", f"/articles/{article}"),
        ("run tab", "/runs/news_ingest/bench__ui"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=1_000_000, help="load this many first (without --dsn)")
    ap.add_argument("--dsn", help="a database bench/db_bench.py loaded (kept as it is)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--seed", type=int, default=20191001)
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    os.environ.setdefault("AIRFLOW_HOME", "/tmp/newsroom-ui-bench-airflow")  # the app imports Airflow's auth bits
    from fastapi.testclient import TestClient

    from pipeline import webapp

    rare = "zygomorphic"
    with nullcontext(args.dsn) if args.dsn else bench_database() as dsn:
        if not args.dsn:
            import db_bench

            log(f"loading {args.articles:,} articles ...")
            gen = db_bench.load(dsn, args.articles, 20_000, args.seed, log).pop("_gen")
            rare = gen.words[-1]
        os.environ["NEWSROOM_DATABASE_URL"] = dsn
        with psycopg.connect(dsn) as conn:
            articles = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
            pages = _pages(conn, rare)
        app = webapp.create_app()
        app.dependency_overrides[webapp.viewer] = lambda: "bench"
        webapp.get_auth_manager = lambda: _AllowAll()  # the run tab's DAG check
        client = TestClient(app)
        results = []
        for name, path in pages:
            r = client.get(path)  # warm-up (and a check the page works)
            if r.status_code != 200:
                log(f"{name}: HTTP {r.status_code}: {r.text[:300]}")
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
            results.append({"page": name, "path": path, "status": r.status_code, "bytes": len(r.content),
                            "median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)})
            log(f"  {name:<32} {results[-1]['median_ms']:>8.1f} ms (max {results[-1]['max_ms']:.1f})")
    print(f"\nui bench: {articles:,} articles, {args.runs} runs per page (median, max)")
    for r in results:
        flag = "" if r["median_ms"] < (100 if r["page"].startswith("search") else 300) else "  <- over target"
        print(f"  {r['page']:<32} {r['median_ms']:>8.1f} ms  {r['max_ms']:>8.1f} ms  {r['bytes']:>7} B{flag}")
    search = [r["median_ms"] for r in results if r["page"].startswith("search")]
    print(f"  median of the searches' medians: {statistics.median(search):.1f} ms")
    path = write_result("ui", {"articles": articles, "runs": args.runs, "pages": results,
                               "search_median_of_medians_ms": statistics.median(search),
                               "targets_ms": {"page": 300, "search_median": 100}})
    print(f"wrote {path}")


class _AllowAll:
    def is_authorized_dag(self, **_: object) -> bool:
        return True


if __name__ == "__main__":
    main()
