"""Feed polling at scale: N feeds on local HTTP servers (many loopback hosts) with injected
latency; the first poll fetches every feed, the second is mostly 304s.

    .venv/bin/python bench/poll_bench.py --feeds 1000
    .venv/bin/python bench/poll_bench.py --feeds 10000 --latency 0.05     # the issue's target: < 60 s

Prints a table and writes bench/results/poll_<N>.json. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
from common import bench_database, write_result

from pipeline import ingest
from pipeline.config import Settings


def feed_xml(n: int, version: int) -> bytes:
    items = "".join(
        f"<item><title>Story {n}-{version}-{i}</title><link>http://news{n % 97}.example/{n}/{version}/{i}</link>"
        f"<pubDate>Tue, 01 Oct 2019 12:00:00 GMT</pubDate></item>" for i in range(2))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>{items}</channel></rss>'.encode()


class FeedServer:
    """A tiny asyncio HTTP/1.1 server: /feed/N answers 200 with an ETag, or 304 when it matches.
    Feeds whose number is in `changed` get a new version (and ETag) after `bump()`."""

    def __init__(self, hosts: list[str], latency: float, changed_every: int):
        self.hosts, self.latency, self.changed_every = hosts, latency, changed_every
        self.version = 1
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    def etag(self, n: int) -> str:
        v = self.version if n % self.changed_every == 0 else 1
        return f'"{n}-{v}"'

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split()[1]
                headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                self.requests += 1
                await asyncio.sleep(self.latency)
                n = int(path.rsplit("/", 1)[1])
                tag = self.etag(n)
                if headers.get("if-none-match") == tag:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {tag}\r\nContent-Length: 0\r\n\r\n".encode())
                else:
                    body = feed_xml(n, self.version if n % self.changed_every == 0 else 1)
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {tag}\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def run(self):
        asyncio.set_event_loop(self.loop)
        first = self.loop.run_until_complete(asyncio.start_server(self.handle, self.hosts[0], 0, backlog=4096))
        self.port = first.sockets[0].getsockname()[1]
        if self.hosts[1:]:  # the same port on every other loopback host
            self.loop.run_until_complete(asyncio.start_server(self.handle, self.hosts[1:], self.port, backlog=4096))
        self.ready.set()
        self.loop.run_forever()

    def start(self):
        threading.Thread(target=self.run, daemon=True).start()
        self.ready.wait()
        return self


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=100, help="distinct loopback hosts (127.0.0.x) the feeds spread over")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds the server waits before answering")
    ap.add_argument("--changed-every", type=int, default=10, help="every Nth feed has new items on the second poll")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--per-host-delay", type=float, default=0.0)
    args = ap.parse_args()

    # One port on every host: bind 127.0.0.1..127.0.0.H (all loopback on Linux).
    hosts = [f"127.0.0.{i}" for i in range(1, min(args.hosts, 254) + 1)]
    server = FeedServer(hosts, args.latency, args.changed_every).start()
    with bench_database() as dsn, tempfile.TemporaryDirectory() as tmp:
        feeds_file = Path(tmp) / "feeds.yaml"
        feeds_file.write_text("feeds:\n" + "".join(
            f"  - url: http://{hosts[n % len(hosts)]}:{server.port}/feed/{n}\n    name: feed {n}\n"
            for n in range(args.feeds)))
        settings = replace(Settings.from_env({}), database_url=dsn, feeds_file=feeds_file,
                           allow_private_networks=True, poll_concurrency=args.concurrency,
                           per_host_delay=args.per_host_delay, per_host_concurrency=2)
        ingest.sync_feeds(settings)
        rows = []
        for label in ("first poll (all 200)", "second poll (mostly 304)"):
            if label.startswith("second"):
                server.version = 2
                with psycopg.connect(dsn) as conn:
                    conn.execute("UPDATE feeds SET next_poll_at = now()")
            t0 = time.perf_counter()
            result = ingest.poll_feeds(settings)
            secs = time.perf_counter() - t0
            rows.append({"poll": label, "feeds": result.counts["polled"], "ok": result.counts["ok"],
                         "not_modified": result.counts["not_modified"], "errors": sum(result.errors.values()),
                         "new_articles": result.counts["new_articles"], "seconds": round(secs, 2),
                         "error_classes": dict(result.errors),
                         "feeds_per_s": round(result.counts["polled"] / secs, 1)})
    print(f"\nPolling {args.feeds} feeds over {len(hosts)} hosts, {args.latency * 1000:.0f} ms latency, "
          f"concurrency {args.concurrency}, per-host cap 2")
    print(f"{'poll':28} {'feeds':>6} {'200':>6} {'304':>6} {'err':>5} {'new':>6} {'sec':>7} {'feeds/s':>8}")
    for r in rows:
        print(f"{r['poll']:28} {r['feeds']:>6} {r['ok']:>6} {r['not_modified']:>6} {r['errors']:>5} "
              f"{r['new_articles']:>6} {r['seconds']:>7} {r['feeds_per_s']:>8}")
    out = write_result(f"poll_{args.feeds}", {"args": vars(args), "rows": rows})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
