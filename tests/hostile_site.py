"""The hostile-input corpus, served: every route of tests/fixtures/hostile/manifest.yaml on two
hosts that share one port, 127.0.0.1 ("a") and 127.0.0.2 ("b"), so each is its own origin.

    site = HostileSite().start()
    corpus = site.write_feeds_yaml(tmp_path / "feeds.yaml")   # every feed route, good and hostile
    ...                                                       # corpus.good_articles must end tagged
    site.hits("b", "/robots.txt")                             # what the server saw
    site.stop()                                               # prompt, even with slow routes in flight

Threaded (one daemon thread per connection), so a route that hangs or trickles never blocks
another request or the test. Slow routes wait on a stop event, so `stop()` does not wait for
them. Bodies are built once per route and host ("{a}"/"{b}" become the base URLs), so the big
ones (a 64 MiB gzip bomb, a few-MB page) cost a fraction of a second on first request.

Run it by hand to poke at it:  .venv/bin/python tests/hostile_site.py [--seconds 600]
"""

from __future__ import annotations

import builtins
import errno
import gzip
import ipaddress
import os
import random
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hostile"
MANIFEST = FIXTURES / "manifest.yaml"
HOSTS = {"a": "127.0.0.1", "b": "127.0.0.2"}
HANG_CAP = 600.0  # a "never answers" route gives up after this long even if nobody stops the server


@dataclass(frozen=True)
class Route:
    id: str
    kind: str
    host: str
    path: str
    prefix: bool = False
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay: float = 0.0
    hang: bool = False
    trickle: float = 0.0
    close_after: int | None = None
    expect: str | None = None
    classes: tuple[str, ...] = ()
    note: str = ""

    def matches(self, host: str, path: str) -> bool:
        return host == self.host and (path.startswith(self.path) if self.prefix else path == self.path)


@dataclass(frozen=True)
class Hit:
    host: str  # "a" or "b"
    path: str
    at: float  # time.monotonic()
    headers: dict[str, str]


@dataclass
class Corpus:
    """What a test needs to know about the corpus as served on this port."""

    feeds_file: Path
    feeds: dict[str, str]  # feed route id -> URL (as written to feeds.yaml)
    good_articles: dict[str, str]  # article URL -> route id: these must end `tagged`
    pages: dict[str, Route]  # exact-path page URL -> its route (prefix routes not listed)
    routes: list[Route]
    bases: dict[str, str]  # "a"/"b" -> http://127.0.0.x:PORT
    robots_hang_host: str  # "b": the host whose robots.txt never answers
    local_file_marker: str = "LOCAL FILE WAS READ"  # appears only if a parser opened a path
    # Files that feed bodies, redirects and external entities name: none may ever be opened.
    local_files: tuple[Path, ...] = (Path("/etc/hostname"), Path("/etc/passwd"),
                                     FIXTURES / "feeds" / "local_file_sentinel.xml")
    xxe_canary_path: str = "/xxe/"  # a request under it means an external entity was resolved

    def route_for_url(self, url: str) -> Route | None:
        for key, base in self.bases.items():
            if url.startswith(base + "/"):
                path = url[len(base):].split("?", 1)[0]
                return next((r for r in self.routes if r.matches(key, path)), None)
        return None


def load_manifest(path: Path = MANIFEST) -> list[Route]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    routes, seen = [], set()
    for raw in doc["routes"]:
        raw = dict(raw)
        unknown = set(raw) - set(Route.__dataclass_fields__)
        if unknown:
            raise ValueError(f"manifest route {raw.get('id')}: unknown keys {sorted(unknown)}")
        if raw["host"] not in HOSTS:
            raise ValueError(f"manifest route {raw['id']}: host must be one of {sorted(HOSTS)}")
        raw["headers"] = {str(k): str(v) for k, v in (raw.get("headers") or {}).items()}
        raw["classes"] = tuple(raw.get("classes") or ())
        route = Route(**raw)
        key = (route.host, route.path, route.prefix)
        if route.id in seen or key in seen:
            raise ValueError(f"manifest route {route.id}: duplicate id or path")
        seen.update((route.id, key))
        routes.append(route)
    return routes


