"""The work queue: which worker may work on which feed or article, and for how long.

Every claim is a lease with a token. The lease is short (NEWSROOM_CLAIM_LEASE, a minute by
default) and a `Heartbeat` renews it while the batch is still being worked on, so a killed
worker's items come back within a minute and a slow batch is never taken from under a live one.
Every write of a result is fenced by the token it was claimed under (FENCE, `holding`,
`feeds_held`: used by articles.py's `store_page`, `save_extraction`, `mark_tagged`, feeds.py's
`record_poll`, and `record_failure` here): a worker whose lease ran out finds its token gone, and
its late write is dropped and logged instead of overwriting newer work.

Attempts are counted at claim time, so an item that kills its worker every time (a poison page)
ends `failed` with its last error once it has been claimed NEWSROOM_MAX_ATTEMPTS times.
Backlog work (retag, backfill: priority 1) is claimed only when no live work is due.

This is the one module that claims, leases, fences and records failures, for feeds and articles
alike; like the rest of the store it takes an open connection and leaves transaction control
to the caller.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from pipeline.records import ClaimedArticle, FeedState
from pipeline.states import ArticleStatus, Stage
from pipeline.store.db import connect
from pipeline.text import safe_text

log = logging.getLogger(__name__)

# Held (per transaction) by whatever sends articles back to the extract stage and by the pruning
# of raw pages (maintenance.py): never a page pruned under an article just sent back to need it.
RAW_PAGES_LOCK = 0x52617750  # "RawP"
# The columns of a claim, cleared when it ends.
RELEASED = "claim_token = NULL, claimed_by = NULL, claimed_until = NULL"
# An article that finished a stage: ready for the next one at once, its claim released.
DONE = (f"attempts = 0, {RELEASED}, last_error = NULL, failed_stage = NULL, next_attempt_at = now(), "
        "updated_at = now()")
# The fence on an article's result: written only while the claim it was made under holds
# (%(token)s NULL: work done without a claim, e.g. a test or a one-off command).
FENCE = "(%(token)s::uuid IS NULL OR claim_token = %(token)s::uuid)"

# One regular expression for "the host of a URL" in SQL, as urls.host_of does in Python.
HOST_SQL = r"lower(substring(url from '^[a-zA-Z]+://(\[[^]]*\]|[^/:?#]+)'))"


_CLAIM_FEEDS = """UPDATE feeds f SET claim_token = %(token)s, claimed_by = %(owner)s,
                   claimed_until = now() + make_interval(secs => %(lease)s)
             WHERE f.id IN (
                   SELECT id FROM feeds
                    WHERE enabled AND next_poll_at <= now()
                      AND (claimed_until IS NULL OR claimed_until < now() OR claimed_by = %(owner)s)
                      -- shard by host, so one host's feeds stay in one worker (per-host politeness)
                      AND abs(hashtext({host})) %% %(shards)s = %(shard)s
                      AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
                    ORDER BY next_poll_at, id
                    LIMIT %(limit)s
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, url, name, etag, last_modified, body_hash, consecutive_failures, poll_interval_s""".replace(
    "{host}", HOST_SQL)

_CLAIM_ARTICLES_TEMPLATE = """WITH pool AS (
                SELECT id, url, priority, next_attempt_at FROM articles
                 WHERE status = %(status)s AND next_attempt_at <= now()
                   AND (claimed_until IS NULL OR claimed_until < now())
                   AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
                   AND NOT (id = ANY(%(exclude)s::bigint[]))
                 ORDER BY priority, next_attempt_at, id
                 LIMIT %(pool)s
                   FOR UPDATE SKIP LOCKED),
            ranked AS (
                SELECT id, priority, next_attempt_at, {turn} AS turn FROM pool),
            chosen AS (
                SELECT id FROM ranked ORDER BY priority, turn, next_attempt_at, id LIMIT %(limit)s)
            UPDATE articles a
               SET claimed_until = now() + make_interval(secs => %(lease)s), attempts = attempts + 1,
                   claim_token = %(token)s, claimed_by = %(owner)s
             WHERE a.id IN (SELECT id FROM chosen)
         RETURNING id, url, attempts, status, title, summary, feed_published_at, final_url"""
_CLAIM_ARTICLES = _CLAIM_ARTICLES_TEMPLATE.replace("{turn}", "0")
_CLAIM_ARTICLES_INTERLEAVED = _CLAIM_ARTICLES_TEMPLATE.replace(
    "{turn}", "row_number() OVER (PARTITION BY priority, " + HOST_SQL + " ORDER BY next_attempt_at, id)")


@dataclass(frozen=True, slots=True)
class Claim:
    """A lease on some items, checked by every write made under it."""

    token: str
    owner: str
    ids: tuple[int, ...]
    gave_up: int = 0  # articles this claim found exhausted and marked failed first

    def __bool__(self) -> bool:
        return bool(self.ids)


def new_token() -> str:
    return str(uuid.uuid4())


# --- feeds ----------------------------------------------------------------------------------

def claim_feeds(conn, *, owner: str, limit: int = 1000, lease_seconds: int = 60, shard: int = 0,
                shards: int = 1, feed_ids: Sequence[int] | None = None) -> tuple[Claim, list[FeedState]]:
    """Lease due feeds for polling. A lease held by the same owner (a retry of the same task
    after a crash) is taken over at once; anyone else's waits for it to run out."""
    token = new_token()
    rows = conn.execute(
        _CLAIM_FEEDS,
        {"token": token, "owner": owner, "lease": lease_seconds, "limit": limit, "shard": shard,
         "shards": shards, "ids": list(feed_ids) if feed_ids is not None else None},
    ).fetchall()
    feeds = sorted((FeedState(id=r[0], url=r[1], name=r[2], etag=r[3], last_modified=r[4], body_hash=r[5],
                              consecutive_failures=r[6], poll_interval=r[7]) for r in rows), key=lambda f: f.id)
    return Claim(token, owner, tuple(f.id for f in feeds)), feeds


def feeds_leased_now(conn) -> int:
    """Enabled feeds under a claim whose lease is still running (another poll has them)."""
    return conn.execute(
        """SELECT count(*) FROM feeds WHERE claim_token IS NOT NULL AND enabled AND claimed_until >= now()"""
    ).fetchone()[0]


def orphaned_feed_leases(conn) -> list[dict]:
    """Feeds still claimed by a poll that is gone: its lease ran out, or the run that holds it
    has finished. Each with who held it and until when."""
    rows = conn.execute(
        """SELECT f.id, f.url, f.claimed_by, f.claimed_until
             FROM feeds f
             LEFT JOIN ingest_runs r ON r.run_key = split_part(f.claimed_by, '/', 1)
            WHERE f.claim_token IS NOT NULL AND f.enabled
              AND (f.claimed_until < now() OR (r.status IS NOT NULL AND r.status <> 'running'))
            ORDER BY f.id LIMIT 50""").fetchall()
    return [{"id": r[0], "url": r[1], "claimed_by": r[2], "claimed_until": r[3]} for r in rows]


def feeds_held(conn, token: str, ids: Sequence[int]) -> set[int]:
    """Of `ids`, the feeds still claimed under `token`, locked until the transaction ends; the
    others' results are dropped (their claim ran out and another worker has them)."""
    held = {r[0] for r in conn.execute("SELECT id FROM feeds WHERE id = ANY(%s) AND claim_token = %s ORDER BY id "
                                       "FOR UPDATE", (list(ids), token)).fetchall()}
    for feed_id in sorted(set(ids) - held):
        log_stale("poll", f"feed {feed_id}", token)
    return held


# --- articles -------------------------------------------------------------------------------

_GIVE_UP_SQL = f"""UPDATE articles SET status = 'failed', failed_stage = %(stage)s, {RELEASED}, updated_at = now(),
                  last_error = coalesce(last_error, 'worker_lost: claimed ' || attempts
                      || ' times and never finished (a worker killed or crashed on this article?)')
            WHERE status = %(status)s AND attempts >= %(max)s AND next_attempt_at <= now()
              AND (claimed_until IS NULL OR claimed_until < now())"""  # noqa: S608 (constant fragments only)


def give_up_exhausted(conn, stage: Stage, *, max_attempts: int) -> int:
    """Articles of `stage` claimed `max_attempts` times without finishing end `failed` with their
    last error (or, if none was recorded, the fact that their worker never finished)."""
    return conn.execute(
        _GIVE_UP_SQL, {"stage": stage.value, "status": stage.takes, "max": max_attempts}).rowcount


def claim_articles(conn, stage: Stage, *, owner: str, limit: int = 50, lease_seconds: int = 60,
                   max_attempts: int = 5, ids: Sequence[int] | None = None, exclude: Sequence[int] = (),
                   interleave_hosts: bool = False) -> tuple[Claim, list[ClaimedArticle]]:
    """Lease a batch of articles waiting for `stage` (FOR UPDATE SKIP LOCKED + lease expiry).

    Live work before backlog, oldest first; with `interleave_hosts`, one article per host in turn
    so one big site cannot fill a download batch (chosen from the oldest 20 x `limit` due
    articles, which this claim locks until it commits, so two claimers never share a pool). Articles in `exclude` (deferred earlier in this
    stage run) are skipped. Commit right after so other workers see the lease.
    """
    gave_up = give_up_exhausted(conn, stage, max_attempts=max_attempts)
    token = new_token()
    rows = conn.execute(
        _CLAIM_ARTICLES_INTERLEAVED if interleave_hosts else _CLAIM_ARTICLES,
        {"status": stage.takes, "limit": limit, "pool": limit * 20 if interleave_hosts else limit,
         "lease": lease_seconds, "token": token, "owner": owner,
         "ids": list(ids) if ids is not None else None, "exclude": list(exclude)},
    ).fetchall()
    articles = sorted((ClaimedArticle(id=r[0], url=r[1], attempts=r[2], status=ArticleStatus(r[3]), title=r[4], summary=r[5],
                                      feed_published_at=r[6], final_url=r[7]) for r in rows), key=lambda a: a.id)
    return Claim(token, owner, tuple(a.id for a in articles), gave_up), articles


_RELEASE_SQL = f"""UPDATE articles SET {RELEASED}, attempts = greatest(attempts - 1, 0), updated_at = now()
                    WHERE id = ANY(%s) AND claim_token = %s"""  # noqa: S608 (constant fragments only)


def holding(conn, token: str, ids: Sequence[int]) -> set[int]:
    """Of `ids`, those still claimed under `token`, locked for this transaction so no one can
    claim them until it ends. Writes of a batch go only to these."""
    rows = conn.execute(
        "SELECT id FROM articles WHERE id = ANY(%s) AND claim_token = %s ORDER BY id FOR UPDATE",
        (list(ids), token)).fetchall()
    return {r[0] for r in rows}


def release(conn, token: str, ids: Sequence[int]) -> int:
    """Give articles back untouched (their attempt not counted): a host over its time budget."""
    return conn.execute(
        _RELEASE_SQL, (list(ids), token)).rowcount


_RECORD_FAILURE_SQL = f"""UPDATE articles SET
               status = CASE WHEN %(transient)s AND attempts < %(max)s THEN status ELSE 'failed' END,
               failed_stage = CASE WHEN %(transient)s AND attempts < %(max)s THEN failed_stage ELSE %(stage)s END,
               last_error = %(error)s,
               next_attempt_at = now() + make_interval(secs => %(delay)s * power(2, least(greatest(attempts - 1, 0), 10))),
               {RELEASED}, updated_at = now()
         WHERE id = %(id)s AND {FENCE}
         RETURNING status"""  # noqa: S608 (constant fragments only)


def record_failure(conn, token: str | None, article_id: int, *, stage: Stage | str, error: str,
                   transient: bool, max_attempts: int, retry_after_s: float = 300.0) -> ArticleStatus | None:
    """Record a failed attempt. A transient failure is retried later (with backoff) until
    `max_attempts`; a permanent one, or the last attempt, marks the article failed. Returns the
    new status, or None when the claim was lost (nothing written). `token` None: no claim."""
    row = conn.execute(
        _RECORD_FAILURE_SQL,
        {"transient": transient, "max": max_attempts, "stage": str(stage), "error": safe_text(error, 2000),
         "delay": retry_after_s, "id": article_id, "token": token},
    ).fetchone()
    if row is None:
        log_stale("failure", f"article {article_id}", token)
        return None
    return ArticleStatus(row[0])


def select_for_reprocessing(conn, *, stage: Stage, since: datetime | None = None,
                            ids: Sequence[int] | None = None, limit: int | None = None,
                            skipped: bool = False) -> list[int]:
    """Send articles back to the start of `stage` (extract: needs a stored page; tag: a body), as
    backlog: claimed only when no live work is due, so a big retag never delays new articles.

    Their current annotations stay until the stage replaces them, one article at a time. At most
    `limit` articles (newest first), all when None. `skipped`: only articles tagged with nothing
    because no model was configured for their language (`tag_skipped` says why).
    """
    stage = Stage(stage)
    if stage is Stage.EXTRACT:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (RAW_PAGES_LOCK,))
        where = "EXISTS (SELECT 1 FROM raw_pages p WHERE p.article_id = a.id) AND a.status <> 'discovered'"
        target = ArticleStatus.FETCHED
    elif stage is Stage.TAG:
        where = "a.body IS NOT NULL AND a.status IN ('extracted', 'tagged', 'failed')"
        target = ArticleStatus.EXTRACTED
    else:
        raise ValueError(f"unknown stage {stage!r}")
    if skipped:
        where += " AND a.tag_skipped IS NOT NULL"
    rows = conn.execute(
        sql.SQL("""UPDATE articles a SET status = %(target)s, {done},
                       -- live work already waiting for this stage stays live
                       priority = CASE WHEN a.status = %(target)s AND a.priority = 0 THEN 0 ELSE 1 END
                  WHERE a.id IN (
                        SELECT a.id FROM articles a
                         WHERE {where}
                           AND (%(since)s::timestamptz IS NULL OR a.discovered_at >= %(since)s)
                           AND (%(ids)s::bigint[] IS NULL OR a.id = ANY(%(ids)s))
                           AND (a.status <> 'failed' OR a.failed_stage IN ('extract', 'tag'))
                           AND (a.claimed_until IS NULL OR a.claimed_until < now())
                         ORDER BY a.discovered_at DESC, a.id DESC
                         LIMIT %(limit)s)
              RETURNING a.id""").format(where=sql.SQL(where), done=sql.SQL(DONE)),
        {"target": target, "since": since, "ids": list(ids) if ids is not None else None, "limit": limit},
    ).fetchall()
    return sorted(r[0] for r in rows)


