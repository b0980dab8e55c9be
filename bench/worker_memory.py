"""The memory a Celery worker needs: its own base, one NLP task slot (spaCy model loaded), one
network task slot. For the sizing rule in docs/deployment.md.

One `news_ingest` run under `newsroom airflow up --executor celery --workers 1 --concurrency C`
(default 2) with NEWSROOM_STAGE_WORKERS=2, so two tag (and two extract) tasks run at once on the
one worker, on the local corpus of celery_bench.py (the shared extraction-dev pages on 127.0.0.1),
started, triggered and cleaned up with celery_bench.py's helpers.

Every --interval seconds (0.25) from the moment the worker is ready until the run ends, every
process of the worker is read from /proc: pid, ppid, title, RSS and PSS/USS (smaps_rollup).
"The worker's processes" are its process group AND all its descendants: Airflow 3 puts each task
process in a process group of its own. Under Celery's prefork pool the tree is

    worker main process (+ the log server it forks)
    └── pool child                 "airflow supervisor: <ti id>" while it runs a task
        └── task process           "airflow worker -- <ti id>" (forked by the supervisor)

so a task slot is a pool child plus, while a task runs, its task process; both titles name the
task instance, which the run's task instances (API) turn into a task id. Sums use PSS (RSS counts
pages shared by forked processes once per process).

Derived: base = the worker without its slots (main process + log server, peak over the run);
slot of a kind = peak over its tasks of PSS(pool child) + PSS(task process) in one sample. The
check: base + C x NLP slot against the peak of the whole worker.

    .venv/bin/python bench/worker_memory.py [--articles 150] [--concurrency 2] [--interval 0.25]

Prints a table and writes bench/results/worker_memory.json. Asserts nothing. Every process
started is stopped at the end (celery_bench.run_config).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

from celery_bench import prepare_corpus, run_config
from common import write_result

MIB = 1024  # smaps values are in kB
NLP = {"extract", "tag", "cluster"}
NETWORK = {"poll_feeds", "fetch_pages"}
WORKER = "airflow-worker-1"


def kind_of(task_id: str | None) -> str:
    if task_id in NLP:
        return "nlp"
    if task_id in NETWORK:
        return "network"
    return "small" if task_id else "unknown"


# --- /proc ---------------------------------------------------------------------------------------

def _stat(pid: str) -> tuple[int, int, str] | None:
    """(ppid, pgrp, state) of a live process, None if gone."""
    try:
        after = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(after[1]), int(after[2]), after[0]


def _title(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    title = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    if not title:
        try:
            title = "[" + Path(f"/proc/{pid}/comm").read_text().strip() + "]"
        except OSError:
            pass
    return title


def _rollup(pid: int) -> dict[str, int] | None:
    """RSS, PSS, USS (private clean + dirty) and swap in kB, from smaps_rollup."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            fields[key] = int(rest.split()[0])
    if "Rss" not in fields:  # a kernel thread, or a process that just exited
        return None
    return {"rss": fields["Rss"], "pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0), "swap": fields.get("Swap", 0)}


def ti_of(title: str) -> str | None:
    """The task instance id a supervisor's or task process's title names."""
    for prefix in ("airflow supervisor: ", "airflow worker -- "):
        if title.startswith(prefix):
            return title[len(prefix):].split()[0]
    return None


def snapshot(root: int) -> list[dict]:
    """Every live process in `root`'s process group or below it, with its role in the worker."""
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(d)
            if st and st[2] != "Z":
                procs[int(d)] = st
    if root not in procs:
        return []
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    depth = {root: 0}
    stack = [root]
    while stack:
        pid = stack.pop()
        for c in children.get(pid, ()):
            depth[c] = depth[pid] + 1
            stack.append(c)
    for pid, (_, pgrp, _) in procs.items():
        if pgrp == root and pid not in depth:
            depth[pid] = -1  # in the group but not below the worker (never seen so far)
    rows = []
    for pid, dep in depth.items():
        mem = _rollup(pid)
        if mem is None:
            continue
        title = _title(pid)
        rows.append({"pid": pid, "ppid": procs[pid][0], "pgrp": procs[pid][1], "depth": dep, "title": title[:160],
                     **mem})
    # roles: needs the whole tree (a pool child is a child of main that is, or was, a supervisor)
    by_pid = {r["pid"]: r for r in rows}
    for r in rows:
        own = ti_of(r["title"])
        parent = by_pid.get(r["ppid"])
        if r["depth"] == 0:
            r["role"] = "main"
        elif r["depth"] == 1:
            # else the log server (and any helper) `airflow celery worker` forks
            r["role"] = "pool" if ("ForkPoolWorker" in r["title"] or own) else "log server"
        elif r["depth"] == 2 and parent and parent.get("role") == "pool":
            r["role"] = "task"
        else:
            r["role"] = "task-child" if r["depth"] > 2 else "other"
        r["ti"] = own or (ti_of(parent["title"]) if parent and r["role"] in ("task", "pool") else None)
    for r in rows:  # a task process's children belong to its task
        if r["role"] == "task-child" and not r["ti"]:
            p = by_pid.get(r["ppid"])
            while p and not p.get("ti") and p["depth"] > 2:
                p = by_pid.get(p["ppid"])
            r["ti"] = p.get("ti") if p else None
    return rows


class Sampler:
    """Samples the worker whose pid file is in `run_dir` every `interval` s in a thread."""

    def __init__(self, interval: float):
        self.interval = interval
        self.samples: list[dict] = []  # {"t": monotonic, "procs": [...]}
        self.t_trigger: float | None = None
        self.t_end: float | None = None
        self.root: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.max_sample_s = 0.0

    def start(self, run_dir: Path) -> None:
        self.root = int((run_dir / f"{WORKER}.pid").read_text().split()[0])
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            t = time.monotonic()
            procs = snapshot(self.root)
            self.max_sample_s = max(self.max_sample_s, time.monotonic() - t)
            if procs:
                self.samples.append({"t": t, "procs": procs})
            nxt += self.interval
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)


