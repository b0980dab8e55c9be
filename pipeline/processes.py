"""Run a set of long-lived processes in the foreground, the way compose runs services: each in
its own session with its own log file, restarted when it dies (core services), stopped workers
first, then the rest in reverse order of start.

A process's session holds everything it started, even what moved to a process group of its own
(Airflow puts each task process in one): killing a service kills its session, so no task
process of a dead worker lives on. Each process leaves a pid file in the run directory while it
lives, so a later start after a crash of the supervisor itself (SIGKILL, a closed laptop) finds
the orphans and stops them before it needs their ports. A lock on the run directory keeps a
second supervisor from taking over the services of one that still runs.
"""

from __future__ import annotations

import fcntl
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
            # every service in order; and all a service started can be found and stopped.
            proc = subprocess.Popen(list(spec.argv), env={**os.environ, **spec.env}, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                previous = self.running.get(spec.name)
                self.running[spec.name] = _Running(spec, proc, previous.restarts if previous else [])
                _pid_file(self.run_dir, spec.name).write_text(f"{proc.pid}\n{_start_time(proc.pid)}\n")
            except BaseException:  # Ctrl-C before it was on record: nothing else would ever stop it
                kill_session(proc.pid)
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
            kill_session(r.proc.pid)  # what it left behind (a worker's task processes)
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
        """Stop everything within `timeout` seconds, as compose does: the workers first (SIGTERM
        to the worker itself, which lets its running tasks finish: a warm shutdown), then the
        other services, newest first (SIGTERM to their process group); then SIGKILL to every
        session, which takes whatever is left, task processes included."""
        deadline = time.monotonic() + timeout
        workers = [r for r in self.running.values() if not r.spec.core]
        core = [r for r in reversed(self.running.values()) if r.spec.core]
        for phase, leader_only in ((workers, True), (core, False)):
            for r in phase:
                if leader_only:
                    _signal(r.proc.pid, signal.SIGTERM)
                else:
                    _signal_group(r.proc.pid, signal.SIGTERM)
            for r in phase:
                try:
                    r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop within %.0fs; killing it", r.spec.name, timeout)
        for r in self.running.values():
            kill_session(r.proc.pid)
            r.proc.wait()
            _pid_file(self.run_dir, r.spec.name).unlink(missing_ok=True)
        self.running.clear()

    def kill_all(self) -> None:
        for r in self.running.values():
            kill_session(r.proc.pid)


class RunLock:
    """Held by a supervisor for its whole life: a second one on the same run directory fails
    at once instead of taking the first one's services for orphans."""

    def __init__(self, run_dir: Path):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "supervisor.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SupervisorError(f"another supervisor (pid {holder}) is running on {self.path.parent}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def clear_stale(run_dir: Path, timeout: float = 15.0) -> list[str]:
    """Stop what a previous supervisor left running (it was killed before it could; hold the
    RunLock before calling this): every session named by a pid file whose leader is still the
    process the file records (same pid, same start time: a recycled pid belongs to something
    else and is left alone). Returns the names stopped."""
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
            while session_members(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            kill_session(pid)
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


def _stat(path: Path) -> list[str] | None:
    """The fields of a /proc/PID/stat after the command name (from field 3, the state), or None
    when the process is gone."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _start_time(pid: int) -> str:
    """When the process started (clock ticks after boot, /proc/PID/stat field 22); '' if gone.
    Unlike its command line, which Airflow and Celery rewrite, it never changes."""
    fields = _stat(Path(f"/proc/{pid}/stat"))
    return fields[19] if fields else ""


def session_of(pid: int) -> int | None:
    """The session a process belongs to (/proc/PID/stat field 6), or None when it is gone."""
    fields = _stat(Path(f"/proc/{pid}/stat"))
    return int(fields[3]) if fields else None


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def session_members(sid: int) -> list[int]:
    """The live processes of a session (zombies, waiting for a parent that does not reap them,
    as PID 1 in some containers, do not count)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(stat)
        if fields and int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def kill_session(sid: int) -> None:
    """SIGKILL every process of the session `sid` (its leader's pid): a service and all it
    started, whatever process group they moved to."""
    for _ in range(3):  # a process forked meanwhile is caught on the next pass
        pids = session_members(sid)
        if not pids:
            return
        for pid in pids:
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # gone, or a member we may not signal
        pass
