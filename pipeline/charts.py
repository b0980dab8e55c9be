"""Charts as inline SVG, drawn on the server: no JavaScript, nothing fetched, colours from the
page's CSS (so they follow its light or dark look).

    bar_chart(values, edges, title="idlib: articles per day")   # -> "<svg class='chart' ...>"
    spark(daily)                                                  # a feed's last 7 days, tiny

Pure functions from numbers to markup; every text that goes into the markup is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape


@dataclass(frozen=True, slots=True)
class Bar:
    """One bucket: its start, its end, all copies and originals in it."""

    start: datetime
    end: datetime
    total: int
    originals: int


def _label(when: datetime, span_days: float) -> str:
    return f"{when:%Y-%m}" if span_days > 800 else f"{when:%d %b}" if span_days <= 200 else f"{when:%b %Y}"


def _nice_max(value: int) -> int:
    """The axis top: the value rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if value <= m * step:
                return m * step
        step *= 10


def bar_chart(bars: Sequence[Bar], *, title: str, width: int = 640, height: int = 120) -> str:
    """Articles per bucket as bars: all copies (class "bar") with the originals drawn over them
    ("bar orig"); each bar's tooltip gives both counts. Empty buckets are drawn as gaps on the axis."""
    left, bottom, top = 36, 18, 6
    plot_w, plot_h = width - left - 4, height - bottom - top
    peak = _nice_max(max((b.total for b in bars), default=0))
    n = max(len(bars), 1)
    slot = plot_w / n
    gap = 1 if slot > 3 else 0
    span = (bars[-1].end - bars[0].start).total_seconds() / 86400 if bars else 0
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
             f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}"/>',
             f'<text class="tick" x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>',
             f'<text class="tick" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>']
    for i, b in enumerate(bars):
        if b.total <= 0:
            continue
        x = left + i * slot
        h_all = plot_h * b.total / peak
        h_orig = plot_h * min(b.originals, b.total) / peak
        tip = escape(f"{b.start:%Y-%m-%d}: {b.total} articles, {b.originals} originals")
        parts.append(f'<g><title>{tip}</title>'
                     f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h_all:.1f}" '
                     f'width="{max(slot - gap, 0.5):.1f}" height="{h_all:.1f}"/>')
        if h_orig > 0:
            parts.append(f'<rect class="bar orig" x="{x:.1f}" y="{top + plot_h - h_orig:.1f}" '
                         f'width="{max(slot - gap, 0.5):.1f}" height="{h_orig:.1f}"/>')
        parts.append("</g>")
    if bars:
        parts.append(f'<text class="tick" x="{left}" y="{height - 4}">{escape(_label(bars[0].start, span))}</text>')
        parts.append(f'<text class="tick" x="{width - 4}" y="{height - 4}" text-anchor="end">'
                     f'{escape(_label(bars[-1].start, span))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def spark(values: Sequence[int] | None, *, width: int = 70, height: int = 18) -> str:
    """A tiny bar chart (a feed's articles per day over the last week), oldest first."""
    values = [max(int(v or 0), 0) for v in (values or [])]
    if not values:
        return ""
    peak = max(max(values), 1)
    slot = width / len(values)
    rects = "".join(
        f'<rect class="bar" x="{i * slot:.1f}" y="{height - height * v / peak:.1f}" '
        f'width="{max(slot - 1, 0.5):.1f}" height="{height * v / peak:.1f}"/>'
        for i, v in enumerate(values) if v)
    tip = escape(" / ".join(str(v) for v in values) + " articles per day, oldest first")
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{tip}</title>{rects}</svg>')
