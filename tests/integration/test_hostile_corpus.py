"""The hostile corpus (tests/fixtures/hostile/) through two full ingest cycles.

Two hosts on one port serve good feeds and articles mixed with every kind of hostile feed and
page we know of (tests/hostile_site.py, manifest in tests/fixtures/hostile/manifest.yaml). Two
`ingest_once` cycles run over it; the second finds everything due again. Whatever the corpus
throws, a cycle must finish, every good article must end `tagged`, everything else must end
with a named error, nothing may stay claimed, no local file may be read, and one slow host may
cost the fetch stage no more than its budget.

Each property is its own subtest, so one failing does not hide the others; the outcome of every
route is printed (shown by pytest on failure, or with -s).
"""

from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
import pytest
import yaml
from hostile_site import HostileSite, no_dns, watch_opens

from pipeline import ingest

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 1.0
HOST_BUDGET = 5.0
REQUEST_DEADLINE = CONNECT_TIMEOUT + 3 * READ_TIMEOUT  # one request's overall deadline (fetch.py)
MARGIN = 5.0
MAX_ROBOTS_REQUESTS_PER_RUN = 2
NAMED_ERROR = re.compile(r"^[a-z][a-z0-9_]*: ")


@pytest.fixture
def hostile_site():
    site = HostileSite().start()
    yield site
    site.stop()


