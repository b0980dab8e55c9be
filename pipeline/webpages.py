"""The Airflow UI pages as HTML: templates (pipeline/templates/, autoescaped) filled from the
rows pipeline.queries returns. Pure: rows in, markup out; no database, no Airflow.

    render("feeds.html", feeds=rows, ...)      # a whole page
    highlight(body, mentions)                   # an article's body with its entities marked
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from html import escape
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from pipeline import charts, periods

# The body shown on an article page: enough for any real article; a pathological one is cut.
BODY_CHARS = 200_000
# The periods offered on the Topics page, as queries.parse_when reads them.
PERIODS = ("24h", "7d", "30d", "90d", "365d")


def when(value: datetime | None, now: datetime | None = None) -> str:
    """A time as "2026-11-30 14:05 UTC (3h ago)"; "never" for None."""
    if value is None:
        return "never"
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M} UTC ({periods.ago(value, now or datetime.now(UTC))})"


def day(value: datetime | None) -> str:
    return "" if value is None else f"{value.astimezone(UTC):%Y-%m-%d}"


def web_url(value: object) -> bool:
    """Whether a stored URL may become a link: http(s) only (never javascript: or data:)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def seconds(value: float | None) -> str:
    """A stage's duration as the run table shows it: "7.9" (blank when the stage did not run)."""
    return "" if value is None else f"{float(value):.1f}"


def snippet(text: str | None) -> Markup:
    """A search snippet: the database marks matches with <b>...</b> around text it took from
    the article. Everything is escaped, then only those two tags are put back."""
    safe = escape(text or "")
    return Markup(safe.replace("&lt;b&gt;", "<b>").replace("&lt;/b&gt;", "</b>"))


def highlight(body: str | None, mentions: Iterable[Mapping[str, Any]], *, limit: int = BODY_CHARS) -> Markup:
    """The body as paragraphs (one per line) with each entity mention wrapped in <mark class="entity ...">.

    A mention is used only where its offsets still point at its surface in this body (a page
    extracted again since tagging may have moved them) and it does not overlap one already
    marked; the rest of the text is escaped."""
    body = (body or "")[:limit]
    spans: list[tuple[int, int, Mapping[str, Any]]] = []
    for m in sorted(mentions, key=lambda m: (m["start_char"], -m["end_char"])):
        start, end = int(m["start_char"]), int(m["end_char"])
        if (0 <= start < end <= len(body) and body[start:end] == m["surface"] and "\n" not in m["surface"]
                and (not spans or start >= spans[-1][1])):
            spans.append((start, end, m))
    out, at = [], 0
    for start, end, m in spans:
        out.append(escape(body[at:start]))
        label = str(m.get("label") or "").lower()
        tip = escape(f"{m.get('name') or m['surface']} ({m.get('label') or '?'})")
        out.append(f'<mark class="entity {escape(label)}" title="{tip}">{escape(body[start:end])}</mark>')
        at = end
    out.append(escape(body[at:]))
    # The extractor puts one paragraph per line; a mention across a line break is not marked
    # (above), so splitting the marked-up text on lines never cuts a <mark> in two.
    return Markup("".join(f"<p>{p}</p>" for p in "".join(out).split("\n") if p.strip()))


def topic_bars(timeline: Sequence[Mapping[str, Any]], since: datetime, until: datetime,
               bucket: periods.Bucket) -> dict[str, list[charts.Bar]]:
    """topic_timeline rows as one bar per bucket for each topic, empty buckets included."""
    edges = periods.bucket_edges(since, until, bucket)
    index = {start: i for i, start in enumerate(edges[:-1])}
    counts: dict[str, list[list[int]]] = {}
    for r in timeline:
        i = index.get(r["bucket"])
        if i is None:
            continue
        slot = counts.setdefault(r["slug"], [[0, 0] for _ in index])[i]
        slot[0] += int(r["articles"])
        slot[1] += int(r["originals"])
    return {slug: [charts.Bar(edges[i], edges[i + 1], n, o) for i, (n, o) in enumerate(slots)]
            for slug, slots in counts.items()}


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("pipeline", "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, day=day, snippet=snippet)
    env.tests.update(web_url=web_url)
    env.globals.update(bar_chart=lambda bars, title: Markup(charts.bar_chart(bars, title=title)),
                       spark=lambda values: Markup(charts.spark(values)), periods=PERIODS,
                       seconds=seconds)
    return env


def render(template: str, **values: Any) -> str:
    return _environment().get_template(template).render(**values)