# --- analysis ------------------------------------------------------------------------------------

def mib(kb: float | None) -> float | None:
    return None if kb is None else round(kb / MIB, 1)


def summarise(s: Sampler, tis: list[dict], idle_settle: float) -> dict:
    names = {t["id"]: (t["task_id"], t["map_index"]) for t in tis if t.get("id")}
    t0 = s.t_trigger
    idle = [x for x in s.samples if x["t"] < t0 and x["t"] >= s.samples[0]["t"] + idle_settle] if s.samples else []
    run = [x for x in s.samples if x["t"] >= t0 and (s.t_end is None or x["t"] <= s.t_end)]

    def total(x, key="pss"):
        return sum(p[key] for p in x["procs"])

    # idle: the median sample (by PSS total) of the settled idle window
    idle_out = None
    if idle:
        mid = sorted(idle, key=total)[len(idle) // 2]
        idle_out = {"samples": len(idle), "pss_mib": mib(total(mid)), "rss_mib": mib(total(mid, "rss")),
                    "processes": [{"role": p["role"], "pid": p["pid"], "title": p["title"][:80],
                                   "pss_mib": mib(p["pss"]), "rss_mib": mib(p["rss"]), "uss_mib": mib(p["uss"])}
                                  for p in sorted(mid["procs"], key=lambda p: p["depth"])]}
    pool_idle = [p["pss"] for x in idle for p in x["procs"] if p["role"] == "pool" and not p.get("ti")]
    base_idle = [sum(p["pss"] for p in x["procs"] if p["role"] in ("main", "log server", "other")) for x in idle]

    peak = max(run, key=total) if run else None
    peak_out = None
    if peak:
        peak_out = {"t_s": round(peak["t"] - t0, 2), "pss_mib": mib(total(peak)), "rss_mib": mib(total(peak, "rss")),
                    "max_rss_sum_mib": mib(max(total(x, "rss") for x in run)),
                    "processes": [{"role": p["role"], "task": "[".join(map(str, names.get(p.get("ti"), ("?",))))
                                   + ("]" if p.get("ti") in names else "") if p.get("ti") else None,
                                   "pss_mib": mib(p["pss"]), "rss_mib": mib(p["rss"]), "uss_mib": mib(p["uss"])}
                                  for p in sorted(peak["procs"], key=lambda p: p["depth"])]}

    # per task instance: its task process (and children) and its slot (the pool child running it)
    per_ti: dict[str, dict] = {}
    for x in run:
        slot: dict[str, dict] = {}
        for p in x["procs"]:
            if not p.get("ti"):
                continue
            a = slot.setdefault(p["ti"], {"sup": 0, "task": 0, "task_rss": 0, "task_uss": 0, "sup_rss": 0})
            if p["role"] == "pool":
                a["sup"] += p["pss"]
                a["sup_rss"] += p["rss"]
            else:
                a["task"] += p["pss"]
                a["task_rss"] += p["rss"]
                a["task_uss"] += p["uss"]
        for ti, a in slot.items():
            if not a["task"]:  # a pool child keeps its last task's title after the task's process ended
                continue
            r = per_ti.setdefault(ti, {"samples": 0, "task_pss": 0, "task_rss": 0, "task_uss": 0, "sup_pss": 0,
                                       "sup_rss": 0, "slot_pss": 0, "first_t": x["t"] - t0})
            r["samples"] += 1
            r["last_t"] = x["t"] - t0
            for k_out, k_in in (("task_pss", "task"), ("task_rss", "task_rss"), ("task_uss", "task_uss"),
                                ("sup_pss", "sup"), ("sup_rss", "sup_rss")):
                r[k_out] = max(r[k_out], a[k_in])
            r["slot_pss"] = max(r["slot_pss"], a["sup"] + a["task"])
    tasks = []
    for ti, r in per_ti.items():
        task_id, map_index = names.get(ti, (None, -1))
        tasks.append({"task": (task_id or f"? {ti}") + (f"[{map_index}]" if map_index >= 0 else ""),
                      "task_id": task_id, "kind": kind_of(task_id), "ti": ti, "samples": r["samples"],
                      "seen_s": [round(r["first_t"], 2), round(r["last_t"], 2)],
                      "task_pss_mib": mib(r["task_pss"]), "task_rss_mib": mib(r["task_rss"]),
                      "task_uss_mib": mib(r["task_uss"]), "supervisor_pss_mib": mib(r["sup_pss"]),
                      "supervisor_rss_mib": mib(r["sup_rss"]), "slot_pss_mib": mib(r["slot_pss"])})
    tasks.sort(key=lambda r: r["seen_s"][0])
    unseen = sorted(f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]
                    for t in tis if t.get("id") not in per_ti)

    def agg(rows):
        if not rows:
            return None
        slot = [r["slot_pss_mib"] for r in rows]
        return {"tasks": len(rows), "slot_pss_mib_max": max(slot), "slot_pss_mib_median": round(statistics.median(slot), 1),
                "task_pss_mib_max": max(r["task_pss_mib"] for r in rows),
                "task_rss_mib_max": max(r["task_rss_mib"] for r in rows),
                "task_uss_mib_max": max(r["task_uss_mib"] for r in rows),
                "supervisor_pss_mib_max": max(r["supervisor_pss_mib"] for r in rows)}

    by_task = {k: agg([r for r in tasks if r["task_id"] == k]) for k in ("tag", "extract", "cluster", "poll_feeds",
                                                                         "fetch_pages")}
    by_kind = {k: agg([r for r in tasks if r["kind"] == k]) for k in ("nlp", "network", "small")}
    base_run = max((sum(p["pss"] for p in x["procs"] if p["role"] in ("main", "log server", "other")) for x in run), default=None)
    timeline = [[round(x["t"] - t0, 2), mib(total(x)), mib(total(x, "rss")), len(x["procs"]),
                 sorted({names.get(p["ti"], ("?",))[0] for p in x["procs"] if p.get("ti") and p["role"] != "pool"})]
                for x in s.samples]
    return {"idle": idle_out, "peak": peak_out,
            "idle_pool_child_pss_mib": mib(statistics.median(pool_idle)) if pool_idle else None,
            "base_pss_mib_idle": mib(statistics.median(base_idle)) if base_idle else None,
            "base_pss_mib_run_peak": mib(base_run),
            "by_kind": by_kind, "by_task": by_task, "tasks": tasks, "task_instances_not_sampled": unseen,
            "samples": {"idle": len(idle), "run": len(run), "total": len(s.samples),
                        "max_seconds_per_sample": round(s.max_sample_s, 3)},
            "timeline_columns": ["t_s (from trigger)", "pss_mib", "rss_sum_mib", "processes", "tasks running"],
            "timeline": timeline}


