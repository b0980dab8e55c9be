"""`make demo`: a small local news site (two outlets, their RSS feeds and article pages) on
127.0.0.1, so the whole pipeline can be seen working without internet."""

from __future__ import annotations

import hashlib
import html
import logging
import threading
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from pipeline.config import PACKAGE_DATA

log = logging.getLogger(__name__)

SITE_FILE = PACKAGE_DATA / "demo_site.yaml"


def build_site(base: str, site_file: Path = SITE_FILE) -> dict[str, tuple[str, bytes]]:
    """{path: (content type, body)} for every feed and page of the demo site."""
    doc = yaml.safe_load(site_file.read_text(encoding="utf-8"))
    routes: dict[str, tuple[str, bytes]] = {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n"),
    }
    for outlet in doc["outlets"]:
        items = []
        for a in outlet["articles"]:
            path = f"/{outlet['slug']}/{a['slug']}.html"
            when = datetime.fromisoformat(a["published"])
            body = "".join(f"<p>{html.escape(p)}</p>" for p in a["paragraphs"])
            page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                    f"<title>{html.escape(a['title'])} | {html.escape(outlet['name'])}</title>"
                    f'<meta property="article:published_time" content="{when.isoformat()}">'
                    f'<meta name="author" content="{html.escape(a["author"])}"></head><body>'
                    f"<header><a href='/'>{html.escape(outlet['name'])}</a> <nav><a href='/world'>World</a> "
                    f"<a href='/defence'>Defence</a></nav></header><main><article>"
                    f"<h1>{html.escape(a['title'])}</h1><p class='byline'>By {html.escape(a['author'])}</p>"
                    f"{body}</article></main><footer>&copy; {html.escape(outlet['name'])}</footer></body></html>")
            routes[path] = ("text/html; charset=utf-8", page.encode())
            items.append(f"<item><title>{html.escape(a['title'])}</title><link>{base}{path}?utm_source=rss</link>"
                         f"<guid isPermaLink='false'>{outlet['slug']}-{a['slug']}</guid>"
                         f"<pubDate>{format_datetime(when)}</pubDate>"
                         f"<description>{html.escape(a['paragraphs'][0])}</description></item>")
        feed = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{html.escape(outlet['name'])}</title><link>{base}/{outlet['slug']}/</link>"
                f"{''.join(items)}</channel></rss>")
        routes[f"/{outlet['slug']}/rss.xml"] = ("application/rss+xml", feed.encode())
    return routes


def feeds_yaml(base: str, site_file: Path = SITE_FILE) -> str:
    doc = yaml.safe_load(site_file.read_text(encoding="utf-8"))
    lines = ["# The demo site's feeds (written by `newsroom demo`), plus one that is down on purpose.", "feeds:"]
    for outlet in doc["outlets"]:
        lines += [f"  - url: {base}/{outlet['slug']}/rss.xml", f"    name: {outlet['name']}", "    tags: [demo]"]
    lines += [f"  - url: {base}/broken/rss.xml", "    name: Demo Broken Feed (always 503)", "    tags: [demo]"]
    return "\n".join(lines) + "\n"


class DemoSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 8765):
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.routes = build_site(self.base)

    def _handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                log.debug("demo site: " + fmt, *args)

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path.startswith("/broken/"):
                    self.send_response(503)
                    self.send_header("Retry-After", "120")
                    self.end_headers()
                    return
                route = site.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                ctype, body = route
                etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def start(self) -> DemoSite:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