def stuck_articles(conn, hours: float) -> dict[str, int]:
    """Live articles due for work for longer than `hours` and not leased: nothing is picking them
    up. Backlog (retag, backfill) waits behind live work by design and is not counted."""
    return dict(conn.execute(
        """SELECT status, count(*) FROM articles
            WHERE status IN ('discovered', 'fetched', 'extracted') AND priority = 0
              AND next_attempt_at < now() - make_interval(secs => %(s)s)
              AND (claimed_until IS NULL OR claimed_until < now())
            GROUP BY status""", {"s": hours * 3600}).fetchall())


def log_stale(what: str, item: str, token: str | None = None) -> None:
    """The one log line for a result dropped because its claim ran out (`item`: "article 12")."""
    log.warning("stale write dropped: the %s of %s was not recorded because its claim %s ran out "
                "and another worker has it now", what, item, (token or "")[:8])


def renew(conn, tokens: Sequence[str], lease_seconds: int) -> int:
    """Push out the leases of everything still held under `tokens`. Rows the worker is writing
    right now (locked) are skipped: their claim is about to be released anyway, and waiting for
    them could deadlock with the worker's own multi-row writes."""
    if not tokens:
        return 0
    n = conn.execute(
        """UPDATE articles SET claimed_until = now() + make_interval(secs => %s)
            WHERE id IN (SELECT id FROM articles WHERE claim_token = ANY(%s::uuid[])
                          ORDER BY id FOR UPDATE SKIP LOCKED)""", (lease_seconds, list(tokens))).rowcount
    n += conn.execute(
        """UPDATE feeds SET claimed_until = now() + make_interval(secs => %s)
            WHERE id IN (SELECT id FROM feeds WHERE claim_token = ANY(%s::uuid[])
                          ORDER BY id FOR UPDATE SKIP LOCKED)""", (lease_seconds, list(tokens))).rowcount
    return n


