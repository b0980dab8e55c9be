"""`news_ingest` with one poll shard failing: the other shard's articles are still fetched,
extracted and tagged in the same run, and the run ends failed with the reason recorded."""

import subprocess
import sys
from pathlib import Path

import pytest
from localsite import LocalSite, article_html, rss

HERE = Path(__file__).resolve().parent
PARAS = [
    "Turkey took delivery of the Russian S-400 air defence system, and Washington removed Ankara "
    "from the F-35 fighter programme in response, officials in both capitals said on Wednesday.",
    "NATO allies warned that the missiles could not be integrated with the alliance's own systems.",
    "President Recep Tayyip Erdogan said Turkey would not step back from the purchase.",
    "The dispute has strained relations between the two NATO members for more than a year.",
]


def _site(host: str, tag: str) -> tuple[LocalSite, str]:
    site = LocalSite(host=host).start()
    urls = [site.add(f"/{tag}/{i}.html", article_html(f"{tag} story {i}", [f"{p} ({tag} {i})" for p in PARAS]),
                     content_type="text/html") for i in range(3)]
    site.add(f"/{tag}.xml", rss([(u, f"{tag} story {i}") for i, u in enumerate(urls)]),
             content_type="application/rss+xml")
    return site, site.url(f"/{tag}.xml")


def test_a_failed_poll_shard_does_not_stop_the_other_stages(airflow_env, db_dsn, tmp_path, conn):
    # two hosts, and a shard count that puts them in different shards
    n = next(k for k in range(2, 16) if len({conn.execute("SELECT abs(hashtext(%s)) %% %s", (h, k)).fetchone()[0]
                                            for h in ("127.0.0.1", "127.0.0.2")}) == 2)
    failing = conn.execute("SELECT abs(hashtext('127.0.0.2')) %% %s", (n,)).fetchone()[0]
    (good, good_feed), (lost, lost_feed) = _site("127.0.0.1", "good"), _site("127.0.0.2", "lost")
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds:\n  - url: {good_feed}\n    name: good\n  - url: {lost_feed}\n    name: lost\n")
        env = {**airflow_env, "NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_FEEDS": str(feeds),
               "NEWSROOM_STATE_DIR": str(tmp_path / "state"), "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
               "NEWSROOM_PER_HOST_DELAY": "0", "TEST_POLL_SHARDS": str(n), "TEST_FAIL_POLL_SHARD": str(failing)}
        out = subprocess.run([sys.executable, str(HERE / "run_dag_test.py"), "news_ingest", str(HERE.parents[1] / "dags")],
                             env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 1, (out.stdout[-3000:], out.stderr[-5000:])
        states = {}
        for line in out.stdout.splitlines():
            if line.startswith("TASK "):
                _, task_id, index, state = line.split()
                states.setdefault(task_id, []).append(state)
        assert "DAG_RUN_STATE failed" in out.stdout or "DAG_RUN_STATE DagRunState.FAILED" in out.stdout
        assert states["poll_feeds"].count("failed") == 1 and states["poll_feeds"].count("success") == n - 1
        for later in ("fetch_pages", "extract", "tag", "cluster", "quality_checks"):
            assert set(states[later]) == {"success"}, (later, states[later])
        assert states["summary"] == ["failed"]
        # the other shard's articles went all the way through in this run
        rows = conn.execute("SELECT url, status FROM articles ORDER BY url").fetchall()
        assert [s for _, s in rows] == ["tagged"] * 3 and all("/good/" in u for u, _ in rows)
        status, errors = conn.execute("SELECT status, errors FROM ingest_runs").fetchone()
        assert status == "failed"
        assert any(e.get("stage") == "airflow" and f"poll_feeds[{failing}] failed" in e.get("message", "")
                   for e in errors), errors
        assert f"NEWSROOM TASK FAILED: poll_feeds[{failing}] failed" in out.stdout + out.stderr
    finally:
        good.stop()
        lost.stop()


@pytest.mark.slow
def test_the_hostile_corpus_through_news_ingest_with_one_shard_failing(airflow_env, db_dsn, tmp_path, conn):
    """The hostile corpus (tests/fixtures/hostile) through the DAG, host b's poll shard forced to
    fail: host a's good articles still go all the way to `tagged` in the same run."""
    from hostile_site import HostileSite

    n = next(k for k in range(2, 16) if len({conn.execute("SELECT abs(hashtext(%s)) %% %s", (h, k)).fetchone()[0]
                                            for h in ("127.0.0.1", "127.0.0.2")}) == 2)
    failing = conn.execute("SELECT abs(hashtext('127.0.0.2')) %% %s", (n,)).fetchone()[0]
    with HostileSite() as site:
        corpus = site.write_feeds_yaml(tmp_path / "feeds.yaml")
        on_a = b"".join(site.body(site.by_id(i)) for i in ("good-world-rss", "good-defence-atom"))
        expected = sorted(u for u in corpus.good_articles if u.encode() in on_a)
        assert len(expected) >= 6
        env = {**airflow_env, "NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_FEEDS": str(corpus.feeds_file),
               "NEWSROOM_STATE_DIR": str(tmp_path / "state"), "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
               "NEWSROOM_PER_HOST_DELAY": "0", "NEWSROOM_CONNECT_TIMEOUT": "1", "NEWSROOM_READ_TIMEOUT": "1",
               "NEWSROOM_HOST_BUDGET": "5", "TEST_POLL_SHARDS": str(n), "TEST_FAIL_POLL_SHARD": str(failing)}
        out = subprocess.run([sys.executable, str(HERE / "run_dag_test.py"), "news_ingest",
                              str(HERE.parents[1] / "dags")], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 1, (out.stdout[-3000:], out.stderr[-5000:])
    states: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        if line.startswith("TASK "):
            _, task_id, _index, state = line.split()
            states.setdefault(task_id, []).append(state)
    assert states["poll_feeds"].count("failed") == 1
    for later in ("fetch_pages", "extract", "tag", "cluster", "quality_checks"):
        assert set(states[later]) == {"success"}, (later, states[later], out.stdout[-3000:])
    assert states["summary"] == ["failed"]
    tagged = {u for (u,) in conn.execute("SELECT url FROM articles WHERE status = 'tagged'").fetchall()}
    assert set(expected) <= tagged
    assert conn.execute("SELECT count(*) FROM articles WHERE claim_token IS NOT NULL").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM articles WHERE status <> 'tagged' AND last_error IS NULL "
                        "AND status = 'failed'").fetchone()[0] == 0
    status, errors = conn.execute("SELECT status, errors FROM ingest_runs").fetchone()
    assert status == "failed" and any(f"poll_feeds[{failing}] failed" in e.get("message", "") for e in errors)
