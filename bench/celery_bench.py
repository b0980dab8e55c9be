"""One `news_ingest` run under Airflow, CeleryExecutor with 1 and 2 workers, against
LocalExecutor and against `newsroom ingest --once` (no Airflow).

A local site on 127.0.0.1 serves the 91 real pages of the shared extraction-dev set (the demo
site's when absent), repeated under distinct URLs up to --articles, behind a few RSS feeds. Each
configuration starts on a FRESH state directory (a fresh embedded PostgreSQL: Newsroom's data and
Airflow's metadata), so each run takes the whole corpus:

- once:    `newsroom ingest --once` (database started and migrated before the clock starts);
- local:   `newsroom airflow up --executor local`;
- celery1: `newsroom airflow up --executor celery --workers 1 --concurrency 1`;
- celery2: `newsroom airflow up --executor celery --workers 2 --concurrency 1`;

(and, only when asked, celery2_hb1: celery2 with [workers] min_heartbeat_interval=1), all with
NEWSROOM_STAGE_WORKERS=2 (two mapped extract and two mapped tag tasks). Under Airflow
the bench waits until the DAG is parsed (and the Celery workers are ready), then unpauses
news_ingest, triggers one run and times it from the trigger to the run's end. The schedule is a
cron that does not fire between the DAG's start_date and the end of the bench, so the run
measured is the only one (checked with the API). Articles are counted in Newsroom's database
(status tagged).

From the run's task instances: trigger -> first task start, each task's scheduling gap (its
start minus the end of the last upstream task it waited for) and queued -> start, the time no
task ran at all, and which worker ran what.

    .venv/bin/python bench/celery_bench.py [--articles 300] [--only celery1,celery2,local,once]

Prints a table and writes bench/results/celery.json. Asserts nothing. Every process started is
stopped at the end (SIGTERM to `airflow up`, which stops its services; then the embedded
database); any left over is reported and killed by pid.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import write_result
from e2e_bench import DEV, load_pages, serve

from pipeline import embedded, processes, runner, store
from pipeline.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DAG = "news_ingest"
CONFIGS = {
    "celery1": {"executor": "celery", "workers": 1},
    "celery2": {"executor": "celery", "workers": 2},
    "local": {"executor": "local"},
    "once": None,
    # Not run by default: celery2 with the task supervisor polling every second instead of every
    # 5 s ([workers] min_heartbeat_interval), which bounds how long a slot stays taken after a
    # task ended (see median_slot_overhang_s).
    "celery2_hb1": {"executor": "celery", "workers": 2, "env": {"AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1"}},
}
CLI = "import sys; from pipeline.cli import main; sys.exit(main())"
TAG_VAR = "NEWSROOM_BENCH_TAG"  # in every process the bench starts (inherited), to find leftovers
RUN_TIMEOUT = 3600
UP_TIMEOUT = 900


# --- the schedule -------------------------------------------------------------------------------

def dag_start_date() -> datetime:
    text = (ROOT / "dags" / "news_ingest.py").read_text()
    m = re.search(r"start_date=pendulum\.datetime\((\d+),\s*(\d+),\s*(\d+)", text)
    return datetime(*map(int, m.groups()), tzinfo=UTC) if m else datetime(2020, 1, 1, tzinfo=UTC)


def quiet_schedule(now: datetime, start: datetime, margin: timedelta = timedelta(hours=12)) -> str | None:
    """A yearly cron ("0 0 D M *") with no fire time between the DAG's start_date and now+margin:
    with catchup=False, unpausing creates a run for the latest past fire time after start_date,
    so there must be none. Feb 29 first (good until the next leap day); None if no date works."""
    later = [now + timedelta(days=d) for d in range(1, 367)]
    for month, day in [(2, 29)] + [(d.month, d.day) for d in later]:
        fires = []
        for year in range(start.year, (now + margin).year + 1):
            try:
                fires.append(datetime(year, month, day, tzinfo=UTC))
            except ValueError:
                pass
        if not any(start <= f <= now + margin for f in fires):
            return f"0 0 {day} {month} *"
    return None


# --- processes ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any AIRFLOW__*/NEWSROOM_* of the caller's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSROOM_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**env, **extra}


def tagged_pids(tag: str) -> list[int]:
    """Live processes carrying this bench tag in their environment (what this bench started)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if f"{TAG_VAR}={tag}".encode() in (d / "environ").read_bytes().split(b"\0"):
                state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    pids.append(int(d.name))
        except OSError:
            pass
    return pids


