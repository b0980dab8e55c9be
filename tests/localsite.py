"""A small HTTP server on 127.0.0.1 for tests: routes with fixed or computed responses,
slow and streaming responses, and a log of every request (to check conditional headers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunks: list[bytes] | None = None  # sent one by one with `chunk_delay` between, no Content-Length
    chunk_delay: float = 0.0
    handler: Callable[[dict], tuple[int, dict, bytes]] | None = None


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class LocalSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def handle(self):
                try:
                    super().handle()
                except (ConnectionResetError, BrokenPipeError):
                    pass  # the client gave up (size cap, timeout): expected in these tests

            def do_GET(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                site.requests.append(Seen(self.path, headers))
                route = site.routes.get(self.path) or site.routes.get(self.path.split("?")[0])
                if route is None:
                    route = Route(status=404, body=b"not found", headers={"Content-Type": "text/plain"})
                if route.delay:
                    time.sleep(route.delay)
                status, extra, body = route.status, dict(route.headers), route.body
                if route.handler:
                    status, extra, body = route.handler(headers)
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    if route.chunks is not None:
                        self.send_header("Connection", "close")
                        self.end_headers()
                        for chunk in route.chunks:
                            self.wfile.write(chunk)
                            self.wfile.flush()
                            time.sleep(route.chunk_delay)
                        self.close_connection = True
                        return
                    if "content-length" not in {k.lower() for k in extra}:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LocalSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", *, status: int = 200, content_type: str | None = None,
            **kw) -> str:
        headers = dict(kw.pop("headers", {}))
        if content_type:
            headers["Content-Type"] = content_type
        self.routes[path] = Route(status=status, body=body.encode() if isinstance(body, str) else body,
                                  headers=headers, **kw)
        return self.url(path)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]


def rss(items: list[tuple[str, str]], *, title: str = "Test feed", extra: str = "") -> str:
    """An RSS 2.0 document with (link, title) items; guids are the links."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>Tue, 01 Oct 2019 12:00:00 +0200</pubDate><description>About {t}</description></item>"
        for link, t in items)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>{extra}{body}</channel></rss>'


def article_html(title: str, paragraphs: list[str], *, charset: str = "utf-8") -> str:
    ps = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!doctype html><html lang="en"><head><meta charset="{charset}"><title>{title}</title>'
            f'<meta property="article:published_time" content="2019-10-01T10:00:00+00:00"></head>'
            f"<body><header><nav><a href='/'>Home</a></nav></header><article><h1>{title}</h1>"
            f'<p class="byline">By Jane Reporter</p>{ps}</article><footer>© Test News</footer></body></html>')
