"""`make demo`: a small local news site (two outlets, their RSS feeds and article pages) on
127.0.0.1, so the whole pipeline can be seen working without internet."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from pipeline import embedded
from pipeline.config import DEMO_DIR, DEMO_MARKER, PACKAGE_DATA, Settings
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

SITE_FILE = PACKAGE_DATA / "demo_site.yaml"


_AGE = re.compile(r"\s*(\d+)\s*([dhm])")
_UNIT = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_age(text: str) -> timedelta:
    """An article's age in the site file: "1d 3h", "10m"."""
    parts = _AGE.findall(text)
    if not parts or _AGE.sub("", text).strip():
        raise ValueError(f"demo article age {text!r} is not like '1d 3h' or '10m'")
    return sum((int(n) * _UNIT[u] for n, u in parts), timedelta())


def _articles(doc: dict, now: datetime) -> list[tuple[dict, dict, datetime, str]]:
    """(outlet, article, published, slug) for every article, oldest first within an outlet.

    Dates are the site's "now" minus each article's age, so the demo's news is always recent
    (and a test that sets `now` gets the same site every time). The bulletin is new each time
    the site starts: its slug carries `now`, so every demo run has one new article."""
    outlets = {o["slug"]: o for o in doc["outlets"]}
    out = [(o, a, now - parse_age(a["age"]), a["slug"]) for o in doc["outlets"] for a in o["articles"]]
    b = doc.get("bulletin")
    if b:
        out.append((outlets[b["outlet"]], b, now - parse_age(b["age"]), f"{b['slug']}-{now:%Y%m%d-%H%M%S}"))
    return out


def build_site(base: str, site_file: Path = SITE_FILE, *,
               now: datetime | None = None) -> dict[str, tuple[str, bytes]]:
    """{path: (content type, body)} for every feed and page of the demo site, dated relative to
    `now` (default: the current time)."""
    doc = yaml.safe_load(site_file.read_text(encoding="utf-8"))
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    routes: dict[str, tuple[str, bytes]] = {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n"),
    }
    items: dict[str, list[str]] = {o["slug"]: [] for o in doc["outlets"]}
    for outlet, a, when, slug in sorted(_articles(doc, now), key=lambda x: x[2], reverse=True):
        path = f"/{outlet['slug']}/{slug}.html"
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
        items[outlet["slug"]].append(
            f"<item><title>{html.escape(a['title'])}</title><link>{base}{path}?utm_source=rss</link>"
            f"<guid isPermaLink='false'>{outlet['slug']}-{slug}</guid>"
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<description>{html.escape(a['paragraphs'][0])}</description></item>")
    for outlet in doc["outlets"]:
        feed = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{html.escape(outlet['name'])}</title><link>{base}/{outlet['slug']}/</link>"
                f"{''.join(items[outlet['slug']])}</channel></rss>")
        routes[f"/{outlet['slug']}/rss.xml"] = ("application/rss+xml", feed.encode())
    return routes


def article_count(site_file: Path = SITE_FILE) -> int:
    """How many articles the demo site publishes (the bulletin included)."""
    return len(_articles(yaml.safe_load(site_file.read_text(encoding="utf-8")), datetime.now(UTC)))


def feeds_yaml(base: str, site_file: Path = SITE_FILE) -> str:
    doc = yaml.safe_load(site_file.read_text(encoding="utf-8"))
    lines = ["# The demo site's feeds (written by `newsroom demo`), plus one that is down on purpose.", "feeds:"]
    for outlet in doc["outlets"]:
        lines += [f"  - url: {base}/{outlet['slug']}/rss.xml", f"    name: {outlet['name']}", "    tags: [demo]"]
    lines += [f"  - url: {base}/broken/rss.xml", "    name: Demo Broken Feed (always 503)", "    tags: [demo]"]
    return "\n".join(lines) + "\n"


class DemoSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 8765, *, now: datetime | None = None):
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.routes = build_site(self.base, now=now)

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


def prepare_state(settings: Settings) -> None:
    """Create the demo's state directory, marked as the demo's (see config.DEMO_MARKER)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    (settings.state_dir / DEMO_MARKER).write_text("The state of `newsroom demo`; `newsroom demo --reset` deletes it.\n")


def reset(settings: Settings) -> str:
    """Stop the demo's database and delete its state directory: only a directory the demo made
    (named `demo`, holding its marker file), never one that merely has the name."""
    state = settings.state_dir.resolve()
    if not state.exists():
        return f"nothing to reset: {state} does not exist"
    if state.name != DEMO_DIR or not settings.embedded or not (state / DEMO_MARKER).is_file():
        raise ConfigError(f"refusing to reset {state}: not a state directory `newsroom demo` made "
                         f"(it has no {DEMO_MARKER} file)")
    embedded.stop(settings.pgdata)
    shutil.rmtree(state)
    return f"removed the demo's state: {state}"
