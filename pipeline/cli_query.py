"""`newsroom search | topics | entities | article | report`: asking the stored news questions.

Thin, like pipeline/cli.py: parse options, call one function in pipeline.queries or
pipeline.report, print. Exit codes as grep has them: 0 results printed, 1 nothing found (an
unknown topic, entity or article, or no matching rows; the reason on stderr), 2 bad input (a
malformed --since, say). Machine formats (json, csv) still print a valid empty document when
nothing matches, so scripts can parse stdout either way.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from pipeline import config, queries, store
from pipeline.cli_support import EXIT_NOT_FOUND, fail, friendly
from pipeline.errors import UserInputError

log = logging.getLogger(__name__)

_FORMATS = click.Choice(["table", "json", "csv"], case_sensitive=False)


# --- output ---------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """JSON-able: datetimes as ISO 8601, decimals as floats."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json(data: Any) -> None:
    click.echo(json.dumps(data, default=_plain, ensure_ascii=False, indent=2))


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(columns)
    for r in rows:
        out.writerow(["; ".join(map(str, v)) if isinstance(v, list) else
                      v.isoformat() if isinstance(v, datetime | date) else "" if v is None else v
                      for v in (r.get(c) for c in columns)])


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


def _since_text(since: datetime) -> str:
    return f"since {since:%Y-%m-%d %H:%M} UTC"


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _text(value: Any) -> Any:
    # Text objects are never parsed as markup: a title with [brackets] prints as written.
    from rich.text import Text

    return Text("" if value is None else str(value))


def _snippet(snippet: str | None) -> Any:
    """A search snippet with its <b>matches</b> in bold."""
    from rich.text import Text

    out = Text()
    bold = False
    for i, part in enumerate((snippet or "").replace("</b>", "<b>").split("<b>")):
        if i:
            bold = not bold
        out.append(re.sub(r"\s+", " ", part), style="bold yellow" if bold else None)  # keep spaces at the edges
    return out


def _empty(fmt: str, message: str, columns: Sequence[str] = ()) -> None:
    if fmt == "json":
        _json([])
    elif fmt == "csv":
        _csv([], columns)
    fail(message, EXIT_NOT_FOUND, prefix="")


def _since(value: str | None) -> datetime | None:
    return queries.parse_since(value) if value else None


# --- search ---------------------------------------------------------------------------------

_SEARCH_COLUMNS = ["id", "score", "published_at", "outlet", "title", "url", "topics", "snippet"]


@click.command("search")
@click.argument("text")
@click.option("--topic", metavar="SLUG", help="Only articles tagged with this topic.")
@click.option("--entity", metavar="NAME", help="Only articles mentioning this entity (name, alias or Wikidata id).")
@click.option("--since", metavar="WHEN", help="Published since: 24h, 7d, 2w, or a date like 2019-10-01.")
@click.option("--limit", type=click.IntRange(1, queries.MAX_LIMIT), default=20, show_default=True)
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.pass_obj
@friendly
def search(settings: config.Settings, text: str, topic: str | None, entity: str | None, since: str | None,
           limit: int, fmt: str) -> None:
    """Full-text search, best match first (recent articles weigh a little more).

    TEXT uses web-search syntax: words, "an exact phrase", or, -excluded. When a very common
    word matches more than 10,000 articles, the 10,000 most recent are ranked; narrow with
    --since, --topic or --entity to reach further back.
    """
    start = _since(since)
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        rows = queries.search(conn, text, topic=topic, entity=entity, since=start, limit=limit)
    if not rows:
        filters = [f"topic {topic}" if topic else "", f"entity {entity}" if entity else "",
                   _since_text(start) if start else ""]
        extra = ", ".join(f for f in filters if f)
        _empty(fmt, f"no articles match {text!r}" + (f" ({extra})" if extra else ""), _SEARCH_COLUMNS)
    if fmt == "json":
        _json(rows)
    elif fmt == "csv":
        _csv(rows, _SEARCH_COLUMNS)
    else:
        from rich.table import Table

        table = Table(title=f"search: {text}", show_lines=True)
        table.add_column("id", justify="right")
        table.add_column("published", no_wrap=True)
        table.add_column("outlet")
        table.add_column("article", ratio=1)
        table.add_column("score", justify="right")
        for r in rows:
            cell = _text(r["title"] or r["url"])
            cell.stylize("bold")
            cell.append("\n")
            cell.append_text(_snippet(r["snippet"]))
            if r["topics"]:
                cell.append("\n" + ", ".join(r["topics"]), style="dim")
            table.add_row(str(r["id"]), _when(r["published_at"]), _text(r["outlet"]), cell, f"{r['score']:.3f}")
        _console().print(table)


