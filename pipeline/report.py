"""A static HTML report with PNG charts: topic volume over time, top entities per topic, feed health.

    build_report(conn, since, Path("report"))  ->  report/index.html (+ three .png files)

Topic volume is counted per day, ISO week or month as the period grows (pipeline.periods: about
a hundred bars at most, whatever the period), each series drawn as one step patch.
Charts are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend
state, no display needed). Periods with no data still produce every file: the charts say
"no data" and the page says why, so a scheduled report never fails just because it was quiet.
"""

from __future__ import annotations

import html
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.dates import ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch
from matplotlib.textpath import TextToPath

from pipeline import periods, queries

log = logging.getLogger(__name__)

TOPIC_CHART = "topic_volume.png"
ENTITY_CHART = "top_entities.png"
FEED_CHART = "feed_health.png"
STATUS_COLOURS = {"ok": "#2e7d32", "silent": "#f9a825", "failing": "#c62828", "new": "#1565c0",
                  "gone": "#6a1b1b", "moved": "#ef6c00", "paused": "#9e9e9e", "removed": "#757575",
                  "unlisted": "#bdbdbd"}
_DPI = 100


def build_report(conn: Any, since: datetime, out_dir: Path, *, until: datetime | None = None,
                 entities_per_topic: int = 8, max_feeds: int = 30) -> Path:
    """Write index.html and its charts for articles published in [since, until) into out_dir
    (created if missing; files of an earlier report are replaced). Return index.html's path."""
    until = queries.parse_since(until or queries.current_time())  # a naive datetime is taken as UTC
    since = queries.parse_since(since, now=until)
    bucket = periods.choose_bucket(since, until)  # an empty period raises UserInputError here
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    volumes = queries.topic_volumes(conn, since, until=until)
    timeline = queries.topic_timeline(conn, since, until=until, bucket=bucket)
    feeds = queries.feed_health(conn)
    names = {t["slug"]: t["name"] for t in volumes}

    # The entity counts are the slowest query (a second or two over a year of 100,000 articles):
    # it runs on the server while this process draws the two charts that do not need it. The
    # connection is used by that one thread only until it is joined.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-query") as pool:
        # every topic's top entities and the overall top, from one count of the window's mentions
        pending = pool.submit(queries.top_entities_by_topic, conn, since, until=until,
                              limit=entities_per_topic, overall=15)
        try:
            _topic_chart(timeline, names, since, until, bucket, out_dir / TOPIC_CHART)
            _feed_chart(feeds, out_dir / FEED_CHART, max_feeds)
        finally:
            by_topic = pending.result()  # waits even if a chart failed: the connection is free again
    per_topic = {t["slug"]: by_topic.get(t["slug"], []) for t in volumes if t["articles"]}
    overall = by_topic.get(None, [])
    _entity_chart(per_topic, names, out_dir / ENTITY_CHART)
    index = out_dir / "index.html"
    index.write_text(_page(since, until, bucket, volumes, per_topic, overall, feeds, names), encoding="utf-8")
    log.debug("report for %s .. %s written to %s", since, until, index)
    return index


# --- charts ---------------------------------------------------------------------------------

def _no_data(fig: Figure, message: str) -> None:
    fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, color="#757575")


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=_DPI)


# Charts are laid out from measured margins, not layout="constrained": that measures every tick
# label of every panel on each of several passes, about half of each chart's drawing time.
_TEXT = TextToPath()
_PAD = 0.12  # inches between a tick label and its axis (tick length + pad) and to the edge
_LABEL_CHARS = 32  # longer entity and feed names are cut: they would squeeze the bars


def _width(texts: Sequence[str], size: float) -> float:
    """Inches the widest of texts takes at font size `size` (points)."""
    prop = FontProperties(size=size)
    return max((_TEXT.get_text_width_height_descent(t, prop, ismath=False)[0] for t in texts), default=0.0) / 72


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[:_LABEL_CHARS - 1] + "…"


def _place(fig: Figure, nrows: int, ncols: int, *, left: float, bottom: float, top: float,
           right: float = 0.3, hgap: float = 0.0, wgap: float = 0.0) -> None:
    """Lay out fig's nrows x ncols subplots with margins and gaps given in inches."""
    w, h = fig.get_size_inches()
    cell_w = (w - left - right - wgap * (ncols - 1)) / ncols
    cell_h = (h - top - bottom - hgap * (nrows - 1)) / nrows
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=wgap / cell_w, hspace=hgap / cell_h)


def _title(ax: Any, text: str, **kw: Any) -> None:
    # y given: matplotlib then skips its search for tick labels the title might overlap.
    ax.set_title(text, y=1.0, pad=4, **kw)


