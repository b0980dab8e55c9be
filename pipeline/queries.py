"""The read side: questions people ask of the stored news, as functions returning plain rows
(lists of dicts). Writes live in pipeline/store/; this module only reads.

Every function takes an open connection (psycopg, from `store.db.session`) and leaves transaction
control to the caller. Every user-supplied value is bound as a query parameter, never
formatted into SQL. Unknown topics, entities, labels and article ids raise `NotFound`; malformed
input (a bad date, an empty search, a silly limit) raises `UserInputError`.

"When an article was published" is `articles.published_effective` everywhere (clustering, these
queries, the views): the page's date, else the feed entry's, else when Newsroom discovered it. It
is a generated column (0004_fold_and_publication_time.sql), indexed, and so is its UTC day.

Queries run with `prepare=False`: each execution is planned with its actual parameter values, so
optional comparisons written as `(%(x)s IS NULL OR col >= %(x)s)` fold away instead of defeating
the indexes (a reused prepared statement could settle on a generic plan that scans everything).
Optional EXISTS filters are different: Postgres turns an EXISTS into a semi-join before it folds
constants, so `(%(x)s IS NULL OR EXISTS ...)` would stay a per-row subplan with poor estimates.
Those are spliced in or left out with `_with`, from constant fragments only; values stay bound.

Why one module of this size: every question shares the same filters (time window, topic,
entity) and planning rules above; each function is one query and its parameter checks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pipeline.errors import NotFound, UserInputError
from pipeline.periods import Bucket
from pipeline.urls import feed_lookup_key

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
# A search matching a large part of the archive ranks only its most recent matches: ranking
# reads every candidate's tsvector, and a common word can match hundreds of thousands of
# articles. Narrow with --since/--topic/--entity (or pass max_candidates=None) to rank them all.
MAX_CANDIDATES = 10_000
# Recency: an article's text rank is multiplied by 0.5 + 0.5 / (1 + age_days / RECENCY_DAYS), so a
# story from today keeps its full rank, a month-old one 75%, and nothing drops below half: recent
# news wins ties, but a much better match from last year still beats a passing mention today.
RECENCY_DAYS = 30
# Highlighting in search snippets: matched words are wrapped in <b>...</b>.
HEADLINE_OPTIONS = ("MaxFragments=2, MaxWords=24, MinWords=8, ShortWord=2, "
                    "FragmentDelimiter=\" … \", StartSel=<b>, StopSel=</b>")

# --- input ----------------------------------------------------------------------------------

_RELATIVE = re.compile(r"(\d+)\s*(m|min|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def current_time() -> datetime:
    """Now, for every relative time in these queries ("7d" back from it, "today"). One function,
    so a test can set the clock the demo's dates are anchored to."""
    return datetime.now(UTC)


