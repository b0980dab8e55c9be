"""`newsroom search | topics | entities | article | report`: asking the stored news questions.

Thin, like pipeline/cli.py: parse options, call one function in pipeline.queries or
pipeline.report, print. Exit codes as grep has them: 0 results printed, 1 nothing found (an
unknown topic, entity or article, or no matching rows; the reason on stderr), 2 bad input (a
malformed --since, say). Machine formats (json, csv) still print a valid empty document when
nothing matches, so scripts can parse stdout either way. Every csv cell is one line of text: no
HTML tags, control characters or line breaks. Tables fit the terminal's width (COLUMNS),
leaving out their least needed columns rather than squeezing the rest.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import click

from pipeline import config, queries, store
from pipeline.cli_support import FORMATS as _FORMATS
from pipeline.cli_support import UNPRINTABLE as _TERMINAL_UNSAFE
from pipeline.cli_support import empty_result as _empty
from pipeline.cli_support import fail, friendly
from pipeline.cli_support import print_csv as _csv
from pipeline.cli_support import print_json as _json
from pipeline.errors import UserInputError

log = logging.getLogger(__name__)


# --- output (--format's helpers are in cli_support, shared with cli) --------------------------

def _when(value: datetime | None) -> str:
    # In UTC, like every filter (the server's or the session's time zone may be any other).
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}" if value else ""


def _day(value: datetime | None) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d}" if value else ""


def _clip(value: str | None, width: int) -> str:
    return value if not value or len(value) <= width else value[:width - 1].rstrip() + "…"


def _since_text(since: datetime) -> str:
    return f"since {since:%Y-%m-%d %H:%M} UTC"


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _text(value: Any, *, lines: bool = False) -> Any:
    """A table cell: on one line unless `lines` (a body's paragraphs), without the control
    characters a terminal would act on. Text objects are never parsed as markup: a title with
    [brackets] prints as written."""
    from rich.text import Text

    text = "" if value is None else _TERMINAL_UNSAFE.sub("", str(value))
    return Text(text if lines else " ".join(text.split()))




def _snippet(snippet: str | None) -> Any:
    """A search snippet with its <b>matches</b> in bold."""
    from rich.text import Text

    out = Text()
    bold = False
    for i, part in enumerate((snippet or "").replace("</b>", "<b>").split("<b>")):
        if i:
            bold = not bold
        out.append(re.sub(r"\s+", " ", _TERMINAL_UNSAFE.sub("", part)),  # keep spaces at the edges
                   style="bold yellow" if bold else None)
    return out


class _Col(NamedTuple):
    """A table column: `wrap` False keeps each cell on one line (ids, dates, slugs, numbers),
    True wraps it at spaces (titles, names; at least `least` wide), "fold" breaks it anywhere
    (URLs)."""

    name: str
    justify: str = "left"
    wrap: bool | str = False
    least: int = 0


def _fit(width: int, columns: Sequence[_Col], rows: Sequence[Mapping[str, Any]],
         drop: Sequence[str] = ()) -> list[_Col]:
    """The columns that fit `width` without cutting a one-line cell or a word: all of them, less
    those named in `drop` (least wanted first) as long as they do not. Where even the rest are too
    wide, their one-line text folds onto more lines (numbers stay whole)."""
    from rich.cells import cell_len

    def need(col: _Col) -> int:
        texts = [col.name, *(getattr(r[col.name], "plain", str(r[col.name])) for r in rows)]
        if col.wrap == "fold":
            return min(12, max(map(cell_len, texts)))
        pieces = [p for t in texts for p in (t.split() if col.wrap else t.splitlines())]
        return max([col.least, *map(cell_len, pieces)])

    needs = {c.name: need(c) for c in columns}
    shown = list(columns)

    def fits() -> bool:
        return sum(needs[c.name] for c in shown) + 3 * len(shown) + 1 <= width  # padding and borders

    for name in drop:
        if fits():
            break
        shown = [c for c in shown if c.name != name]
    if not fits():  # still too wide: one-line text (slugs) may fold rather than lose its end to "…"
        shown = [c._replace(wrap="fold") if not c.wrap and c.justify == "left" else c for c in shown]
    return shown


def _table(columns: Sequence[_Col], rows: Sequence[Mapping[str, Any]], styles: Sequence[str | None] = (),
           **options: Any) -> Any:
    from rich.table import Table

    table = Table(**options)
    for c in columns:
        table.add_column(c.name, justify=c.justify, no_wrap=not c.wrap,  # type: ignore[arg-type]
                         overflow="fold" if c.wrap == "fold" else "ellipsis")
    for i, r in enumerate(rows):
        table.add_row(*(r[c.name] for c in columns), style=styles[i] if styles else None)
    return table


def _since(value: str | None) -> datetime | None:
    return queries.parse_since(value) if value else None


def _until(value: str | None) -> datetime | None:
    return queries.parse_when(value, option="--until", future=True) if value else None


# The same spelling and meaning on every command that has them.
_SINCE_HELP = "Published since: 24h, 7d, 2w, today, or a date like 2019-10-01."
_UNTIL_HELP = "Published before: same forms as --since (7d = until a week ago; a date may be ahead)."
_ARRIVED_HELP = ("Discovered by Newsroom since then (not published): today, 24h, a date, or last-run for what "
                 "the latest ingest run brought in.")


def _article_filters(command: Any) -> Any:
    """The options that narrow a list of articles, the same on every command that lists them."""
    for option in reversed((
        click.option("--topic", metavar="SLUG", help="Only articles tagged with this topic."),
        click.option("--entity", metavar="NAME",
                     help="Only articles mentioning this entity (name, alias, surname or Wikidata id)."),
        click.option("--since", metavar="WHEN", help=_SINCE_HELP),
        click.option("--until", metavar="WHEN", help=_UNTIL_HELP),
        click.option("--arrived", metavar="WHEN", help=_ARRIVED_HELP),
    )):
        command = option(command)
    return command


def _scope_options(command: Any) -> Any:
    """--feed, --tag, --outlet, --language: which articles count, by where they came from. The
    command receives them as one `scope` (queries.Scope)."""
    options = (
        click.option("--feed", metavar="FEED", help="Only articles this feed carried (its id, URL or name)."),
        click.option("--tag", metavar="TAG", help="Only articles carried by a feed with this tag."),
        click.option("--outlet", metavar="OUTLET",
                     help="Only this outlet's articles: a site's domain (bbc.co.uk) or a feed's outlet name."),
        click.option("--language", metavar="CODE", help="Only articles in this language (en, fr, ...)."),
    )

    @functools.wraps(command)
    def with_scope(*args: Any, feed: str | None, tag: str | None, outlet: str | None, language: str | None,
                   **kwargs: Any) -> Any:
        return command(*args, scope=queries.Scope(feed=feed, tag=tag, outlet=outlet, language=language), **kwargs)

    for option in reversed(options):
        with_scope = option(with_scope)
    return with_scope


def _scope_text(scope: queries.Scope) -> str:
    return f" ({', '.join(scope.describe())})" if scope else ""


def _filters_text(topic: str | None, entity: str | None, start: datetime | None, end: datetime | None,
                  arrived: str | None) -> str:
    """The filters in force, for a "nothing found" message: " (topic x, since ...)" or ""."""
    parts = [f"topic {topic}" if topic else "", f"entity {entity}" if entity else "",
             _period_text(start, end), f"arrived {arrived}" if arrived else ""]
    extra = ", ".join(p for p in parts if p)
    return f" ({extra})" if extra else ""


def _period_text(start: datetime | None, end: datetime | None) -> str:
    return " ".join(p for p in (_since_text(start) if start else "", f"until {end:%Y-%m-%d %H:%M} UTC" if end else "")
                    if p)


# --- search ---------------------------------------------------------------------------------

_SEARCH_COLUMNS = ["id", "score", "published_at", "outlet", "title", "url", "topics", "snippet"]


class _SearchCommand(click.Command):
    """TEXT is every word left over, joined with spaces, and `-word` is one of them: web-search
    syntax's exclusion (`Erdogan -Turkey`), not an option. Click would read `-Turkey` as the
    short options -T -u -r ..., so before parsing, a word with one leading dash that is not this
    command's own option name (nor an option's value) is marked as TEXT, and unmarked after. An
    unknown `--word` is still an error; after `--`, every word is TEXT."""

    _MARK = "\x00"  # never in a real argv

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names: set[str] = set()
        valued: set[str] = set()  # options that take the next word as their value
        for p in self.get_params(ctx):
            if isinstance(p, click.Option):
                names.update(p.opts + p.secondary_opts)
                if not p.is_flag and not p.count:
                    valued.update(p.opts)
        marked: list[str] = []
        words = iter(args)
        for word in words:
            excluded = word[:1] == "-" and word[1:2] not in ("", "-") and word not in names
            marked.append(self._MARK + word if excluded else word)
            if word == "--":
                marked.extend(words)
            elif word in valued:
                marked.extend(itertools.islice(words, 1))  # its value as written: --topic -x is a topic
        rest = super().parse_args(ctx, marked)
        ctx.params["text"] = " ".join(w.removeprefix(self._MARK) for w in ctx.params.get("text") or ())
        return rest


@click.command("search", cls=_SearchCommand)
@click.argument("text", nargs=-1, required=True)
@_article_filters
@click.option("--limit", type=click.IntRange(1, queries.MAX_LIMIT), default=20, show_default=True)
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.pass_obj
@_scope_options
@friendly
def search(settings: config.Settings, text: str, topic: str | None, entity: str | None, since: str | None,
           until: str | None, arrived: str | None, limit: int, fmt: str, scope: queries.Scope) -> None:
    """Full-text search, best match first (recent articles weigh a little more).

    TEXT is every word that is not an option, in web-search syntax: words, "an exact phrase",
    or, -excluded (newsroom search Erdogan -Turkey --since 7d); after -- every word is TEXT.
    When a very common word matches more than 10,000 articles, the 10,000 most recent are
    ranked; narrow with --since, --topic or --entity to reach further back. Each article is
    matched with its own language's stemming; --language keeps one language, searched with its
    stemming alone.

    The table shows no score: the order is the ranking. json and csv carry `score`, the text
    rank (0 to 1; title matches weigh more than body matches) times recency (1 today, 0.75 a
    month ago, never below 0.5): it orders one search's results and means nothing across
    searches. The `snippet` in json marks the matched words with <b>...</b> (the text around
    them is the article's, not HTML-escaped); in csv it is plain text, without the marks.
    """
    start, end = _since(since), _until(until)
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        window = queries.arrival_window(conn, arrived) if arrived else None
        rows = queries.search(conn, text, topic=topic, entity=entity, since=start, until=end, arrived=window,
                              limit=limit, scope=scope)
    if not rows:
        _empty(fmt, f"no articles match {text!r}" + _filters_text(topic, entity, start, end, arrived)
               + _scope_text(scope), _SEARCH_COLUMNS)
    if fmt == "json":
        _json(rows)
    elif fmt == "csv":
        _csv(rows, _SEARCH_COLUMNS)
    else:
        def under_title(article: Any, r: dict[str, Any], under: list[str]) -> None:
            article.stylize("bold")
            article.append("\n")
            article.append_text(_snippet(r["snippet"]))

        console = _console()
        columns, cells = _article_cells(console.width, rows, "published_at", "published", under_title)
        console.print(_table(columns, cells, title=_text(f"search: {text}"), show_lines=True))


def _article_cells(width: int, rows: Sequence[dict[str, Any]], when: str, label: str,
                   add: Any) -> tuple[list[_Col], list[dict[str, Any]]]:
    """The table of a list of articles (search, articles): id, `when` as `label`, outlet and the
    article, fitted to `width`. The time when there is room, else the date; the outlet cut to fit;
    at widths where the article's column would get too narrow, the date and outlet go under its
    title instead. `add(article_cell, row, under)` adds a command's own lines below the title
    (and may append to `under`, the dim line of what did not fit); topics come last."""
    wide = width >= 120
    cells = [{"id": str(r["id"]), label: _when(r[when]) if wide else _day(r[when]),
              "outlet": _text(r["outlet"] if wide else _clip(r["outlet"], 16)),
              "article": _text(r["title"] or r["url"])} for r in rows]
    columns = _fit(width, [_Col("id", "right"), _Col(label), _Col("outlet"), _Col("article", wrap=True, least=36)],
                   cells, drop=["outlet", label])
    shown = {c.name for c in columns}
    for cell, r in zip(cells, rows, strict=True):
        article = cell["article"]
        under = [x for name, x in ((label, cell[label]), ("outlet", _text(r["outlet"]).plain))
                 if x and name not in shown]
        add(article, r, under)
        if under:
            article.append("\n" + " · ".join(under), style="dim")
        if r["topics"]:
            article.append("\n" + ", ".join(r["topics"]), style="dim")
    return columns, cells


# --- articles -------------------------------------------------------------------------------

_LISTING_COLUMNS = ["id", "published_at", "discovered_at", "outlet", "title", "url", "status", "topics"]


@click.command("articles")
@_article_filters
@click.option("--limit", type=click.IntRange(1, queries.MAX_LIMIT), default=50, show_default=True)
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.pass_obj
@_scope_options
@friendly
def articles(settings: config.Settings, topic: str | None, entity: str | None, since: str | None,
             until: str | None, arrived: str | None, limit: int, fmt: str, scope: queries.Scope) -> None:
    """List articles without search text: a topic's, an entity's, a period's, or what arrived.

    Newest published first; with --arrived, newest discovered first. For example:
    `articles --topic idlib-conflict --since 7d`, `articles --entity Putin`, `articles --arrived today`,
    `articles --arrived last-run`.
    """
    start, end = _since(since), _until(until)
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        window = queries.arrival_window(conn, arrived) if arrived else None
        rows = queries.articles(conn, topic=topic, entity=entity, since=start, until=end, arrived=window,
                                limit=limit, scope=scope)
    if not rows:
        _empty(fmt, "no articles" + _filters_text(topic, entity, start, end, arrived) + _scope_text(scope),
               _LISTING_COLUMNS)
    if fmt == "json":
        _json(rows)
    elif fmt == "csv":
        _csv(rows, _LISTING_COLUMNS)
    else:
        def status(article: Any, r: dict[str, Any], under: list[str]) -> None:
            if r["status"] != "tagged":
                under.append(r["status"])

        console = _console()
        when, label = ("discovered_at", "arrived") if arrived else ("published_at", "published")
        columns, cells = _article_cells(console.width, rows, when, label, status)
        title = f"{len(rows)} article{'' if len(rows) == 1 else 's'}" + \
            (f" ({', '.join(f for f in (topic, entity) if f)})" if topic or entity else "")
        console.print(_table(columns, cells, title=_text(title)))


# --- topics ---------------------------------------------------------------------------------

_TOPIC_COLUMNS = ["slug", "name", "articles", "originals", "previous", "change", "change_pct", "trend"]
_ARROWS = {"up": "▲ up", "down": "▼ down", "flat": "= flat", "new": "★ new"}


@click.command("topics")
@click.option("--since", default="30d", show_default=True, metavar="WHEN",
              help="Period start: 24h, 7d, 2w, today, or a date; compared with the period as long just before it.")
@click.option("--until", metavar="WHEN", help="Period end (default now): same forms as --since.")
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.pass_obj
@_scope_options
@friendly
def topics(settings: config.Settings, since: str, until: str | None, fmt: str, scope: queries.Scope) -> None:
    """Articles per topic in the period, with the trend against the previous period."""
    start, end = queries.parse_since(since), _until(until)
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        rows = queries.topic_volumes(conn, start, until=end, scope=scope)
    if not rows:
        _empty(fmt, "no topics are defined yet (the tagging stage writes them)", _TOPIC_COLUMNS)
    if not any(r["articles"] or r["previous"] for r in rows):
        _empty(fmt, f"no tagged articles {_period_text(start, end)} or in the period before{_scope_text(scope)}",
               _TOPIC_COLUMNS)
    if fmt == "json":
        _json(rows)
    elif fmt == "csv":
        _csv(rows, _TOPIC_COLUMNS)
    else:
        # The slug is what --topic takes: never cut; the display name and the counts of originals and
        # the previous period (change says how it moved) only when there is room for them.
        console = _console()
        cells = [{"topic": _text(r["slug"]), "name": _text(r["name"]), "articles": str(r["articles"]),
                  "originals": str(r["originals"]), "previous": str(r["previous"]),
                  "change": f"{r['change']:+d}" + ("" if r["change_pct"] is None else f" ({r['change_pct']:+.0f}%)"),
                  "trend": _ARROWS[r["trend"]]} for r in rows]
        columns = _fit(console.width, [_Col("topic"), _Col("name", wrap=True), _Col("articles", "right"),
                                       _Col("originals", "right"), _Col("previous", "right"), _Col("change", "right"),
                                       _Col("trend")], cells, drop=["name", "originals", "previous"])
        styles = [{"up": "green", "new": "green", "down": "red"}.get(r["trend"]) for r in rows]
        console.print(_table(columns, cells, styles, title=_text(f"topics {_period_text(start, end)}"
                                                                 + _scope_text(scope))))


# --- entities -------------------------------------------------------------------------------

_ENTITY_COLUMNS = ["entity_id", "name", "label", "wikidata_id", "country", "geonames_id", "iso_code", "place_kind",
                   "articles", "mentions"]


@click.command("entities")
@click.option("--topic", metavar="SLUG", help="Only in articles tagged with this topic.")
@click.option("--label", metavar="LABEL", help="Only this kind: PERSON, ORG, GPE, LOC, NORP, WEAPON, ...")
@click.option("--country", metavar="CODE", help="Only places in this country (ISO 3166-1 code: SY, TR, US).")
@click.option("--since", metavar="WHEN", help=_SINCE_HELP)
@click.option("--until", metavar="WHEN", help=_UNTIL_HELP)
@click.option("--limit", type=click.IntRange(1, queries.MAX_LIMIT), default=20, show_default=True)
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.pass_obj
@_scope_options
@friendly
def entities(settings: config.Settings, topic: str | None, label: str | None, country: str | None,
             since: str | None, until: str | None, limit: int, fmt: str, scope: queries.Scope) -> None:
    """The most mentioned people, places, organisations and weapons, by articles mentioning them.

    Places show their country (ISO 3166-1 code) and ids: Wikidata (Q...), GeoNames
    (geonames:N) or, for a province, its ISO 3166-2 code."""
    start, end = _since(since), _until(until)
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        rows = queries.top_entities(conn, topic=topic, label=label, since=start, until=end, limit=limit,
                                    scope=scope, country=country)
    if not rows:
        filters = [f"topic {topic}" if topic else "", f"label {label.upper()}" if label else "",
                   f"country {country.strip().upper()}" if country else "", _period_text(start, end),
                   *scope.describe()]
        extra = ", ".join(f for f in filters if f)
        _empty(fmt, "no entity mentions" + (f" ({extra})" if extra else ""), _ENTITY_COLUMNS)
    if fmt == "json":
        _json(rows)
    elif fmt == "csv":
        _csv(rows, _ENTITY_COLUMNS)
    else:
        parts = [p for p in (topic, label.upper() if label else None, country.strip().upper() if country else None,
                             _period_text(start, end), *scope.describe())
                 if p]
        console = _console()
        cells = [{"#": str(i), "entity": _text(r["name"]), "label": r["label"], "country": r["country"] or "",
                  "ids": queries.entity_ids(r), "articles": str(r["articles"]), "mentions": str(r["mentions"])}
                 for i, r in enumerate(rows, 1)]
        columns = _fit(console.width, [_Col("#", "right"), _Col("entity", wrap=True, least=16), _Col("label"),
                                       _Col("country"), _Col("ids"), _Col("articles", "right"),
                                       _Col("mentions", "right")],
                       cells, drop=["ids", "mentions", "country", "label"])
        console.print(_table(columns, cells, title=_text("entities" + (f" ({', '.join(parts)})" if parts else ""))))


# --- article --------------------------------------------------------------------------------

# csv: the article's own fields, then its lists as "a; b": topics as slugs, entities as names,
# copies as ids (json has them whole).
_ARTICLE_COLUMNS = ["id", "title", "url", "final_url", "outlet", "outlets", "published_at", "dated_by", "author",
                    "language", "word_count", "status", "cluster_id", "is_original", "copies", "topics", "entities",
                    "summary", "last_error", "discovered_at", "extracted_at", "tagged_at", "tag_skipped"]


@click.command("article")
@click.argument("article_id", metavar="ID", type=int)
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.option("--full", is_flag=True, help="Also the extracted body: after the article's fields in the table, "
              "as a last column `body` in csv (json always has it).")
@click.pass_obj
@friendly
def article(settings: config.Settings, article_id: int, fmt: str, full: bool) -> None:
    """One article: where it came from, its entities, topics (with evidence) and copies.

    json has everything, the extracted `body` included (null before extraction). csv is a header
    and one row: the article's fields, with topics (slugs), entities (names), outlets and copies
    (ids) joined with "; "; text on one line.
    """
    with store.db.session(settings) as conn:
        queries.ensure_schema(conn)
        a = queries.article(conn, article_id)
        if fmt == "json" or full:
            a["body"] = queries.article_body(conn, article_id)
    if fmt == "json":
        _json(a)
        return
    if fmt == "csv":
        row = {**a, "topics": [t["slug"] for t in a["topic_tags"]], "entities": [e["name"] for e in a["entities"]],
               "copies": [c["id"] for c in a["copies"]]}
        _csv([row], _ARTICLE_COLUMNS + (["body"] if full else []))
        return
    from rich.table import Table

    console = _console()
    head = Table(show_header=False, title=f"article {a['id']}", title_justify="left")
    head.add_column("field", style="bold", no_wrap=True)
    head.add_column("value", overflow="fold")
    for label, value in (
        ("title", a["title"]), ("url", a["url"]), ("outlet", ", ".join(a["outlets"]) or a["outlet"]),
        ("published", f"{_when(a['published_at'])} (from {a['dated_by']})"), ("status", a["status"]),
        ("language", a["language"]), ("words", a["word_count"]), ("author", a["author"]),
        ("cluster", "" if a["cluster_id"] is None else
         f"{a['cluster_id']} ({'original' if a['is_original'] else 'copy'}, {len(a['copies'])} other copies)"),
        ("summary", a["summary"]), ("last error", a["last_error"]), ("no entities", a.get("tag_skipped")),
    ):
        if value not in (None, ""):
            head.add_row(label, _text(value))
    console.print(head)
    if full:
        console.rule("body", align="left")
        console.print(_text(a["body"] or f"(no body: the article is {a['status']})", lines=True))
        console.rule()
    width = console.width
    if a["topic_tags"]:
        cells = [{"topic": _text(r["slug"]), "score": f"{r['score']:.2f}",
                  "evidence": _text(queries.evidence_summary(r["evidence"])), "rules": _text(r["rules_version"])}
                 for r in a["topic_tags"]]
        columns = _fit(width, [_Col("topic"), _Col("score", "right"), _Col("evidence", wrap=True, least=20),
                               _Col("rules")], cells, drop=["rules"])
        console.print(_table(columns, cells, title="topics", title_justify="left"))
    if a["entities"]:
        cells = [{"entity": _text(r["name"]), "label": r["label"], "country": r["country"] or "",
                  "ids": queries.entity_ids(r), "linked by": ", ".join(r["link_rules"]),
                  "mentions": str(r["mentions"]), "as written": _text(", ".join(r["surfaces"]))} for r in a["entities"]]
        columns = _fit(width, [_Col("entity", wrap=True, least=16), _Col("label"), _Col("country"), _Col("ids"),
                               _Col("linked by"), _Col("mentions", "right"), _Col("as written", wrap=True)], cells,
                       drop=["linked by", "as written", "ids", "country"])
        console.print(_table(columns, cells, title="entities", title_justify="left"))
    cells = [{"feed": _text(r["feed"]), "entry url": _text(r["entry_url"]), "first seen": _when(r["first_seen_at"])}
             for r in a["sources"]]
    columns = [_Col("feed", wrap=True), _Col("entry url", wrap="fold"), _Col("first seen")]
    console.print(_table(columns, cells, title="sources", title_justify="left"))
    if a["copies"]:
        cells = [{"id": str(r["id"]), "published": _when(r["published_at"]), "outlet": _text(r["outlet"]),
                  "original": "yes" if r["is_original"] else "", "title": _text(r["title"])} for r in a["copies"]]
        columns = _fit(width, [_Col("id", "right"), _Col("published"), _Col("outlet", wrap=True),
                               _Col("original"), _Col("title", wrap=True, least=20)], cells, drop=["original"])
        console.print(_table(columns, cells, title="other copies of this story", title_justify="left"))


# --- report ---------------------------------------------------------------------------------

REPORT_DAYS = 30  # the report's period when --since is not given: the 30 days before --until


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

    end = _until(until) or queries.current_time()
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


COMMANDS = [search, articles, topics, entities, article, report]