def _topic_chart(timeline: Sequence[dict[str, Any]], names: dict[str, str], since: datetime, until: datetime,
                 bucket: periods.Bucket, path: Path) -> None:
    if not timeline:
        fig = Figure(figsize=(10, 3))
        _no_data(fig, "No data: no tagged articles in this period")
        _save(fig, path)
        return
    # Every bucket of the period, so a quiet one draws as zero rather than being skipped.
    index = {start: i for i, start in enumerate(periods.bucket_starts(since, until, bucket))}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(index))
    originals: dict[str, list[int]] = defaultdict(lambda: [0] * len(index))
    for r in timeline:
        series[r["slug"]][index[r["bucket"]]] = r["articles"]
        originals[r["slug"]][index[r["bucket"]]] = r["originals"]
    edges = periods.bucket_edges(since, until, bucket)
    # One panel per topic, busiest first, on a shared time axis: an article often has several
    # topics, so stacking them would count it twice, and overlaid lines hide each other.
    slugs = sorted(series, key=lambda s: (-sum(series[s]), s))
    fig = Figure(figsize=(10, 1.2 + 1.5 * len(slugs)))
    axes = fig.subplots(len(slugs), 1, sharex=True, squeeze=False)[:, 0]
    for ax, slug in zip(axes, slugs, strict=True):
        # One step patch per series, not a bar (a patch) per bucket: matplotlib's cost grows with
        # its artists, and a bar per day over eight years was ~30,000 patches and a minute of CPU.
        ax.stairs(series[slug], edges, fill=True, color="#90caf9", label="all copies")
        ax.stairs(originals[slug], edges, fill=True, color="#1565c0", label="originals")
        n = sum(series[slug])
        _title(ax, f"{names.get(slug, slug)} ({n} article{'' if n == 1 else 's'})", fontsize=9, loc="left")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xlim(edges[0], edges[-1])
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(axes[-1].xaxis.get_major_locator()))
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Tagged articles per {bucket} (UTC), by topic", y=1 - 0.1 / fig.get_size_inches()[1], va="top")
    # y tick labels: counts, a digit more than the largest bucket's (the locator may round up)
    widest = str(10 * max(max(v) for v in series.values()))
    _place(fig, len(slugs), 1, left=_width([widest], 8) + 2 * _PAD, bottom=0.55, top=0.65, hgap=0.35)
    _save(fig, path)


def _entity_chart(per_topic: dict[str, list[dict[str, Any]]], names: dict[str, str], path: Path) -> None:
    panels = [(slug, rows) for slug, rows in per_topic.items() if rows]
    if not panels:
        fig = Figure(figsize=(10, 3))
        _no_data(fig, "No data: no entities mentioned in tagged articles in this period")
        _save(fig, path)
        return
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(6 * ncols, 0.6 + 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).flat
    label_width = _width([_short(r["name"]) for _, rows in panels for r in rows], 8) + _PAD
    for ax, (slug, rows) in zip(axes, panels, strict=False):
        rows = list(reversed(rows))  # barh draws bottom-up; the top entity goes on top
        # Positions, not names, on the axis: two entities may share a name (or its cut form).
        ax.barh(range(len(rows)), [r["articles"] for r in rows], color="#5c6bc0")
        ax.set_yticks(range(len(rows)), [_short(r["name"]) for r in rows])
        _title(ax, names.get(slug, slug), fontsize=10)
        ax.set_xlabel("articles mentioning", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(axes):  # an odd number of panels leaves the last cell empty
        ax.set_visible(False)
    fig.suptitle("Top entities per topic", y=1 - 0.1 / fig.get_size_inches()[1], va="top")
    _place(fig, nrows, ncols, left=label_width + _PAD, bottom=0.5, top=0.75, hgap=0.85,
           wgap=label_width + 2 * _PAD)
    _save(fig, path)


def _status_order(status: str) -> int:
    order = ["failing", "gone", "moved", "silent", "new", "ok", "paused", "removed", "unlisted"]
    return order.index(status) if status in order else 9


def _feed_chart(feeds: Sequence[dict[str, Any]], path: Path, max_feeds: int) -> None:
    if not feeds:
        fig = Figure(figsize=(10, 3))
        _no_data(fig, "No data: no feeds yet (run `newsroom feeds sync`)")
        _save(fig, path)
        return
    # Feeds needing attention first, then the busiest; at most max_feeds bars.
    shown = sorted(feeds, key=lambda f: (_status_order(f["status"]), -float(f["articles_per_day_7d"]), f["name"]))
    shown = list(reversed(shown[:max_feeds]))  # barh draws bottom-up
    fig = Figure(figsize=(10, 1.4 + 0.3 * len(shown)))
    ax = fig.add_subplot()
    labels = [_short(f["name"]) for f in shown]
    ax.barh(range(len(shown)), [float(f["articles_per_day_7d"]) for f in shown],
            color=[STATUS_COLOURS.get(f["status"], "#000000") for f in shown])
    ax.set_yticks(range(len(shown)), labels)
    ax.set_ylim(-0.6, len(shown) - 0.4)
    counts: dict[str, int] = defaultdict(int)
    for f in feeds:
        counts[f["status"]] += 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: _status_order(kv[0])))
    more = f" (showing {len(shown)} of {len(feeds)})" if len(feeds) > len(shown) else ""
    _title(ax, f"Feeds: articles per day over the last 7 days, coloured by status — {summary}{more}", fontsize=10)
    ax.set_xlabel("articles per day (7-day average)")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlim(left=0)
    ax.legend(handles=[Patch(color=colour, label=status) for status, colour in STATUS_COLOURS.items()
                       if counts.get(status)], fontsize=8, loc="lower right")
    _place(fig, 1, 1, left=_width(labels, 8) + 2 * _PAD, bottom=0.6, top=0.45)
    _save(fig, path)


