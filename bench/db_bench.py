"""The database at scale: load N synthetic articles (bodies of a few hundred words, entity
mentions, topic tags) with COPY, then time the questions people ask (pipeline/queries.py and
the views) after ANALYZE.

    .venv/bin/python bench/db_bench.py --articles 100000      # a couple of minutes
    .venv/bin/python bench/db_bench.py                         # 1,000,000: the issue's target size

Reports load rates (articles/s; entity-mention rows/s through bulk COPY and through
store.annotations.replace_mentions, the tagging stage's path; the project target is >= 20,000 rows/s) and the
median of several runs of each query. Prints a table and writes bench/results/db_<N>.json.
Asserts nothing. Uses a throwaway embedded server unless NEWSROOM_DATABASE_URL is set (then a
throwaway database on that server).

The text is synthetic but shaped like news: Zipf-distributed words from an English news
vocabulary plus a long tail of rare terms, ~275 words per article, a theme per article (one of
the shipped topics, or none) that decides which entities it mentions (a few thousand entities,
Zipf-weighted, 3-7 per article, 1-3 mentions each), ~8% syndicated copies sharing a cluster, and
publication dates spread over the year before now.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

import psycopg
from common import bench_database, write_result

from pipeline import PIPELINE_VERSION, queries, store
from pipeline.records import Mention
from pipeline.text import entity_key

# --- vocabulary -----------------------------------------------------------------------------

# Function words first (they dominate running text and are stop words to the search index),
# then news vocabulary, roughly by frequency; Zipf weights follow the order.
WORDS = """
the of and to a in that is for on it with as was he said by at from his an be have has are
but not they this were had which its or who been their will would after also more than one
two over there about into up new when other all out could we last year some them only can
people what first other if against no do so time she her him just where while because years
government officials minister president military forces country state security defence defense
talks agreement deal system systems missile missiles air troops army border attack attacks
offensive ceasefire region province city town villages civilians killed wounded fighting
rebels militants opposition regime war conflict peace sanctions purchase delivery deliveries
contract contracts programme program jets fighter aircraft weapons arms sale sales buy bought
foreign ministry spokesman statement told reporters news agency conference meeting summit
week month day monday tuesday wednesday thursday friday saturday sunday morning evening
international relations alliance partner partners member members nato washington ankara moscow
economic economy trade market markets lira dollar energy gas oil pipeline project projects
turkish russian american syrian iranian israeli european kurdish local national regional
leader leaders officials sources according report reported reports reporting analysts expert
experts say says saying warned warning warnings threat threats concern concerns decision
decided plan plans planned announced announcement visit visited call called phone discussed
discuss discussion support supported backed backing against despite amid following ahead
police court judge trial law parliament vote election elections party ruling policy policies
humanitarian aid refugees camps displaced fled fleeing shelter food water hospital medical
strike strikes airstrike airstrikes shelling bombardment rocket rockets drone drones artillery
positions control territory areas zone zones patrol patrols observation posts convoy convoys
negotiations dialogue diplomatic diplomats embassy ambassador envoy united nations council
resolution humanitarian crisis situation developments tensions escalation de-escalation
operation operations launched launch campaign campaigns advance advanced captured retake
infrastructure facility facilities base bases radar radars test tests tested installation
technology technical production industry industrial companies company firm firms billion
million percent rate rates growth budget spending cost costs price prices payment payments
however meanwhile earlier later recently since still already including among between during
under without within across around near north south east west northern southern eastern western
""".split()
_SYLLABLES = ["ka", "ro", "vin", "tel", "mar", "su", "dan", "li", "ber", "ost", "ani", "gor", "pel", "tra",
              "zen", "mo", "qua", "rid", "sol", "ven", "chi", "lor", "nak", "ef", "ur"]
_TAIL_SIZE = 6000  # rare terms: names of streets, villages, products, uncommon words
# Publication dates are spread over this many days before now (bench/search_bench.py shortens it
# to load fewer articles at the 1,000,000-a-year density).
SPAN_DAYS = 365


def _vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    tail = {"".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(_TAIL_SIZE * 2)}
    head = list(dict.fromkeys(WORDS))
    words = head + sorted(tail)[:_TAIL_SIZE]
    # Zipf over the list; the rare tail scaled down to ~10% of running words, as in news text.
    weights = [(1.0 if rank < len(head) else 0.35) / (rank + 2) ** 1.05 for rank in range(len(words))]
    return words, list(accumulate(weights))


# --- entities -------------------------------------------------------------------------------

SEED_ENTITIES = [  # (name, label, wikidata id) the themes draw on
    ("S-400", "WEAPON", None), ("S-300", "WEAPON", None), ("S-500", "WEAPON", None), ("F-35", "WEAPON", None),
    ("F-16", "WEAPON", None), ("Su-35", "WEAPON", None), ("Su-57", "WEAPON", None),
    ("Patriot", "WEAPON", None), ("Bayraktar TB2", "WEAPON", None), ("Pantsir", "WEAPON", None),
    ("Recep Tayyip Erdoğan", "PERSON", "Q39259"), ("Vladimir Putin", "PERSON", "Q7747"),
    ("Donald Trump", "PERSON", "Q22686"), ("Bashar al-Assad", "PERSON", "Q44329"),
    ("Mike Pompeo", "PERSON", None), ("Hulusi Akar", "PERSON", None), ("Sergei Lavrov", "PERSON", None),
    ("Mevlüt Çavuşoğlu", "PERSON", None), ("Mark Esper", "PERSON", None), ("Jens Stoltenberg", "PERSON", None),
    ("Turkey", "GPE", "Q43"), ("Russia", "GPE", "Q159"), ("Syria", "GPE", "Q858"), ("United States", "GPE", "Q30"),
    ("Idlib", "GPE", None), ("Ankara", "GPE", "Q3640"), ("Moscow", "GPE", "Q649"), ("Damascus", "GPE", "Q3766"),
    ("Washington", "GPE", None), ("Sochi", "GPE", None), ("Aleppo", "GPE", None), ("Iran", "GPE", "Q794"),
    ("Israel", "GPE", "Q801"), ("Saraqib", "GPE", None), ("Maarat al-Numan", "GPE", None),
    ("NATO", "ORG", "Q7184"), ("Pentagon", "ORG", None), ("Hayat Tahrir al-Sham", "ORG", None),
    ("Kremlin", "ORG", None), ("European Union", "ORG", "Q458"), ("United Nations", "ORG", "Q1065"),
    ("Rosoboronexport", "ORG", None), ("Lockheed Martin", "ORG", None), ("YPG", "ORG", None),
    ("Syrian Democratic Forces", "ORG", None), ("Congress", "ORG", None),
]
THEMES: dict[str | None, tuple[float, list[str], list[str]]] = {
    # topic slug: (share of articles, its entities, related topics a tagged article may also get)
    "s400-f35-dispute": (0.12, ["S-400", "F-35", "Recep Tayyip Erdoğan", "Turkey", "United States", "Pentagon",
                                "Mike Pompeo", "Hulusi Akar", "Lockheed Martin", "Congress", "Patriot",
                                "Vladimir Putin", "Russia", "Washington", "Ankara", "NATO"],
                         ["us-turkey-relations", "russia-turkey-defence-cooperation", "arms-trade"]),
    "idlib-conflict": (0.12, ["Idlib", "Bashar al-Assad", "Hayat Tahrir al-Sham", "Syria", "Saraqib",
                              "Maarat al-Numan", "Vladimir Putin", "Recep Tayyip Erdoğan", "Russia", "Turkey",
                              "Aleppo", "Damascus", "United Nations", "Sochi"], ["syria-war"]),
    "syria-war": (0.10, ["Syria", "Bashar al-Assad", "Damascus", "Aleppo", "Iran", "Israel", "YPG",
                         "Syrian Democratic Forces", "Russia", "United States", "United Nations", "Idlib"],
                  ["idlib-conflict"]),
    "russia-turkey-defence-cooperation": (0.08, ["Vladimir Putin", "Recep Tayyip Erdoğan", "Russia", "Turkey",
                                                 "S-400", "Su-35", "Su-57", "Rosoboronexport", "Kremlin",
                                                 "Moscow", "Ankara", "Sochi", "S-500"], ["s400-f35-dispute"]),
    "us-turkey-relations": (0.08, ["United States", "Turkey", "Donald Trump", "Recep Tayyip Erdoğan",
                                   "Mike Pompeo", "Mark Esper", "Washington", "Ankara", "Congress", "NATO",
                                   "F-16", "YPG"], ["s400-f35-dispute"]),
    "arms-trade": (0.08, ["S-400", "F-35", "F-16", "Patriot", "Bayraktar TB2", "Pantsir", "Rosoboronexport",
                          "Lockheed Martin", "Su-35", "Russia", "United States", "Turkey"], []),
    None: (0.42, [], []),
}
_FIRST = ("Ahmet Mehmet Ali Mustafa Hasan Ayşe Fatma Elif Olga Ivan Dmitry Sergei Anna Maria John "
          "Michael David Sarah Emily James Robert Omar Khaled Yusuf Layla Rania Hassan Karim Nadia "
          "Pierre Claire Hans Greta Marco Sofia Wei Li Yuki Amir Reza Leila").split()
_LAST = ("Yilmaz Kaya Demir Sahin Celik Yildiz Aydin Ozturk Arslan Dogan Kilic Aslan Cetin Kara Koc "
         "Kurt Ozdemir Ivanov Smirnov Kuznetsov Popov Sokolov Lebedev Kozlov Novikov Morozov Petrov "
         "Smith Johnson Williams Brown Jones Miller Davis Wilson Taylor Anderson Thomas Moore Martin "
         "Haddad Khoury Nasser Hamdan Saleh Darwish Mansour Aziz Rahman Karimi Hosseini Dubois Laurent "
         "Muller Schmidt Rossi Bianchi Chen Wang Tanaka Sato").split()


@dataclass(frozen=True, slots=True)
class Entity:
    id: int
    name: str
    label: str
    wikidata_id: str | None


def _synthetic_entities(rng: random.Random, count: int) -> list[tuple[str, str, str | None]]:
    out = list(SEED_ENTITIES)
    names = {n for n, _, _ in out}
    people = [f"{f} {last}" for f in _FIRST for last in _LAST]
    rng.shuffle(people)
    kinds = [("PERSON", 0.6), ("ORG", 0.2), ("GPE", 0.15), ("LOC", 0.05)]
    while len(out) < count:
        label = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        if label == "PERSON" and people:
            name = people.pop()
        else:
            stem = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
            name = {"ORG": f"{stem} {rng.choice(['Group', 'Holdings', 'Institute', 'Brigade', 'Party', 'Agency'])}",
                    "GPE": stem + rng.choice(["", "abad", "grad", "iye", "ov"]),
                    "LOC": f"{stem} {rng.choice(['Valley', 'Mountains', 'River', 'Plain'])}",
                    "PERSON": f"{stem} {rng.choice(_LAST)}"}[label]
        if name not in names:
            names.add(name)
            out.append((name, label, None))
    return out


# --- generation -----------------------------------------------------------------------------

@dataclass
class Chunk:
    first_id: int
    articles: str            # COPY text rows
    sources: str
    topics: str
    mentions: str
    n_articles: int
    n_mentions: int


ARTICLE_COLUMNS = ("url", "first_url", "guid", "first_feed_id", "title", "summary", "feed_published_at",
                   "published_at", "published_source", "language", "body", "word_count", "content_hash",
                   "cluster_id", "is_original", "status", "pipeline_version", "discovered_at", "fetched_at",
                   "extracted_at", "tagged_at", "nlp_version", "rules_version")


class Generator:
    """Deterministic synthetic news; articles get ids first_id, first_id + 1, ... in COPY order."""

    def __init__(self, n: int, feeds: list[int], entities: list[Entity], topic_ids: dict[str, int], seed: int,
                 now: datetime):
        self.rng = random.Random(seed)
        self.words, self.cum = _vocabulary(self.rng)
        self.content_words = self.words[60:400]
        self.n, self.feeds, self.topic_ids, self.now = n, feeds, topic_ids, now
        self.start = now - timedelta(days=SPAN_DAYS)
        by_name = {e.name: e for e in entities}
        # Background entities by Zipf weight: a few are everywhere, most are rare.
        self.background = entities
        self.background_cum = list(accumulate(1.0 / (i + 1) for i in range(len(entities))))
        self.themes = [(slug, [by_name[x] for x in names], related) for slug, (_, names, related) in THEMES.items()]
        self.theme_cum = list(accumulate(share for share, _, _ in THEMES.values()))
        self.recent: list[tuple[int, int, str, str, list[tuple[int, int, Entity]], list[tuple[str, float]]]] = []

    def _body(self, theme_entities: list[Entity]) -> tuple[str, list[tuple[int, int, Entity]]]:
        rng = self.rng
        n = rng.randint(150, 400)
        tokens = rng.choices(self.words, cum_weights=self.cum, k=n)
        chosen: dict[int, Entity] = {}
        k = rng.randint(3, 7)
        if theme_entities:
            for e in rng.sample(theme_entities, min(len(theme_entities), rng.randint(2, 4))):
                chosen[e.id] = e
        while len(chosen) < k:
            e = rng.choices(self.background, cum_weights=self.background_cum)[0]
            chosen[e.id] = e
        inserts = sorted(((rng.randrange(n), e) for e in chosen.values() for _ in range(rng.choice((1, 1, 2, 3)))),
                         key=lambda x: x[0])
        # Join the text between mentions, tracking offsets per segment (not per word: fast).
        parts: list[str] = []
        mentions: list[tuple[int, int, Entity]] = []
        pos = last = 0
        for at, e in inserts:
            seg = " ".join(tokens[last:at])
            if seg:
                parts.append(seg + " ")
                pos += len(seg) + 1
            mentions.append((pos, pos + len(e.name), e))
            parts.append(e.name + " ")
            pos += len(e.name) + 1
            last = at
        parts.append(" ".join(tokens[last:]))
        return "".join(parts).rstrip(), mentions

    def chunks(self, first_id: int, size: int) -> Iterator[Chunk]:
        rng = self.rng
        span = (self.now - self.start).total_seconds()
        for lo in range(0, self.n, size):
            arts, srcs, tops, ments = [], [], [], []
            n_mentions = 0
            for i in range(lo, min(lo + size, self.n)):
                aid = first_id + i
                published = self.start + timedelta(seconds=span * (i + rng.random()) / self.n)
                feed = rng.choice(self.feeds)
                if self.recent and rng.random() < 0.08:  # a syndicated copy of a recent story
                    src_id, cluster, title, body, mentions, tags = rng.choice(self.recent)
                    original = False
                    published += timedelta(minutes=rng.randint(5, 600))
                else:
                    r = rng.random() * self.theme_cum[-1]
                    slug, theme_entities, related = self.themes[next(j for j, c in enumerate(self.theme_cum) if r <= c)]
                    body, mentions = self._body(theme_entities)
                    lead = theme_entities[0].name if theme_entities else mentions[0][2].name
                    title = " ".join([lead] + rng.sample(self.content_words, 6))
                    tags = []
                    if slug:
                        tags.append((slug, round(rng.uniform(5, 15), 2)))
                        if related and rng.random() < 0.25:
                            tags.append((rng.choice(related), round(rng.uniform(4, 9), 2)))
                    cluster, original = aid, True
                    self.recent.append((aid, aid, title, body, mentions, tags))
                    if len(self.recent) > 200:
                        self.recent.pop(0)
                url = f"https://news{feed % 50}.example/{published:%Y/%m/%d}/story-{aid}"
                ts = published.isoformat()
                seen = (published + timedelta(minutes=rng.randint(1, 90))).isoformat()
                status = "tagged" if tags or mentions else "extracted"
                arts.append("\t".join((
                    url, url, f"g{aid}", str(feed), title, title, ts, ts, "page", "en", body,
                    str(body.count(" ") + 1), f"h{aid}", str(cluster), "t" if original else "f", status,
                    PIPELINE_VERSION, seen, seen, seen, seen, "bench-nlp", "bench-rules")) + "\n")
                srcs.append(f"{aid}\t{feed}\tg{aid}\t{url}\t{seen}\t{seen}\n")
                if rng.random() < 0.1:  # also carried by a second feed
                    other = rng.choice(self.feeds)
                    if other != feed:
                        srcs.append(f"{aid}\t{other}\tg{aid}b\t{url}\t{seen}\t{seen}\n")
                for slug, score in tags:
                    ev = json.dumps({"score": score, "threshold": 5, "rules_version": "bench-rules",
                                     "required": [{"group": "core", "ok": True, "matched": [
                                         {"item": f"entity:{m[2].name}", "count": 1} for m in mentions[:2]]}],
                                     "supporting": []}, ensure_ascii=False)
                    tops.append(f"{aid}\t{self.topic_ids[slug]}\t{score}\t{ev}\tbench-rules\t{seen}\n")
                for start, end, e in mentions:
                    ments.append(f"{aid}\t{start}\t{end}\t{e.id}\t{e.name}\t{e.label}\tbench-nlp\n")
                n_mentions += len(mentions)
            yield Chunk(first_id + lo, "".join(arts), "".join(srcs), "".join(tops), "".join(ments),
                        len(arts), n_mentions)


# --- loading --------------------------------------------------------------------------------

def _copy(conn: psycopg.Connection, statement: str, data: str) -> None:
    with conn.cursor() as cur, cur.copy(statement) as copy:
        view = data.encode("utf-8")
        for i in range(0, len(view), 1 << 20):
            copy.write(view[i:i + (1 << 20)])


def load(dsn: str, n: int, chunk_size: int, seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '1GB'")
        now = store.db.now(conn)
        with conn.transaction():
            from pipeline.records import FeedSpec, TopicDef

            store.feeds.upsert_feeds(conn, [FeedSpec(url=f"https://news{i % 50}.example/feed{i}.xml", name=f"Outlet {i:03d}")
                                      for i in range(200)])
            topic_ids = store.annotations.upsert_topics(conn, [TopicDef(slug=s, name=s.replace("-", " ").title(),
                                                            rules_version="bench-rules") for s in THEMES if s])
        feeds = [r[0] for r in conn.execute("SELECT id FROM feeds ORDER BY id")]
        raw = _synthetic_entities(rng, 3000)
        _copy(conn, "COPY entities (key, name, label, wikidata_id) FROM STDIN",
              "".join(f"{entity_key(nm, q)}\t{nm}\t{lb}\t{q or chr(92) + 'N'}\n" for nm, lb, q in raw))
        entities = [Entity(*r) for r in conn.execute("SELECT id, name, label, wikidata_id FROM entities ORDER BY id")]
        # Background mentions follow a Zipf order like real news: countries and capitals most, then
        # organisations, people and weapons (their themes add more), then the synthetic long tail.
        rank = {"GPE": 0, "ORG": 1, "PERSON": 2, "WEAPON": 3}
        order = {nm: (0 if i < len(SEED_ENTITIES) else 1, rank.get(lb, 4) if i < len(SEED_ENTITIES) else 0, i)
                 for i, (nm, lb, _) in enumerate(raw)}
        entities.sort(key=lambda e: order[e.name])

        # The full-text GIN index is built once after the load (standard bulk-load practice);
        # the other indexes are maintained row by row, as in normal operation.
        gin = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'articles_search_idx'").fetchone()[0]
        conn.execute("DROP INDEX articles_search_idx")
        first_id = 1 + (conn.execute("SELECT coalesce(max(id), 0) FROM articles").fetchone()[0])
        gen = Generator(n, feeds, entities, topic_ids, seed, now)

        # Generate the next chunk in a thread while this one is copied in (2 cores: one each).
        q: queue.Queue[Chunk | BaseException | None] = queue.Queue(maxsize=2)

        def produce() -> None:
            try:
                for c in gen.chunks(first_id, chunk_size):
                    q.put(c)
                q.put(None)
            except BaseException as exc:  # hand it to the main thread rather than leave it waiting
                q.put(exc)

        threading.Thread(target=produce, daemon=True).start()
        t0 = time.perf_counter()
        copy_s = {"articles": 0.0, "article_sources": 0.0, "article_topics": 0.0, "article_entities": 0.0}
        total_articles = total_mentions = 0
        while (chunk := q.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            t = time.perf_counter()
            _copy(conn, f"COPY articles ({', '.join(ARTICLE_COLUMNS)}) FROM STDIN", chunk.articles)
            copy_s["articles"] += time.perf_counter() - t
            expected = chunk.first_id + chunk.n_articles - 1
            got = conn.execute("SELECT max(id) FROM articles").fetchone()[0]
            if got != expected:
                sys.exit(f"article ids are not sequential (expected max {expected}, got {got}); use a fresh database")
            for table, cols, data in (
                ("article_sources", "article_id, feed_id, guid, entry_url, first_seen_at, last_seen_at", chunk.sources),
                ("article_topics", "article_id, topic_id, score, evidence, rules_version, tagged_at", chunk.topics),
                ("article_entities", "article_id, start_char, end_char, entity_id, surface, label, model_version",
                 chunk.mentions),
            ):
                t = time.perf_counter()
                _copy(conn, f"COPY {table} ({cols}) FROM STDIN", data)
                copy_s[table] += time.perf_counter() - t
            total_articles += chunk.n_articles
            total_mentions += chunk.n_mentions
            elapsed = time.perf_counter() - t0
            log(f"  {total_articles:>9,} articles, {total_mentions:>10,} mentions, {elapsed:6.0f}s "
                f"({total_articles / elapsed:,.0f} articles/s)")
        load_s = time.perf_counter() - t0
        t = time.perf_counter()
        conn.execute(gin)
        gin_s = time.perf_counter() - t
        log(f"  GIN full-text index built in {gin_s:.0f}s")
        t = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) articles, article_entities, article_topics, article_sources, entities, feeds")
        analyze_s = time.perf_counter() - t
        sizes = dict(conn.execute(
            """SELECT relname, pg_total_relation_size(oid) FROM pg_class
                WHERE relname IN ('articles', 'article_entities', 'article_topics', 'article_sources')""").fetchall())
        out.update({
            "articles": total_articles, "mention_rows": total_mentions,
            "topic_rows": conn.execute("SELECT count(*) FROM article_topics").fetchone()[0],
            "source_rows": conn.execute("SELECT count(*) FROM article_sources").fetchone()[0],
            "entities": len(entities), "feeds": len(feeds),
            "load_seconds": round(load_s, 1),
            "articles_per_s": round(total_articles / load_s),
            "copy_seconds": {k: round(v, 1) for k, v in copy_s.items()},
            "articles_copy_per_s": round(total_articles / copy_s["articles"]),
            "mention_rows_per_s_copy": round(total_mentions / copy_s["article_entities"]),
            "gin_index_seconds": round(gin_s, 1), "vacuum_analyze_seconds": round(analyze_s, 1),
            "total_bytes": {k: int(v) for k, v in sizes.items()},
        })
        out["_gen"] = gen
    return out


def replace_mentions_rate(dsn: str, gen: Generator, articles: int, sample: int, log: Callable[[str], None]) -> dict:
    """The tagging stage's path: per batch of 50 articles, store.annotations.upsert_entities once, then
    store.annotations.replace_mentions_many (one DELETE, one COPY), committed per batch; on already-tagged
    articles spread over the table."""
    rng = random.Random(7)
    ids = rng.sample(range(1, articles + 1), min(sample, articles))
    rows = 0
    with psycopg.connect(dsn) as conn:
        conn.execute("SET synchronous_commit = off")  # as store.db.session does
        conn.commit()
        batches = []  # generated before the clock starts: only the writes are timed
        for start in range(0, len(ids), 50):
            batch = {}
            for aid in ids[start:start + 50]:
                _, mentions = gen._body(rng.choice(gen.themes)[1])
                batch[aid] = [Mention(start=s, end=e, surface=ent.name, label=ent.label, canonical=ent.name,
                                      wikidata_id=ent.wikidata_id) for s, e, ent in mentions]
            batches.append(batch)
        t0 = time.perf_counter()
        for batch in batches:
            entity_ids = store.annotations.upsert_entities(conn, (m for ms in batch.values() for m in ms))
            rows += sum(store.annotations.replace_mentions_many(conn, batch, "bench-nlp-2", entity_ids).values())
            conn.commit()
        conn.commit()
        seconds = time.perf_counter() - t0
    log(f"  store.annotations.replace_mentions: {rows:,} rows for {len(ids):,} articles in {seconds:.1f}s")
    return {"articles": len(ids), "rows": rows, "seconds": round(seconds, 2),
            "mention_rows_per_s_replace_mentions": round(rows / seconds),
            "articles_per_s": round(len(ids) / seconds)}


# --- queries --------------------------------------------------------------------------------

def time_queries(dsn: str, runs: int, rare: tuple[str, str], log: Callable[[str], None]) -> list[dict]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        now = store.db.now(conn)
        week, month, quarter = now - timedelta(days=7), now - timedelta(days=30), now - timedelta(days=90)
        some_id = conn.execute("SELECT id FROM articles WHERE cluster_id <> id ORDER BY id DESC LIMIT 1").fetchone()[0]

        def sql(query: str, params: Any = None) -> Callable[[], list]:
            return lambda: conn.execute(query, params, prepare=False).fetchall()

        cases: list[tuple[str, Callable[[], Any]]] = [
            ("search 'S-400' (all time)", lambda: queries.search(conn, "S-400")),
            ("search 'S-400 sanctions' since 7d", lambda: queries.search(conn, "S-400 sanctions", since=week)),
            ("search 'Erdoğan Putin' topic=idlib-conflict since 30d",
             lambda: queries.search(conn, "Erdoğan Putin", topic="idlib-conflict", since=month)),
            ("search 'missile' entity=Idlib since 30d", lambda: queries.search(conn, "missile", entity="Idlib", since=month)),
            (f"search rare terms '{rare[0]} or {rare[1]}' (all time)",
             lambda: queries.search(conn, f"{rare[0]} or {rare[1]}")),
            ("topic_volumes since 30d (vs previous 30d)", lambda: queries.topic_volumes(conn, month)),
            ("topic_timeline since 90d", lambda: queries.topic_timeline(conn, quarter)),
            ("v_topic_daily last 30 days by day and topic", sql(
                """SELECT day, topic, sum(articles), sum(originals) FROM v_topic_daily
                    WHERE day >= (now() AT TIME ZONE 'UTC')::date - 30 GROUP BY day, topic""")),
            ("top_entities since 7d", lambda: queries.top_entities(conn, since=week)),
            ("top_entities topic=syria-war label=PERSON since 30d",
             lambda: queries.top_entities(conn, topic="syria-war", label="PERSON", since=month)),
            ("top_entities all time (full scan)", lambda: queries.top_entities(conn)),
            ("cooccurrence partners of Idlib since 30d", lambda: queries.cooccurrence(conn, entity="Idlib", since=month)),
            ("cooccurrence top pairs since 7d (entity_cooccurrence())", lambda: queries.cooccurrence(conn, since=week)),
            ("v_entity_cooccurrence partners of Idlib, 30 days", sql(
                """SELECT other, sum(articles) FROM v_entity_cooccurrence
                    WHERE entity = 'Idlib' AND day >= (now() AT TIME ZONE 'UTC')::date - 30
                    GROUP BY other ORDER BY 2 DESC LIMIT 20""")),
            ("v_entity_mentions weapons this month", sql(
                """SELECT entity, count(*), sum(mentions) FROM v_entity_mentions
                    WHERE label = 'WEAPON' AND published_at >= now() - interval '30 days'
                    GROUP BY entity_id, entity ORDER BY 2 DESC LIMIT 10""")),
            ("v_articles latest 50 with topics and entities", sql(
                "SELECT * FROM v_articles ORDER BY published_at DESC LIMIT 50")),
            ("article(id) detail", lambda: queries.article(conn, some_id)),
            ("v_feed_health (200 feeds)", lambda: queries.feed_health(conn)),
        ]
        results = []
        for name, fn in cases:
            fn()  # warm the cache: medians describe a database in use, not a cold start
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                got = fn()
                times.append(time.perf_counter() - t)
            n_rows = len(got) if isinstance(got, list) else 1
            results.append({"query": name, "median_ms": round(statistics.median(times) * 1000, 1),
                            "min_ms": round(min(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1),
                            "rows": n_rows})
            log(f"  {name:<58} {results[-1]['median_ms']:>9.1f} ms  ({n_rows} rows)")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=20_000, help="articles per COPY batch")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per query (the median is reported)")
    ap.add_argument("--replace-sample", type=int, default=10000,
                    help="articles re-tagged through store.annotations.replace_mentions")
    ap.add_argument("--seed", type=int, default=20191001)
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    with bench_database() as dsn:
        log(f"loading {args.articles:,} articles ...")
        loaded = load(dsn, args.articles, args.chunk, args.seed, log)
        gen = loaded.pop("_gen")
        log("re-tagging a sample through store.annotations.replace_mentions ...")
        replace = replace_mentions_rate(dsn, gen, loaded["articles"], args.replace_sample, log)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE article_entities, entities")
        log(f"timing queries (median of {args.runs}) ...")
        timings = time_queries(dsn, args.runs, (gen.words[-1], gen.words[-2]), log)
        with psycopg.connect(dsn) as conn:
            settings = dict(conn.execute(
                """SELECT name, current_setting(name) FROM pg_settings
                    WHERE name IN ('shared_buffers', 'work_mem', 'effective_cache_size', 'server_version',
                                   'max_parallel_workers_per_gather', 'random_page_cost')""").fetchall())
    total = time.perf_counter() - t0

    print()
    print(f"db bench: {loaded['articles']:,} articles, {loaded['mention_rows']:,} mention rows, "
          f"{loaded['topic_rows']:,} topic tags, {loaded['entities']:,} entities, {loaded['feeds']} feeds")
    print(f"  load                     {loaded['load_seconds']:>8.0f} s   {loaded['articles_per_s']:>9,} articles/s "
          f"(generation + COPY of all tables; articles COPY alone {loaded['articles_copy_per_s']:,}/s)")
    print(f"  mentions via COPY        {loaded['copy_seconds']['article_entities']:>8.0f} s   "
          f"{loaded['mention_rows_per_s_copy']:>9,} rows/s")
    print(f"  mentions via replace_mentions {replace['seconds']:>5.0f} s   "
          f"{replace['mention_rows_per_s_replace_mentions']:>9,} rows/s  ({replace['articles_per_s']:,} articles/s)")
    print(f"  GIN full-text index      {loaded['gin_index_seconds']:>8.0f} s")
    print(f"  VACUUM ANALYZE           {loaded['vacuum_analyze_seconds']:>8.0f} s")
    print()
    print(f"  {'query':<58} {'median':>9}  {'rows':>5}")
    for r in timings:
        print(f"  {r['query']:<58} {r['median_ms']:>7.1f}ms  {r['rows']:>5}")
    print(f"\ntotal {total:.0f} s")
    path = write_result(f"db_{args.articles}", {
        "articles": args.articles, "load": loaded, "replace_mentions": replace, "queries": timings,
        "runs_per_query": args.runs, "postgres": settings, "total_seconds": round(total, 1),
        "target_mention_rows_per_s": 20_000,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
