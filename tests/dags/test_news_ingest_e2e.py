"""`news_ingest` end to end with `dag.test()`: a local news site, a real PostgreSQL for both
Newsroom and Airflow's metadata. Rows land, a re-run adds none, a failing feed is recorded
while the run still succeeds."""

import subprocess
import sys
from pathlib import Path

from pipeline import demo

HERE = Path(__file__).resolve().parent


def _dag_test(env, dag_id="news_ingest"):
    out = subprocess.run([sys.executable, str(HERE / "run_dag_test.py"), dag_id, str(HERE.parents[1] / "dags")],
                         env=env, capture_output=True, text=True, timeout=600)
    return out


def test_news_ingest_end_to_end(airflow_env, db_dsn, tmp_path, conn):
    site = demo.DemoSite(port=0).start()
    try:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(demo.feeds_yaml(site.base))
        env = {**airflow_env, "NEWSROOM_DATABASE_URL": db_dsn, "NEWSROOM_FEEDS": str(feeds),
               "NEWSROOM_STATE_DIR": str(tmp_path / "state"), "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
               "NEWSROOM_PER_HOST_DELAY": "0"}
        first = _dag_test(env)
        assert first.returncode == 0, (first.stdout[-3000:], first.stderr[-5000:])
        assert "DAG_RUN_STATE success" in first.stdout or "DAG_RUN_STATE DagRunState.SUCCESS" in first.stdout

        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 -- fixed names
                  for t in ("articles", "article_sources", "raw_pages", "article_entities", "article_topics")}
        n = demo.article_count()
        assert counts["articles"] == n and counts["raw_pages"] == n
        assert counts["article_entities"] > 50 and counts["article_topics"] > 5
        assert conn.execute("SELECT count(*) FROM articles WHERE status = 'tagged'").fetchone()[0] == n
        broken = conn.execute(
            """SELECT p.outcome, p.error_class FROM feed_polls p JOIN feeds f ON f.id = p.feed_id
                WHERE f.url LIKE '%%/broken/%%'""").fetchall()
        assert broken == [("error", "http_5xx")]
        run = conn.execute("SELECT status, feeds_ok, feeds_failed, articles_new, articles_tagged FROM ingest_runs"
                           ).fetchall()
        assert run == [("success", 2, 1, n, n)]

        conn.execute("UPDATE feeds SET next_poll_at = now()")  # all due again
        conn.commit()
        second = _dag_test(env)
        assert second.returncode == 0, second.stderr[-5000:]
        again = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                 for t in counts}
        assert again == counts
        assert conn.execute("SELECT count(*) FROM ingest_runs WHERE status = 'success'").fetchone()[0] == 2
    finally:
        site.stop()
