"""Backfill: enqueue a site's older articles, listed by its sitemaps or given as URLs.

Trigger it by hand with Params: `sitemaps` (sitemap, sitemap index or Google News sitemap URLs,
gzipped or not), `urls` (article URLs), `since` and `until` (YYYY-MM-DD, by publication date or
lastmod; empty = no bound) and `limit` (0 = NEWSROOM_BACKFILL_MAX_URLS). It only enqueues: the
articles are backlog, which news_ingest downloads, extracts and tags after its live work. A
sitemap listed by an index that fails is logged and counted; a sitemap given here that fails
fails the task, with nothing enqueued. Re-running adds nothing already known.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

NETWORK_POOL = "newsroom_network"  # shared with news_ingest's network tasks (make run creates it)
_DATE = r"^(\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?)?)?$"


def _network_queue() -> str:
    """The Celery queue of network-bound tasks (NEWSROOM_NETWORK_QUEUE); LocalExecutor ignores it."""
    from pipeline.config import dag_settings  # here: only airflow.sdk, pendulum up top

    return dag_settings().network_queue


@dag(
    dag_id="news_backfill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["newsroom"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1), "retry_exponential_backoff": 2.0,
                  "execution_timeout": pendulum.duration(hours=4)},
    params={
        "sitemaps": Param([], type="array", items={"type": "string", "pattern": "^https?://", "maxLength": 2000},
                          maxItems=100, description="Sitemap, sitemap index or Google News sitemap URLs"),
        "urls": Param([], type="array", items={"type": "string", "maxLength": 2000}, maxItems=100_000,
                      description="Article URLs (http or https)"),
        "since": Param("", type="string", pattern=_DATE,
                       description="Only pages published or changed since this date (YYYY-MM-DD); empty for no bound"),
        "until": Param("", type="string", pattern=_DATE,
                       description="Only pages published or changed up to this date (included); empty for no bound"),
        "limit": Param(0, type="integer", minimum=0,
                       description="At most this many articles; 0 for NEWSROOM_BACKFILL_MAX_URLS"),
    },
)
def news_backfill():
    # The lowest priority weight: when the pool is full, news_ingest's network tasks go first.
    @task(queue=_network_queue(), pool=NETWORK_POOL, priority_weight=1, weight_rule="absolute")
    def backfill() -> dict:
        from pipeline import tasks

        p = get_current_context()["params"]
        return tasks.backfill(p.get("sitemaps") or [], p.get("urls") or [], p.get("since"), p.get("until"),
                              p.get("limit"))

    backfill()


news_backfill()