@contextmanager
def no_dns() -> Iterator[list[str]]:
    """No name ever reaches a resolver while inside: socket.getaddrinfo answers IP literals itself
    and refuses every name (as NXDOMAIN would), listing the names asked for in the yielded list.
    The corpus uses IP literals only, so a lookup means the pipeline tried to fetch a URL it
    should have refused (a bad host in a feed) or one it should never have seen (a local file)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def guarded(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None:
            try:
                ipaddress.ip_address(str(name).strip("[]").split("%")[0])
            except ValueError:
                asked.append(str(name))
                raise socket.gaierror(socket.EAI_NONAME, f"{name}: lookups are blocked by hostile_site.no_dns") from None
        return real(host, port, *args, **kwargs)

    socket.getaddrinfo = guarded
    try:
        yield asked
    finally:
        socket.getaddrinfo = real


@contextmanager
def watch_opens(paths) -> Iterator[list[str]]:
    """Record every builtins.open() of one of `paths` while inside (the files still open normally).
    Parsers that treat a document as a file name (feedparser given bytes or str) or resolve an
    external entity through urllib open local files this way."""
    real = builtins.open
    watched = {os.path.realpath(p) for p in paths}
    seen: list[str] = []

    def watching(file, *args, **kwargs):
        if isinstance(file, str | bytes | os.PathLike):
            try:
                name = os.fsdecode(file)
                if os.path.realpath(name) in watched:
                    seen.append(name)
            except (TypeError, ValueError, OSError):
                pass
        return real(file, *args, **kwargs)

    builtins.open = watching
    try:
        yield seen
    finally:
        builtins.open = real


# --- bodies ----------------------------------------------------------------------------------

def _placeholders(bases: dict[str, str]) -> dict[str, str]:
    """{a} and {b} -> base URLs, {port} -> the shared port."""
    return {**bases, "port": next(iter(bases.values())).rsplit(":", 1)[1]} if bases else {}


def _template(data: bytes, bases: dict[str, str]) -> bytes:
    for key, value in _placeholders(bases).items():
        data = data.replace(b"{" + key.encode() + b"}", value.encode())
    return data


def _gzip_bomb(head: str, fill: str, size: int) -> bytes:
    """gzip of `head` then `fill` repeated up to `size` bytes, compressed in 1 MiB steps."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [comp.compress(head.encode())]
    block = (fill.encode() or b" ") * (1 << 20)
    left = size - len(head)
    while left > 0:
        chunk = block[:left]
        out.append(comp.compress(chunk))
        left -= len(chunk)
    out.append(comp.flush())
    return b"".join(out)


def build_body(spec: dict[str, Any] | None, bases: dict[str, str]) -> bytes:
    """Bytes of one body spec (see the manifest's header)."""
    if not spec:
        return b""
    spec = dict(spec)
    encoding = spec.pop("encoding", None)
    compress = spec.pop("gzip", False)
    sources = [k for k in spec if k != "times"]
    if len(sources) != 1:
        raise ValueError(f"body spec needs exactly one source: {sorted(spec)}")
    kind = sources[0]
    value = spec[kind]

    def text(s: str) -> bytes:
        # Substitute on the text, then encode: a cp1252 body is still templated correctly.
        for key, value in _placeholders(bases).items():
            s = s.replace("{" + key + "}", value)
        return s.encode(encoding or "utf-8")

    if kind == "text":
        data = text(value)
    elif kind == "file":
        raw = (FIXTURES / value).read_bytes()
        data = text(raw.decode("utf-8")) if encoding else _template(raw, bases)
    elif kind == "repeat":
        times = int(spec["times"])
        if "{n}" in value:
            data = text("".join(value.replace("{n}", str(i)) for i in range(1, times + 1)))
        else:
            data = text(value) * times
    elif kind == "parts":
        data = b"".join(build_body(p, bases) for p in value)
    elif kind == "hex":
        data = bytes.fromhex(value.replace(" ", ""))
    elif kind == "random":
        data = random.Random(value.get("seed", 0)).randbytes(int(value["size"]))
    elif kind == "path_of":
        data = str((FIXTURES / value).resolve()).encode()
    elif kind == "file_url_of":
        data = (FIXTURES / value).resolve().as_uri().encode()
    elif kind == "gzip_bomb":
        data = _gzip_bomb(value.get("head", ""), value.get("fill", " "), int(value["size"]))
    else:
        raise ValueError(f"unknown body source {kind!r}")
    return gzip.compress(data, mtime=0) if compress else data


# --- the server ------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never join handler threads on close: slow routes must not hang stop()
    request_queue_size = 128

    def __init__(self, address, handler, host_key: str):
        self.host_key = host_key
        super().__init__(address, handler)


