"""Bytes per article on disk, and what a year of 100,000 articles a day needs.

A local site on 127.0.0.1 serves the shared extraction-dev pages (91 real news pages; the demo
site's when absent) behind a few RSS feeds; one `ingest_once` takes them through the real fetch,
extract and tag stages into a fresh database. After VACUUM (ANALYZE), every table and index is
measured (minus what it took empty: index metapages) and divided by the number of articles;
the stored columns are measured with pg_column_size (after TOAST compression).

    .venv/bin/python bench/storage_bench.py

Prints a table and writes bench/results/storage.json. Asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psycopg
from common import bench_database, write_result
from e2e_bench import DEV, load_pages, serve

from pipeline import ingest, store
from pipeline.config import Settings

PER_DAY = 100_000
YEAR = 365
RAW_KEPT_DAYS = 90
POLLS_KEPT_DAYS = 180
# Distinct entities a year for the projection: names grow far slower than articles (most of a
# day's mentions are of people, places and organisations already stored); 10 M is generous.
ENTITIES_PER_YEAR = 10_000_000
# Feed polls a day for the projection: 1,000 feeds polled every 30 minutes (100,000 articles a
# day is about 100 articles per feed a day at that count).
POLLS_PER_DAY = 1_000 * 48

ALL = ("articles", "raw_pages", "article_entities", "article_topics", "article_sources", "entities", "topics",
       "feeds", "feed_polls", "ingest_runs")


def relation_sizes(conn) -> dict[str, dict]:
    """{table: {heap, toast, indexes, total, index: {name: bytes}}} of every table."""
    out = {t.table: {"heap": t.heap, "toast": t.toast, "indexes": t.indexes, "total": t.total}
           for t in store.maintenance.table_sizes(conn)}
    for table, index, size in conn.execute(
            """SELECT t.relname, i.relname, pg_relation_size(i.oid)
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
                WHERE t.relnamespace = current_schema()::regnamespace"""):
        out.setdefault(table, {}).setdefault("index", {})[index] = size
    return out


def grown(after: dict, before: dict) -> dict:
    out = {}
    for table, a in after.items():
        b = before.get(table, {})
        out[table] = {k: a[k] - b.get(k, 0) for k in ("heap", "toast", "indexes", "total")}
        out[table]["index"] = {i: s - b.get("index", {}).get(i, 0) for i, s in a.get("index", {}).items()}
    return out


def columns(conn) -> dict:
    """Sums of what the big columns take as stored (compressed where TOAST compressed them)."""
    q = """SELECT count(*),
                  sum(pg_column_size(body)), sum(octet_length(body)), sum(pg_column_size(search)),
                  sum(pg_column_size(a.*)) - sum(coalesce(pg_column_size(body), 0)) - sum(pg_column_size(search)),
                  sum(pg_column_size(minhash)) + sum(coalesce(pg_column_size(minhash_bands), 0))
             FROM articles a WHERE status = 'tagged'"""
    n, body, body_raw, search, rest, minhash = conn.execute(q).fetchone()
    pages, raw, served = conn.execute(
        "SELECT count(*), sum(pg_column_size(raw_gz)), sum(size_bytes) FROM raw_pages").fetchone()
    mentions, entities, topics, sources = (conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                                           for t in ("article_entities", "entities", "article_topics",
                                                     "article_sources"))
    return {"articles": n, "body_stored": body, "body_chars_bytes": body_raw, "search_stored": search,
            "row_rest_stored": rest, "minhash_stored": minhash, "pages": pages, "raw_gz": raw, "served_bytes": served,
            "mentions": mentions, "entities": entities, "topic_rows": topics, "source_rows": sources}


def per_article(sizes: dict, cols: dict) -> dict:
    n = cols["articles"]
    art = sizes["articles"]
    search_idx = art["index"].get("articles_search_idx", 0)

    def each(x: float) -> int:
        return round(x / n)

    rows = {
        "raw page (raw_pages: compressed bytes as served, row, PK)": each(sizes["raw_pages"]["total"]),
        "articles: body (stored, TOAST-compressed)": each(cols["body_stored"]),
        "articles: search tsvector (stored)": each(cols["search_stored"]),
        "articles: the rest of the row (title, URLs, MinHash, ...)": each(cols["row_rest_stored"]),
        "articles: GIN index on search": each(search_idx),
        "articles: other indexes (url, bands, dates, work queue, ...)": each(art["indexes"] - search_idx),
        "mentions (article_entities rows + indexes)": each(sizes["article_entities"]["total"]),
        "topics (article_topics rows + indexes)": each(sizes["article_topics"]["total"]),
        "sources (article_sources rows + indexes)": each(sizes["article_sources"]["total"]),
        "entities (new names only: 0 when all are known)": each(sizes["entities"]["total"]),
    }
    return rows


def project(per: dict, raw_key: str, poll_bytes: float, entity_bytes: float) -> dict:
    total = sum(per.values())
    raw = per[raw_key]
    year = PER_DAY * YEAR
    polls_year = POLLS_PER_DAY * YEAR * poll_bytes
    polls_kept = POLLS_PER_DAY * POLLS_KEPT_DAYS * poll_bytes
    entities = ENTITIES_PER_YEAR * entity_bytes
    return {
        "articles_per_year": year,
        "bytes_per_article": total,
        "bytes_per_article_without_raw_page": total - raw,
        "year_keep_everything_bytes": year * total + polls_year + entities,
        "year_raw_pages_pruned_after_90d_bytes": year * (total - raw) + PER_DAY * RAW_KEPT_DAYS * raw + polls_kept
        + entities,
        "raw_pages_steady_state_bytes": PER_DAY * RAW_KEPT_DAYS * raw,
        "raw_pages_year_unpruned_bytes": year * raw,
        "feed_polls_year_bytes": polls_year, "feed_polls_kept_180d_bytes": polls_kept,
        "entities_bytes": entities,
        "assumptions": {"articles_per_day": PER_DAY, "raw_pages_kept_days": RAW_KEPT_DAYS,
                        "polls_per_day": POLLS_PER_DAY, "polls_kept_days": POLLS_KEPT_DAYS,
                        "entities_per_year": ENTITIES_PER_YEAR, "entity_row_bytes": round(entity_bytes)},
    }


def _gb(n: float) -> str:
    return f"{n / 1e9:,.0f} GB" if n < 1e12 else f"{n / 1e12:,.2f} TB"


def _compact(conn) -> dict[str, dict]:
    """Every table and index rewritten without free space (VACUUM FULL), then measured."""
    conn.execute("VACUUM (FULL, ANALYZE)")
    return relation_sizes(conn)


def _ingest(dsn: str, state: str, base: str, feeds: int, run_key: str) -> tuple[float, list]:
    feeds_file = Path(state) / f"{run_key}.yaml"
    feeds_file.write_text("feeds:\n" + "".join(f"  - url: {base}/feed{f}.xml\n" for f in range(feeds)))
    settings = replace(Settings.from_env({}), database_url=dsn, state_dir=Path(state), feeds_file=feeds_file,
                       allow_private_networks=True, per_host_delay=0.0, per_host_concurrency=8)
    t0 = time.perf_counter()
    _, results, _ = ingest.ingest_once(settings, run_key=run_key)
    return time.perf_counter() - t0, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=91)
    ap.add_argument("--feeds", type=int, default=5)
    args = ap.parse_args()
    pages = load_pages(args.pages, 1)
    # The same pages from two sites: the second copy adds articles whose words and entities are all
    # known already, so what it adds is what one more article costs in a big database (a GIN index
    # on a small corpus is mostly one entry per word; on a big one, a few bytes per word an article).
    first, base1 = serve(pages, args.feeds)
    second, base2 = serve(pages, args.feeds)
    with bench_database() as dsn, tempfile.TemporaryDirectory(prefix="nrs", dir="/tmp") as state:
        with psycopg.connect(dsn, autocommit=True) as conn:
            empty = _compact(conn)
        wall, results = _ingest(dsn, state, base1, args.feeds, "storage-1")
        with psycopg.connect(dsn, autocommit=True) as conn:
            store.maintenance.vacuum_analyze(conn)
            conn.execute("VACUUM (ANALYZE) feeds, topics, ingest_runs")
            as_ingested = grown(relation_sizes(conn), empty)  # what autovacuum leaves: free space included
            cols1 = columns(conn)
            one = _compact(conn)
        _ingest(dsn, state, base2, args.feeds, "storage-2")
        with psycopg.connect(dsn, autocommit=True) as conn:
            two = _compact(conn)
            cols2 = columns(conn)
            poll_rows, poll_data = conn.execute(
                "SELECT count(*), coalesce(sum(pg_column_size(f.*)), 0) FROM feed_polls f").fetchone()
    first.shutdown()
    second.shutdown()
    n1 = cols1["articles"]
    marginal_cols = {k: cols2[k] - cols1[k] for k in cols1}
    per_first = per_article(grown(one, empty), cols1)
    per = per_article(grown(two, one), marginal_cols)
    raw_key = next(iter(per))
    # A poll row: its data, the tuple header and line pointer (28 B), two B-tree entries (about 40 B).
    poll_bytes = (poll_data / poll_rows if poll_rows else 60) + 28 + 40
    entity_bytes = grown(one, empty)["entities"]["total"] / max(cols1["entities"], 1)
    projection = project(per, raw_key, poll_bytes, entity_bytes)
    bloat = sum(t["total"] for t in as_ingested.values()) / sum(t["total"] for t in grown(one, empty).values())

    print(f"\n{n1} articles ({'shared extraction-dev' if DEV.is_dir() else 'demo site'} pages), ingested in "
          f"{wall:.0f} s, then the same pages again from a second site ({marginal_cols['articles']} more)")
    print(f"{'bytes per article':66} {'first':>8} {'marginal':>9}")
    for what, b in per.items():
        print(f"  {what:64} {per_first[what]:>8,} {b:>9,}")
    print(f"  {'total':64} {sum(per_first.values()):>8,} {projection['bytes_per_article']:>9,}")
    print(f"\nserved page {cols1['served_bytes'] / cols1['pages']:,.0f} B, stored gzip "
          f"{cols1['raw_gz'] / cols1['pages']:,.0f} B; body {cols1['body_chars_bytes'] / n1:,.0f} B of text stored in "
          f"{cols1['body_stored'] / n1:,.0f} B; {cols1['mentions'] / n1:.1f} mentions an article; "
          f"free space left by the pipeline's updates: {100 * (bloat - 1):.0f}% over compact")
    print(f"entities: {cols1['entities'] / n1:.1f} new ones an article in an empty database, {entity_bytes:,.0f} B "
          f"each; projected as {ENTITIES_PER_YEAR:,} a year ({_gb(projection['entities_bytes'])})")
    print(f"a year of {PER_DAY:,} articles a day ({projection['articles_per_year']:,}), compact:")
    print(f"  keeping every raw page:         {_gb(projection['year_keep_everything_bytes'])}")
    print(f"  raw pages pruned after 90 days: {_gb(projection['year_raw_pages_pruned_after_90d_bytes'])}")
    data = {"args": vars(args), "articles_first": n1, "articles_second": marginal_cols["articles"],
            "ingest_wall_s": round(wall, 1), "stages_s": {r.stage: round(r.seconds, 2) for r in results},
            "bytes_per_article_first_copy": per_first, "bytes_per_article": per,
            "note": "bytes_per_article: what the second copy of the pages added (every word and entity already "
                    "known: the cost of one more article in a big database), compact (VACUUM FULL); entities "
                    "projected apart (projection.assumptions). first_copy: the first articles into an empty "
                    "database, where every word and name is new.",
            "free_space_after_ingest_ratio": round(bloat, 3), "columns_first": cols1, "columns_marginal": marginal_cols,
            "poll_row_bytes": round(poll_bytes), "tables_first_as_ingested": as_ingested,
            "tables_marginal": grown(two, one), "projection": projection}
    print(f"\nwrote {write_result('storage', data)}")


if __name__ == "__main__":
    main()
