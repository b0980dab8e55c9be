"""One source for what runs: docker-compose.yml's services (and the docker/ scripts they start)
run the commands pipeline/topology.py gives, which are also what `newsroom airflow up` starts,
and every Celery setting `up` gives its processes is one compose gives every host."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import topology
from pipeline.config import Settings
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
COMMON_ENV = COMPOSE["x-airflow-common"]["environment"]


def _script_exec(command: list[str]) -> list[str]:
    """The words of the last `exec` line of the docker/ script a compose command runs."""
    assert command[0] == "bash" and command[1].startswith("/opt/newsroom/bin/"), command
    script = (ROOT / "docker" / Path(command[1]).name).read_text()
    lines = [line.strip() for line in script.splitlines() if line.strip().startswith("exec ")]
    assert lines, f"{command[1]} ends without exec"
    return shlex.split(lines[-1])[1:]


def _compose_args(name: str) -> list[str]:
    """What follows `airflow` in the compose service's command (the image's entrypoint prefixes
    `airflow` to a bare command; a script execs it itself)."""
    command = SERVICES[name]["command"]
    if isinstance(command, str):
        return command.split()
    words = _script_exec(command)
    assert words[0] == "airflow", words
    return words[1:]


@pytest.mark.parametrize("service", topology.AIRFLOW_SERVICES, ids=lambda s: s.name)
def test_each_airflow_service_runs_in_compose_what_airflow_up_starts(service):
    assert service.name in SERVICES
    assert _compose_args(service.name) == list(service.args)


def test_compose_has_exactly_the_services_of_the_topology():
    ours = {s.name for s in topology.AIRFLOW_SERVICES} | {topology.WORKER_SERVICE, topology.BROKER_SERVICE}
    assert set(SERVICES) - {"postgres", "airflow-init"} == ours


def test_the_worker_script_takes_its_command_from_the_topology_module():
    assert _compose_args(topology.WORKER_SERVICE) == ["${args}"]
    script = (ROOT / "docker/start-worker.sh").read_text()
    assert re.search(r'^args="\$\(python -m pipeline\.topology airflow-worker\)"$', script, re.M)


@pytest.mark.parametrize("queues", ["", "nlp", "default,network"])
def test_python_m_topology_prints_the_worker_command_up_uses(queues):
    env = {"PATH": "/usr/bin:/bin", "NEWSROOM_WORKER_QUEUES": queues}
    out = subprocess.run([sys.executable, "-m", "pipeline.topology", "airflow-worker"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    settings = Settings.from_env(env)
    assert out == list(topology.worker_args(topology.worker_queues(settings)))
    assert out[:3] == ["celery", "worker", "--queues"]
    assert out[3] == (queues or "default,network,nlp")


def test_an_unknown_service_or_queue_name_is_a_one_line_error():
    bad = subprocess.run([sys.executable, "-m", "pipeline.topology", "airflow-wrker"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: no service 'airflow-wrker'")
    with pytest.raises(ConfigError, match="NEWSROOM_WORKER_QUEUES"):
        Settings.from_env({"NEWSROOM_WORKER_QUEUES": "nlp,$(reboot)"})
    with pytest.raises(ConfigError, match="NEWSROOM_NLP_QUEUE"):
        Settings.from_env({"NEWSROOM_NLP_QUEUE": "nlp queue"})


def test_every_celery_setting_up_gives_its_processes_is_shared_by_every_compose_host():
    env = topology.celery_env(broker_url=topology.broker_url(6390), result_backend="db+postgresql+psycopg://x")
    assert set(env) <= set(COMMON_ENV), set(env) - set(COMMON_ENV)
    assert COMMON_ENV["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # the same kind of broker (Redis protocol, database 0) and result backend (Airflow's database)
    assert COMMON_ENV["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6390/0"
    assert COMMON_ENV["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg://")


def test_workers_started_by_up_differ_only_by_name_and_log_server():
    settings = Settings()
    base = topology.worker_args(topology.worker_queues(settings))
    local = topology.worker_args(topology.worker_queues(settings), concurrency=1, name="worker-2", serve_logs=False)
    assert local[:len(base)] == base
    assert local[len(base):] == ("--concurrency", "1", "--celery-hostname", "worker-2@%h", "--skip-serve-logs")


def test_a_worker_named_on_a_shared_machine_reports_its_name_as_part_of_its_host(monkeypatch):
    import airflow.utils.net

    monkeypatch.setattr(airflow.utils.net, "getfqdn", lambda: "news-1.example")
    monkeypatch.delenv("NEWSROOM_WORKER_NAME", raising=False)
    assert topology.worker_hostname() == "news-1.example"
    monkeypatch.setenv("NEWSROOM_WORKER_NAME", "worker-2")
    assert topology.worker_hostname() == "news-1.example-worker-2"
    # the dotted path Airflow imports as [core] hostname_callable
    module, _, function = topology.HOSTNAME_CALLABLE.rpartition(".")
    assert getattr(sys.modules[module], function) is topology.worker_hostname


def test_a_worker_refuses_a_queue_no_task_goes_to():
    with pytest.raises(ConfigError, match="NEWSROOM_WORKER_QUEUES names nlpp, a queue no task goes to"):
        topology.worker_queues(Settings.from_env({"NEWSROOM_WORKER_QUEUES": "network,nlpp"}))
    renamed = Settings.from_env({"NEWSROOM_NLP_QUEUE": "spacy", "NEWSROOM_WORKER_QUEUES": "spacy"})
    assert topology.worker_queues(renamed) == ("spacy",)
    assert topology.all_queues(renamed) == ("default", "network", "spacy")


def test_the_broker_listens_on_loopback_only_with_a_password_no_other_user_can_read(tmp_path):
    command = topology.broker_command(port=6390, data_dir=tmp_path)
    assert Path(command[0]).name == "valkey-server" and Path(command[0]).is_file()
    conf = Path(command[1])
    password = topology.broker_password(tmp_path)
    assert conf.read_text() == f"requirepass {password}\n" and len(password) == 48
    assert password not in " ".join(command)  # `ps` shows command lines to every user
    for path in (conf, tmp_path / "password"):
        assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)
    assert topology.broker_password(tmp_path) == password  # made once
    options = dict(zip(command[2::2], command[3::2], strict=False))
    assert options["--bind"] == "127.0.0.1" and options["--protected-mode"] == "yes"
    assert options["--appendonly"] == "yes" and options["--dir"] == str(tmp_path)
    assert topology.broker_url(6390, password) == f"redis://:{password}@127.0.0.1:6390/0"


def test_a_bad_setting_elsewhere_does_not_break_the_dag_files(monkeypatch):
    from pipeline.config import dag_settings

    env = {"NEWSROOM_QC_STUCK_HOURS": "soon", "NEWSROOM_NLP_QUEUE": "spacy"}
    assert dag_settings(env).nlp_queue == "spacy" and dag_settings(env).schedule == "*/30 * * * *"
    with pytest.raises(ConfigError, match="NEWSROOM_NETWORK_QUEUE"):  # its own settings are checked
        dag_settings({"NEWSROOM_NETWORK_QUEUE": "a b"})