# --- page -----------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if i in numeric else ""}">{_e(v)}</td>' for i, v in enumerate(r)) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _when(value: datetime | None) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}" if value else "never"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #212121; }
h1 { margin-bottom: 0.2rem; } .meta, .note { color: #616161; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eeeeee; }
.status-failing { color: #c62828; font-weight: bold; } .status-silent { color: #f9a825; }
"""


def _bucket_note(since: datetime, until: datetime, bucket: periods.Bucket) -> str:
    """What a bar of the topic chart counts, and which bars cover only part of their bucket."""
    edges = periods.bucket_edges(since, until, bucket)
    partial = [end for end, cut in (("first", edges[0] < since), ("last", edges[-1] > until)) if cut]
    note = f"One bar per {bucket} (UTC{', weeks from Monday' if bucket is periods.Bucket.WEEK else ''})"
    if partial:
        note += f"; the {' and '.join(partial)} {bucket} {'are' if len(partial) > 1 else 'is'} only partly in the period"
    return note + "."


def _page(since: datetime, until: datetime, bucket: periods.Bucket, volumes: Sequence[dict[str, Any]],
          per_topic: dict[str, list[dict[str, Any]]], overall: Sequence[dict[str, Any]],
          feeds: Sequence[dict[str, Any]], names: dict[str, str]) -> str:
    total = sum(t["articles"] for t in volumes)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Newsroom report {_when(since)} – {_when(until)} UTC</title><style>{_CSS}</style></head><body>",
        "<h1>Newsroom report</h1>",
        f"<p class='meta'>Articles published {_e(_when(since))} to {_e(_when(until))} UTC; "
        f"generated {_e(_when(datetime.now(UTC)))} UTC. Trends compare with the period of the same length "
        "just before.</p>",
        "<h2>Topic volume</h2>",
    ]
    if total == 0:
        parts.append("<p class='note'>No tagged articles in this period.</p>")
    else:
        parts.append(f"<p class='note'>{_e(_bucket_note(since, until, bucket))}</p>")
    parts.append(f"<img src='{TOPIC_CHART}' alt='Tagged articles per {bucket} (UTC) by topic'>")
    if volumes:
        parts.append(_table(
            ["topic", "articles", "originals", "previous period", "change", "trend"],
            [[t["name"], t["articles"], t["originals"], t["previous"],
              f"{t['change']:+d}" + (f" ({t['change_pct']:+.0f}%)" if t["change_pct"] is not None else ""),
              t["trend"]] for t in volumes], numeric=(1, 2, 3, 4)))
    else:
        parts.append("<p class='note'>No topics are defined yet.</p>")

    parts.append("<h2>Top entities per topic</h2>")
    if not any(per_topic.values()):
        parts.append("<p class='note'>No entities mentioned in tagged articles in this period.</p>")
    parts.append(f"<img src='{ENTITY_CHART}' alt='Top entities per topic'>")
    for slug, rows in per_topic.items():
        if rows:
            parts.append(f"<h3>{_e(names.get(slug, slug))}</h3>")
            parts.append(_table(["entity", "label", "articles", "mentions"],
                                [[r["name"], r["label"], r["articles"], r["mentions"]] for r in rows], numeric=(2, 3)))
    parts.append("<h2>Most mentioned overall</h2>")
    if overall:
        parts.append(_table(["entity", "label", "wikidata", "articles", "mentions"],
                            [[r["name"], r["label"], r["wikidata_id"] or "", r["articles"], r["mentions"]]
                             for r in overall], numeric=(3, 4)))
    else:
        parts.append("<p class='note'>No entity mentions in this period.</p>")

    parts.append("<h2>Feed health</h2>")
    parts.append(f"<img src='{FEED_CHART}' alt='Feed health'>")
    if feeds:
        rows = "".join(
            f"<tr><td class='status-{_e(f['status'])}'>{_e(f['status'])}</td><td>{_e(f['name'])}</td>"
            f"<td>{_e(_when(f['last_success_at']))}</td><td class='num'>{_e(f['failure_streak'])}</td>"
            f"<td class='num'>{_e(f['articles_per_day_7d'])}</td>"
            f"<td>{_e(': '.join(x for x in (f['last_error_class'], f['last_error']) if x))}</td></tr>"
            for f in feeds)
        parts.append("<table><thead><tr><th>status</th><th>feed</th><th>last success</th><th>failure streak</th>"
                     f"<th>articles/day (7d)</th><th>last error</th></tr></thead><tbody>{rows}</tbody></table>")
    else:
        parts.append("<p class='note'>No feeds yet.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
