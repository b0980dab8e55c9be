"""`newsroom report` at scale: build_report's wall time over 30 days, one year and eight years.

    .venv/bin/python bench/report_bench.py                      # 100,000 articles: a few minutes
    .venv/bin/python bench/report_bench.py --articles 10000     # quicker
    .venv/bin/python bench/report_bench.py --old-tree /tmp/old  # also time the code in /tmp/old

The database: N synthetic articles published over the year before now, loaded by
bench/db_bench.py's loader (bodies, entity mentions, topic tags, ~8% syndicated copies), then two
sparse archives from the same generator: 792 articles over 2011-2018 (issue 13's 97 s report) and
7 articles over 2001-2008 (its 63 s one). Each case runs build_report once to warm up, then
--runs times; the medians of wall time, of this process's CPU time (charts and HTML; the queries'
CPU is the server's) and of the time spent in the database are reported. With --old-tree, each
case is also run once by that tree's build_report in a subprocess, on the same database.

Target (issue 13): under 3 s wall for a report over a year of 100,000 articles. Prints a table,
writes bench/results/report.json; asserts nothing. Uses a throwaway embedded server unless
NEWSROOM_DATABASE_URL is set (then a throwaway database on that server).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import db_bench
import psycopg
from common import bench_database, write_result

from pipeline import periods, store
from pipeline.report import build_report

ARCHIVES = [  # (name, articles, first day, day after the last): old, sparse years
    ("2011-2018", 792, datetime(2011, 1, 1, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC)),
    ("2001-2008", 7, datetime(2001, 1, 1, tzinfo=UTC), datetime(2009, 1, 1, tzinfo=UTC)),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def add_archive(dsn: str, n: int, start: datetime, end: datetime, seed: int) -> None:
    """n more articles spread over [start, end), from db_bench's generator, by COPY."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        feeds = [r[0] for r in conn.execute("SELECT id FROM feeds ORDER BY id")]
        entities = [db_bench.Entity(*r) for r in conn.execute(
            "SELECT id, name, label, wikidata_id FROM entities ORDER BY id")]
        topic_ids = dict(conn.execute("SELECT slug, id FROM topics").fetchall())
        gen = db_bench.Generator(n, feeds, entities, topic_ids, seed, end)
        gen.start = start  # the generator spreads articles evenly over [start, now)
        first_id = 1 + conn.execute("SELECT max(id) FROM articles").fetchone()[0]
        for chunk in gen.chunks(first_id, 20_000):
            db_bench._copy(conn, f"COPY articles ({', '.join(db_bench.ARTICLE_COLUMNS)}) FROM STDIN", chunk.articles)
            for table, cols, data in (
                ("article_sources", "article_id, feed_id, guid, entry_url, first_seen_at, last_seen_at", chunk.sources),
                ("article_topics", "article_id, topic_id, score, evidence, rules_version, tagged_at", chunk.topics),
                ("article_entities", "article_id, start_char, end_char, entity_id, surface, label, model_version",
                 chunk.mentions),
            ):
                db_bench._copy(conn, f"COPY {table} ({cols}) FROM STDIN", data)
        conn.execute("ANALYZE articles, article_topics, article_entities, article_sources")


class _Fetched:
    """A cursor's answer, already fetched (what pipeline.queries reads of a cursor)."""

    def __init__(self, description: Any, rows: list) -> None:
        self.description, self._rows = description, rows

    def fetchall(self) -> list:
        return self._rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None