def _rows(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    # A fresh connection per query: one failing query (a missing column) cannot poison the others.
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@dataclass
class Cycle:
    n: int
    error: BaseException | None = None
    trace: str = ""
    results: list = field(default_factory=list)
    wall: float = 0.0
    robots_hits: int = 0
    articles_after: int = 0
    run_status: str | None = None

    def stage_seconds(self, stage: str) -> float | None:
        found = [r.seconds for r in self.results if r.stage == stage]
        return sum(found) if found else None


def _cycle(n: int, settings, site: HostileSite, robots_host: str) -> Cycle:
    cycle = Cycle(n)
    mark = site.mark()
    t0 = time.monotonic()
    try:
        _, cycle.results, _ = ingest.ingest_once(settings, run_key=f"hostile-{n}")
    except Exception as exc:  # recorded, asserted on below
        cycle.error, cycle.trace = exc, traceback.format_exc()
    cycle.wall = time.monotonic() - t0
    cycle.robots_hits = len(site.hits(robots_host, "/robots.txt", since=mark))
    dsn = settings.database_url
    cycle.articles_after = _rows(dsn, "SELECT count(*) FROM articles")[0][0]
    status = _rows(dsn, "SELECT status FROM ingest_runs WHERE run_key = %s", (f"hostile-{n}",))
    cycle.run_status = status[0][0] if status else None
    return cycle


def _outcome_report(dsn: str, corpus, cycles: list[Cycle]) -> str:
    """Every route's outcome, for humans reading a failure."""
    out = []
    for c in cycles:
        stages = {r.stage: (round(r.seconds, 2), dict(r.errors)) for r in c.results}
        out.append(f"cycle {c.n}: {'RAISED ' + type(c.error).__name__ if c.error else 'returned'} in {c.wall:.1f}s, "
                   f"run status {c.run_status}, robots.txt hits on host {corpus.robots_hang_host}: {c.robots_hits}, "
                   f"articles {c.articles_after}; stages {stages}")
    feeds = {u: rest for u, *rest in _rows(dsn, """
        SELECT url, last_status, consecutive_failures, last_error_class, left(last_error, 90) FROM feeds""")}
    out.append("\nfeeds (route: last_status failures class | error)")
    for route_id, url in corpus.feeds.items():
        row = feeds.get(url)
        out.append(f"  {route_id:30} " + ("NOT IN DB" if row is None else
                                         f"{row[0]} {row[1]} {row[2]} | {row[3]}"))
    out.append("\narticles (route: status stage | last_error)")
    for url, status, stage, err in _rows(dsn, """
            SELECT url, status, failed_stage, left(last_error, 90) FROM articles ORDER BY url"""):
        route = corpus.route_for_url(url)
        name = route.id if route else "?"
        out.append(f"  {name:30} {status:10} {stage or '-':7} | {err or ''}   <{url[:90]}>")
    return "\n".join(out)


def test_hostile_corpus_two_cycles(settings, hostile_site, tmp_path, subtests):
    corpus = hostile_site.write_feeds_yaml(tmp_path / "feeds.yaml")
    s = replace(settings, feeds_file=corpus.feeds_file, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                per_host_delay=0.0, host_budget=HOST_BUDGET)
    dsn = s.database_url

    # The corpus is IP literals only: nothing may reach a resolver. Local files that feed bodies,
    # redirects and external entities name are watched: none may be opened.
    with no_dns() as lookups, watch_opens(corpus.local_files) as opened:
        cycles = [_cycle(1, s, hostile_site, corpus.robots_hang_host)]
        # The second cycle finds the same corpus due again: every feed is re-polled and every article
        # still waiting is retried now (not after its backoff), so the cycle has real work to redo.
        _rows(dsn, "UPDATE feeds SET next_poll_at = now() RETURNING id")
        _rows(dsn, "UPDATE articles SET next_attempt_at = now() WHERE status NOT IN ('tagged', 'failed') RETURNING id")
        cycles.append(_cycle(2, s, hostile_site, corpus.robots_hang_host))
    print(_outcome_report(dsn, corpus, cycles))
    print(f"\nname lookups attempted: {sorted(set(lookups))}; local files opened: {sorted(set(opened))}")

    for c in cycles:
        with subtests.test(msg=f"ingest_once #{c.n} returns without raising"):
            assert c.error is None, c.trace

    with subtests.test(msg="every good article is tagged"):
        rows = dict((u, (st, err)) for u, st, err in _rows(
            dsn, "SELECT url, status, last_error FROM articles WHERE url = ANY(%s)", (list(corpus.good_articles),)))
        bad = {corpus.good_articles[u]: rows.get(u, ("missing", None)) for u in corpus.good_articles
               if rows.get(u, ("missing",))[0] != "tagged"}
        assert not bad, bad

    with subtests.test(msg="every article not tagged carries a named error class"):
        unnamed = [(url[:120], status, err and err[:120]) for url, status, err in _rows(
            dsn, "SELECT url, status, last_error FROM articles WHERE status <> 'tagged'")
            if not (err and NAMED_ERROR.match(err))]
        assert not unnamed, unnamed

    with subtests.test(msg="every failing feed has last_error_class"):
        unclassified = _rows(dsn, """SELECT url, consecutive_failures, left(last_error, 200) FROM feeds
                                      WHERE consecutive_failures > 0 AND last_error_class IS NULL""")
        assert not unclassified, unclassified

    for table, sql in (("articles", "SELECT count(*) FROM articles WHERE claim_token IS NOT NULL"),
                       ("feeds", "SELECT count(*) FROM feeds WHERE claim_token IS NOT NULL")):
        with subtests.test(msg=f"nothing left claimed in {table}"):
            assert _rows(dsn, sql)[0][0] == 0

    rows = _rows(dsn, "SELECT url, coalesce(title, ''), coalesce(summary, '') FROM articles")
    with subtests.test(msg="no local file read (feed bodies naming files, external entities)"):
        assert not opened, sorted(set(opened))
        leaks = [r[0][:120] for r in rows if any(corpus.local_file_marker in v or "local-file-was-read" in v
                                                 or "root:x:0:0" in v for v in r)]
        hostname = _hostname_token()
        if hostname:
            leaks += [r[0][:120] for r in rows if any(hostname.search(v) for v in r)]
        assert not leaks, leaks
        canary = [h.path for h in hostile_site.hits() if h.path.startswith(corpus.xxe_canary_path)]
        assert not canary, canary

    with subtests.test(msg="every article URL is http(s)"):
        schemes = [r[0][:120] for r in rows if not r[0].startswith(("http://", "https://"))]
        assert not schemes, schemes

    limit = HOST_BUDGET + REQUEST_DEADLINE + MARGIN
    for c in cycles:
        with subtests.test(msg=f"fetch stage of cycle {c.n} within the host budget"):
            seconds = c.stage_seconds("fetch")
            assert seconds is not None, f"cycle {c.n} returned no fetch StageResult ({type(c.error).__name__})"
            assert seconds < limit, f"fetch took {seconds:.1f}s; limit {limit:.0f}s"

    for c in cycles:
        with subtests.test(msg=f"robots.txt that never answers is asked at most twice in cycle {c.n}"):
            assert c.robots_hits <= MAX_ROBOTS_REQUESTS_PER_RUN, c.robots_hits

    with subtests.test(msg="no name lookups: unfetchable hosts are refused before any request"):
        assert not lookups, sorted(set(lookups))

    with subtests.test(msg="robots.txt Disallow is obeyed"):
        assert not [h.path for h in hostile_site.hits("a") if h.path.startswith("/private/")]

    with subtests.test(msg="the second cycle duplicates nothing and ends the same way"):
        # A feed whose poll timed out in cycle 1 (a loaded machine, 1 s timeouts) brings its
        # articles in cycle 2; otherwise cycle 2 finds nothing new.
        poll_1 = next(r for r in cycles[0].results if r.stage == "poll")
        if poll_1.errors.get("timeout"):
            assert cycles[1].articles_after >= cycles[0].articles_after
        else:
            assert cycles[1].articles_after == cycles[0].articles_after
        dup = _rows(dsn, "SELECT url, count(*) FROM articles GROUP BY url HAVING count(*) > 1")
        assert not dup
        assert (type(cycles[0].error), cycles[0].run_status) == (type(cycles[1].error), cycles[1].run_status)


def _hostname_token() -> re.Pattern | None:
    """/etc/hostname's content as a whole-word pattern, unless it is a word the corpus itself uses."""
    try:
        name = Path("/etc/hostname").read_text().strip()
    except OSError:
        return None
    if not name:
        return None
    pattern = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])")
    corpus_text = " ".join(p.read_text("utf-8", "ignore") for p in Path(__file__).parents[1].glob("fixtures/hostile/**/*")
                           if p.is_file())
    return None if pattern.search(corpus_text) else pattern