class Heartbeat:
    """Renews the leases of the claims it holds, every third of the lease, from a thread with
    its own connection, until stopped. A stage wraps its work in one:

        with Heartbeat(dsn, lease) as hb:
            claim, items = claim_articles(...); hb.add(claim.token)
            ...; hb.remove(claim.token)
    """

    def __init__(self, dsn: str, lease_seconds: int, *, connect=None):
        self.dsn = dsn
        self.lease = lease_seconds
        self.interval = max(0.2, lease_seconds / 3)
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connect = connect
        self.beats = 0

    def add(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def remove(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)

    def _run(self) -> None:
        conn = None
        while not self._stop.wait(self.interval):
            with self._lock:
                tokens = list(self._tokens)
            if not tokens:
                continue
            try:
                if conn is None or conn.closed:
                    conn = self._connect(self.dsn, autocommit=True)
                    conn.execute("SET lock_timeout = '5s'")  # never wait long behind the worker
                renew(conn, tokens, self.lease)
                self.beats += 1
            except Exception as exc:  # the stage itself will meet a lost database; keep trying
                log.warning("could not renew claims (%s: %s); retrying", type(exc).__name__, exc)
                conn = None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Heartbeat:
        if self._connect is None:
            self._connect = connect
        self._thread = threading.Thread(target=self._run, name="newsroom-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
