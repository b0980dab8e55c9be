"""Run one DAG with `dag.test()` in this process (called by the DAG tests in a subprocess, with
AIRFLOW_HOME and the metadata database set in the environment). Prints the run's final state.

With TEST_POLL_SHARDS=n and TEST_FAIL_POLL_SHARD=k (test harness only), the run polls in n
shards and shard k fails without retries, as a shard whose worker died would."""

import os
import sys

from airflow.dag_processing.dagbag import DagBag


def _fail_one_shard(shards: int, failing: int) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from pipeline import tasks

    real_poll = tasks.poll
    tasks.plan_poll_shards = lambda **kw: [{"shard": i, "shards": shards} for i in range(shards)]

    def poll(shard, shards, run_key=None):
        if shard == failing:
            raise AirflowFailException(f"shard {shard} forced to fail by the test")
        return real_poll(shard, shards, run_key)

    tasks.poll = poll


def main(dag_id: str) -> int:
    if os.environ.get("TEST_FAIL_POLL_SHARD"):
        _fail_one_shard(int(os.environ["TEST_POLL_SHARDS"]), int(os.environ["TEST_FAIL_POLL_SHARD"]))
    bag = DagBag(dag_folder=sys.argv[2])
    if bag.import_errors:
        print("IMPORT ERRORS", bag.import_errors)
        return 2
    run = bag.dags[dag_id].test()
    print("DAG_RUN_STATE", run.state)
    for ti in run.get_task_instances():
        print("TASK", ti.task_id, ti.map_index, ti.state)
    return 0 if str(run.state).endswith("success") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
