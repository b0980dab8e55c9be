"""Run a set of long-lived processes in the foreground, the way compose runs services: each in
its own process group with its own log file, restarted when it dies (core services), stopped
together in reverse order.

Each process leaves a pid file in the run directory while it lives, so a later start after a
crash of the supervisor itself (SIGKILL, a closed laptop) finds the orphans and stops them
before it needs their ports.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RESTART_DELAY = 2.0      # seconds before a core service that died is started again
MAX_RESTARTS = 5         # ... within RESTART_WINDOW seconds; one more and the supervisor gives up
RESTART_WINDOW = 120.0


class SupervisorError(Exception):
    """A process kept dying, or every worker is gone."""


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)  # on top of the supervisor's environment
    core: bool = True  # restarted when it dies; a non-core process (a worker) is not


@dataclass(slots=True)
class _Running:
    spec: Spec
    proc: subprocess.Popen
    started: float
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(self, run_dir: Path, log_dir: Path):
        self.run_dir, self.log_dir = run_dir, log_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, _Running] = {}
        self.gone: list[str] = []  # non-core processes that died and stay down

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, spec: Spec) -> subprocess.Popen:
        with open(self.log_file(spec.name), "ab") as out:
            # Its own session: Ctrl-C in the terminal reaches only the supervisor, which stops
            # every group in order; and the whole group (pool children, task processes) can go.
            proc = subprocess.Popen(list(spec.argv), env={**os.environ, **spec.env}, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            previous = self.running.get(spec.name)
            self.running[spec.name] = _Running(spec, proc, time.monotonic(), previous.restarts if previous else [])
            _pid_file(self.run_dir, spec.name).write_text(f"{proc.pid}\n{_start_time(proc.pid)}\n")
        except BaseException:  # Ctrl-C before it was on record: nothing else would ever stop it
            _signal_group(proc.pid, signal.SIGKILL)
            raise
        return proc

    def poll(self) -> list[str]:
        """Look after the processes once: restart a core process that died (raising
        SupervisorError when it keeps dying), let a dead worker go. Returns one line per event."""
        events = []
        for name, r in list(self.running.items()):
            code = r.proc.poll()
            if code is None:
                continue
            _signal_group(r.proc.pid, signal.SIGKILL)  # what it left behind
            _pid_file(self.run_dir, name).unlink(missing_ok=True)
            how = f"signal {-code}" if code < 0 else f"code {code}"
            if not r.spec.core:
                del self.running[name]
                self.gone.append(name)
                events.append(f"{name} exited ({how}); not restarted: its tasks go to the other workers "
                              f"(its output: {self.log_file(name)})")
                continue
            now = time.monotonic()
            r.restarts[:] = [t for t in r.restarts if now - t < RESTART_WINDOW] + [now]
            if len(r.restarts) > MAX_RESTARTS:
                raise SupervisorError(f"{name} died {len(r.restarts)} times within {RESTART_WINDOW:.0f}s "
                                      f"(last: {how}); its output: {self.log_file(name)}")
            events.append(f"{name} exited ({how}); restarting it in {RESTART_DELAY:.0f}s")
            time.sleep(RESTART_DELAY)
            self.start(r.spec)
        return events

    def stop_all(self, timeout: float) -> None:
        """SIGTERM every group, newest first; SIGKILL what is left after `timeout` seconds."""
        order = list(reversed(self.running.values()))
        for r in order:
            _signal_group(r.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for r in order:
            try:
                r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", r.spec.name, timeout)
        for r in order:
            _signal_group(r.proc.pid, signal.SIGKILL)
            r.proc.wait()
            _pid_file(self.run_dir, r.spec.name).unlink(missing_ok=True)
        self.running.clear()

    def kill_all(self) -> None:
        for r in self.running.values():
            _signal_group(r.proc.pid, signal.SIGKILL)


def clear_stale(run_dir: Path, timeout: float = 15.0) -> list[str]:
    """Stop what a previous supervisor left running (it was killed before it could): every
    process group named by a pid file whose leader is still the process the file records (same
    pid, same start time: a recycled pid belongs to something else and is left alone). Returns
    the names stopped."""
    stopped = []
    for pid_file in sorted(run_dir.glob("*.pid")) if run_dir.is_dir() else []:
        try:
            pid_text, started = pid_file.read_text().split("\n")[:2]
            pid = int(pid_text)
        except (OSError, ValueError):
            pid_file.unlink(missing_ok=True)
            continue
        if started and _start_time(pid) == started and _leads_group(pid):
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            _signal_group(pid, signal.SIGKILL)
            stopped.append(pid_file.stem)
        pid_file.unlink(missing_ok=True)
    return stopped


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def _start_time(pid: int) -> str:
    """When the process started (clock ticks after boot, /proc/PID/stat field 22); '' if gone.
    Unlike its command line, which Airflow and Celery rewrite, it never changes."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for a parent that does not
    reap them, as PID 1 in some containers, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal: nothing more we can do
        return True
    return True