def rule(m: dict, concurrency: int) -> dict | None:
    base = m.get("base_pss_mib_run_peak")
    nlp = (m["by_kind"].get("nlp") or {}).get("slot_pss_mib_max")
    net = (m["by_kind"].get("network") or {}).get("slot_pss_mib_max")
    small = (m["by_kind"].get("small") or {}).get("slot_pss_mib_max")
    if base is None or nlp is None:
        return None
    predicted = round(base + concurrency * nlp, 1)
    observed = (m.get("peak") or {}).get("pss_mib")
    return {"base_mib": base, "nlp_slot_mib": nlp, "network_slot_mib": net, "small_slot_mib": small,
            "idle_pool_child_mib": m.get("idle_pool_child_pss_mib"),
            "formula": "worker MiB = base + C_nlp x nlp_slot + C_net x network_slot (PSS); a worker serving "
                       "every queue with --concurrency C: base + C x nlp_slot",
            f"predicted_peak_c{concurrency}_mib": predicted, "observed_peak_mib": observed,
            "observed_over_predicted": round(observed / predicted, 3) if observed else None,
            "examples_mib": {f"C={c}": round(base + c * nlp) for c in (1, 2, 4, 8)}}


# --- main ----------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=150)
    ap.add_argument("--concurrency", type=int, default=2, help="task slots of the one Celery worker")
    ap.add_argument("--stage-workers", type=int, default=2, help="NEWSROOM_STAGE_WORKERS (mapped extract/tag)")
    ap.add_argument("--feeds", type=int, default=5)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between samples")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds the idle worker is sampled before the trigger")
    ap.add_argument("--keep", action="store_true", help="keep the state directory (logs)")
    ap.add_argument("--name", default="worker_memory", help="result file: bench/results/NAME.json")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    sampler = Sampler(args.interval)
    tis: list[dict] = []

    def monitor(event: str, **info) -> None:
        if event == "ready":
            sampler.start(info["home"] / "run")
            time.sleep(args.idle)  # the idle worker, before the DAG is even unpaused
        elif event == "triggered":
            sampler.t_trigger = time.monotonic()
        elif event == "finished":
            sampler.t_end = time.monotonic()
            tis.extend(info["tis"])

    def echo(msg: str) -> None:
        print(msg, flush=True)

    pages, server, base, schedule, feeds_yaml, base_env = prepare_corpus(args.articles, args.feeds,
                                                                         args.stage_workers)
    echo(f"{len(pages)} pages behind {args.feeds} feeds at {base}; 1 Celery worker --concurrency "
         f"{args.concurrency}, NEWSROOM_STAGE_WORKERS={args.stage_workers}; sampling every {args.interval}s")
    try:
        run = run_config("celery1", argparse.Namespace(concurrency=args.concurrency, keep=args.keep),
                         base_env, feeds_yaml, echo, monitor)
    finally:
        sampler.stop()
        server.shutdown()
    if sampler.t_trigger is None or not sampler.samples:
        sys.exit(f"no run measured: {run.get('error', run)}")
    settle = min(args.idle / 2, 5.0)
    m = summarise(sampler, tis, settle)
    derived = rule(m, args.concurrency)

    r = lambda v: "-" if v is None else f"{v:7.1f}"  # noqa: E731
    echo(f"\nrun: {run.get('run_state')} in {run.get('wall_s')}s, {run.get('tagged')} tagged; "
         f"{m['samples']['run']} samples in the run, {m['samples']['idle']} idle")
    echo(f"{'what':34} {'n':>3} {'PSS MiB':>8} {'median':>7} {'task RSS':>8} {'task USS':>8}")
    if m["idle"]:
        for p in m["idle"]["processes"]:
            echo(f"{'idle ' + p['role'] + ' ' + str(p['pid']):34} {'':>3} {r(p['pss_mib']):>8} {'':>7} "
                 f"{r(p['rss_mib']):>8} {r(p['uss_mib']):>8}")
        echo(f"{'idle worker, whole':34} {'':>3} {r(m['idle']['pss_mib']):>8}")
    labels = {"tag": "slot: tag", "extract": "slot: extract", "cluster": "slot: cluster",
              "poll_feeds": "slot: poll_feeds", "fetch_pages": "slot: fetch_pages"}
    for k, a in m["by_task"].items():
        if a:
            echo(f"{labels[k]:34} {a['tasks']:>3} {r(a['slot_pss_mib_max']):>8} {r(a['slot_pss_mib_median']):>7} "
                 f"{r(a['task_rss_mib_max']):>8} {r(a['task_uss_mib_max']):>8}")
    a = m["by_kind"].get("small")
    if a:
        echo(f"{'slot: small tasks':34} {a['tasks']:>3} {r(a['slot_pss_mib_max']):>8} {r(a['slot_pss_mib_median']):>7} "
             f"{r(a['task_rss_mib_max']):>8} {r(a['task_uss_mib_max']):>8}")
    echo(f"{'base (main+log server), run peak':34} {'':>3} {r(m['base_pss_mib_run_peak']):>8}")
    if m["peak"]:
        echo(f"{'whole worker peak (t=' + str(m['peak']['t_s']) + 's)':34} {'':>3} {r(m['peak']['pss_mib']):>8}"
             f"   (sum of RSS then {m['peak']['rss_mib']}, max {m['peak']['max_rss_sum_mib']})")
    if m["task_instances_not_sampled"]:
        echo(f"not sampled (shorter than {args.interval}s?): {m['task_instances_not_sampled']}")
    if derived:
        echo(f"\nrule: base {derived['base_mib']} + C x {derived['nlp_slot_mib']} MiB per NLP slot "
             f"(+ {derived['network_slot_mib']} per network-only slot); C={args.concurrency} predicts "
             f"{derived[f'predicted_peak_c{args.concurrency}_mib']}, observed {derived['observed_peak_mib']}")
    out = write_result(args.name, {
        "args": vars(args), "articles": len(pages), "schedule": schedule,
        "method": "PSS (and RSS, USS) from /proc/PID/smaps_rollup of every process in the worker's process "
                  "group or below it; slot = pool child (the task's supervisor) + task process, peak within one "
                  "sample; base = main process + log server",
        "rule": derived, **m,
        "run": {k: v for k, v in run.items() if k != "task_instances"},
        "task_instances": run.get("task_instances")})
    echo(f"\nwrote {out}")


if __name__ == "__main__":
    main()
