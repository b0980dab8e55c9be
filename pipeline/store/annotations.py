"""Annotations: entities (one row per real-world thing), their mentions in each article, topics
and each article's topic tags. Every write replaces an article's annotations as a whole."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

from pipeline.records import Mention, TopicDef, TopicTag
from pipeline.states import LinkRule
from pipeline.store.db import clean
from pipeline.text import clean_name, entity_key


def upsert_entities(conn: psycopg.Connection, mentions: Iterable[Mention],
                    known: Mapping[str, Iterable[str]] | None = None) -> dict[str, int]:
    """Make sure each mention's canonical entity exists; return {key: id}. Aliases accumulate:
    the mentions' surfaces, and for an entity whose key is in `known` (the gazetteer's entries,
    nlp.entity_aliases) the names listed there.

    An entity the gazetteer or the place index knows (the mention carries its key) follows their
    name, label and place (ids, country) when they change; one stored before under its name's key
    ("name:idlib") is re-keyed in place the first time it is seen under its stable key
    ("geonames:169389"), so the articles tagged before point at it at once. Others keep the label
    they were first stored with (a homonym would otherwise flip it batch by batch); each mention
    carries its own label.

    Set-based (a few statements for any number of entities) and in key order, so concurrent
    taggers take row locks in the same order.
    """
    known = known or {}
    wanted: dict[str, _Wanted] = {}
    for m in mentions:
        key = m.entity_key
        authoritative = m.key is not None or bool(m.wikidata_id)
        if key in wanted and authoritative and not wanted[key].authoritative:
            # The gazetteer's or the place index's mention decides, wherever it is in the batch
            # (the model's "Gru" shares GRU's name key); the names seen so far stay aliases.
            seen = wanted.pop(key)
            seen.aliases.add(seen.name)
            wanted[key] = _Wanted(clean(m.canonical), m.label, m.wikidata_id, True, m.country, m.geonames_id,
                                  m.iso_code, m.place_kind,
                                  {a for a in seen.aliases | {clean(a) for a in known.get(key, ())}
                                   if a != clean(m.canonical)}, seen.legacy)
        if key not in wanted:
            wanted[key] = _Wanted(clean(m.canonical), m.label, m.wikidata_id, m.key is not None or bool(m.wikidata_id),
                                  m.country,
                                  m.geonames_id, m.iso_code, m.place_kind,
                                  {clean(a) for a in known.get(key, ()) if a != m.canonical})
        if m.surface != m.canonical:
            wanted[key].aliases.add(clean(m.surface))
        if m.key is not None and m.rule in _SURE_RULES:
            # The keys its row may have had: by name (before places had keys), by its GeoNames id
            # or ISO code (before the places file gave it a Wikidata id). Not for a name decided
            # by context ("Georgia"): its old row holds every sense; retag sorts those out.
            wanted[key].legacy.update({entity_key(m.canonical, None), entity_key(clean_name(m.surface), None)})
            if m.geonames_id:
                wanted[key].legacy.add(f"geonames:{m.geonames_id}")
            if m.iso_code:
                wanted[key].legacy.add(f"iso:{m.iso_code}")
    if not wanted:
        return {}
    keys = sorted(wanted)
    with conn.cursor() as cur:
        # Of several old rows, the first stored wins; retag moves the mentions of the others.
        legacy = [(k, old) for k in keys for old in sorted(wanted[k].legacy - {k})]
        if legacy:
            # Only a row of the same kind: a "Victoria" stored as a person is not the city.
            rekey = """UPDATE entities SET key = %(k)s, updated_at = now()
                        WHERE key = %(old)s AND wikidata_id IS NULL
                          AND (label = %(label)s OR (label IN ('GPE', 'LOC') AND %(label)s IN ('GPE', 'LOC')))
                          AND NOT EXISTS (SELECT 1 FROM entities WHERE key = %(k)s)"""
            rows = [{"k": k, "old": old, "label": wanted[k].label} for k, old in legacy]
            try:
                with conn.transaction():
                    cur.executemany(rekey, rows)
            except psycopg.errors.UniqueViolation:
                # Another tagger stored the new key meanwhile (its row was not yet visible to
                # NOT EXISTS): one at a time, each key that is taken by now left as it is.
                for row in rows:
                    try:
                        with conn.transaction():
                            cur.execute(rekey, row)
                    except psycopg.errors.UniqueViolation:
                        pass
        cur.executemany(
            """INSERT INTO entities (key, name, label, wikidata_id, aliases, country, geonames_id, iso_code, place_kind)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING""",
            [(k, w.name, w.label, w.wikidata_id, sorted(w.aliases), w.country, w.geonames_id, w.iso_code,
              w.place_kind) for k in keys for w in [wanted[k]]],
        )
        cur.executemany(
            """UPDATE entities SET name = %(name)s, label = %(label)s, wikidata_id = %(qid)s, country = %(country)s,
                                   geonames_id = %(gn)s, iso_code = %(iso)s, place_kind = %(kind)s, updated_at = now()
                WHERE key = %(k)s AND (name, label, wikidata_id, country, geonames_id, iso_code, place_kind)
                      IS DISTINCT FROM (%(name)s, %(label)s, %(qid)s, %(country)s, %(gn)s, %(iso)s, %(kind)s)
                  AND (%(qid)s::text IS NULL OR NOT EXISTS (SELECT 1 FROM entities o
                                                             WHERE o.wikidata_id = %(qid)s AND o.key <> %(k)s))""",
            [{"k": k, "name": w.name, "label": w.label, "qid": w.wikidata_id, "country": w.country,
              "gn": w.geonames_id, "iso": w.iso_code, "kind": w.place_kind}
             for k in keys for w in [wanted[k]] if w.authoritative],
        )
        with_aliases = [(sorted(wanted[k].aliases), k) for k in keys if wanted[k].aliases]
        if with_aliases:
            cur.executemany(
                """UPDATE entities
                      SET aliases = ARRAY(SELECT DISTINCT unnest(aliases || %s::text[]) ORDER BY 1), updated_at = now()
                    WHERE key = %s AND NOT (%s::text[] <@ aliases)""",
                [(a, k, a) for a, k in with_aliases],
            )
        rows = cur.execute("SELECT key, id FROM entities WHERE key = ANY(%s)", (keys,)).fetchall()
    ids = dict(rows)
    missing = set(keys) - set(ids)
    if missing:
        # A Wikidata id already held under another key (a gazetteer edit): keep one entity per id.
        for k in sorted(missing):
            qid = wanted[k].wikidata_id
            row = conn.execute("SELECT id FROM entities WHERE wikidata_id = %s", (qid,)).fetchone() if qid else None
            if row is None:
                raise RuntimeError(f"entity {k!r} could not be stored")
            ids[k] = row[0]
    return ids


# Rules that tie a name to one place whatever the article: an old row of that name was that place.
_SURE_RULES = frozenset({None, LinkRule.GAZETTEER, LinkRule.SINGLE})


@dataclass(slots=True)
class _Wanted:
    name: str
    label: str
    wikidata_id: str | None
    authoritative: bool  # known to the gazetteer or the place index: its name, label and place win
    country: str | None
    geonames_id: int | None
    iso_code: str | None
    place_kind: str | None
    aliases: set[str]
    legacy: set[str] = field(default_factory=set)


def merge_aliases(conn: psycopg.Connection, known: Mapping[str, Iterable[str]]) -> int:
    """Add to each stored entity keyed in `known` the names listed there that it lacks (its own
    name aside); entities not stored yet are left for upsert_entities. Returns the entities
    changed: none once merged, so running it before every tag run costs one statement per
    entry and no writes. Key order, like upsert_entities, so concurrent taggers do not deadlock."""
    rows = [(k, sorted({clean(a) for a in known[k]})) for k in sorted(known)]
    rows = [(k, a) for k, a in rows if a]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            """UPDATE entities
                  SET aliases = ARRAY(SELECT DISTINCT x FROM unnest(aliases || %(a)s::text[]) x
                                       WHERE x <> name ORDER BY 1),
                      updated_at = now()
                WHERE key = %(k)s AND NOT (%(a)s::text[] <@ (aliases || name))""",
            [{"k": k, "a": a} for k, a in rows])
        return cur.rowcount


def replace_mentions(conn: psycopg.Connection, article_id: int, mentions: Sequence[Mention], model_version: str,
                     entity_ids: dict[str, int] | None = None) -> int:
    """Replace an article's mentions with these (one model version per article). Uses COPY."""
    return replace_mentions_many(conn, {article_id: mentions}, model_version, entity_ids)[article_id]


