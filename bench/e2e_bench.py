"""End to end against the floor.

A local site on 127.0.0.1 serves N real news pages (the shared extraction-dev pages when
present, else the demo site's) behind a few RSS feeds. One `ingest_once` takes them into a
fresh database. Then, on the same pages:

- floor: trafilatura extraction alone + spaCy NER alone (same model, same trimmed pipeline),
  no database, in one process;
- pipeline, 1 worker: our extract + tag stages (claiming, writing every row) from stored pages;
- pipeline, 2 workers: the same with two processes claiming from one database.

    .venv/bin/python bench/e2e_bench.py [--pages 91] [--repeat 2]

Prints a table and writes bench/results/e2e.json. Asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import psycopg
from common import bench_database, write_result

from pipeline import ingest, store
from pipeline.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "extraction-dev" / "html"


def load_pages(limit: int, repeat: int) -> list[str]:
    if DEV.is_dir():
        pages = [gzip.decompress(p.read_bytes()).decode("utf-8", "replace") for p in sorted(DEV.glob("*.html.gz"))]
    else:
        from pipeline import demo

        pages = [body.decode() for ctype, body in demo.build_site("http://x").values() if ctype.startswith("text/html")]
    pages = pages[:limit] * repeat
    return pages


def serve(pages: list[str], feeds: int) -> tuple[ThreadingHTTPServer, str]:
    routes: dict[str, tuple[str, bytes]] = {"/robots.txt": ("text/plain", b"User-agent: *\nAllow: /\n")}
    for i, html in enumerate(pages):
        routes[f"/p/{i}.html"] = ("text/html; charset=utf-8", html.encode())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            ctype, body = routes.get(self.path, ("text/plain", b""))
            self.send_response(200 if self.path in routes else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    for f in range(feeds):
        items = "".join(f"<item><title>Page {i}</title><link>{base}/p/{i}.html</link></item>"
                        for i in range(f, len(pages), feeds))
        routes[f"/feed{f}.xml"] = ("application/rss+xml",
                                   f"<rss version='2.0'><channel><title>F{f}</title>{items}</channel></rss>".encode())
    Thread(target=server.serve_forever, daemon=True).start()
    return server, base


def floor(pages: list[str], model: str) -> dict:
    """trafilatura alone + spaCy NER alone over the same pages."""
    import spacy
    import trafilatura

    t0 = time.perf_counter()
    texts = [trafilatura.extract(h) or "" for h in pages]
    t_extract = time.perf_counter() - t0
    nlp = spacy.load(model, exclude=["tagger", "attribute_ruler", "lemmatizer"])
    t0 = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=8):
        pass
    t_ner = time.perf_counter() - t0
    n = len(pages)
    return {"extract_s": t_extract, "ner_s": t_ner, "articles_per_s": n / (t_extract + t_ner),
            "extract_per_s": n / t_extract, "ner_per_s": n / t_ner}


def _worker(dsn: str, state: str, out) -> None:
    settings = replace(Settings.from_env({}), database_url=dsn, state_dir=Path(state))
    from pipeline import extract, nlp  # noqa: F401 -- imported before the clock starts, as in the floor

    nlp.load_nlp(settings.spacy_model, settings.gazetteer_file)
    out.put("ready")
    t0 = time.perf_counter()
    e = ingest.extract_pages(settings, batch_size=8)
    t1 = time.perf_counter()
    t = ingest.tag_articles(settings, batch_size=8)
    out.put({"extracted": e.counts["extracted"], "tagged": t.counts["tagged"], "extract_s": t1 - t0,
             "tag_s": time.perf_counter() - t1})


def pipeline_workers(dsn: str, state: str, n: int) -> dict:
    with psycopg.connect(dsn) as conn:
        ids = store.queue.select_for_reprocessing(conn, stage="extract")
        conn.commit()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(dsn, state, out)) for _ in range(n)]
    for p in procs:
        p.start()
    ready = 0
    while ready < n:  # model loading is not part of the measurement
        assert out.get(timeout=300) == "ready"
        ready += 1
    t0 = time.perf_counter()
    results = [out.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    tagged = sum(r["tagged"] for r in results)
    return {"workers": n, "articles": len(ids), "tagged": tagged, "wall_s": wall, "articles_per_s": tagged / wall,
            "per_worker": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=91)
    ap.add_argument("--repeat", type=int, default=2, help="serve the pages this many times (distinct URLs)")
    ap.add_argument("--feeds", type=int, default=5)
    args = ap.parse_args()
    pages = load_pages(args.pages, args.repeat)
    server, base = serve(pages, args.feeds)
    rows = {}
    with bench_database() as dsn:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="nre", dir="/tmp") as state:
            feeds_file = Path(state) / "feeds.yaml"
            feeds_file.write_text("feeds:\n" + "".join(f"  - url: {base}/feed{f}.xml\n" for f in range(args.feeds)))
            settings = replace(Settings.from_env({}), database_url=dsn, state_dir=Path(state), feeds_file=feeds_file,
                               allow_private_networks=True, per_host_delay=0.0, per_host_concurrency=8)
            t0 = time.perf_counter()
            _, results, _ = ingest.ingest_once(settings, run_key="bench")
            wall = time.perf_counter() - t0
            stages = {r.stage: round(r.seconds, 2) for r in results}
            tagged = next(r for r in results if r.stage == "tag").counts["tagged"]
            rows["ingest_once"] = {"articles": tagged, "wall_s": round(wall, 2), "stages_s": stages,
                                   "articles_per_s": round(tagged / wall, 2),
                                   "processing_per_s": round(tagged / (stages["extract"] + stages["tag"]), 2)}
            rows["floor"] = {k: round(v, 2) for k, v in floor(pages, settings.spacy_model).items()}
            rows["pipeline_1"] = pipeline_workers(dsn, state, 1)
            rows["pipeline_2"] = pipeline_workers(dsn, state, 2)
    server.shutdown()
    f, p1, p2 = rows["floor"]["articles_per_s"], rows["pipeline_1"]["articles_per_s"], rows["pipeline_2"]["articles_per_s"]
    print(f"\n{len(pages)} pages ({'shared extraction-dev' if DEV.is_dir() else 'demo site'}), 1 machine")
    print(f"{'what':40} {'articles/s':>11} {'vs floor':>9}")
    print(f"{'floor: trafilatura + spaCy NER alone':40} {f:>11.2f} {1.0:>9.2f}")
    print(f"{'pipeline extract+tag, 1 worker':40} {p1:>11.2f} {p1 / f:>9.2f}")
    print(f"{'pipeline extract+tag, 2 workers':40} {p2:>11.2f} {p2 / f:>9.2f}   ({p2 / p1:.2f}x one worker)")
    io = rows["ingest_once"]
    print(f"{'ingest --once end to end (incl. fetch)':40} {io['articles_per_s']:>11.2f}   stages {io['stages_s']}")
    out = write_result("e2e", {"args": vars(args), "pages": len(pages), **rows,
                               "ratio_1_worker_to_floor": round(p1 / f, 3), "speedup_2_workers": round(p2 / p1, 3)})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
