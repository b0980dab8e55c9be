"""Every DAG file imports cleanly, is wiring only, and has the tasks and retries we rely on."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS.glob("*.py"))


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_import_only_the_sdk_and_pendulum_at_top_level(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name in ("__future__", "pendulum") or name == "airflow.sdk", f"{path.name} imports {name}"


INSPECT = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    tasks = {}
    for t in dag.tasks:
        tasks[t.task_id] = {"retries": t.retries, "pool": t.pool, "timeout": t.execution_timeout.total_seconds()
                            if t.execution_timeout else None, "downstream": sorted(t.downstream_task_ids),
                            "map_index_template": getattr(t, "map_index_template", None),
                            "outlets": [str(getattr(o, "uri", o)) for o in t.outlets],
                            "backoff": t.retry_exponential_backoff, "priority_weight": t.priority_weight,
                            "weight_rule": str(getattr(t.weight_rule, "value", t.weight_rule))}
    out["dags"][dag_id] = {"tasks": tasks, "catchup": dag.catchup, "schedule": str(getattr(dag.timetable, "summary", None) or dag.schedule),
                           "params": sorted(dag.params.keys())}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    import json

    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path_factory.mktemp("afhome")),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, "-c", INSPECT, str(DAGS)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_no_import_errors(dagbag):
    assert dagbag["errors"] == {}
    assert set(dagbag["dags"]) == {"news_backfill", "news_ingest", "news_maintenance", "news_retag"}


def test_news_ingest_shape(dagbag):
    dag = dagbag["dags"]["news_ingest"]
    tasks = dag["tasks"]
    assert list(tasks) == ["begin", "sync_feeds", "plan_shards", "poll_feeds", "fetch_pages", "plan_workers",
                           "extract", "tag", "cluster", "quality_checks", "summary"]
    assert dag["catchup"] is False
    assert "30" in dag["schedule"]
    chain = ["sync_feeds", "plan_shards", "poll_feeds", "fetch_pages", "plan_workers", "extract", "tag", "cluster",
             "quality_checks", "summary"]
    for a, b in zip(chain, chain[1:], strict=False):
        assert b in tasks[a]["downstream"], (a, b)
    assert tasks["poll_feeds"]["map_index_template"] and tasks["poll_feeds"]["pool"] == "newsroom_network"
    assert tasks["extract"]["map_index_template"] and tasks["tag"]["map_index_template"]
    assert tasks["fetch_pages"]["pool"] == "newsroom_network"
    for name, t in tasks.items():
        assert t["timeout"], name
        if name != "quality_checks":
            assert t["retries"] >= 2 and t["backoff"], name
    assert tasks["quality_checks"]["retries"] == 0  # a failed check is a verdict, not a glitch
    assert [o.rstrip("/") for o in tasks["summary"]["outlets"]] == ["newsroom://articles"]


def test_news_retag_has_params(dagbag):
    dag = dagbag["dags"]["news_retag"]
    assert dag["params"] == ["limit", "since", "stages"]
    assert dag["schedule"] in ("None", "Never, external triggers only")


def test_news_backfill_has_params_and_one_network_task(dagbag):
    dag = dagbag["dags"]["news_backfill"]
    assert dag["params"] == ["limit", "since", "sitemaps", "until", "urls"]
    assert dag["schedule"] in ("None", "Never, external triggers only")
    assert dag["catchup"] is False
    assert list(dag["tasks"]) == ["backfill"]
    task = dag["tasks"]["backfill"]
    assert task["pool"] == "newsroom_network" and task["timeout"] and task["retries"] >= 2 and task["backoff"]
    assert task["priority_weight"] == 1 and "absolute" in task["weight_rule"]  # news_ingest's tasks go first


def test_news_maintenance_shape(dagbag):
    dag = dagbag["dags"]["news_maintenance"]
    tasks = dag["tasks"]
    assert list(tasks) == ["prune", "vacuum_analyze", "log_table_sizes"]
    assert dag["catchup"] is False
    assert "3" in dag["schedule"] and "30" in dag["schedule"]  # daily, 03:30 (NEWSROOM_MAINTENANCE_SCHEDULE)
    assert tasks["prune"]["downstream"] == ["vacuum_analyze"]
    assert tasks["vacuum_analyze"]["downstream"] == ["log_table_sizes"]
    for name, t in tasks.items():
        assert t["timeout"] and t["retries"] >= 2 and t["backoff"], name
        assert t["pool"] == "default_pool", name  # bookkeeping: no network pool, Airflow's default queue
