"""Newsroom's scheduled ingestion: feeds -> pages -> text -> entities and topics -> Postgres.

Wiring only: every task calls one function of `pipeline.tasks`. Stages pass ids and counts,
never bodies, and each claims its own work from Postgres, so retries and extra workers are safe.
For the same reason a stage runs even when a task before it failed (trigger rule all_done: a
failed poll shard must not stop the pages already waiting from being fetched, extracted and
tagged); the run still ends failed, with the reason in `ingest_runs` and the log.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

ARTICLES = Asset("newsroom://articles")
NETWORK_POOL = "newsroom_network"  # caps concurrent network tasks (make run creates it)


def _queues() -> tuple[str, str]:
    """Celery queues (NEWSROOM_NETWORK_QUEUE, NEWSROOM_NLP_QUEUE): network-bound tasks apart from
    CPU-bound ones, so a deployment sizes its workers for each. LocalExecutor ignores them."""
    from pipeline.config import dag_settings  # here, not at the top: see _schedule

    settings = dag_settings()
    return settings.network_queue, settings.nlp_queue


NETWORK_QUEUE, NLP_QUEUE = _queues()


def _schedule() -> str:
    from pipeline.config import dag_settings  # here: only airflow.sdk, pendulum up top

    return dag_settings().schedule


def _run_key() -> str:
    ctx = get_current_context()
    return ctx["run_id"]  # unique per run, also for manual runs whose logical_date is None


def _on_failure(context) -> None:
    """One clear line in the log (and on the run's ingest_runs row) saying why a task failed."""
    import logging

    from pipeline import tasks

    ti = context.get("task_instance")
    exc = context.get("exception")
    lines = str(exc).splitlines() if exc else []
    where = getattr(ti, "task_id", "?")
    if getattr(ti, "map_index", -1) not in (-1, None):
        where += f"[{ti.map_index}]"
    reason = f"{where} failed: {type(exc).__name__}: {lines[0] if lines else ''}"
    logging.getLogger("newsroom.dag").error("NEWSROOM TASK FAILED: %s", reason)
    if getattr(ti, "task_id", "") != "summary" or type(exc).__name__ != "AirflowFailException":
        tasks.mark_failed(context["run_id"], reason)  # (summary's verdict repeats reasons already there)


DEFAULTS = {
    "retries": 3,
    "retry_delay": pendulum.duration(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": pendulum.duration(minutes=10),
    "execution_timeout": pendulum.duration(minutes=20),
    "on_failure_callback": _on_failure,
}


@dag(
    dag_id="news_ingest",
    schedule=_schedule(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["newsroom"],
    doc_md=__doc__,
)
def news_ingest():
    @task
    def begin() -> str:
        from pipeline import tasks

        ctx = get_current_context()
        run_type = ctx["dag_run"].run_type
        return tasks.begin(_run_key(), getattr(run_type, "value", str(run_type)))

    @task(execution_timeout=pendulum.duration(minutes=5))
    def sync_feeds(run_key: str) -> dict:
        from pipeline import tasks

        return tasks.sync()

    @task
    def plan_shards(sync_result: dict) -> list[dict]:
        from pipeline import tasks

        return tasks.plan_poll_shards()

    @task(pool=NETWORK_POOL, queue=NETWORK_QUEUE, map_index_template="{{ shard_label }}")
    def poll_feeds(shard: int, shards: int) -> dict:
        from pipeline import tasks

        get_current_context()["shard_label"] = f"shard {shard + 1} of {shards}"
        return tasks.poll(shard, shards, _run_key())

    @task(pool=NETWORK_POOL, queue=NETWORK_QUEUE, execution_timeout=pendulum.duration(minutes=30),
          trigger_rule="all_done")
    def fetch_pages(polled: list) -> dict:
        from pipeline import tasks

        return tasks.fetch(_run_key())

    @task(trigger_rule="all_done")
    def plan_workers(fetched: dict) -> list[int]:
        from pipeline import tasks

        return tasks.plan_workers()

    @task(queue=NLP_QUEUE, map_index_template="{{ worker_label }}", trigger_rule="all_done")
    def extract(worker: int, fetched: dict) -> dict:
        from pipeline import tasks

        get_current_context()["worker_label"] = f"worker {worker + 1}"
        return tasks.extract(_run_key())

    @task(queue=NLP_QUEUE, execution_timeout=pendulum.duration(minutes=40), map_index_template="{{ worker_label }}",
          trigger_rule="all_done")
    def tag(worker: int, extracted: list) -> dict:
        from pipeline import tasks

        get_current_context()["worker_label"] = f"worker {worker + 1}"
        return tasks.tag(_run_key())

    @task(queue=NLP_QUEUE, trigger_rule="all_done")
    def cluster(tagged: list) -> dict:
        from pipeline import tasks

        return tasks.cluster()

    @task(retries=0, trigger_rule="all_done")
    def quality_checks(run_key: str, sync_r: dict, polled: list, fetched: dict, extracted: list, tagged: list,
                       clustered: dict) -> list[dict]:
        from pipeline import tasks

        return tasks.check(run_key, [sync_r, polled, fetched, extracted, tagged, clustered])

    # Fails (after recording the run) when any task of the run failed: the run ends red.
    @task(outlets=[ARTICLES], trigger_rule="all_done")
    def summary(run_key: str, sync_r: dict, polled: list, fetched: dict, extracted: list, tagged: list,
                clustered: dict, checks: list[dict]) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline import tasks

        try:
            return tasks.summarise(run_key, [sync_r, polled, fetched, extracted, tagged, clustered], checks)
        except tasks.RunFailed as exc:
            raise AirflowFailException(str(exc)) from None  # a verdict on the run: no retries

    run_key = begin()
    synced = sync_feeds(run_key)
    polled = poll_feeds.expand_kwargs(plan_shards(synced))
    fetched = fetch_pages(polled)
    workers = plan_workers(fetched)
    extracted = extract.partial(fetched=fetched).expand(worker=workers)
    tagged = tag.partial(extracted=extracted).expand(worker=workers)
    clustered = cluster(tagged)
    checks = quality_checks(run_key, synced, polled, fetched, extracted, tagged, clustered)
    summary(run_key, synced, polled, fetched, extracted, tagged, clustered, checks)


news_ingest()