def kill_leftovers(tag: str) -> list[str]:
    """Kill, by pid, what is left of the processes this configuration started; describe them."""
    left = []
    for pid in tagged_pids(tag):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
        except OSError:
            continue
        left.append(f"{pid} {cmd}")
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if left:
        time.sleep(5)
        for pid in tagged_pids(tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return left


def stop_database(state: Path) -> None:
    pgdata = (state / "pg").resolve()
    if pgdata.exists():
        embedded.stop(pgdata)


# --- reading the results ------------------------------------------------------------------------

def ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def db_counts(settings: Settings, run_key: str | None) -> dict:
    with store.db.session(settings) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM articles GROUP BY status").fetchall())
        row = None
        if run_key:
            row = conn.execute("SELECT status, durations, articles_tagged FROM ingest_runs WHERE run_key = %s",
                               (run_key,)).fetchone()
        else:
            row = conn.execute("SELECT status, durations, articles_tagged FROM ingest_runs ORDER BY id DESC "
                               "LIMIT 1").fetchone()
        window = conn.execute("SELECT min(fetched_at), max(tagged_at) FROM articles WHERE status = 'tagged'").fetchone()
    return {"articles_by_status": statuses, "tagged": statuses.get("tagged", 0),
            "ingest_run": {"status": row[0], "durations_s": row[1], "articles_tagged": row[2]} if row else None,
            "first_fetched_to_last_tagged_s": round((window[1] - window[0]).total_seconds(), 2) if window[0] else None}


def median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


WORKLOAD_DONE = re.compile(r"Workload finished.*")


def workload_seconds(log_dir: Path) -> dict[str, float]:
    """How long each task instance held its executor slot (by TI id), from the services' logs:
    a Celery worker logs `Workload finished duration=...` when the task's supervisor returns."""
    out = {}
    for path in log_dir.glob("*.log"):
        for m in WORKLOAD_DONE.finditer(path.read_text(errors="replace")):
            fields = dict(re.findall(r"(\w+)=(\S+)", m.group(0)))
            if "workload_id" in fields and "duration" in fields:
                out[fields["workload_id"]] = float(fields["duration"])
    return out


def analyse(run: dict, tis: list[dict], upstream: dict[str, set[str]], t_trigger: datetime,
            slots: dict[str, float] | None = None) -> dict:
    """Timings of one run from its task instances (only the final try of each is listed)."""
    slots = slots or {}
    done = [t for t in tis if t.get("start_date") and t.get("end_date")]
    start = {(t["task_id"], t["map_index"]): ts(t["start_date"]) for t in done}
    end = {(t["task_id"], t["map_index"]): ts(t["end_date"]) for t in done}
    task_end: dict[str, datetime] = {}
    for (task_id, _), e in end.items():
        task_end[task_id] = max(e, task_end.get(task_id, e))
    run_start, run_end = ts(run.get("start_date")), ts(run.get("end_date"))
    wall = (run_end - t_trigger).total_seconds()
    rows, gaps, queue_waits, overhangs = [], [], [], []
    for t in sorted(done, key=lambda t: (ts(t["start_date"]), t["map_index"])):
        key = (t["task_id"], t["map_index"])
        ups = [task_end[u] for u in upstream.get(t["task_id"], ()) if u in task_end]
        ready = max(ups) if ups else run_start
        gap = (start[key] - ready).total_seconds() if ready else None
        qwait = (start[key] - ts(t["queued_when"])).total_seconds() if t.get("queued_when") else None
        if gap is not None:
            gaps.append(gap)
        if qwait is not None:
            queue_waits.append(qwait)
        slot = slots.get(t.get("id", ""))
        duration = (end[key] - start[key]).total_seconds()
        if slot is not None:
            overhangs.append(slot - duration)
        rows.append({"task": t["task_id"] + (f"[{t['map_index']}]" if t["map_index"] >= 0 else ""),
                     "state": t["state"], "try": t.get("try_number"), "host": t.get("hostname"),
                     "queue": t.get("queue"), "start_s": round((start[key] - t_trigger).total_seconds(), 2),
                     "duration_s": round(duration, 2),
                     "slot_held_s": round(slot, 2) if slot is not None else None,
                     "gap_after_upstream_s": round(gap, 2) if gap is not None else None,
                     "queued_to_start_s": round(qwait, 2) if qwait is not None else None})
    # Time during which no task of the run was running: pure orchestration on the critical path.
    spans = sorted((start[k], end[k]) for k in start)
    covered, cur = 0.0, None
    for s, e in spans:
        if cur is None or s > cur[1]:
            if cur:
                covered += (cur[1] - cur[0]).total_seconds()
            cur = [s, e]
        else:
            cur[1] = max(cur[1], e)
    if cur:
        covered += (cur[1] - cur[0]).total_seconds()
    first = min(start.values()) if start else None
    stages = {}
    for name in ("poll_feeds", "fetch_pages", "extract", "tag"):
        keys = [k for k in start if k[0] == name]
        if keys:
            stages[name] = round((max(end[k] for k in keys) - min(start[k] for k in keys)).total_seconds(), 2)
    hosts: dict[str, int] = {}
    for t in done:
        hosts[t.get("hostname") or "?"] = hosts.get(t.get("hostname") or "?", 0) + 1
    busy = sum((end[k] - start[k]).total_seconds() for k in start)
    return {
        "run_state": run.get("state"), "wall_s": round(wall, 2),
        "trigger_to_run_start_s": round((run_start - t_trigger).total_seconds(), 2) if run_start else None,
        "trigger_to_first_task_s": round((first - t_trigger).total_seconds(), 2) if first else None,
        "tasks": len(done), "busy_s": round(busy, 2), "busy_over_wall": round(busy / wall, 3),
        "no_task_running_s": round(wall - covered, 2), "stage_windows_s": stages,
        "median_gap_after_upstream_s": median(gaps), "max_gap_after_upstream_s": round(max(gaps), 2) if gaps else None,
        "median_queued_to_start_s": median(queue_waits),
        # a Celery slot stays taken after the task's end_date until its supervisor returns
        "median_slot_overhang_s": median(overhangs),
        "max_slot_overhang_s": round(max(overhangs), 2) if overhangs else None,
        "slot_overhangs_over_2s": sum(o > 2 for o in overhangs),
        "total_slot_overhang_s": round(sum(overhangs), 2),
        "hosts": hosts, "task_instances": rows,
    }


# --- one configuration --------------------------------------------------------------------------

def run_once(state: Path, env: dict[str, str]) -> dict:
    """`newsroom ingest --once` on a fresh database (started and migrated before the clock)."""
    settings = Settings.from_env(env)
    with store.db.session(settings, autocommit=True) as conn:
        store.migrations.migrate(conn)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CLI, "ingest", "--once", "--no-progress"], env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    wall = time.perf_counter() - t0
    (state / "once.log").write_text(proc.stdout + proc.stderr)
    out = {"exit_code": proc.returncode, "wall_s": round(wall, 2), **db_counts(settings, None)}
    if proc.returncode not in (0, 1):
        out["error_tail"] = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return out


