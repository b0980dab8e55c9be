"""Re-process stored articles after a model, gazetteer, rules or extractor change (no network).

Trigger it by hand with Params: `since` (YYYY-MM-DD, empty = all), `stages` and `limit`
(0 = no limit). The chosen articles are backlog: news_ingest keeps taking new articles first.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

ARTICLES = Asset("newsroom://articles")


def _nlp_queue() -> str:
    """The Celery queue of CPU-bound tasks (NEWSROOM_NLP_QUEUE); LocalExecutor ignores it."""
    from pipeline.config import dag_settings  # here: only airflow.sdk, pendulum up top

    return dag_settings().nlp_queue


@dag(
    dag_id="news_retag",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["newsroom"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=30), "retry_exponential_backoff": 2.0,
                  "execution_timeout": pendulum.duration(hours=4)},
    params={
        "since": Param("", type="string", description="Only articles discovered since this date (YYYY-MM-DD); "
                                                       "empty for all"),
        "stages": Param(["tag"], type="array", items={"type": "string", "enum": ["extract", "tag"]},
                        description="Stages to re-run: extract (from stored pages) and/or tag"),
        "limit": Param(0, type="integer", minimum=0, description="At most this many articles, newest first; "
                                                                 "0 for all that match"),
    },
)
def news_retag():
    @task(outlets=[ARTICLES], queue=_nlp_queue())
    def reprocess() -> dict:
        from pipeline import tasks

        context = get_current_context()
        params = context["params"]
        return tasks.reprocess(params.get("since") or None, params.get("stages") or ["tag"], params.get("limit"),
                               run_id=context["run_id"])

    reprocess()


news_retag()
