"""Run one DAG with `dag.test()` in this process (called by the DAG tests in a subprocess, with
AIRFLOW_HOME and the metadata database set in the environment). Prints the run's final state."""

import sys

from airflow.dag_processing.dagbag import DagBag


def main(dag_id: str) -> int:
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