class HostileSite:
    def __init__(self, manifest: Path = MANIFEST, *, exclude: set[str] | frozenset[str] = frozenset(),
                 bind_attempts: int = 20):
        self.routes = [r for r in load_manifest(manifest) if r.id not in exclude]
        self.requests: list[Hit] = []
        self._log_lock = threading.Lock()
        self._bodies: dict[tuple[str, str], bytes] = {}
        self._body_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.servers = self._bind(bind_attempts)
        self.port = self.servers["b"].server_address[1]
        self.bases = {k: f"http://{HOSTS[k]}:{self.port}" for k in HOSTS}

    # -- lifecycle --

    def _bind(self, attempts: int) -> dict[str, _Server]:
        """127.0.0.2 on a free port first, then 127.0.0.1 on the same port; retry if it is taken."""
        handler = self._handler_class()
        last: OSError | None = None
        for _ in range(attempts):
            b = _Server((HOSTS["b"], 0), handler, "b")
            try:
                a = _Server((HOSTS["a"], b.server_address[1]), handler, "a")
            except OSError as exc:
                b.server_close()
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                last = exc
                continue
            return {"a": a, "b": b}
        raise RuntimeError(f"no port free on both {HOSTS['a']} and {HOSTS['b']} after {attempts} tries: {last}")

    def start(self) -> HostileSite:
        for server in self.servers.values():
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                                 name=f"hostile-site-{server.host_key}")
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop serving; requests in flight (sleeping, trickling) end within a moment."""
        self._stopping.set()
        for server in self.servers.values():
            if self._threads:
                server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> HostileSite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- lookups --

    def url(self, host: str, path: str) -> str:
        return self.bases[host] + path

    def route(self, host: str, path: str) -> Route | None:
        path = path.split("?", 1)[0]
        exact = next((r for r in self.routes if not r.prefix and r.matches(host, path)), None)
        return exact or next((r for r in self.routes if r.prefix and r.matches(host, path)), None)

    def by_id(self, route_id: str) -> Route:
        return next(r for r in self.routes if r.id == route_id)

    def body(self, route: Route) -> bytes:
        key = (route.id, route.host)
        with self._body_lock:
            if key not in self._bodies:
                self._bodies[key] = build_body(route.body, self.bases)
            return self._bodies[key]

    def mark(self) -> int:
        """A position in the request log, for `hits(..., since=mark)`."""
        with self._log_lock:
            return len(self.requests)

    def hits(self, host: str | None = None, path: str | None = None, *, since: int = 0) -> list[Hit]:
        with self._log_lock:
            seen = self.requests[since:]
        return [h for h in seen if (host is None or h.host == host) and (path is None or h.path == path)]

    # -- the corpus for a test --

    def feed_routes(self) -> list[Route]:
        return [r for r in self.routes if r.kind == "feed"]

    def write_feeds_yaml(self, path: Path) -> Corpus:
        """Write a feeds.yaml listing every feed route (good and hostile); return what to expect."""
        feeds = {r.id: self.url(r.host, r.path) for r in self.feed_routes()}
        lines = ["# generated by tests/hostile_site.py from tests/fixtures/hostile/manifest.yaml", "feeds:"]
        for route_id, url in feeds.items():
            lines += [f"  - url: {url}", f"    name: {route_id}", "    tags: [hostile-corpus]"]
        path = Path(path)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        pages = {self.url(r.host, r.path): r for r in self.routes if r.kind == "page" and not r.prefix}
        good = {url: r.id for url, r in pages.items() if r.expect == "tagged"}
        self._check_linked(good)
        hang = next(r.host for r in self.routes if r.kind == "robots" and (r.hang or r.delay))
        return Corpus(feeds_file=path, feeds=feeds, good_articles=good, pages=pages, routes=list(self.routes),
                      bases=dict(self.bases), robots_hang_host=hang)

    def _check_linked(self, good: dict[str, str]) -> None:
        """Every good article is linked from a feed that is expected to parse (a fixture bug otherwise)."""
        ok_feeds = b"".join(self.body(r) for r in self.feed_routes() if r.expect == "ok")
        missing = [url for url in good if url.encode() not in ok_feeds]
        if missing:
            raise AssertionError(f"good articles linked from no good feed: {missing}")

    # -- request handling --

    def _handler_class(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "HostileSite/1.0"
            disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stalls)

            def log_message(self, *args):  # quiet
                pass

            def handle(self):
                try:
                    super().handle()
                except (ConnectionError, TimeoutError, OSError):
                    pass  # the client gave up (timeout, size cap): expected here

            def do_GET(self):
                host = self.server.host_key
                path = self.path.split("?", 1)[0]
                with site._log_lock:
                    site.requests.append(Hit(host, path, time.monotonic(),
                                             {k.lower(): v for k, v in self.headers.items()}))
                route = site.route(host, path)
                if route is None:
                    self._send(404, {"Content-Type": "text/plain"}, b"not found\n")
                    return
                if route.hang or route.delay:
                    # Sleep on the stop event: stop() ends the wait at once.
                    if site._stopping.wait(HANG_CAP if route.hang else route.delay) or route.hang:
                        self.close_connection = True
                        return
                body = site.body(route)
                if route.trickle:
                    self._trickle(route, body)
                elif route.close_after is not None:
                    self._send(route.status, route.headers, body[:route.close_after], length=len(body), close=True)
                else:
                    self._send(route.status, route.headers, body)

            def _send(self, status: int, headers: dict[str, str], body: bytes, *, length: int | None = None,
                      close: bool = False) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "content-length" not in {k.lower() for k in headers}:
                    self.send_header("Content-Length", str(len(body) if length is None else length))
                if close:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if close:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

            def _trickle(self, route: Route, body: bytes) -> None:
                self.send_response(route.status)
                for k, v in route.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True
                step = max(1, int(route.trickle))
                pause = step / route.trickle
                for i in range(0, len(body), step):
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    if site._stopping.wait(pause):
                        return

        return Handler


def _main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Serve the hostile corpus on 127.0.0.1 and 127.0.0.2.")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--feeds-yaml", type=Path, default=Path("/tmp/hostile-feeds.yaml"))
    args = ap.parse_args()
    with HostileSite() as site:
        corpus = site.write_feeds_yaml(args.feeds_yaml)
        print(f"serving {len(site.routes)} routes on {site.bases['a']} and {site.bases['b']}; "
              f"{len(corpus.feeds)} feeds in {args.feeds_yaml}")
        try:
            time.sleep(args.seconds)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _main()
