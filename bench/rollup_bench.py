"""The topic rollup (migration 0010) at scale: topic_timeline and topic_volumes from the base
tables (as before 0010) and from the rollup, and what the triggers cost the tag stage's writes.

    .venv/bin/python bench/rollup_bench.py                      # 1,000,000 articles: ~15 minutes
    .venv/bin/python bench/rollup_bench.py --articles 100000    # quicker

The database: bench/db_bench.py's synthetic loader (articles over the year before now, ~0.7 topic
tags per article, ~8% syndicated copies), loaded with the triggers on (the COPY of article_topics
appends deltas), compacted once, VACUUM (ANALYZE).

Timings: the median of --runs runs after one warm-up, for periods of 30 days, 90 days and a year
ending now (edges off midnight: the part days come from the base tables), also with
--deltas uncompacted delta rows pending; every rollup answer is checked equal to the base one.

Trigger cost: the tag stage's path (store.annotations.replace_topics: per article one DELETE and
one INSERT per tag, committed every 64 articles) re-writing the topics of --sample articles, with
the rollup's triggers enabled and disabled (alternating, best of --repeat each), and bulk COPY of
article_topics likewise; then the compaction of the deltas that produced.

Target: topic_timeline under 50 ms at 1,000,000 articles for periods up to a year. Prints a table,
writes bench/results/rollup.json; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import db_bench
import psycopg
from common import bench_database, write_result
from psycopg.types.json import Jsonb

from pipeline import queries, store

TRIGGERS = ("topic_rollup_added", "topic_rollup_removed", "topic_rollup_moved")


def _median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    got = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 1), got


def time_queries(dsn: str, runs: int, log: Callable[[str], None], label: str) -> list[dict]:
    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        now = store.db.now(conn)
        pending = store.rollup.pending_deltas(conn)
        for days in (30, 90, 365):
            since = now - timedelta(days=days)
            for name, new, old in (
                ("topic_timeline", lambda s=since: queries.topic_timeline(conn, s, until=now),
                 lambda s=since: queries._topic_timeline_from_articles(conn, s, now, None, "day", None)),
                ("topic_timeline by week", lambda s=since: queries.topic_timeline(conn, s, until=now, bucket="week"),
                 lambda s=since: queries._topic_timeline_from_articles(conn, s, now, None, "week", None)),
                ("topic_timeline topic=syria-war",
                 lambda s=since: queries.topic_timeline(conn, s, until=now, topic="syria-war"),
                 lambda s=since: queries._topic_timeline_from_articles(
                     conn, s, now, queries.resolve_topic(conn, "syria-war")["id"], "day", None)),
                ("topic_volumes", lambda s=since: queries.topic_volumes(conn, s, until=now),
                 lambda s=since: queries._topic_volumes_from_articles(conn, s, now, s - (now - s), None)),
            ):
                before_ms, old_rows = _median_ms(old, runs)
                after_ms, new_rows = _median_ms(new, runs)
                if name == "topic_volumes":
                    new_rows = [{k: r[k] for k in ("slug", "name", "articles", "originals", "previous")}
                                for r in new_rows]
                row = {"query": f"{name} {days}d", "deltas_pending": pending, "base_ms": before_ms,
                       "rollup_ms": after_ms, "rows": len(new_rows), "equal": new_rows == old_rows}
                out.append(row)
                log(f"  [{label}] {row['query']:<40} base {before_ms:>8.1f} ms   rollup {after_ms:>7.1f} ms   "
                    f"{len(new_rows):>5} rows  equal={row['equal']}")
    return out


def _plan(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        now = store.db.now(conn)
        params = {"topic": None, "unit": "day", **queries._rollup_params(now - timedelta(days=365),
                                                                         (now - timedelta(days=365), now))}
        lines = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + queries._TIMELINE_ROLLUP, params,
                                            prepare=False)]
    return lines


def _triggers(conn: psycopg.Connection, on: bool) -> None:
    for name in TRIGGERS:
        conn.execute(f"ALTER TABLE article_topics {'ENABLE' if on else 'DISABLE'} TRIGGER {name}")


def trigger_cost(dsn: str, articles: int, sample: int, repeat: int, log: Callable[[str], None]) -> dict:
    """Rows/s of writing article_topics the tag stage's way and by COPY, triggers on and off."""
    rng = random.Random(11)
    with psycopg.connect(dsn) as conn:
        conn.execute("SET synchronous_commit = off")  # as store.db.session does
        conn.commit()
        topic_ids = dict(conn.execute("SELECT slug, id FROM topics").fetchall())
        ids = sorted(rng.sample(range(1, articles + 1), min(sample, articles)))
        tags = {}
        for i in ids:  # one or two tags each, as the stage writes them
            slugs = rng.sample(sorted(topic_ids), rng.choice((1, 1, 1, 2)))
            tags[i] = [(topic_ids[s], round(rng.uniform(5, 15), 2)) for s in slugs]
        rows = sum(len(v) for v in tags.values())
        evidence = Jsonb({"score": 9.0, "threshold": 5, "required": [], "supporting": []})

        def stage_path() -> float:
            t = time.perf_counter()
            for k in range(0, len(ids), 64):
                # the articles are locked first, as the tag stage holds them (queue.holding)
                conn.execute("SELECT id FROM articles WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids[k:k + 64],))
                for i in ids[k:k + 64]:
                    conn.execute("DELETE FROM article_topics WHERE article_id = %s", (i,))
                    with conn.cursor() as cur:
                        cur.executemany(
                            """INSERT INTO article_topics (article_id, topic_id, score, evidence, rules_version)
                               VALUES (%s, %s, %s, %s, %s)
                               ON CONFLICT (article_id, topic_id) DO UPDATE SET score = EXCLUDED.score,
                                   evidence = EXCLUDED.evidence, rules_version = EXCLUDED.rules_version,
                                   tagged_at = now()""",
                            [(i, tid, score, evidence, "bench-2") for tid, score in tags[i]])
                conn.commit()
            return time.perf_counter() - t

        def bulk_path() -> float:
            conn.execute("DELETE FROM article_topics WHERE article_id = ANY(%s)", (ids,))
            t = time.perf_counter()
            with conn.cursor() as cur, cur.copy(
                    "COPY article_topics (article_id, topic_id, score, evidence, rules_version) FROM STDIN") as copy:
                for i in ids:
                    for tid, score in tags[i]:
                        copy.write_row((i, tid, score, '{"bench": true}', "bench-3"))
            conn.commit()
            return time.perf_counter() - t

        results: dict[str, list[float]] = {"stage_on": [], "stage_off": [], "copy_on": [], "copy_off": []}
        for _ in range(repeat):
            for on in (True, False):
                _triggers(conn, on)
                conn.commit()
                results["stage_on" if on else "stage_off"].append(stage_path())
                results["copy_on" if on else "copy_off"].append(bulk_path())
        _triggers(conn, True)
        conn.commit()
    out: dict[str, Any] = {"articles": len(ids), "rows": rows, "repeat": repeat}
    for key, secs in results.items():
        out[f"{key}_rows_per_s"] = round(rows / min(secs), 0)
        out[f"{key}_seconds"] = [round(s, 2) for s in secs]
    out["stage_overhead_pct"] = round(100 * (out["stage_off_rows_per_s"] / out["stage_on_rows_per_s"] - 1), 1)
    out["copy_overhead_pct"] = round(100 * (out["copy_off_rows_per_s"] / out["copy_on_rows_per_s"] - 1), 1)
    log(f"  tag stage path: {out['stage_on_rows_per_s']:,.0f} rows/s with triggers, "
        f"{out['stage_off_rows_per_s']:,.0f} without ({out['stage_overhead_pct']}%)")
    log(f"  COPY:           {out['copy_on_rows_per_s']:,.0f} rows/s with triggers, "
        f"{out['copy_off_rows_per_s']:,.0f} without ({out['copy_overhead_pct']}%)")
    return out


def rebuild(dsn: str) -> None:
    """Counts from the base tables again (the trigger-cost runs wrote with the triggers off)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        store.rollup.rebuild(conn)


def add_deltas(dsn: str, n: int) -> None:
    """n pending delta rows (+1 and -1 pairs on random days: the totals stay right)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("""INSERT INTO topic_day_deltas (topic_id, day, articles, originals)
                        SELECT t.id, current_date - mod(g / 2, 365), CASE WHEN mod(g, 2) = 0 THEN 1 ELSE -1 END, 0
                          FROM generate_series(0, %s - 1) g,
                               LATERAL (SELECT id FROM topics ORDER BY id OFFSET mod(g / 2, 6) LIMIT 1) t""", (n,))
        conn.execute("ANALYZE topic_day_deltas")


@contextmanager
def _database(dsn: str | None) -> Iterator[str]:
    if dsn is None:
        with bench_database() as throwaway:
            yield throwaway
        return
    with psycopg.connect(dsn, autocommit=True) as conn:
        store.migrations.migrate(conn)
    yield dsn


def lean_load(dsn: str, n: int, log: Callable[[str], None]) -> dict[str, Any]:
    """n articles by SQL (no bodies: what these queries read is the publication time, the original
    mark and the tags), shaped as db_bench's generator shapes them: published over the year before
    now, ~8% copies (is_original false), each article one of db_bench.THEMES by its share (None: no
    topic) and a quarter of the tagged ones a second topic; a ~1.5 kB summary keeps the rows about
    as wide on the heap as an article's columns besides its (TOASTed) body. Loaded with the
    triggers on, in chunks, as tags arrive."""
    from pipeline.records import FeedSpec, TopicDef

    themes = [(slug, share) for slug, (share, _, _) in db_bench.THEMES.items() if slug]
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        store.feeds.upsert_feeds(conn, [FeedSpec(url="https://news.example/feed.xml", name="Outlet")])
        ids = store.annotations.upsert_topics(conn, [TopicDef(slug=s, name=s.replace("-", " ").title(),
                                                              rules_version="bench-rules") for s, _ in themes])
        bounds, acc = [], 0.0
        for slug, share in themes:  # cumulative shares: r < bound picks the topic
            acc += share
            bounds.append((ids[slug], acc))
        topic_ids = [b[0] for b in bounds]
        cums = [b[1] for b in bounds]
        chunk = 100_000
        copy_s = 0.0
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            conn.execute("""
                INSERT INTO articles (url, first_url, pipeline_version, title, summary, published_at, published_source,
                                      language, status, is_original, cluster_id, discovered_at)
                SELECT 'https://news.example/' || g, 'https://news.example/' || g, 'bench', 'Story ' || g,
                       (SELECT string_agg(md5((g * 50 + k)::text), ' ') FROM generate_series(1, 45) k),
                       now() - interval '365 days' + (g + random()) * interval '365 days' / %(n)s, 'page', 'en',
                       'tagged', random() >= 0.08, NULL, now()
                  FROM generate_series(%(lo)s, %(hi)s - 1) g""", {"n": n, "lo": lo, "hi": hi})
            t = time.perf_counter()
            conn.execute("""
                WITH chosen AS (
                    SELECT a.id, random() AS r, random() AS second, random() AS which FROM articles a
                     WHERE a.url >= 'https://news.example/' AND a.id > coalesce(
                           (SELECT max(article_id) FROM article_topics), 0)),
                picked AS (
                    SELECT c.id, (SELECT t FROM unnest(%(topics)s::bigint[], %(cums)s::float8[]) u (t, cum)
                                   WHERE c.r < u.cum ORDER BY u.cum LIMIT 1) AS topic,
                           c.second < 0.25 AS two, c.which
                      FROM chosen c)
                INSERT INTO article_topics (article_id, topic_id, score, rules_version)
                SELECT id, topic, 9.0, 'bench-rules' FROM picked WHERE topic IS NOT NULL
                UNION ALL
                SELECT id, (%(topics)s::bigint[])[1 + ((array_position(%(topics)s::bigint[], topic) - 1
                             + 1 + floor(which * 5)::int) %% 6)], 6.0, 'bench-rules'  -- another topic
                  FROM picked WHERE topic IS NOT NULL AND two""",
                {"topics": topic_ids, "cums": cums})
            copy_s += time.perf_counter() - t
            log(f"  {hi:>9,} articles, {time.perf_counter() - t0:6.0f}s")
        conn.execute("VACUUM (ANALYZE) articles, article_topics")
        topic_rows = conn.execute("SELECT count(*) FROM article_topics").fetchone()[0]
    return {"articles": n, "topic_rows": topic_rows, "load_seconds": round(time.perf_counter() - t0, 1),
            "copy_seconds": {"article_topics (INSERT ... SELECT, triggers on)": round(copy_s, 1)},
            "loader": "lean (rollup_bench.lean_load)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sample", type=int, default=5000, help="articles re-tagged for the trigger cost")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--deltas", type=int, default=20_000, help="pending deltas for the second timing")
    ap.add_argument("--seed", type=int, default=20191001)
    ap.add_argument("--lean", action="store_true",
                    help="load with lean_load (SQL, no bodies: minutes) instead of db_bench.load (bodies, "
                         "mentions: ~11 minutes at 1M on an idle machine)")
    ap.add_argument("--dsn", help="a database to keep (migrated here; loaded only when it has no articles), "
                                  "so the timings can be run again without loading again")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    with _database(args.dsn) as dsn:
        with psycopg.connect(dsn) as conn:
            have = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        if have:
            log(f"using the {have:,} articles loaded before")
            loaded = {"articles": have, "topic_rows": None, "load_seconds": None, "copy_seconds": None}
        else:
            log(f"loading {args.articles:,} articles (triggers on) ...")
            if args.lean:
                loaded = lean_load(dsn, args.articles, log)
            else:
                loaded = db_bench.load(dsn, args.articles, args.chunk, args.seed, log)
                loaded.pop("_gen")
                loaded["loader"] = "db_bench.load"
        with psycopg.connect(dsn, autocommit=True) as conn:
            pending = store.rollup.pending_deltas(conn)
            t = time.perf_counter()
            done = store.rollup.compact(conn)
            compact_s = time.perf_counter() - t
            diffs = store.rollup.differences(conn)
            conn.execute("VACUUM (ANALYZE) topic_day_counts, topic_day_deltas")
            counts = conn.execute("SELECT count(*) FROM topic_day_counts").fetchone()[0]
        log(f"  {pending:,} deltas after the load, compacted in {compact_s:.2f}s into {counts:,} rows; "
            f"differences from the base tables: {len(diffs)}")
        log(f"timing (median of {args.runs}) ...")
        load_before = os.getloadavg()
        timings = time_queries(dsn, args.runs, log, "compacted")
        plan = _plan(dsn)
        add_deltas(dsn, args.deltas)
        timings += time_queries(dsn, args.runs, log, f"{args.deltas:,} deltas pending")
        load_after = os.getloadavg()
        with psycopg.connect(dsn, autocommit=True) as conn:
            store.rollup.compact(conn)
        log("trigger cost on article_topics writes ...")
        cost = trigger_cost(dsn, loaded["articles"], args.sample, args.repeat, log)
        with psycopg.connect(dsn, autocommit=True) as conn:
            pending_after = store.rollup.pending_deltas(conn)
            t = time.perf_counter()
            compact_after = store.rollup.compact(conn)
            cost["compact_after_seconds"] = round(time.perf_counter() - t, 3)
            cost["compacted_deltas"] = compact_after.deltas
            cost["deltas_written"] = pending_after
        rebuild(dsn)
        with psycopg.connect(dsn) as conn:
            settings = dict(conn.execute(
                """SELECT name, current_setting(name) FROM pg_settings
                    WHERE name IN ('shared_buffers', 'work_mem', 'server_version', 'max_parallel_workers_per_gather',
                                   'random_page_cost')""").fetchall())
    total = time.perf_counter() - t0
    path = write_result("rollup", {
        "articles": args.articles, "runs_per_query": args.runs, "target_ms": 50,
        "load": {k: loaded.get(k) for k in ("articles", "topic_rows", "load_seconds", "copy_seconds", "loader")},
        "articles_loaded": loaded["articles"],
        "after_load": {"deltas": pending, "compact_seconds": round(compact_s, 2), "compacted": done.as_dict(),
                       "count_rows": counts, "differences": len(diffs)},
        "queries": timings, "timeline_plan_365d": plan,
        "load_average_1_5_15": {"before_timing": [round(x, 2) for x in load_before],
                                "after_timing": [round(x, 2) for x in load_after]}, "trigger_cost": cost, "postgres": settings,
        "total_seconds": round(total, 1),
        "notes": "base_ms: the query before migration 0010 (articles JOIN article_topics over the period); "
                 "rollup_ms: topic_timeline/topic_volumes now (whole days from topic_day_counts + deltas, part "
                 "days at the edges from the base tables). Periods end now (edges off midnight). The machine has "
                 "2 cores shared with other developers' jobs.",
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