def replace_mentions_many(conn: psycopg.Connection, mentions_by_article: dict[int, Sequence[Mention]],
                          model_version: str, entity_ids: dict[str, int] | None = None) -> dict[int, int]:
    """Replace the mentions of several articles at once: one DELETE and one COPY for the lot,
    inside the caller's transaction (so each article's replacement is all or nothing). Returns
    the rows written per article (one per distinct span)."""
    if entity_ids is None:
        entity_ids = upsert_entities(conn, (m for ms in mentions_by_article.values() for m in ms))
    conn.execute("DELETE FROM article_entities WHERE article_id = ANY(%s)", (list(mentions_by_article),))
    rows: dict[int, int] = {}
    with conn.cursor() as cur, cur.copy(
        "COPY article_entities (article_id, start_char, end_char, entity_id, surface, label, model_version, link_rule)"
        " FROM STDIN"
    ) as copy:
        for article_id, mentions in mentions_by_article.items():
            seen: set[tuple[int, int]] = set()
            for m in mentions:
                if (m.start, m.end) in seen:
                    continue
                seen.add((m.start, m.end))
                copy.write_row((article_id, m.start, m.end, entity_ids[m.entity_key], clean(m.surface), m.label,
                                model_version, m.rule))
            rows[article_id] = len(seen)
    return rows


def upsert_topics(conn: psycopg.Connection, defs: Sequence[TopicDef]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for d in defs:
        row = conn.execute(
            """INSERT INTO topics (slug, name, description, rules_version) VALUES (%s, %s, %s, %s)
               ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
                   rules_version = EXCLUDED.rules_version, updated_at = now()
               RETURNING id""",
            (d.slug, clean(d.name), clean(d.description), d.rules_version),
        ).fetchone()
        ids[d.slug] = row[0]
    return ids


def replace_topics(conn: psycopg.Connection, article_id: int, tags: Sequence[TopicTag], rules_version: str,
                   topic_ids: dict[str, int]) -> int:
    """Replace an article's topic tags with these."""
    conn.execute("DELETE FROM article_topics WHERE article_id = %s", (article_id,))
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO article_topics (article_id, topic_id, score, evidence, rules_version)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (article_id, topic_id) DO UPDATE SET score = EXCLUDED.score,
                   evidence = EXCLUDED.evidence, rules_version = EXCLUDED.rules_version, tagged_at = now()""",
            [(article_id, topic_ids[t.slug], t.score, Jsonb(t.evidence), rules_version) for t in tags],
        )
    return len(tags)