def parse_when(value: str | datetime | date, *, option: str = "--since", now: datetime | None = None,
               future: bool = False) -> datetime:
    """A point in time given on the command line, as a timezone-aware datetime.

    Accepts a duration back from now ("90m", "24h", "7d", "2w"), "today" or "yesterday"
    (midnight UTC), an ISO date ("2019-10-01", midnight UTC) or an ISO datetime
    ("2019-10-01T12:00", UTC unless it carries an offset). Anything else, or a time in the
    future (unless `future`: the end of a period may be ahead, "until the end of the month"),
    raises UserInputError naming `option`.
    """
    now = now or current_time()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    text = (value or "").strip()
    if not text:
        raise UserInputError(f"{option} is empty; use a duration like 24h, 7d or 2w, today, or a date like 2019-10-01")
    if text.lower() in ("today", "yesterday"):
        midnight = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
        return midnight - timedelta(days=1 if text.lower() == "yesterday" else 0)
    m = _RELATIVE.fullmatch(text)
    if m:
        amount, unit = int(m.group(1)), m.group(2).lower()
        if amount <= 0:
            raise UserInputError(f"{option} {text!r} must be a positive duration, like 24h or 7d")
        try:
            return now - timedelta(seconds=amount * _UNIT_SECONDS[unit])
        except OverflowError:
            raise UserInputError(f"{option} {text!r} reaches too far back") from None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text else text)
    except ValueError:
        raise UserInputError(
            f"{option} {text!r} is not a duration (90m, 24h, 7d, 2w), today, yesterday or an ISO date "
            "(2019-10-01, 2019-10-01T12:00)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > now and not future:
        raise UserInputError(f"{option} {text!r} is in the future")
    return parsed


def parse_since(value: str | datetime | date, *, now: datetime | None = None) -> datetime:
    """`--since`: see parse_when."""
    return parse_when(value, option="--since", now=now)


LAST_RUN = "last-run"


def arrival_window(conn: Any, value: str, *, now: datetime | None = None) -> tuple[datetime, datetime | None]:
    """`--arrived`: when articles were discovered (not published), as [start, end].

    `last-run`: from the start to the end of the latest ingest run that finished (CLI or
    Airflow); otherwise a time as parse_when takes it ("today", "24h", a date) up to now.
    """
    if (value or "").strip().lower() != LAST_RUN:
        return parse_when(value, option="--arrived", now=now), None
    row = _one(conn, """SELECT run_key, started_at, finished_at FROM ingest_runs
                         WHERE finished_at IS NOT NULL AND trigger <> 'retag'
                         ORDER BY finished_at DESC, id DESC LIMIT 1""")
    if row is None:
        raise NotFound("no ingest run has finished yet; run `newsroom ingest --once` (or let Airflow run)")
    return row["started_at"], row["finished_at"]


def _aware(when: datetime | None, name: str) -> datetime | None:
    if when is None:
        return None
    if not isinstance(when, datetime):
        raise UserInputError(f"{name} must be a datetime, got {type(when).__name__}")
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise UserInputError(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


# --- plumbing -------------------------------------------------------------------------------

def _rows(conn: Any, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Run a query; rows as dicts keyed by column name (whatever the connection's row factory)."""
    cur = conn.execute(query, params, prepare=False)
    if cur.description is None:
        return []
    names = [d.name for d in cur.description]
    return [dict(r) if isinstance(r, Mapping) else dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# Optional filters, spliced into queries at /*name*/ markers. Constants: never user input.
_FRAGMENTS = {
    "topic": """AND EXISTS (SELECT 1 FROM article_topics at
                            WHERE at.article_id = a.id AND at.topic_id = %(topic)s::bigint)""",
    "entities": """AND EXISTS (SELECT 1 FROM article_entities ae
                               WHERE ae.article_id = a.id AND ae.entity_id = ANY(%(entities)s::bigint[]))""",
    # --feed, --tag, --outlet, --language (Scope): NULL parameters switch each one off
    "scope": """AND (%(scope_feeds)s::bigint[] IS NULL
                     OR EXISTS (SELECT 1 FROM article_sources sc WHERE sc.article_id = a.id
                                   AND sc.feed_id = ANY(%(scope_feeds)s::bigint[])))
                AND (%(scope_tag)s::text IS NULL
                     OR EXISTS (SELECT 1 FROM article_sources sc JOIN feeds fc ON fc.id = sc.feed_id
                                 WHERE sc.article_id = a.id AND fc.tags @> ARRAY[%(scope_tag)s::text]))
                AND (%(scope_outlet)s::text IS NULL
                     OR a.site = lower(%(scope_outlet)s::text)
                     OR EXISTS (SELECT 1 FROM feeds fc WHERE fc.id = a.first_feed_id
                                   AND lower(fc.outlet) = lower(%(scope_outlet)s::text)))
                AND (%(scope_language)s::text IS NULL OR a.language = %(scope_language)s::text)""",
    # discovery time: articles_discovered_idx
    "arrived": """AND a.discovered_at >= %(arrived_from)s::timestamptz
                  AND (%(arrived_to)s::timestamptz IS NULL OR a.discovered_at <= %(arrived_to)s::timestamptz)""",
}


def _with(query: str, **wanted: bool) -> str:
    """`query` with each /*name*/ marker replaced by its fragment when wanted, else removed."""
    for name, on in wanted.items():
        marker = f"/*{name}*/"
        if marker not in query:
            raise ValueError(f"query has no {marker} marker")
        query = query.replace(marker, _FRAGMENTS[name] if on else "")
    return query


@dataclass(frozen=True, slots=True)
class Scope:
    """Which articles a listing, a search or a count looks at, by where they came from: a feed
    (id, URL or name; every feed that carried the article counts), a feed tag, an outlet (the
    outlet name set on the article's first feed, or the article's site, its registered domain)
    and the article's language. None: any."""

    feed: str | None = None
    tag: str | None = None
    outlet: str | None = None
    language: str | None = None

    def __bool__(self) -> bool:
        return any((self.feed, self.tag, self.outlet, self.language))

    def describe(self) -> list[str]:
        return [f"{k} {v}" for k, v in (("feed", self.feed), ("tag", self.tag), ("outlet", self.outlet),
                                         ("language", self.language)) if v]


_LANGUAGE = re.compile(r"[a-z]{2,3}")
EVERYWHERE = Scope()


def _scope(conn: Any, scope: Scope | None) -> dict[str, Any]:
    """The query parameters of a Scope, each checked: an unknown feed, tag or outlet is NotFound
    (a typo would otherwise look like "nothing was published")."""
    scope = scope or EVERYWHERE
    out: dict[str, Any] = {"scope_feeds": None, "scope_tag": None, "scope_outlet": None, "scope_language": None}
    if scope.feed:
        ident = feed_lookup_key(scope.feed)  # as `newsroom feeds` commands look it up
        ids = [r["id"] for r in _rows(conn, """
            SELECT id FROM feeds
             WHERE (%(id)s::bigint IS NOT NULL AND id = %(id)s::bigint)
                OR url = %(v)s OR lower(name) = lower(%(v)s)
                OR id IN (SELECT feed_id FROM feed_url_history WHERE url = %(v)s)""",
            {"v": ident, "id": int(ident.lstrip("#")) if ident.lstrip("#").isdigit() and len(ident) < 19 else None})]
        if not ids:
            raise NotFound(f"no feed is called {ident[:200]!r} (its id, URL or name; `newsroom feeds status` "
                           "lists them)")
        out["scope_feeds"] = ids
    if scope.tag:
        if _one(conn, "SELECT 1 AS found FROM feeds WHERE tags @> ARRAY[%s::text]", (scope.tag,)) is None:
            known = _one(conn, "SELECT array_agg(DISTINCT t ORDER BY t) AS tags FROM feeds, unnest(tags) t")
            tags = (known or {}).get("tags") or []
            raise NotFound(f"no feed has the tag {scope.tag[:100]!r}"
                           + (f" (tags in use: {', '.join(tags[:30])})" if tags else ""))
        out["scope_tag"] = scope.tag
    if scope.outlet:
        if _one(conn, """SELECT 1 AS found WHERE EXISTS (SELECT 1 FROM feeds WHERE lower(outlet) = lower(%(o)s))
                            OR EXISTS (SELECT 1 FROM articles WHERE site = lower(%(o)s))""",
                {"o": scope.outlet}) is None:
            raise NotFound(f"no outlet is called {scope.outlet[:100]!r} (an outlet is a site's domain, "
                           "e.g. bbc.co.uk, or the outlet name set on a feed)")
        out["scope_outlet"] = scope.outlet
    if scope.language:
        out["scope_language"] = _language(scope.language)
    return out


def _one(conn: Any, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> dict[str, Any] | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


def ensure_schema(conn: Any) -> None:
    """Fail with a pointer to `newsroom db migrate` rather than an SQL error on a blank database."""
    row = _one(conn, "SELECT to_regclass('v_feed_health') IS NOT NULL AND to_regclass('v_articles') IS NOT NULL AS ok")
    if not row or not row["ok"]:
        raise NotFound("the database has no Newsroom views yet; run `newsroom db migrate` first")


def resolve_topic(conn: Any, topic: str) -> dict[str, Any]:
    """A topic by slug (or display name, ignoring case): {id, slug, name}."""
    text = (topic or "").strip()
    row = _one(conn, """SELECT id, slug, name FROM topics
                         WHERE slug = lower(%(t)s) OR lower(name) = lower(%(t)s)
                         ORDER BY slug = lower(%(t)s) DESC LIMIT 1""", {"t": text})
    if row:
        return row
    known = [r["slug"] for r in _rows(conn, "SELECT slug FROM topics ORDER BY slug")]
    hint = f"; known topics: {', '.join(known)}" if known else "; no topics are defined yet"
    raise NotFound(f"unknown topic {text!r}{hint}")


def resolve_entity(conn: Any, name: str) -> list[dict[str, Any]]:
    """Entities a user means by `name`, ignoring case and accents ("erdogan" = "Erdoğan"):
    1. a Wikidata id ("Q39259");
    2. else every entity with that canonical name or alias (the spellings seen in text and the
       gazetteer's names and aliases): several when one name is several entities ("Georgia" the
       country and a person of that name), those named so first;
    3. else, for one word, the one person whose name ends with it ("Assad": "Bashar al-Assad");
       when several people share that surname, NotFound names them.
    Lookups use the indexes of migration 0005 (newsroom_entity_names, newsroom_surname_key)."""
    text = " ".join((name or "").split())
    if not text:
        raise UserInputError("entity name is empty")
    if re.fullmatch(r"[Qq]\d+", text):
        rows = _rows(conn, "SELECT id, name, label, wikidata_id FROM entities WHERE wikidata_id = upper(%s)", (text,))
        if rows:
            return rows
    rows = _rows(conn, """SELECT id, name, label, wikidata_id FROM entities
                           WHERE newsroom_entity_names(name, aliases) @> ARRAY[newsroom_entity_key(%(t)s, NULL)]
                           ORDER BY newsroom_entity_key(name, NULL) = newsroom_entity_key(%(t)s, NULL) DESC,
                                    label, id""", {"t": text})
    if rows:
        return rows
    if " " not in text:
        rows = _rows(conn, """SELECT e.id, e.name, e.label, e.wikidata_id,
                                     (SELECT count(DISTINCT article_id) FROM article_entities ae
                                       WHERE ae.entity_id = e.id) AS articles
                                FROM entities e
                               WHERE e.label = 'PERSON' AND newsroom_surname_key(e.name) = newsroom_surname_key(%s)
                                 AND btrim(e.name) ~ '\\s'
                               ORDER BY articles DESC, e.name, e.id LIMIT 11""", (text,))
        if len(rows) == 1:
            return [{k: v for k, v in rows[0].items() if k != "articles"}]
        if rows:
            people = ", ".join(f"{r['name']} ({r['articles']} article{'' if r['articles'] == 1 else 's'})"
                               for r in rows[:10])
            more = " and more" if len(rows) > 10 else ""
            raise NotFound(f"entity {text!r} is ambiguous: the surname of {people}{more}; "
                           "give the full name or the Wikidata id")
    like = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"  # the user's text is literal, not a pattern
    near = _rows(conn, """SELECT name FROM entities WHERE name ILIKE %s
                           ORDER BY length(name), name LIMIT 5""", (like,))
    hint = f"; did you mean: {', '.join(r['name'] for r in near)}?" if near else ""
    raise NotFound(f"unknown entity {text!r}{hint}")


def resolve_label(conn: Any, label: str) -> str:
    text = (label or "").strip().upper()
    # An entity has the label it was first stored with; its mentions may carry others (a place
    # the model calls GPE here and LOC there is one entity), and those are labels in use too.
    if _one(conn, "SELECT 1 AS x FROM entities WHERE label = %s LIMIT 1", (text,)) or \
            _one(conn, "SELECT 1 AS x FROM article_entities WHERE label = %s LIMIT 1", (text,)):
        return text
    known = [r["label"] for r in _rows(conn, "SELECT DISTINCT label FROM entities ORDER BY label")]
    hint = f"; labels in use: {', '.join(known)}" if known else "; no entities are stored yet"
    raise NotFound(f"no entities with label {text!r}{hint}")


# --- search ---------------------------------------------------------------------------------

_SEARCH = """
WITH q AS MATERIALIZED (
    -- Each article in its own language's stemming (0008_languages.sql): the OR of every
    -- language's query finds the matches (in `matches`, where the planner folds it to a
    -- constant; here for `excludes`); each language's query is made once in lq, not once per
    -- row. An exclusion ("-russia") is stemmed
    -- differently per language, and another language's branch would let an excluded article
    -- through: a query with one is checked again with the article's own language's query.
    -- (Without one, each row is matched once, as before 0008: twice was measured 2x slower.)
    SELECT c.candidates, position('!' IN c.candidates::text) > 0 AS excludes
      FROM (SELECT newsroom_tsquery(%(text)s, %(language)s) AS candidates) c),
lq AS MATERIALIZED (
    SELECT c AS config, websearch_to_tsquery(c, newsroom_fold(%(text)s)) AS query
      FROM unnest(newsroom_ts_configs()) c),
lqa AS MATERIALIZED (
    -- lq as two aligned arrays, for a lookup per row without a sub-select per row
    SELECT array_agg(config::oid) AS configs, array_agg(query) AS queries  -- one pass: aligned
      FROM lq),
matches AS (
    -- The newest max_candidates matches (all when NULL: LIMIT NULL is no limit). For a common
    -- word the planner walks the publication-time index backwards, checking each article.
    -- (No join here: it would keep the planner from walking the time index and stopping early.)
    SELECT a.id, a.first_feed_id, a.search, newsroom_ts_config(a.language) AS config,
           a.published_effective AS published_at
      FROM articles a
     -- The query itself, not q's copy: an IMMUTABLE function of constants, the planner computes
     -- it once while planning and so sees the words. Through q it saw a parameter, assumed 0.5%%
     -- of articles match, and for a common word fetched every match by the GIN index and sorted
     -- them by time instead of walking the time index: seconds at 1,000,000 articles.
     WHERE a.search @@ newsroom_tsquery(%(text)s, %(language)s)
       AND (position('!' IN newsroom_tsquery(%(text)s, %(language)s)::text) = 0
            -- (its language's query from lqa's arrays: no sub-select per row)
            OR a.search @@ (SELECT queries FROM lqa)[array_position((SELECT configs FROM lqa),
                                                                    newsroom_ts_config(a.language)::oid)])
       AND (%(since)s::timestamptz IS NULL
            OR a.published_effective >= %(since)s::timestamptz)
       AND (%(until)s::timestamptz IS NULL
            OR a.published_effective < %(until)s::timestamptz)
       /*arrived*/
       /*topic*/
       /*entities*/
       /*scope*/
     ORDER BY a.published_effective DESC
     LIMIT %(candidates)s),
ranked AS MATERIALIZED (
    -- title (weight A) and body (B) ranked together; length-normalised, scaled to 0..1.
    -- MATERIALIZED: each candidate is ranked once (inlined, ts_rank_cd ran twice per row: for
    -- `rank > 0` below and again for the score). Its own language's query comes by a hash join
    -- on its configuration (computed once per candidate above), not a sub-select per row that
    -- evaluated newsroom_ts_config again for each of lq's rows.
    SELECT m.id, m.first_feed_id, m.published_at, ts_rank_cd(m.search, lq.query, 1 | 32) AS rank
      FROM matches m
      LEFT JOIN lq ON lq.config = m.config),
best AS (
    SELECT r.*,
           r.rank * (0.5 + 0.5 / (1 + greatest(extract(epoch FROM now() - r.published_at), 0)
                                      / (86400.0 * %(recency_days)s))) AS score
      FROM ranked r
     -- A rank of 0 in the article's own language: only another language's stemming matched
     -- (an English "running" against "run" in an article of no known language); left out, so
     -- every result matches in its own language. (Checked here, on the candidates only: in the
     -- matches it was measured 2x slower. A query of only exclusions ranks every row 0: kept.)
     WHERE r.rank > 0 OR (SELECT excludes FROM q)
     ORDER BY score DESC, r.published_at DESC, r.id
     LIMIT %(limit)s)
-- Snippets only for the rows returned: ts_headline re-parses the whole body.
SELECT b.id, a.title, a.url, coalesce(f.outlet, nullif(a.site, ''), f.name) AS outlet, b.published_at, a.language, a.cluster_id, a.is_original,
       round(b.rank::numeric, 4)::float AS rank, round(b.score::numeric, 4)::float AS score,
       ts_headline(newsroom_ts_config(a.language),
                   left(coalesce(nullif(a.body, ''), a.summary, a.title, ''), 100000),
                   -- the body is not folded: highlight the words as typed and as folded
                   websearch_to_tsquery(newsroom_ts_config(a.language), %(text)s)
                   || websearch_to_tsquery(newsroom_ts_config(a.language), newsroom_fold(%(text)s)),
                   %(headline)s) AS snippet,
       ARRAY(SELECT t.slug FROM article_topics at JOIN topics t ON t.id = at.topic_id
              WHERE at.article_id = b.id ORDER BY at.score DESC, t.slug) AS topics
  FROM best b
  JOIN articles a ON a.id = b.id
  LEFT JOIN feeds f ON f.id = b.first_feed_id
 ORDER BY b.score DESC, b.published_at DESC, b.id
"""


def search(conn: Any, text: str, *, topic: str | None = None, entity: str | None = None,
           since: datetime | None = None, until: datetime | None = None,
           arrived: tuple[datetime, datetime | None] | None = None, limit: int = 20,
           max_candidates: int | None = MAX_CANDIDATES, language: str | None = None,
           scope: Scope | None = None) -> list[dict[str, Any]]:
    """Full-text search (web-search syntax: `"exact phrase"`, `or`, `-excluded`) over titles and
    bodies, best first: text rank (title counts more than body) times a recency factor.

    Each row: id, title, url, outlet, published_at, language, cluster_id, is_original, rank (text
    only), score (with recency), snippet (matches in <b>...</b>), topics. `topic` (slug) and
    `entity` (name, alias or Wikidata id) and `scope` (feed, tag, outlet, language) narrow the
    results; unknown ones raise NotFound;
    [since, until) bounds publication time and `arrived` (from `arrival_window`) discovery. A query
    of only stop words ("the") matches nothing. When more than `max_candidates` articles match,
    only the most recent that many are ranked (None: rank every match, slower for common words).
    Each article is matched with its own language's stemming (the words as typed, in every
    language PostgreSQL stems); `language` ("fr", or the scope's) keeps only articles in that
    language, matched with its stemming alone.
    """
    text = (text or "").replace("\x00", " ").strip()  # PostgreSQL text cannot hold a NUL
    if not text:
        raise UserInputError("search text is empty; give some words to look for")
    lang = _language(language if language is not None else scope.language if scope else None)
    scope = replace(scope or EVERYWHERE, language=lang)  # one language filter: the scope's
    params = {
        "text": text, "limit": _limit(limit), "headline": HEADLINE_OPTIONS, "language": lang,
        "recency_days": RECENCY_DAYS, "candidates": max_candidates,
        **_filters(conn, topic=topic, entity=entity, since=since, until=until, arrived=arrived, scope=scope),
    }
    if max_candidates is not None and (isinstance(max_candidates, bool) or not isinstance(max_candidates, int)
                                       or max_candidates < 1):
        raise UserInputError(f"max_candidates must be a positive whole number or None, got {max_candidates!r}")
    query = _with(_SEARCH, topic=params["topic"] is not None, entities=params["entities"] is not None,
                  arrived=params["arrived_from"] is not None, scope=bool(scope))
    return _rows(conn, query, params)


def _language(language: str | None) -> str | None:
    """A language filter as articles.language stores it ("fr"), or None for every language."""
    if language is None:
        return None
    code = language.strip().lower()
    if not _LANGUAGE.fullmatch(code):
        raise UserInputError(f"language must be a two- or three-letter code like en or fr, got {language[:20]!r}")
    return code


def _filters(conn: Any, *, topic: str | None, entity: str | None, since: datetime | None,
             until: datetime | None, arrived: tuple[datetime, datetime | None] | None,
             scope: Scope | None = None) -> dict[str, Any]:
    """The query parameters of the filters every article listing shares, checked and resolved."""
    since, until = _aware(since, "since"), _aware(until, "until")
    if since is not None and until is not None and since >= until:
        raise UserInputError(f"the period is empty: --since {since:%Y-%m-%d %H:%M} is not before "
                             f"--until {until:%Y-%m-%d %H:%M}")
    start, end = arrived if arrived else (None, None)
    return {
        "since": since, "until": until,
        "arrived_from": _aware(start, "arrived"), "arrived_to": _aware(end, "arrived"),
        "topic": resolve_topic(conn, topic)["id"] if topic else None,
        "entities": [e["id"] for e in resolve_entity(conn, entity)] if entity else None,
        **_scope(conn, scope),
    }


def articles(conn: Any, *, topic: str | None = None, entity: str | None = None,
             since: datetime | None = None, until: datetime | None = None,
             arrived: tuple[datetime, datetime | None] | None = None, limit: int = 50,
             scope: Scope | None = None) -> list[dict[str, Any]]:
    """Articles matching the filters, without search text: newest first by publication time, or
    by discovery time when `arrived` is given ("what came in today / in the last run").

    Each row: id, published_at, discovered_at, outlet, title, url, status, language, cluster_id,
    is_original, topics. Filters as in `search`.
    """
    params = {"limit": _limit(limit),
              **_filters(conn, topic=topic, entity=entity, since=since, until=until, arrived=arrived, scope=scope)}
    order = "a.discovered_at DESC, a.id DESC" if arrived else "a.published_effective DESC, a.id DESC"
    query = _with(f"""
        SELECT a.id, a.published_effective AS published_at, a.discovered_at,
               coalesce(f.outlet, nullif(a.site, ''), f.name) AS outlet,
               coalesce(a.title, a.url) AS title, a.url, a.status, a.language, a.cluster_id, a.is_original,
               ARRAY(SELECT t.slug FROM article_topics at JOIN topics t ON t.id = at.topic_id
                      WHERE at.article_id = a.id ORDER BY at.score DESC, t.slug) AS topics
          FROM articles a
          LEFT JOIN feeds f ON f.id = a.first_feed_id
         WHERE (%(since)s::timestamptz IS NULL OR a.published_effective >= %(since)s::timestamptz)
           AND (%(until)s::timestamptz IS NULL OR a.published_effective < %(until)s::timestamptz)
           /*arrived*/
           /*topic*/
           /*entities*/
           /*scope*/
         ORDER BY {order}
         LIMIT %(limit)s""", topic=params["topic"] is not None,  # noqa: S608 (constant fragments only)
                  entities=params["entities"] is not None, arrived=params["arrived_from"] is not None,
                  scope=bool(scope))
    return _rows(conn, query, params)


# --- topics ---------------------------------------------------------------------------------

def _window(since: datetime | None, until: datetime | None, *, required: bool = True) -> tuple[datetime | None, datetime]:
    since, until = _aware(since, "since"), _aware(until, "until") or current_time()
    if since is None and required:
        raise UserInputError("a start time (--since) is required")
    if since is not None and since >= until:
        raise UserInputError(f"the period is empty: {since:%Y-%m-%d %H:%M} is not before {until:%Y-%m-%d %H:%M}")
    return since, until


def _trend(now: int, before: int) -> str:
    if now == before:
        return "flat"
    if before == 0:
        return "new"
    return "up" if now > before else "down"


# Topic counts per UTC day come from the rollup (migration 0010: topic_day_counts plus its
# deltas, kept exact by triggers) for the whole days of a period, and from articles and
# article_topics only for the part days at its edges (a period starting or ending off midnight
# UTC): the same numbers as counting the base tables, without reading a year of articles. A scope
# (feed, tag, outlet, language) is not in the rollup: scoped counts read the base tables.
_ROLLUP_DAYS = """
        SELECT topic_id, day, articles, originals, day >= %(since_day)s::date AS current
          FROM topic_day_counts c
          JOIN unnest(%(day_from)s::date[], %(day_to)s::date[]) r (lo, hi) ON c.day >= r.lo AND c.day < r.hi
         WHERE (%(topic)s::bigint IS NULL OR topic_id = %(topic)s::bigint)
        UNION ALL
        SELECT topic_id, day, articles, originals, day >= %(since_day)s::date
          FROM topic_day_deltas d
          JOIN unnest(%(day_from)s::date[], %(day_to)s::date[]) r (lo, hi) ON d.day >= r.lo AND d.day < r.hi
         WHERE (%(topic)s::bigint IS NULL OR topic_id = %(topic)s::bigint)
        UNION ALL
        -- the part days at the edges, from the base tables: up to four pieces [lo, hi), each a
        -- range on articles_when_idx (a piece not needed is NULL: the planner drops it), each
        -- added (sign 1) or, when it is the smaller part of a day read whole, taken away (-1)
        SELECT at.topic_id, (a.published_effective AT TIME ZONE 'UTC')::date, p.sign,
               p.sign * (a.is_original IS NOT FALSE)::int, a.published_effective >= %(since)s::timestamptz
          FROM articles a
          JOIN article_topics at ON at.article_id = a.id
         CROSS JOIN LATERAL (
               SELECT CASE WHEN a.published_effective >= %(e1_lo)s::timestamptz
                                AND a.published_effective < %(e1_hi)s::timestamptz THEN %(e1_sign)s::int
                           WHEN a.published_effective >= %(e2_lo)s::timestamptz
                                AND a.published_effective < %(e2_hi)s::timestamptz THEN %(e2_sign)s::int
                           WHEN a.published_effective >= %(e3_lo)s::timestamptz
                                AND a.published_effective < %(e3_hi)s::timestamptz THEN %(e3_sign)s::int
                           ELSE %(e4_sign)s::int END AS sign) p
         WHERE ((a.published_effective >= %(e1_lo)s::timestamptz AND a.published_effective < %(e1_hi)s::timestamptz)
             OR (a.published_effective >= %(e2_lo)s::timestamptz AND a.published_effective < %(e2_hi)s::timestamptz)
             OR (a.published_effective >= %(e3_lo)s::timestamptz AND a.published_effective < %(e3_hi)s::timestamptz)
             OR (a.published_effective >= %(e4_lo)s::timestamptz AND a.published_effective < %(e4_hi)s::timestamptz))
           AND (%(topic)s::bigint IS NULL OR at.topic_id = %(topic)s::bigint)"""
# (`current`: on or after `since`, for topic_volumes; a whole day is on one side of it, and the
# part day holding it comes from the base tables in two pieces, one on each side.)
_EDGES = 4


_VOLUMES_ROLLUP = """
            WITH per_day AS (""" + _ROLLUP_DAYS + """),
            tagged AS (SELECT topic_id, articles, originals, current FROM per_day)
            SELECT t.slug, t.name,
                   coalesce(sum(g.articles) FILTER (WHERE g.current), 0)::bigint AS articles,
                   coalesce(sum(g.originals) FILTER (WHERE g.current), 0)::bigint AS originals,
                   coalesce(sum(g.articles) FILTER (WHERE NOT g.current), 0)::bigint AS previous
              FROM topics t
              LEFT JOIN tagged g ON g.topic_id = t.id
             GROUP BY t.id, t.slug, t.name
             ORDER BY articles DESC, previous DESC, t.slug"""  # noqa: S608 (constant fragments only)
_TIMELINE_ROLLUP = """
        WITH per_day AS (""" + _ROLLUP_DAYS + """)
        SELECT date_trunc(%(unit)s, p.day::timestamp) AT TIME ZONE 'UTC' AS bucket,
               t.slug, t.name, sum(p.articles)::bigint AS articles, sum(p.originals)::bigint AS originals
          FROM per_day p
          JOIN topics t ON t.id = p.topic_id
         GROUP BY 1, t.id, t.slug, t.name
        HAVING sum(p.articles) > 0
         ORDER BY 1, t.slug"""  # noqa: S608 (constant fragments only)


@dataclass(frozen=True, slots=True)
class _Split:
    """A period as whole UTC days read from the rollup, [first, last), and pieces of part days
    read from the base tables: (lo, hi, 1) adds [lo, hi), (lo, hi, -1) takes it from a day read
    whole."""

    days: tuple[date, date] | None
    edges: list[tuple[datetime, datetime, int]]


_DAY = timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _split(since: datetime, until: datetime, *, head_whole: bool = True, tail_whole: bool = True) -> _Split:
    """[since, until) as whole UTC days and part-day pieces. A part day at an edge is read as the
    piece inside the period, or (when that is the larger part, and `head_whole` / `tail_whole`
    allow) as the whole day from the rollup less the piece outside it: a period ending now reads
    its last day whole, less the articles dated after now (usually none). A period inside one
    day is one piece."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    first, last = since.date(), until.date()  # the days holding since and until
    if first == last:
        return _Split(None, [(since, until, 1)])
    edges: list[tuple[datetime, datetime, int]] = []
    if since != _midnight(first):
        if head_whole and since - _midnight(first) < _midnight(first) + _DAY - since:
            edges.append((_midnight(first), since, -1))
        else:
            edges.append((since, _midnight(first) + _DAY, 1))
            first += _DAY
    if until != _midnight(last):
        if tail_whole and _midnight(last) + _DAY - until < until - _midnight(last):
            edges.append((until, _midnight(last) + _DAY, -1))
            last += _DAY
        else:
            edges.append((_midnight(last), until, 1))
    return _Split((first, last) if first < last else None, edges)


def _rollup_params(since: datetime, *periods: tuple[datetime, datetime]) -> dict[str, Any]:
    """The parameters of _ROLLUP_DAYS for these periods, one after the other (`since`: where the
    current one starts). Where two periods meet, each reads its part of that day as a piece, and
    pieces that meet are read as one (the part day holding `since` in topic_volumes)."""
    splits = [_split(lo, hi, head_whole=k == 0, tail_whole=k == len(periods) - 1)
              for k, (lo, hi) in enumerate(periods)]
    edges: list[tuple[datetime, datetime, int]] = []
    for lo, hi, sign in sorted(e for s in splits for e in s.edges):
        if edges and edges[-1][1] == lo and edges[-1][2] == sign:
            edges[-1] = (edges[-1][0], hi, sign)
        else:
            edges.append((lo, hi, sign))
    if len(edges) > _EDGES:
        raise ValueError(f"{len(edges)} part days: _ROLLUP_DAYS reads {_EDGES}")
    edges += [(None, None, None)] * (_EDGES - len(edges))
    return {"since": since, "since_day": since.astimezone(UTC).date(),
            "day_from": [s.days[0] for s in splits if s.days], "day_to": [s.days[1] for s in splits if s.days],
            **{f"e{i}_{part}": edge[k] for i, edge in enumerate(edges, 1)
               for k, part in enumerate(("lo", "hi", "sign"))}}


def topic_volumes(conn: Any, since: datetime, *, until: datetime | None = None,
                  scope: Scope | None = None) -> list[dict[str, Any]]:
    """Tagged articles per topic in [since, until) against the period of the same length just
    before it. Every topic is listed, busiest first.

    Each row: slug, name, articles (all copies), originals, previous (articles in the previous
    period), change (articles - previous), change_pct (None when previous is 0) and trend:
    up | down | flat | new (none before, some now).
    """
    start, end = _window(since, until)
    assert start is not None
    before = start - (end - start)
    if scope:
        rows = _topic_volumes_from_articles(conn, start, end, before, scope)
    else:
        rows = _rows(conn, _VOLUMES_ROLLUP, {"topic": None, **_rollup_params(start, (before, start), (start, end))})
    for r in rows:
        r["change"] = r["articles"] - r["previous"]
        r["change_pct"] = round(100.0 * r["change"] / r["previous"], 1) if r["previous"] else None
        r["trend"] = _trend(r["articles"], r["previous"])
    return rows


def _topic_volumes_from_articles(conn: Any, start: datetime, end: datetime, before: datetime,
                                 scope: Scope | None) -> list[dict[str, Any]]:
    """topic_volumes counted from articles and article_topics (the only way with a scope)."""
    return _rows(conn, _with("""
        WITH tagged AS (
            SELECT at.topic_id, a.is_original,
                   a.published_effective >= %(since)s AS current
              FROM articles a
              JOIN article_topics at ON at.article_id = a.id
             WHERE a.published_effective >= %(before)s
               AND a.published_effective < %(until)s
               /*scope*/)
        SELECT t.slug, t.name,
               count(g.topic_id) FILTER (WHERE g.current) AS articles,
               count(g.topic_id) FILTER (WHERE g.current AND g.is_original IS NOT FALSE) AS originals,
               count(g.topic_id) FILTER (WHERE NOT g.current) AS previous
          FROM topics t
          LEFT JOIN tagged g ON g.topic_id = t.id
         GROUP BY t.id, t.slug, t.name
         ORDER BY articles DESC, previous DESC, t.slug""", scope=bool(scope)),
        {"since": start, "until": end, "before": before, **_scope(conn, scope)})


def topic_timeline(conn: Any, since: datetime, *, until: datetime | None = None,
                   topic: str | None = None, bucket: Bucket = Bucket.DAY,
                   scope: Scope | None = None) -> list[dict[str, Any]]:
    """Tagged articles per topic per UTC day, ISO week or month (`bucket`; periods.choose_bucket
    picks one for a period) in [since, until): bucket (its start, midnight UTC, as
    periods.bucket_start gives it), slug, name, articles, originals. Empty buckets are left out.

    Whole days come from the rollup (topic_day_counts and its deltas), the part days at the
    edges from articles (articles_when_idx); a bucket is the sum of its days. With a scope, all
    from articles: the buckets are date_trunc in UTC."""
    start, end = _window(since, until)
    assert start is not None
    topic_id = resolve_topic(conn, topic)["id"] if topic else None
    unit = Bucket(bucket).value
    if scope:
        return _topic_timeline_from_articles(conn, start, end, topic_id, unit, scope)
    rows = _rows(conn, _TIMELINE_ROLLUP, {"topic": topic_id, "unit": unit, **_rollup_params(start, (start, end))})
    for r in rows:  # psycopg gives them in the session's TimeZone; shown in UTC, as periods gives them
        r["bucket"] = r["bucket"].astimezone(UTC)
    return rows


def _topic_timeline_from_articles(conn: Any, start: datetime, end: datetime, topic_id: int | None, unit: str,
                                  scope: Scope | None) -> list[dict[str, Any]]:
    """topic_timeline counted from articles and article_topics (the only way with a scope)."""
    rows = _rows(conn, _with("""
        SELECT date_trunc(%(unit)s, a.published_effective, 'UTC') AS bucket,
               t.slug, t.name, count(*) AS articles,
               count(*) FILTER (WHERE a.is_original IS NOT FALSE) AS originals
          FROM articles a
          JOIN article_topics at ON at.article_id = a.id
          JOIN topics t ON t.id = at.topic_id
         WHERE a.published_effective >= %(since)s
           AND a.published_effective < %(until)s
           AND (%(topic)s::bigint IS NULL OR at.topic_id = %(topic)s::bigint)
           /*scope*/
         GROUP BY 1, t.id, t.slug, t.name
         ORDER BY 1, t.slug""", scope=bool(scope)),
        {"since": start, "until": end, "topic": topic_id, "unit": unit, **_scope(conn, scope)})
    for r in rows:  # psycopg gives them in the session's TimeZone; shown in UTC, as periods gives them
        r["bucket"] = r["bucket"].astimezone(UTC)
    return rows


# --- entities -------------------------------------------------------------------------------

def resolve_country(text: str) -> str:
    """An ISO 3166-1 alpha-2 code as entities.country stores it ("sy" -> "SY")."""
    code = text.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise UserInputError(f"--country takes an ISO 3166-1 two-letter code such as SY or TR, got {text!r}")
    return code


def entity_ids(row: Mapping[str, Any]) -> str:
    """An entity's ids in one cell: "Q858", "geonames:169389", "ISO SY-ID", joined by spaces."""
    parts = [row.get("wikidata_id"),
             f"geonames:{row['geonames_id']}" if row.get("geonames_id") else None,
             f"ISO {row['iso_code']}" if row.get("iso_code") and not row.get("geonames_id") else None]
    return " ".join(p for p in parts if p)


def top_entities(conn: Any, *, topic: str | None = None, label: str | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 limit: int = 20, scope: Scope | None = None, country: str | None = None) -> list[dict[str, Any]]:
    """The most mentioned entities, by the number of articles mentioning them (then mentions).

    Each row: entity_id, name, label, wikidata_id, country, geonames_id, iso_code, place_kind,
    articles, mentions. Narrow by topic (slug), label (PERSON, GPE, WEAPON, ...; any case), a
    time window on publication, and country (ISO 3166-1 alpha-2: the places in that country).
    """
    start, end = _window(since, until, required=False)
    params = {
        "limit": _limit(limit), "since": start, "until": end if (start or until) else None,
        "topic": resolve_topic(conn, topic)["id"] if topic else None,
        "label": resolve_label(conn, label) if label else None,
        "country": resolve_country(country) if country else None,
        **_scope(conn, scope),
    }
    # The window's articles first (articles_when_idx), their mentions counted per (entity,
    # article) by hashing, then per entity: count(DISTINCT article_id) over all the mention rows
    # was a nested loop, an article lookup per mention, and a sort of ~900k rows for a year.
    return _rows(conn, _with("""
        WITH win AS (
            SELECT a.id FROM articles a
             WHERE (%(since)s::timestamptz IS NULL
                    OR a.published_effective >= %(since)s::timestamptz)
               AND (%(until)s::timestamptz IS NULL
                    OR a.published_effective < %(until)s::timestamptz)
               /*topic*/
               /*scope*/),
        per_article AS (
            SELECT ae.entity_id, count(*) AS mentions
              FROM win JOIN article_entities ae ON ae.article_id = win.id
               -- the mention's label (what the model said there): its statistics give good estimates
             WHERE (%(label)s::text IS NULL OR ae.label = %(label)s::text)
             GROUP BY ae.entity_id, ae.article_id),
        per_entity AS (
            SELECT entity_id, count(*) AS articles, sum(mentions)::bigint AS mentions
              FROM per_article GROUP BY entity_id)
        SELECT e.id AS entity_id, e.name, e.label, e.wikidata_id, e.country, e.geonames_id, e.iso_code,
               e.place_kind, pe.articles, pe.mentions
          FROM per_entity pe JOIN entities e ON e.id = pe.entity_id
         WHERE (%(country)s::text IS NULL OR e.country = %(country)s::text)
         ORDER BY pe.articles DESC, pe.mentions DESC, e.name, e.id
         LIMIT %(limit)s""", topic=params["topic"] is not None, scope=bool(scope)), params)


def top_entities_by_topic(conn: Any, since: datetime, *, until: datetime | None = None, limit: int = 8,
                          overall: int | None = None) -> dict[str | None, list[dict[str, Any]]]:
    """Every topic's top entities in [since, until) in one query: {slug: rows}, each topic's rows
    as top_entities(topic=slug, since=since, until=until, limit=limit) gives them (entity_id,
    name, label, wikidata_id, country, geonames_id, iso_code, place_kind, articles, mentions; by articles, then mentions, then name). Topics
    with no mentions in the window are left out. With `overall`, the key None holds the top
    `overall` entities of all the window's articles, as top_entities(since=, until=, limit=overall)."""
    start, end = _window(since, until)
    params = {"limit": _limit(limit), "overall": _limit(overall) if overall is not None else 0,
              "since": start, "until": end}
    # Mentions are counted per (article, entity) once for the window (a hash aggregate over the
    # window's mention rows), then per topic and overall from that one set, and ranked: one pass
    # instead of a query per topic and one more for the overall top.
    rows = _rows(conn, """
        WITH per_article AS MATERIALIZED (
            SELECT ae.article_id, ae.entity_id, count(*) AS mentions
              FROM articles a JOIN article_entities ae ON ae.article_id = a.id
             WHERE a.published_effective >= %(since)s::timestamptz
               AND a.published_effective < %(until)s::timestamptz
             GROUP BY ae.article_id, ae.entity_id),
        counted AS (
            SELECT at.topic_id, pa.entity_id, count(*) AS articles, sum(pa.mentions)::bigint AS mentions
              FROM per_article pa JOIN article_topics at ON at.article_id = pa.article_id
             GROUP BY at.topic_id, pa.entity_id
            UNION ALL
            SELECT NULL, entity_id, count(*), sum(mentions)::bigint
              FROM per_article WHERE %(overall)s > 0 GROUP BY entity_id),
        ranked AS (
            SELECT c.*, e.name, e.label, e.wikidata_id, e.country, e.geonames_id, e.iso_code, e.place_kind,
                   row_number() OVER (PARTITION BY c.topic_id
                                      ORDER BY c.articles DESC, c.mentions DESC, e.name, e.id) AS rank
              FROM counted c JOIN entities e ON e.id = c.entity_id)
        SELECT t.slug, r.entity_id, r.name, r.label, r.wikidata_id, r.country, r.geonames_id, r.iso_code,
               r.place_kind, r.articles, r.mentions
          FROM ranked r LEFT JOIN topics t ON t.id = r.topic_id
         WHERE r.rank <= CASE WHEN r.topic_id IS NULL THEN %(overall)s ELSE %(limit)s END
         ORDER BY t.slug NULLS FIRST, r.rank""", params)
    out: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.pop("slug"), []).append(r)
    return out


def cooccurrence(conn: Any, *, entity: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, label: str | None = None,
                 limit: int = 20) -> list[dict[str, Any]]:
    """Entities mentioned in the same articles, by the number of such articles.

    With `entity`: its partners (rows: entity_id, name, label, articles), optionally only those
    with `label`. Without: the most frequent pairs over the window, from the SQL function
    `entity_cooccurrence(since, until)` (rows: entity_a, label_a, entity_b, label_b, articles, ...).
    """
    start, end = _window(since, until, required=False)
    params: dict[str, Any] = {"limit": _limit(limit), "since": start, "until": end if (start or until) else None,
                              "label": resolve_label(conn, label) if label else None}
    if entity is None:
        return _rows(conn, """
            SELECT * FROM entity_cooccurrence(%(since)s, %(until)s)
             WHERE %(label)s::text IS NULL OR label_a = %(label)s::text OR label_b = %(label)s::text
             ORDER BY articles DESC, entity_a, entity_b LIMIT %(limit)s""", params)
    params["ids"] = [e["id"] for e in resolve_entity(conn, entity)]
    return _rows(conn, """
        WITH mine AS (  -- articles mentioning the entity, in the window
            SELECT DISTINCT ae.article_id
              FROM article_entities ae JOIN articles a ON a.id = ae.article_id
             WHERE ae.entity_id = ANY(%(ids)s)
               AND (%(since)s::timestamptz IS NULL
                    OR a.published_effective >= %(since)s::timestamptz)
               AND (%(until)s::timestamptz IS NULL
                    OR a.published_effective < %(until)s::timestamptz))
        SELECT e.id AS entity_id, e.name, e.label, e.wikidata_id, count(DISTINCT ae.article_id) AS articles
          FROM mine JOIN article_entities ae ON ae.article_id = mine.article_id
          JOIN entities e ON e.id = ae.entity_id
         WHERE NOT (ae.entity_id = ANY(%(ids)s)) AND (%(label)s::text IS NULL OR ae.label = %(label)s::text)
         GROUP BY e.id, e.name, e.label, e.wikidata_id
         ORDER BY articles DESC, e.name LIMIT %(limit)s""", params)


# --- one article ----------------------------------------------------------------------------

def article(conn: Any, article_id: int) -> dict[str, Any]:
    """Everything about one article: its v_articles row plus summary, final URL, last error, and
    lists of entities (with mention counts and spellings), topics (score and the evidence that
    fired), sources (the feeds that carried it) and copies (the rest of its near-duplicate cluster)."""
    if isinstance(article_id, bool) or not isinstance(article_id, int) or article_id <= 0:
        raise UserInputError(f"article id must be a positive whole number, got {article_id!r}")
    row = _one(conn, """
        SELECT v.*, a.summary, a.final_url, a.discovered_at, a.extracted_at, a.tagged_at, a.last_error,
               a.published_source
          FROM v_articles v JOIN articles a ON a.id = v.id
         WHERE v.id = %s""", (article_id,))
    if row is None:
        raise NotFound(f"no article with id {article_id}")
    row["entities"] = _rows(conn, """
        SELECT e.id AS entity_id, e.name, e.label, e.wikidata_id, e.country, e.geonames_id, e.iso_code,
               e.place_kind, count(*) AS mentions,
               array_agg(DISTINCT ae.surface ORDER BY ae.surface) AS surfaces,
               array_remove(array_agg(DISTINCT ae.link_rule ORDER BY ae.link_rule), NULL) AS link_rules,
               min(ae.start_char) AS first_char
          FROM article_entities ae JOIN entities e ON e.id = ae.entity_id
         WHERE ae.article_id = %s
         GROUP BY e.id
         ORDER BY mentions DESC, first_char""", (article_id,))
    row["topic_tags"] = _rows(conn, """
        SELECT t.slug, t.name, round(at.score::numeric, 3)::float AS score, at.evidence,
               at.rules_version, at.tagged_at
          FROM article_topics at JOIN topics t ON t.id = at.topic_id
         WHERE at.article_id = %s
         ORDER BY at.score DESC, t.slug""", (article_id,))
    row["sources"] = _rows(conn, """
        SELECT f.id AS feed_id, f.name AS feed, f.url AS feed_url, s.entry_url, s.guid,
               s.first_seen_at, s.last_seen_at
          FROM article_sources s JOIN feeds f ON f.id = s.feed_id
         WHERE s.article_id = %s
         ORDER BY s.first_seen_at, f.id""", (article_id,))
    row["copies"] = [] if row["cluster_id"] is None else _rows(conn, """
        SELECT a.id, a.title, a.url, coalesce(f.outlet, nullif(a.site, ''), f.name) AS outlet,
               a.published_effective AS published_at, a.is_original
          FROM articles a LEFT JOIN feeds f ON f.id = a.first_feed_id
         WHERE a.cluster_id = %s AND a.id <> %s
         ORDER BY published_at, a.id""", (row["cluster_id"], article_id))
    return row


def evidence_summary(evidence: Mapping[str, Any] | None, *, limit: int = 6) -> str:
    """A topic tag's evidence in one line: the items that fired, with counts ("S-400 ×3, sanctions")."""
    if not evidence:
        return ""
    items: list[tuple[float, str]] = []
    for group in evidence.get("required") or []:
        for m in group.get("matched") or []:
            items.append((float(m.get("score") or 0), _evidence_item(m)))
    for m in evidence.get("supporting") or []:
        items.append((float(m.get("score") or 0), _evidence_item(m)))
    items.sort(key=lambda x: -x[0])
    seen: list[str] = []
    for _, text in items:
        if text not in seen:
            seen.append(text)
    more = f", +{len(seen) - limit} more" if len(seen) > limit else ""
    return ", ".join(seen[:limit]) + more


def _evidence_item(m: Mapping[str, Any]) -> str:
    name = str(m.get("item", "?")).split(":", 1)[-1]
    n = int(m.get("count") or 0) + int(m.get("title") or 0)
    return f"{name} ×{n}" if n > 1 else name


# --- feeds ----------------------------------------------------------------------------------

def feed_health(conn: Any) -> list[dict[str, Any]]:
    """v_feed_health, the feeds needing attention first (failing, gone, moved, silent, new, ok),
    then the ones not polled (paused, removed, unlisted)."""
    return _rows(conn, """
        SELECT * FROM v_feed_health
         ORDER BY array_position(ARRAY['failing', 'gone', 'moved', 'silent', 'new', 'ok'], status) NULLS LAST,
                  failure_streak DESC, name""")


def article_body(conn: Any, article_id: int) -> str | None:
    """An article's extracted body text (None before extraction); `article` leaves it out."""
    row = _one(conn, "SELECT body FROM articles WHERE id = %s", (article_id,))
    if row is None:
        raise NotFound(f"no article with id {article_id}")
    return row["body"]


def feed(conn: Any, feed_id: int) -> dict[str, Any]:
    """One feed's v_feed_health row; NotFound when there is none."""
    row = _one(conn, "SELECT * FROM v_feed_health WHERE feed_id = %s", (feed_id,))
    if row is None:
        raise NotFound(f"no feed with id {feed_id}")
    return row


def feed_polls(conn: Any, feed_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """A feed's latest polls, newest first: when, outcome, HTTP status, entries seen and new, and
    for a failed poll its error class and message."""
    return _rows(conn, """
        SELECT started_at, finished_at, outcome, http_status, entries_seen, entries_new, error_class,
               error_message AS error
          FROM feed_polls
         WHERE feed_id = %s
         ORDER BY started_at DESC, id DESC
         LIMIT %s""", (feed_id, _limit(limit)))


# --- runs -----------------------------------------------------------------------------------

RETAG_KEY_PREFIX = "news_retag:"


def run_key(dag_id: str, run_id: str) -> str:
    """The ingest_runs key of an Airflow run: news_ingest's run_id as it is (as it always was),
    news_retag's prefixed ("news_retag:manual__...": run ids are unique only within a DAG)."""
    return f"{RETAG_KEY_PREFIX}{run_id}" if dag_id == "news_retag" else run_id


def ingest_run(conn: Any, dag_id: str, run_id: str) -> dict[str, Any] | None:
    """The ingest_runs row of a news_ingest or news_retag run, with the feeds whose polls failed
    while it ran (feed_id, name, error_class, error, polls; none for a retag run, which polls
    nothing); None when there is no row."""
    row = _one(conn, "SELECT * FROM ingest_runs WHERE run_key = %s", (run_key(dag_id, run_id),))
    if row is None:
        return None
    if row["trigger"] == "retag":
        row["failed_feeds"] = []
        return row
    # each feed once: its latest failed poll, and how many failed
    row["failed_feeds"] = _rows(conn, """
        SELECT DISTINCT ON (f.name, f.id)
               f.id AS feed_id, f.name, f.url, p.error_class, p.error_message AS error, p.http_status,
               count(*) OVER (PARTITION BY f.id) AS polls
          FROM feed_polls p JOIN feeds f ON f.id = p.feed_id
         WHERE p.outcome = 'error'
           -- polls are not tagged with their run: the ones inside the run's time (a run that
           -- never finished: its first day), which an ingest running beside it would share
           AND p.started_at >= %(started)s
           AND p.started_at <= coalesce(%(finished)s::timestamptz, least(now(), %(started)s + interval '1 day'))
         ORDER BY f.name, f.id, p.started_at DESC""", {"started": row["started_at"], "finished": row["finished_at"]})
    return row


# --- pages ----------------------------------------------------------------------------------

# topic_top_entities reads the latest SAMPLE_PER_SLICE articles of each of SAMPLE_SLICES equal
# slices of the period: a sample spread over the whole period, at a cost that does not grow with
# the archive or the period's length.
SAMPLE_SLICES = 30
SAMPLE_PER_SLICE = 100


def topic_top_entities(conn: Any, since: datetime, *, until: datetime | None = None,
                       limit: int = 5) -> dict[str, list[dict[str, Any]]]:
    """Each topic's top entities in a sample of [since, until) spread over the period (the latest
    SAMPLE_PER_SLICE articles of each of SAMPLE_SLICES equal slices of it): {slug: rows of
    entity_id, name, label, articles, mentions}, by articles, then mentions, then name.
    (top_entities_by_topic counts every article of the period: seconds for a year of a big archive.)"""
    start, end = _window(since, until)
    rows = _rows(conn, """
        WITH slices AS (
            SELECT %(since)s::timestamptz + (%(until)s::timestamptz - %(since)s::timestamptz) * i / %(slices)s AS lo,
                   %(since)s::timestamptz + (%(until)s::timestamptz - %(since)s::timestamptz) * (i + 1) / %(slices)s AS hi
              FROM generate_series(0, %(slices)s - 1) i),
        latest AS MATERIALIZED (
            SELECT p.id FROM slices s
             CROSS JOIN LATERAL (
                 SELECT a.id FROM articles a
                  WHERE a.published_effective >= s.lo AND a.published_effective < s.hi
                  ORDER BY a.published_effective DESC
                  LIMIT %(per_slice)s) p),
        counted AS (
            SELECT at.topic_id, ae.entity_id, count(DISTINCT ae.article_id) AS articles, count(*) AS mentions
              FROM latest l
              JOIN article_topics at ON at.article_id = l.id
              JOIN article_entities ae ON ae.article_id = l.id
             GROUP BY at.topic_id, ae.entity_id),
        ranked AS (
            SELECT c.*, e.name, e.label,
                   row_number() OVER (PARTITION BY c.topic_id
                                      ORDER BY c.articles DESC, c.mentions DESC, e.name, e.id) AS rank
              FROM counted c JOIN entities e ON e.id = c.entity_id)
        SELECT t.slug, r.entity_id, r.name, r.label, r.articles, r.mentions
          FROM ranked r JOIN topics t ON t.id = r.topic_id
         WHERE r.rank <= %(limit)s
         ORDER BY t.slug, r.rank""", {"since": start, "until": end, "slices": SAMPLE_SLICES,
                                      "per_slice": SAMPLE_PER_SLICE, "limit": _limit(limit)})
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.pop("slug"), []).append(r)
    return out


def mentions(conn: Any, article_id: int) -> list[dict[str, Any]]:
    """An article's entity mentions with their offsets into its body: start_char, end_char,
    surface, label, name (the entity's), entity_id."""
    return _rows(conn, """
        SELECT ae.start_char, ae.end_char, ae.surface, ae.label, e.name, e.id AS entity_id
          FROM article_entities ae JOIN entities e ON e.id = ae.entity_id
         WHERE ae.article_id = %s
         ORDER BY ae.start_char""", (article_id,))


def topic_slugs(conn: Any) -> list[dict[str, Any]]:
    """Every topic's slug and name, by name (for choosers)."""
    return _rows(conn, "SELECT slug, name FROM topics ORDER BY name")