def _query_function() -> str:
    """The public pipeline.queries function that is running a query."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if Path(code.co_filename).name == "queries.py" and not code.co_name.startswith("_"):
            return code.co_name
        frame = frame.f_back
    return "other"


class TimedConnection:
    """Counts the time build_report spends in the database (executing and fetching), in all and
    per pipeline.queries function."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn, self.seconds, self.queries = conn, 0.0, 0
        self.by_function: dict[str, list[float]] = {}

    def execute(self, query: Any, params: Any = None, **kw: Any) -> _Fetched:
        t = time.perf_counter()
        cur = self._conn.execute(query, params, **kw)
        rows = cur.fetchall() if cur.description is not None else []
        seconds = time.perf_counter() - t
        self.seconds += seconds
        self.queries += 1
        self.by_function.setdefault(_query_function(), []).append(seconds)
        return _Fetched(cur.description, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _plan(conn: psycopg.Connection, since: datetime, until: datetime, bucket: periods.Bucket) -> str:
    """topic_timeline's plan, its scan nodes only: which index (or none) reads articles."""
    plan = conn.execute(
        """EXPLAIN (FORMAT JSON)
           SELECT date_trunc(%(unit)s, a.published_effective, 'UTC') AS bucket, t.slug, count(*)
             FROM articles a JOIN article_topics at ON at.article_id = a.id JOIN topics t ON t.id = at.topic_id
            WHERE a.published_effective >= %(since)s AND a.published_effective < %(until)s
            GROUP BY 1, t.id, t.slug""", {"unit": bucket.value, "since": since, "until": until},
        prepare=False).fetchone()[0][0]["Plan"]
    scans = []

    def walk(node: dict) -> None:
        if "Scan" in node["Node Type"]:
            scans.append(" ".join(x for x in (node["Node Type"], node.get("Index Name", ""), "on",
                                              node.get("Relation Name", "")) if x))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return "; ".join(scans)


def run_case(dsn: str, name: str, since: datetime, until: datetime, runs: int, out: Path) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as raw:
        tagged = raw.execute(
            """SELECT count(DISTINCT a.id) FROM articles a JOIN article_topics at ON at.article_id = a.id
                WHERE a.published_effective >= %s AND a.published_effective < %s""", (since, until)).fetchone()[0]
        articles = raw.execute("SELECT count(*) FROM articles WHERE published_effective >= %s "
                               "AND published_effective < %s", (since, until)).fetchone()[0]
        bucket = periods.choose_bucket(since, until)
        plan = _plan(raw, since, until, bucket)
        walls, cpus, dbs, per_function = [], [], [], {}
        for i in range(runs + 1):  # the first warms caches: the medians describe a report in use
            conn = TimedConnection(raw)
            t, c = time.perf_counter(), time.process_time()
            build_report(conn, since, out, until=until)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            if i:
                walls.append(wall)
                cpus.append(cpu)
                dbs.append(conn.seconds)
                for function, times in conn.by_function.items():
                    per_function.setdefault(function, []).append((len(times), sum(times)))
            else:
                first = wall
    result = {
        "case": name, "since": since, "until": until, "articles": articles, "tagged_articles": tagged,
        "bucket": bucket.value, "buckets": len(periods.bucket_starts(since, until, bucket)),
        "wall_s": round(statistics.median(walls), 2), "wall_min_s": round(min(walls), 2),
        "wall_max_s": round(max(walls), 2), "first_run_wall_s": round(first, 2),
        "cpu_s": round(statistics.median(cpus), 2), "database_s": round(statistics.median(dbs), 2),
        "queries": conn.queries,
        "database_s_by_function": {function: {"calls": calls[0][0],
                                              "s": round(statistics.median(t for _, t in calls), 2)}
                                   for function, calls in per_function.items()},
        "topic_timeline_plan": plan,
        "png_bytes": {p.name: p.stat().st_size for p in sorted(out.glob("*.png"))},
    }
    log(f"  {name:<34} {result['wall_s']:>6.2f} s wall ({result['cpu_s']:.2f} s CPU here, "
        f"{result['database_s']:.2f} s in the database; {bucket}, {result['buckets']} buckets)")
    return result


_OLD_SCRIPT = """
import json, sys, time
from datetime import datetime
from pathlib import Path
import psycopg
from pipeline.report import build_report
dsn, since, until, out = sys.argv[1], datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), sys.argv[4]
with psycopg.connect(dsn, autocommit=True) as conn:
    t, c = time.perf_counter(), time.process_time()
    build_report(conn, since, Path(out), until=until)
    print(json.dumps({"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2)}))
"""


def run_old(tree: Path, dsn: str, since: datetime, until: datetime, out: Path) -> dict[str, Any]:
    """One run of another tree's build_report (a fresh process: its first run, matplotlib's font
    cache already built)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _OLD_SCRIPT, dsn, since.isoformat(), until.isoformat(), str(out)],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=100_000, help="articles over the last year")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per case (the median is reported)")
    ap.add_argument("--seed", type=int, default=20191001)
    ap.add_argument("--old-tree", type=Path, help="also run this tree's build_report once per case")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    load_before = os.getloadavg()
    with bench_database() as dsn, tempfile.TemporaryDirectory(prefix="nrr") as tmp:
        log(f"loading {args.articles:,} articles over the last year (db_bench's loader) ...")
        loaded = db_bench.load(dsn, args.articles, 20_000, args.seed, log)
        loaded.pop("_gen")
        for i, (name, n, start, end) in enumerate(ARCHIVES):
            log(f"adding {n} articles over {name} ...")
            add_archive(dsn, n, start, end, args.seed + i + 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            now = store.db.now(conn)
            settings = dict(conn.execute(
                """SELECT name, current_setting(name) FROM pg_settings
                    WHERE name IN ('shared_buffers', 'work_mem', 'server_version',
                                   'max_parallel_workers_per_gather', 'random_page_cost')""").fetchall())
        cases = [
            ("30 days", now - timedelta(days=30), now),
            ("1 year", now - timedelta(days=365), now),
            ("8 years", now - timedelta(days=8 * 365), now),
            ("792 articles over 2011-2018", ARCHIVES[0][2], ARCHIVES[0][3]),
            ("7 articles over 2001-2008", ARCHIVES[1][2], ARCHIVES[1][3]),
        ]
        log(f"build_report, median of {args.runs} runs after one warm-up ...")
        results = [run_case(dsn, name, since, until, args.runs, Path(tmp) / f"r{i}")
                   for i, (name, since, until) in enumerate(cases)]
        if args.old_tree:
            log(f"the code in {args.old_tree}, one run per case ...")
            for i, ((name, since, until), r) in enumerate(zip(cases, results, strict=True)):
                r["old_tree"] = run_old(args.old_tree, dsn, since, until, Path(tmp) / f"old{i}")
                log(f"  {name:<34} {r['old_tree']['wall_s']:>6.2f} s wall ({r['old_tree']['cpu_s']:.2f} s CPU)")
    total = time.perf_counter() - t0

    print()
    print(f"report bench: {loaded['articles']:,} articles over the last year, {loaded['topic_rows']:,} topic tags, "
          f"{loaded['mention_rows']:,} mention rows; + {ARCHIVES[0][1]} over {ARCHIVES[0][0]}, "
          f"{ARCHIVES[1][1]} over {ARCHIVES[1][0]}")
    print(f"  {'case':<34} {'articles':>8} {'bucket':>6} {'wall':>7} {'cpu':>6} {'db':>6}" +
          (f" {'old wall':>9}" if args.old_tree else ""))
    for r in results:
        print(f"  {r['case']:<34} {r['articles']:>8,} {r['bucket']:>6} {r['wall_s']:>6.2f}s {r['cpu_s']:>5.2f}s "
              f"{r['database_s']:>5.2f}s" + (f" {r['old_tree']['wall_s']:>8.2f}s" if "old_tree" in r else ""))
    print(f"\ntotal {total:.0f} s")
    if not args.no_write:
        path = write_result("report", {
            "what": ("bench/report_bench.py: build_report (pipeline/report.py) on a throwaway embedded server; "
                     "wall_s etc. are medians of runs after one warm-up; cpu_s is this process's (charts, HTML), "
                     "database_s the time in queries"),
            "target": "under 3 s wall for a report over a year of 100,000 articles (issue 13)",
            "articles": args.articles, "runs_per_case": args.runs, "load_seconds": loaded["load_seconds"],
            "topic_rows": loaded["topic_rows"], "mention_rows": loaded["mention_rows"],
            "archives": [{"years": name, "articles": n} for name, n, _, _ in ARCHIVES],
            "postgres": settings, "old_tree": str(args.old_tree) if args.old_tree else None,
            "cases": results, "total_seconds": round(total, 1),
            # other work on the machine while this ran: the 2 cores were shared when these are high
            "load_average_1_5_15_min": {"at_start": [round(x, 2) for x in load_before],
                                        "at_end": [round(x, 2) for x in os.getloadavg()]},
        })
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
