"""`newsroom airflow up` stopped by Ctrl-C or SIGTERM: exit 0, no traceback, every service's
whole process group gone, and a reminder that the embedded database keeps running. Airflow is
never really started: a fake `airflow` (a shell script that starts a child of its own and waits)
runs in place of each service, and nothing answers on the API port, so `up` waits for it to
become healthy."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

DRIVER = textwrap.dedent("""
    import os
    from pipeline import runner
    from pipeline.cli import main

    runner.airflow_env = lambda settings, port=8080: {
        "AIRFLOW_HOME": os.environ["FAKE_HOME"],
        "PATH": os.environ["FAKE_BIN"] + os.pathsep + os.environ["PATH"]}
    runner.prepare = lambda settings, env: None
    runner.STOP_TIMEOUT = float(os.environ["FAKE_STOP_TIMEOUT"])
    main(["airflow", "up", "--port", os.environ["FAKE_PORT"]])
""")

FAKE_AIRFLOW = """#!/bin/sh
[ -n "$FAKE_EXIT" ] && exit "$FAKE_EXIT"
[ -n "$FAKE_IGNORE_TERM" ] && trap '' TERM
sleep 300 &
echo $$ >> "$AIRFLOW_HOME/pids"
echo $! >> "$AIRFLOW_HOME/pids"
wait
wait
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _start(tmp_path, database_url="", port=None, **extra):
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    fake = bin_dir / "airflow"
    fake.write_text(FAKE_AIRFLOW)
    fake.chmod(0o755)
    env = {**os.environ, "FAKE_HOME": str(home), "FAKE_BIN": str(bin_dir), "FAKE_PORT": str(port or _free_port()),
           "FAKE_STOP_TIMEOUT": "60", "NEWSROOM_DATABASE_URL": database_url,
           "NEWSROOM_STATE_DIR": str(tmp_path / "state"), **extra}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, home / "pids"


SERVICES = 4  # api-server, scheduler, dag-processor, triggerer: two pids each


def _wait_for_pids(proc, pids: Path, count: int = 2 * SERVICES) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pids.exists() and len(pids.read_text().split()) == count:
            return [int(p) for p in pids.read_text().split()]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the fake airflow did not start: {proc.communicate()}")


def _kill(pids) -> None:
    """Whatever a failed test left of the fake services."""
    for p in pids:
        if _alive(p):
            os.kill(p, signal.SIGKILL)


def _gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_airflow_cleanly_and_reminds_of_the_embedded_database(tmp_path, sig):
    proc, pid_file = _start(tmp_path)
    pids = _wait_for_pids(proc, pid_file)
    try:
        time.sleep(0.5)  # inside wait_healthy's poll loop
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (out, err)
        assert "Traceback" not in err and "Aborted" not in err, err
        assert "stopping Airflow" in out
        assert "embedded database keeps running" in out and "newsroom db stop" in out
        assert _gone(pids), "airflow's process group survived"
    finally:
        _kill(pids)


def test_an_airflow_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path):
    proc, pid_file = _start(tmp_path, FAKE_IGNORE_TERM="1", FAKE_STOP_TIMEOUT="1")
    pids = _wait_for_pids(proc, pid_file)
    try:
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Traceback" not in err, (out, err)
        assert _gone(pids) and time.monotonic() - start < 30
    finally:
        _kill(pids)


def test_a_second_ctrl_c_kills_at_once(tmp_path):
    proc, pid_file = _start(tmp_path, FAKE_IGNORE_TERM="1")  # would wait STOP_TIMEOUT (60 s) otherwise
    pids = _wait_for_pids(proc, pid_file)
    try:
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Traceback" not in err, (out, err)
        assert _gone(pids) and time.monotonic() - start < 20
    finally:
        _kill(pids)


def test_no_reminder_with_an_external_database(tmp_path):
    proc, pid_file = _start(tmp_path, database_url="postgresql://u@127.0.0.1:9/db")
    pids = _wait_for_pids(proc, pid_file)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "newsroom db stop" not in out, (out, err)
    assert _gone(pids)


def test_airflow_exiting_by_itself_is_one_line_and_exit_1(tmp_path):
    proc, _ = _start(tmp_path, FAKE_EXIT="3")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "exited with code 3" in err and "Traceback" not in err, (out, err)
    assert err.strip().count("\n") == 0
    assert "newsroom db stop" in out


def test_a_second_up_after_a_crash_stops_what_the_first_left_running(tmp_path):
    first, pid_file = _start(tmp_path)
    orphans = _wait_for_pids(first, pid_file)
    first.kill()  # SIGKILL: no chance to stop its services, which live on in their own sessions
    first.wait()
    assert all(_alive(p) for p in orphans)
    second, _ = _start(tmp_path)
    try:
        assert _gone(orphans, timeout=30), "the second `up` left the first one's services running"
        # Its own services appended theirs: it is past clearing (a SIGTERM while it still
        # clears would stop it before it says what it stopped).
        _wait_for_pids(second, pid_file, count=4 * SERVICES)
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, (out, err)
        assert "stopped what an earlier `airflow up` left running: airflow-apiserver, airflow-dag-processor, " \
               "airflow-scheduler, airflow-triggerer" in out
    finally:
        _kill(int(p) for p in pid_file.read_text().split())


def test_a_port_another_program_holds_is_a_one_line_error_naming_the_option(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc, pid_file = _start(tmp_path, port=port)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err, (out, err)
    assert f"port {port} (Airflow's API server) is taken by another program" in err and "--port" in err
    assert err.strip().count("\n") == 0 and not pid_file.exists()  # nothing was started


def test_a_second_up_while_the_first_runs_is_refused_and_leaves_the_first_alone(tmp_path):
    first, pid_file = _start(tmp_path)
    pids = _wait_for_pids(first, pid_file)
    try:
        second, _ = _start(tmp_path)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1 and "another supervisor" in err and "Traceback" not in err, (out, err)
        assert all(_alive(p) for p in pids)
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
        assert first.returncode == 0 and _gone(pids)
    finally:
        _kill(pids)
