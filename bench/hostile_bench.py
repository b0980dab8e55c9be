"""The hostile corpus, measured: wall time per stage, peak memory, and where everything ended.

tests/hostile_site.py serves tests/fixtures/hostile/ (good feeds and articles mixed with every
kind of hostile feed and page) on 127.0.0.1 and 127.0.0.2. Two `ingest_once` cycles run over it
against a fresh database (embedded, in a temporary state dir, unless NEWSROOM_DATABASE_URL is
set); before the second, everything is made due again, as in tests/integration/test_hostile_corpus.py.

Each cycle runs in its own process, started by a small wrapper process that reads the cycle's
peak RSS with getrusage(RUSAGE_CHILDREN) (so the database server's own processes never count).

    .venv/bin/python bench/hostile_bench.py [--cycles 2] [--host-budget 5] [--routes] [--out PATH]

Prints a summary (and with --routes every route's outcome) and writes bench/results/hostile.json.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

ERROR_CLASS = re.compile(r"^([a-z][a-z0-9_]*): ")


def _settings(a: dict):
    from pipeline.config import Settings

    s = replace(Settings.from_env({}), database_url=a["dsn"], state_dir=Path(a["state"]), feeds_file=Path(a["feeds"]),
                allow_private_networks=True, per_host_delay=0.0, connect_timeout=a["connect_timeout"],
                read_timeout=a["read_timeout"])
    if "host_budget" in {f.name for f in fields(Settings)}:
        s = replace(s, host_budget=a["host_budget"])
    return s


def run_cycle(a: dict) -> dict:
    """One ingest_once, in this process; what it returned or raised."""
    from hostile_site import Corpus, no_dns, watch_opens

    from pipeline import ingest

    out: dict = {"run_key": a["run_key"]}
    t0 = time.perf_counter()
    lookups: list[str] = []
    opened: list[str] = []
    try:
        # The corpus is IP literals only (nothing may reach a resolver); no named local file may be opened.
        with no_dns() as lookups, watch_opens(Corpus.local_files) as opened:
            _, results, checks = ingest.ingest_once(_settings(a), run_key=a["run_key"], trigger="bench")
        out["stages"] = [r.as_dict() for r in results]
        out["checks"] = [{"name": c.name, "severity": c.severity, "message": c.message} for c in checks]
        out["raised"] = None
    except Exception as exc:  # recorded: the point is to see what the corpus does
        out["raised"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        out["traceback"] = traceback.format_exc()[-4000:]
    out["wall_s"] = round(time.perf_counter() - t0, 3)
    out["name_lookups_refused"] = sorted(set(lookups))
    out["local_files_opened"] = sorted(set(opened))
    out["self_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def measured_cycle(a: dict) -> dict:
    """Run one cycle in a child process and read its peak RSS as our only child's."""
    proc = subprocess.run([sys.executable, __file__, "--cycle", json.dumps(a)], capture_output=True, text=True,
                          timeout=1800)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        out = {"raised": f"cycle process exited {proc.returncode}", "stderr": proc.stderr[-4000:]}
    out["exit_code"] = proc.returncode
    out["peak_rss_mib"] = round(rss, 1)
    return out