def run_airflow(state: Path, env: dict[str, str], executor: str, workers: int, concurrency: int,
                echo, monitor=None) -> dict:
    """`monitor(event, **info)`, if given, is called at "ready" (workers ready, before the DAG is
    unpaused: home=AIRFLOW_HOME), "triggered" (run_id=) and "finished" (run=, tis=), and may block."""
    notify = monitor or (lambda event, **info: None)
    port, broker = free_port(), free_port()
    # Log servers Airflow would open on fixed ports: other Airflows on this machine may hold them.
    env = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
           "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
    argv = [sys.executable, "-c", CLI, "airflow", "up", "--port", str(port), "--no-trigger", "--executor", executor]
    if executor == "celery":
        argv += ["--workers", str(workers), "--concurrency", str(concurrency), "--broker-port", str(broker)]
    log_path = state / "up.log"
    t_up = time.perf_counter()
    with open(log_path, "w") as log:
        up = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        # `up --no-trigger` prints the UI's address once the DAG is parsed.
        deadline = time.monotonic() + UP_TIMEOUT
        while "Airflow UI:" not in log_path.read_text():
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`airflow up` did not come up: {log_path.read_text()[-1500:]}")
            time.sleep(1)
        home = state.resolve() / "airflow"
        if executor == "celery":  # a task queued before its worker listens would time the boot
            for i in range(1, workers + 1):
                wlog = home / "services" / f"airflow-worker-{i}.log"
                while not (wlog.exists() and " ready." in wlog.read_text(errors="replace")):
                    if up.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"worker-{i} did not become ready: {log_path.read_text()[-1500:]}")
                    time.sleep(1)
        startup = time.perf_counter() - t_up
        notify("ready", home=home)
        api = runner.Api(f"http://localhost:{port}", runner.admin_password({"AIRFLOW_HOME": str(home)}))
        dag = api.client.get(f"/api/v2/dags/{DAG}").json()
        echo(f"  up in {startup:.0f}s; schedule {dag.get('timetable_summary')}, next run after "
             f"{dag.get('next_dagrun_run_after')}")
        upstream: dict[str, set[str]] = {}
        for task in api.client.get(f"/api/v2/dags/{DAG}/tasks").json()["tasks"]:
            for down in task.get("downstream_task_ids", []):
                upstream.setdefault(down, set()).add(task["task_id"])
        api.unpause(DAG)
        due = ts(dag.get("next_dagrun_run_after"))
        if due and due <= datetime.now(UTC):  # no quiet schedule: let the run unpausing makes end first
            wait_for_scheduled_run(api, up, echo)
        t_trigger = datetime.now(UTC)
        run_id = api.trigger(DAG)
        notify("triggered", run_id=run_id)
        path = f"/api/v2/dags/{DAG}/dagRuns/{run_id}"
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            run = api.client.get(path).json()
            if run.get("state") in ("success", "failed"):
                break
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} did not end (state {run.get('state')}): "
                                   f"{log_path.read_text()[-1500:]}")
            time.sleep(1)
        tis = api.client.get(f"{path}/taskInstances", params={"limit": 1000}).json()["task_instances"]
        notify("finished", run=run, tis=tis)
        runs = api.client.get(f"/api/v2/dags/{DAG}/dagRuns", params={"limit": 100}).json()["dag_runs"]
        others = [{"run_id": r["dag_run_id"], "run_type": r.get("run_type"), "state": r.get("state")}
                  for r in runs if r["dag_run_id"] != run_id]
        result = {"startup_s": round(startup, 1), "schedule": dag.get("timetable_summary"),
                  "next_dagrun_run_after": dag.get("next_dagrun_run_after"), "run_id": run_id,
                  "other_runs": others, **analyse(run, tis, upstream, t_trigger, workload_seconds(home / "services"))}
        result.update(db_counts(Settings.from_env(env), run_id))
        return result
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(timeout=runner.STOP_TIMEOUT + 60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
        processes.clear_stale(state.resolve() / "airflow" / "run")  # if `up` itself had to be killed


def wait_for_scheduled_run(api: runner.Api, up: subprocess.Popen, echo, appear: float = 120) -> None:
    deadline = time.monotonic() + appear
    while time.monotonic() < deadline and up.poll() is None:
        runs = api.client.get(f"/api/v2/dags/{DAG}/dagRuns").json()["dag_runs"]
        if runs and all(r.get("state") in ("success", "failed") for r in runs):
            echo(f"  waited for the scheduled run(s) unpausing created: {[r['dag_run_id'] for r in runs]}")
            return
        if runs:
            deadline = time.monotonic() + RUN_TIMEOUT
        time.sleep(2)


def run_config(name: str, args, base_env: dict[str, str], feeds_yaml: str, echo, monitor=None) -> dict:
    tag = uuid.uuid4().hex
    state = Path(tempfile.mkdtemp(prefix="cb", dir="/tmp"))  # short: the database socket lives there
    (state / "feeds.yaml").write_text(feeds_yaml)
    env = child_env({**base_env, "NEWSROOM_STATE_DIR": str(state), "NEWSROOM_FEEDS": str(state / "feeds.yaml"),
                     TAG_VAR: tag})
    load_before = os.getloadavg()
    out: dict = {"config": name}
    try:
        cfg = CONFIGS[name]
        if cfg is None:
            out.update(run_once(state, env))
        else:
            out.update({"executor": cfg["executor"], "workers": cfg.get("workers"),
                        "concurrency": args.concurrency if cfg["executor"] == "celery" else None})
            out.update({"extra_env": cfg["env"]} if cfg.get("env") else {})
            out.update(run_airflow(state, {**env, **cfg.get("env", {})}, cfg["executor"], cfg.get("workers", 0),
                                   args.concurrency, echo, monitor))
    except Exception as exc:  # one configuration failing must not lose the others
        out["error"] = f"{type(exc).__name__}: {exc}"[-2000:]
        echo(f"  {name} FAILED: {out['error'][-500:]}")
    finally:
        out["load_avg_before"] = [round(x, 2) for x in load_before]
        out["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        try:
            stop_database(state)
        except Exception as exc:
            out["db_stop_error"] = str(exc)
        left = kill_leftovers(tag)
        if left:
            out["leftover_processes_killed"] = left
            echo(f"  {len(left)} process(es) were left running and were killed: {left[:3]}")
        if args.keep:
            out["state_dir"] = str(state)
        else:
            shutil.rmtree(state, ignore_errors=True)
    return out


# --- main ---------------------------------------------------------------------------------------

def prepare_corpus(articles: int, feeds: int, stage_workers: int):
    """Serve `articles` pages behind `feeds` RSS feeds on 127.0.0.1; returns (pages, server, base
    URL, schedule, feeds.yaml text, the NEWSROOM_* environment every configuration shares).
    The caller shuts the server down."""
    pages = load_pages(91, math.ceil(articles / 91))[:articles]
    server, base = serve(pages, feeds)
    schedule = quiet_schedule(datetime.now(UTC), dag_start_date())
    if schedule is None:  # the run Airflow creates on unpause is then seen in other_runs
        schedule = "0 0 1 1 *"
    feeds_yaml = "feeds:\n" + "".join(f"  - url: {base}/feed{f}.xml\n    name: Bench feed {f}\n"
                                      for f in range(feeds))
    base_env = {"NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1", "NEWSROOM_PER_HOST_DELAY": "0",
                "NEWSROOM_PER_HOST_CONCURRENCY": "8", "NEWSROOM_STAGE_WORKERS": str(stage_workers),
                "NEWSROOM_SCHEDULE": schedule}
    return pages, server, base, schedule, feeds_yaml, base_env


def fmt(v, spec=".2f") -> str:
    return "-" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=300, help="articles in the corpus (the pages repeated)")
    ap.add_argument("--only", default="celery1,celery2,local,once",
                    help="configurations to run, in this order: " + ",".join(CONFIGS))
    ap.add_argument("--feeds", type=int, default=5)
    ap.add_argument("--stage-workers", type=int, default=2, help="NEWSROOM_STAGE_WORKERS")
    ap.add_argument("--concurrency", type=int, default=1, help="task slots per Celery worker")
    ap.add_argument("--keep", action="store_true", help="keep each state directory (logs) for a look")
    ap.add_argument("--name", default="celery", help="result file: bench/results/NAME.json")
    args = ap.parse_args()
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in only if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")

    # SIGTERM stops the bench like Ctrl-C: through every `finally`, which stops what it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    pages, server, base, schedule, feeds_yaml, base_env = prepare_corpus(args.articles, args.feeds,
                                                                         args.stage_workers)
    print(f"{len(pages)} pages ({'shared extraction-dev' if DEV.is_dir() else 'demo site'}) behind {args.feeds} "
          f"feeds at {base}; schedule {schedule!r}; load average {os.getloadavg()[0]:.2f}", flush=True)

    def echo(msg: str) -> None:
        print(msg, flush=True)

    rows = {}
    try:
        for name in only:
            echo(f"{name}: fresh state, running ...")
            t0 = time.perf_counter()
            rows[name] = run_config(name, args, base_env, feeds_yaml, echo)
            r = rows[name]
            echo(f"  {name}: {r.get('tagged')} tagged in {r.get('wall_s')}s "
                 f"(config total {time.perf_counter() - t0:.0f}s)")
    finally:
        server.shutdown()

    def rate(r):
        return r["tagged"] / r["wall_s"] if r.get("wall_s") and r.get("tagged") is not None else None

    once = rate(rows["once"]) if "once" in rows else None
    print(f"\n{len(pages)} articles, NEWSROOM_STAGE_WORKERS={args.stage_workers}, Celery workers with "
          f"--concurrency {args.concurrency}; {os.cpu_count()} CPUs")
    print(f"{'config':11} {'tagged':>6} {'wall s':>7} {'art/s':>6} {'vs once':>7} {'trig->1st':>9} "
          f"{'gap med':>7} {'q->start':>8} {'slot+':>5} {'idle s':>6} {'busy/wall':>9}  state")
    for name, r in rows.items():
        a = rate(r)
        print(f"{name:11} {fmt(r.get('tagged'), 'd'):>6} {fmt(r.get('wall_s')):>7} {fmt(a):>6} "
              f"{fmt(a / once if a and once else None):>7} {fmt(r.get('trigger_to_first_task_s')):>9} "
              f"{fmt(r.get('median_gap_after_upstream_s')):>7} {fmt(r.get('median_queued_to_start_s')):>8} "
              f"{fmt(r.get('median_slot_overhang_s')):>5} "
              f"{fmt(r.get('no_task_running_s')):>6} {fmt(r.get('busy_over_wall')):>9}  "
              f"{r.get('run_state') or r.get('error', '')[:60] or ('exit ' + str(r.get('exit_code')))}")
    ratios = {}
    if rate(rows.get("celery1", {})) and rate(rows.get("celery2", {})):
        ratios["celery2_over_celery1"] = round(rate(rows["celery2"]) / rate(rows["celery1"]), 3)
    if rate(rows.get("local", {})) and rate(rows.get("celery2", {})):
        ratios["celery2_over_local"] = round(rate(rows["celery2"]) / rate(rows["local"]), 3)
    if once:
        for name in ("celery1", "celery2", "celery2_hb1", "local"):
            if rate(rows.get(name, {})):
                ratios[f"{name}_over_once"] = round(rate(rows[name]) / once, 3)
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}x")
    for name, r in rows.items():
        if r.get("stage_windows_s"):
            print(f"  {name}: stage windows {r['stage_windows_s']}  hosts {r['hosts']}")
        elif r.get("ingest_run"):
            print(f"  {name}: stages {r['ingest_run']['durations_s']}")
    out = write_result(args.name, {"args": vars(args), "articles": len(pages), "schedule": schedule,
                                   "corpus": "shared extraction-dev" if DEV.is_dir() else "demo site",
                                   "columns": {"trig->1st": "trigger to the first task's start_date (s)",
                                               "gap med": "median over tasks of start minus the end of the "
                                                          "last upstream task (s)",
                                               "q->start": "median queued_when -> start_date (s)",
                                               "slot+": "median seconds a Celery slot stayed taken after the "
                                                        "task's end_date (supervisor exit)",
                                               "idle s": "run wall time during which no task was running"},
                                   "ratios": ratios, **rows})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
