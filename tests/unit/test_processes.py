"""pipeline.processes: what compose does for its services, done for local processes. Real
(tiny) processes, no Airflow."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline import processes
from pipeline.processes import Spec, Supervisor, SupervisorError

SLEEPER = (sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen(['sleep', '300']); time.sleep(300)")
# Like Airflow's task supervisor: its task process moves to a process group of its own.
ESCAPER = (sys.executable, "-c", "import os, subprocess, time; "
           "subprocess.Popen(['sleep', '300'], process_group=0); time.sleep(300)")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _group(sid: int) -> list[int]:
    """The processes of the session `sid` (ps -g selects by session)."""
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(sid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture
def sup(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "RESTART_DELAY", 0.0)
    s = Supervisor(tmp_path / "run", tmp_path / "logs")
    yield s
    s.stop_all(5)


def test_each_process_gets_its_own_group_log_and_pid_file_and_stop_all_ends_every_group(sup):
    proc = sup.start(Spec("svc", SLEEPER))
    assert _wait(lambda: len(_group(proc.pid)) == 2), "the child did not start"
    members = _group(proc.pid)
    assert os.getpgid(proc.pid) == proc.pid
    assert (sup.run_dir / "svc.pid").read_text().split()[0] == str(proc.pid)
    assert sup.log_file("svc").exists()
    sup.stop_all(5)
    assert _wait(lambda: not any(_alive(p) for p in members))
    assert not (sup.run_dir / "svc.pid").exists()


def test_a_core_process_that_dies_is_started_again_and_one_that_keeps_dying_is_an_error(sup):
    sup.start(Spec("flaky", (sys.executable, "-c", "import sys; sys.exit(3)")))
    events = []
    with pytest.raises(SupervisorError, match=r"flaky died 6 times .*code 3"):
        for _ in range(50):
            time.sleep(0.1)
            events += sup.poll()
    assert events[0] == "flaky exited (code 3); restarting it in 0s"


def test_a_worker_that_dies_is_let_go_and_named(sup):
    proc = sup.start(Spec("airflow-worker-1", SLEEPER, core=False))
    os.killpg(proc.pid, signal.SIGKILL)
    assert _wait(lambda: proc.poll() is not None)
    (event,) = sup.poll()
    assert event.startswith("airflow-worker-1 exited (signal 9); not restarted")
    assert sup.gone == ["airflow-worker-1"] and "airflow-worker-1" not in sup.running
    assert not (sup.run_dir / "airflow-worker-1.pid").exists()


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout(sup):
    proc = sup.start(Spec("stubborn", (sys.executable, "-c",
                                       "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                       "print('ready', flush=True); time.sleep(300)")))
    assert _wait(lambda: "ready" in sup.log_file("stubborn").read_text())
    start = time.monotonic()
    sup.stop_all(1)
    assert proc.poll() is not None and time.monotonic() - start < 5


def test_orphans_of_a_killed_supervisor_are_stopped_by_the_next_one(tmp_path):
    first = Supervisor(tmp_path / "run", tmp_path / "logs")
    proc = first.start(Spec("svc", SLEEPER))
    assert _wait(lambda: len(_group(proc.pid)) == 2)
    members = _group(proc.pid)
    # the first supervisor is gone without stopping anything (SIGKILL): its pid file remains,
    # and its children are reaped by someone else (here a thread standing in for init)
    threading.Thread(target=proc.wait, daemon=True).start()
    start = time.monotonic()
    assert processes.clear_stale(tmp_path / "run") == ["svc"]
    assert _wait(lambda: not any(_alive(p) for p in members))
    assert time.monotonic() - start < 5  # SIGTERM was enough
    assert not list((tmp_path / "run").glob("*.pid"))


def test_a_pid_file_whose_pid_now_belongs_to_another_process_is_dropped_and_the_process_left_alone(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        # same pid, another start time: the pid was recycled
        (run / "svc.pid").write_text(f"{other.pid}\n1\n")
        (run / "junk.pid").write_text("not a pid file")
        assert processes.clear_stale(run) == []
        assert other.poll() is None and not list(run.glob("*.pid"))
    finally:
        other.kill()
        other.wait()


def test_a_port_in_use_is_seen(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not processes.port_free(port)
    assert processes.port_free(port)


@pytest.mark.parametrize("how", ["stop_all", "kill_all", "died"])
def test_a_task_process_that_left_its_services_process_group_is_stopped_with_it(sup, how):
    proc = sup.start(Spec("airflow-worker-1", ESCAPER, core=False))
    assert _wait(lambda: len(_group(proc.pid)) == 2)
    members = _group(proc.pid)
    assert len({os.getpgid(p) for p in members}) == 2  # the child is in a group of its own
    if how == "stop_all":
        sup.stop_all(5)
    elif how == "kill_all":
        sup.kill_all()
    else:  # the worker itself is killed: what it left behind goes too
        os.kill(proc.pid, signal.SIGKILL)
        assert _wait(lambda: proc.poll() is not None)
        sup.poll()
    assert _wait(lambda: not any(_alive(p) for p in members)), "the task process outlived its worker"


def test_a_second_supervisor_on_the_same_run_directory_is_refused_while_the_first_holds_it(tmp_path):
    with processes.RunLock(tmp_path / "run"):
        with pytest.raises(SupervisorError, match=rf"another supervisor \(pid {os.getpid()}\) is running"):
            processes.RunLock(tmp_path / "run").__enter__()
    with processes.RunLock(tmp_path / "run"):  # released with the first
        pass