def _db_facts(dsn: str, corpus) -> dict:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        articles = conn.execute("SELECT url, status, failed_stage, last_error FROM articles ORDER BY url").fetchall()
        feeds = conn.execute("SELECT url, last_status, consecutive_failures, last_error_class, last_error "
                             "FROM feeds").fetchall()
    by_status = Counter(status for _, status, _, _ in articles)
    article_errors = Counter()
    for _, status, stage, err in articles:
        if status != "tagged":
            m = ERROR_CLASS.match(err or "")
            article_errors[f"{stage or status}:{m.group(1) if m else 'UNNAMED'}"] += 1
    feed_errors = Counter(cls or "UNCLASSIFIED" for _, _, failures, cls, _ in feeds if failures)
    good = set(corpus.good_articles)
    routes = {}
    for url, status, stage, err in articles:
        route = corpus.route_for_url(url)
        routes.setdefault(route.id if route else "?", []).append(
            {"url": url[:200], "status": status, "stage": stage, "error": (err or "")[:200]})
    feed_rows = {url: (st, n, cls, (err or "")[:200]) for url, st, n, cls, err in feeds}
    for route_id, url in corpus.feeds.items():
        st, n, cls, err = feed_rows.get(url, (None, None, None, None))
        routes.setdefault(route_id, []).append({"url": url, "feed_status": st, "failures": n, "error_class": cls,
                                                "error": err})
    return {"articles": len(articles), "articles_by_status": dict(by_status),
            "good_articles": len(good), "good_tagged": sum(1 for u, s, _, _ in articles if u in good and s == "tagged"),
            "article_error_classes": dict(article_errors.most_common()), "feed_error_classes": dict(feed_errors.most_common()),
            "routes": routes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--host-budget", type=float, default=5.0)
    ap.add_argument("--connect-timeout", type=float, default=1.0)
    ap.add_argument("--read-timeout", type=float, default=1.0)
    ap.add_argument("--exclude", default="", help="comma-separated manifest route ids to leave out")
    ap.add_argument("--routes", action="store_true", help="print every route's outcome")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hostile.json")
    ap.add_argument("--cycle", help=argparse.SUPPRESS)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cycle:  # the measured process
        print(json.dumps(run_cycle(json.loads(args.cycle))))
        return
    if args.measure:  # the wrapper whose only child is the measured process
        print(json.dumps(measured_cycle(json.loads(args.measure))))
        return

    from common import bench_database, machine
    from hostile_site import HostileSite

    exclude = {x for x in args.exclude.split(",") if x}
    cycles = []
    with HostileSite(exclude=exclude) as site, bench_database() as dsn, \
            tempfile.TemporaryDirectory(prefix="nrh", dir="/tmp") as state:
        corpus = site.write_feeds_yaml(Path(state) / "feeds.yaml")
        base = {"dsn": dsn, "state": state, "feeds": str(corpus.feeds_file), "host_budget": args.host_budget,
                "connect_timeout": args.connect_timeout, "read_timeout": args.read_timeout}
        for n in range(1, args.cycles + 1):
            if n > 1:
                import psycopg

                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("UPDATE feeds SET next_poll_at = now()")
                    conn.execute("UPDATE articles SET next_attempt_at = now() WHERE status NOT IN ('tagged', 'failed')")
            mark = site.mark()
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--measure", json.dumps({**base, "run_key": f"hostile-{n}"})],
                                  capture_output=True, text=True, timeout=3600)
            try:
                result = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                result = {"raised": f"wrapper exited {proc.returncode}", "stderr": proc.stderr[-4000:]}
            result["cycle"] = n
            result["process_wall_s"] = round(time.perf_counter() - t0, 3)  # includes imports and model loading
            result["stages_s"] = {s["stage"]: s["seconds"] for s in result.get("stages", [])}
            result["robots_requests_to_unanswering_host"] = len(site.hits(corpus.robots_hang_host, "/robots.txt",
                                                                          since=mark))
            result["requests_served"] = len(site.hits(since=mark))
            result["xxe_canary_requests"] = len([h for h in site.hits(since=mark)
                                                 if h.path.startswith(corpus.xxe_canary_path)])
            result["db"] = _db_facts(dsn, corpus)
            cycles.append(result)

    summary = {"cycles": args.cycles, "corpus_routes": len(corpus.routes), "feeds": len(corpus.feeds),
               "good_articles": len(corpus.good_articles), "excluded": sorted(exclude),
               "settings": {"host_budget": args.host_budget, "connect_timeout": args.connect_timeout,
                            "read_timeout": args.read_timeout, "per_host_delay": 0.0},
               "peak_rss_mib": max((c.get("peak_rss_mib") or 0) for c in cycles)}
    for c in cycles:
        db = c["db"]
        print(f"cycle {c['cycle']}: {'RAISED ' + c['raised'] if c.get('raised') else 'returned'}; "
              f"ingest_once {c.get('wall_s', '?')}s (process {c['process_wall_s']}s), peak RSS {c.get('peak_rss_mib')} MiB")
        print(f"  stages (s): {c['stages_s']}")
        print(f"  articles {db['articles']} by status {db['articles_by_status']}; good tagged "
              f"{db['good_tagged']}/{db['good_articles']}; robots.txt requests to the unanswering host "
              f"{c['robots_requests_to_unanswering_host']}")
        print(f"  article errors {db['article_error_classes']}")
        print(f"  feed errors {db['feed_error_classes']}")
        if c.get("name_lookups_refused"):
            print(f"  name lookups refused: {c['name_lookups_refused']}")
        if c.get("local_files_opened"):
            print(f"  LOCAL FILES OPENED: {c['local_files_opened']}")
    if args.routes:
        for route_id, rows in cycles[-1]["db"]["routes"].items():
            for r in rows:
                print(f"  {route_id:30} {json.dumps(r, ensure_ascii=False)[:230]}")
    data = {"machine": machine(), "summary": summary, "cycles": cycles}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
