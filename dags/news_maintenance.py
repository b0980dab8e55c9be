"""Newsroom's daily upkeep: prune old raw pages and feed polls, VACUUM (ANALYZE) the big
tables, log every table's size.

Wiring only: each task calls one function of `pipeline.tasks`. Pruning keeps articles, their
text, entities, mentions and topics; it deletes raw pages older than
NEWSROOM_PRUNE_RAW_PAGES_AFTER (of articles past extraction) and feed polls older than
NEWSROOM_PRUNE_POLLS_AFTER, in small batches. Schedule: NEWSROOM_MAINTENANCE_SCHEDULE. Small
bookkeeping tasks: Airflow's default queue.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


def _schedule() -> str:
    from pipeline.config import dag_settings  # here: only airflow.sdk, pendulum up top

    return dag_settings().maintenance_schedule


@dag(
    dag_id="news_maintenance",
    schedule=_schedule(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["newsroom"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5), "retry_exponential_backoff": 2.0,
                  "execution_timeout": pendulum.duration(hours=3)},
)
def news_maintenance():
    @task
    def prune() -> dict:
        from pipeline import tasks

        return tasks.prune()

    @task
    def vacuum_analyze() -> list[str]:
        from pipeline import tasks

        return tasks.vacuum_analyze()

    @task
    def log_table_sizes() -> dict:
        from pipeline import tasks

        return tasks.log_table_sizes()

    prune() >> vacuum_analyze() >> log_table_sizes()


news_maintenance()