# --- topics ---------------------------------------------------------------------------------

_TOPIC_COLUMNS = ["slug", "name", "articles", "originals", "previous", "change", "change_pct", "trend"]
_ARROWS = {"up": "▲ up", "down": "▼ down", "flat": "= flat", "new": "★ new"}


@click.command("topics")
@click.option("--since", default="30d", show_default=True, metavar="WHEN",
              help="Period start: 24h, 7d, 2w, or a date; compared with the period as long just before it.")
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.pass_obj
@friendly
def topics(settings: config.Settings, since: str, fmt: str) -> None:
    """Articles per topic in the period, with the trend against the previous period."""
    start = queries.parse_since(since)
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        rows = queries.topic_volumes(conn, start)
    if not rows:
        _empty(fmt, "no topics are defined yet (the tagging stage writes them)", _TOPIC_COLUMNS)
    if not any(r["articles"] or r["previous"] for r in rows):
        _empty(fmt, f"no tagged articles {_since_text(start)} or in the period before", _TOPIC_COLUMNS)
    if fmt == "json":
        _json(rows)
    elif fmt == "csv":
        _csv(rows, _TOPIC_COLUMNS)
    else:
        from rich.table import Table

        table = Table(title=f"topics {_since_text(start)}")
        for col, justify in (("topic", "left"), ("name", "left"), ("articles", "right"), ("originals", "right"),
                             ("previous", "right"), ("change", "right"), ("trend", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in rows:
            pct = f" ({r['change_pct']:+.0f}%)" if r["change_pct"] is not None else ""
            style = {"up": "green", "new": "green", "down": "red"}.get(r["trend"])
            table.add_row(_text(r["slug"]), _text(r["name"]), str(r["articles"]), str(r["originals"]),
                          str(r["previous"]), f"{r['change']:+d}{pct}", _ARROWS[r["trend"]], style=style)
        _console().print(table)


# --- entities -------------------------------------------------------------------------------

_ENTITY_COLUMNS = ["entity_id", "name", "label", "wikidata_id", "articles", "mentions"]


@click.command("entities")
@click.option("--topic", metavar="SLUG", help="Only in articles tagged with this topic.")
@click.option("--label", metavar="LABEL", help="Only this kind: PERSON, ORG, GPE, LOC, NORP, WEAPON, ...")
@click.option("--since", metavar="WHEN", help="Published since: 24h, 7d, 2w, or a date like 2019-10-01.")
@click.option("--limit", type=click.IntRange(1, queries.MAX_LIMIT), default=20, show_default=True)
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.pass_obj
@friendly
def entities(settings: config.Settings, topic: str | None, label: str | None, since: str | None, limit: int,
             fmt: str) -> None:
    """The most mentioned people, places, organisations and weapons, by articles mentioning them."""
    start = _since(since)
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        rows = queries.top_entities(conn, topic=topic, label=label, since=start, limit=limit)
    if not rows:
        filters = [f"topic {topic}" if topic else "", f"label {label.upper()}" if label else "",
                   _since_text(start) if start else ""]
        extra = ", ".join(f for f in filters if f)
        _empty(fmt, "no entity mentions" + (f" ({extra})" if extra else ""), _ENTITY_COLUMNS)
    if fmt == "json":
        _json(rows)
    elif fmt == "csv":
        _csv(rows, _ENTITY_COLUMNS)
    else:
        from rich.table import Table

        parts = [p for p in (topic, label.upper() if label else None, _since_text(start) if start else None) if p]
        table = Table(title="entities" + (f" ({', '.join(parts)})" if parts else ""))
        for col, justify in (("#", "right"), ("entity", "left"), ("label", "left"), ("wikidata", "left"),
                             ("articles", "right"), ("mentions", "right")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for i, r in enumerate(rows, 1):
            table.add_row(str(i), _text(r["name"]), r["label"], r["wikidata_id"] or "", str(r["articles"]),
                          str(r["mentions"]))
        _console().print(table)


# --- article --------------------------------------------------------------------------------

@click.command("article")
@click.argument("article_id", metavar="ID", type=int)
@click.option("--format", "fmt", type=click.Choice(["table", "json"], case_sensitive=False), default="table",
              show_default=True)
@click.pass_obj
@friendly
def article(settings: config.Settings, article_id: int, fmt: str) -> None:
    """One article: where it came from, its entities, topics (with evidence) and copies."""
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        a = queries.article(conn, article_id)
    if fmt == "json":
        _json(a)
        return
    from rich.table import Table

    console = _console()
    head = Table(show_header=False, title=f"article {a['id']}", title_justify="left")
    head.add_column("field", style="bold")
    head.add_column("value", overflow="fold")
    for label, value in (
        ("title", a["title"]), ("url", a["url"]), ("outlet", ", ".join(a["outlets"]) or a["outlet"]),
        ("published", f"{_when(a['published_at'])} (from {a['dated_by']})"), ("status", a["status"]),
        ("language", a["language"]), ("words", a["word_count"]), ("author", a["author"]),
        ("cluster", "" if a["cluster_id"] is None else
         f"{a['cluster_id']} ({'original' if a['is_original'] else 'copy'}, {len(a['copies'])} other copies)"),
        ("summary", a["summary"]), ("last error", a["last_error"]),
    ):
        if value not in (None, ""):
            head.add_row(label, _text(value))
    console.print(head)
    if a["topic_tags"]:
        t = Table(title="topics", title_justify="left")
        for col in ("topic", "score", "evidence", "rules"):
            t.add_column(col, overflow="fold")
        for r in a["topic_tags"]:
            t.add_row(_text(r["slug"]), f"{r['score']:.2f}", _text(queries.evidence_summary(r["evidence"])),
                      _text(r["rules_version"]))
        console.print(t)
    if a["entities"]:
        t = Table(title="entities", title_justify="left")
        for col in ("entity", "label", "wikidata", "mentions", "as written"):
            t.add_column(col, overflow="fold")
        for r in a["entities"]:
            t.add_row(_text(r["name"]), r["label"], r["wikidata_id"] or "", str(r["mentions"]),
                      _text(", ".join(r["surfaces"])))
        console.print(t)
    t = Table(title="sources", title_justify="left")
    for col in ("feed", "entry url", "first seen"):
        t.add_column(col, overflow="fold")
    for r in a["sources"]:
        t.add_row(_text(r["feed"]), _text(r["entry_url"]), _when(r["first_seen_at"]))
    console.print(t)
    if a["copies"]:
        t = Table(title="other copies of this story", title_justify="left")
        for col in ("id", "published", "outlet", "original", "title"):
            t.add_column(col, overflow="fold")
        for r in a["copies"]:
            t.add_row(str(r["id"]), _when(r["published_at"]), _text(r["outlet"]), "yes" if r["is_original"] else "",
                      _text(r["title"]))
        console.print(t)


# --- report ---------------------------------------------------------------------------------

REPORT_DAYS = 30  # the report's period when --since is not given: the 30 days before --until


def _until(value: str) -> datetime:
    """--until as parse_since reads --since, its errors naming --until."""
    try:
        return queries.parse_since(value)
    except UserInputError as exc:
        raise UserInputError(str(exc).replace("--since", "--until", 1)) from None


@click.command("report")
@click.option("--since", default=None, metavar="WHEN",
              help="Period start: 24h, 7d, 2w (back from now), or a date like 2019-10-01. "
                   f"Default: {REPORT_DAYS} days before --until.")
@click.option("--until", default=None, metavar="WHEN",
              help="Period end (excluded), in the same forms as --since. Default: now.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write index.html and the PNG charts to (created if missing).")
@click.pass_obj
@friendly
def report(settings: config.Settings, since: str | None, until: str | None, out_dir: Path) -> None:
    """An HTML report with charts: topic volume over time (per day, week or month as the period
    grows), top entities per topic, feed health."""
    from pipeline.report import build_report

    end = _until(until) if until is not None else datetime.now(UTC)
    start = queries.parse_since(since) if since is not None else end - timedelta(days=REPORT_DAYS)
    if start >= end:
        raise UserInputError(f"--since {since!r} ({start.astimezone(UTC):%Y-%m-%d %H:%M} UTC) must be before "
                             f"--until {until!r} ({end.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        try:
            index = build_report(conn, start, out_dir, until=end)
        except OSError as exc:  # an unwritable --out is the user's to fix, not a crash
            fail(f"cannot write the report to {out_dir}: {exc.strerror or exc}", 2)
    click.echo(str(index))


COMMANDS = [search, topics, entities, article, report]