def test_hostile_site_serves_both_hosts_and_stops_promptly(tmp_path):
    """The server itself: two origins on one port, slow routes block nothing, stop() is prompt."""
    import threading

    import httpx

    site = HostileSite().start()
    try:
        assert site.bases["a"].rsplit(":", 1)[1] == site.bases["b"].rsplit(":", 1)[1]
        corpus = site.write_feeds_yaml(tmp_path / "feeds.yaml")
        listed = [f["url"] for f in yaml.safe_load(corpus.feeds_file.read_text())["feeds"]]
        assert listed == list(corpus.feeds.values()) and len(listed) >= 30
        assert len(corpus.good_articles) >= 9

        stuck = threading.Thread(target=lambda: _swallow(httpx.get, site.url("b", "/robots.txt"), timeout=30),
                                 daemon=True)
        stuck.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        with httpx.Client(timeout=5) as client:
            assert client.get(site.url("a", "/robots.txt")).text.startswith("User-agent")
            good = next(iter(corpus.good_articles))
            assert client.get(good).status_code == 200
            assert client.get(site.url("b", "/pages/binary.html")).status_code == 404  # host b is its own site
            assert client.get(site.url("a", "/items/anything.html")).status_code == 200  # prefix route
        assert time.monotonic() - t0 < 2
        assert len(site.hits("b", "/robots.txt")) == 1
    finally:
        t0 = time.monotonic()
        site.stop()  # with the robots.txt request still hanging
        stopping = time.monotonic() - t0
    assert stopping < 2
    stuck.join(timeout=5)
    assert not stuck.is_alive()


def _swallow(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except Exception:  # the hanging request ends with the server; that is the point
        pass
