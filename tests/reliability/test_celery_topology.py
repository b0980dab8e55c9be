"""news_ingest on the Celery topology, for real: `newsroom airflow up --executor celery
--workers 2` (a Valkey broker, two Celery workers of one task slot each, Airflow's four services,
the embedded Postgres) against the demo site and a wire site that publishes more articles for
each test. In file order, sharing one topology:

1. a run succeeds with its mapped extract and tag instances spread over both workers, and every
   article lands once;
2. the broker stopped mid-run (and started again by `up`, as compose's restart policy would):
   the run still completes, nothing lost or doubled;
3. a worker killed with SIGKILL (with every process it started, as when its machine dies) while it
   runs a tag task: Airflow's task heartbeat timeout (20 s here) fails that try, the retry runs
   on the other worker, the claims the dead task held come back when their lease (10 s here)
   runs out, and the run completes with every article tagged once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from localsite import LocalSite, article_html, rss

from pipeline import demo, processes, store
from pipeline.config import Settings

pytestmark = pytest.mark.slow

WIRE_FEED = "/wire/rss.xml"
RUN_TIMEOUT = 420.0
TOPICS = [
    ("Idlib", "Fighting in Idlib province continued as Syrian government forces shelled villages near Saraqib."),
    ("S-400", "Turkey said the Russian S-400 missile system would be activated despite its removal from the F-35 "
              "programme."),
    ("Ankara", "Officials in Ankara met a delegation from Washington to discuss sanctions and the F-35 jets."),
    ("Aleppo", "Aid convoys reached Aleppo after weeks of delays, the United Nations said on Tuesday."),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Topology:
    proc: subprocess.Popen
    out: Path
    state: Path
    env: dict[str, str]
    port: int
    site: LocalSite
    wire: list[str] = field(default_factory=list)  # every wire article URL published so far
    _client: httpx.Client | None = None

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def run_dir(self) -> Path:
        return self.state / "airflow" / "run"

    def api(self) -> httpx.Client:
        if self._client is None:
            home = self.state / "airflow"
            password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
            client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30, trust_env=False)
            token = client.post("/auth/token", json={"username": "admin", "password": password})
            token.raise_for_status()
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            self._client = client
        return self._client

    def publish(self, n: int) -> list[str]:
        """n more wire articles, and every feed due now."""
        start = len(self.wire)
        for i in range(start, start + n):
            name, sentence = TOPICS[i % len(TOPICS)]
            paragraphs = [f"Report {i} from {name}. {sentence}",
                          *(f"{sentence} Paragraph {j} of report {i} adds detail number {i * 7 + j} about the "
                            f"situation, quoting residents, officials and analysts who spoke to reporters."
                            for j in range(5))]
            self.site.add(f"/wire/{i}.html", article_html(f"Wire report {i}: {name}", paragraphs),
                          content_type="text/html; charset=utf-8")
            self.wire.append(self.site.url(f"/wire/{i}.html"))
        items = [(url, f"Wire report {k}") for k, url in enumerate(self.wire)][-50:]
        self.site.add(WIRE_FEED, rss(items, title="Wire"), content_type="application/rss+xml")
        with store.db.session(self.settings) as conn:
            store.feeds.make_all_due(conn)
        return self.wire[start:]

    def trigger(self) -> str:
        r = self.api().post("/api/v2/dags/news_ingest/dagRuns", json={"logical_date": None})
        r.raise_for_status()
        return r.json()["dag_run_id"]

    def run_state(self, run_id: str) -> str:
        return self.api().get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}").json()["state"]

    def task_instances(self, run_id: str) -> list[dict]:
        r = self.api().get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances", params={"limit": 200})
        r.raise_for_status()
        return r.json()["task_instances"]

    def tries(self, run_id: str, task_id: str, map_index: int) -> list[dict]:
        r = self.api().get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries")
        r.raise_for_status()
        return r.json()["task_instances"]

    def wait(self, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"`airflow up` exited: {self.output()[-3000:]}"
            state = self.run_state(run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(2)
        pytest.fail(f"run {run_id} still {state} after {timeout:.0f}s; tasks: "
                    f"{[(t['task_id'], t['map_index'], t['state']) for t in self.task_instances(run_id)]}")

    def pid(self, name: str) -> int:
        return int((self.run_dir / f"{name}.pid").read_text().split()[0])

    def output(self) -> str:
        return self.out.read_text(errors="replace")


def worker_host(name: str) -> str:
    """The host a task instance run by this worker records (pipeline.topology.worker_hostname)."""
    from airflow.utils.net import getfqdn

    return f"{getfqdn()}-{name}"


@pytest.fixture(scope="module")
def topo():
    state = Path(tempfile.mkdtemp(prefix="nrc", dir="/tmp"))  # short: the Postgres socket lives here
    demo_site = demo.DemoSite(port=_free_port()).start()
    wire = LocalSite().start()
    feeds = state / "feeds.yaml"
    feeds.write_text(demo.feeds_yaml(demo_site.base)
                     + f"  - url: {wire.url(WIRE_FEED)}\n    name: Wire\n    tags: [wire]\n")
    port, broker = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSROOM_"))}
    env.update({
        "NEWSROOM_STATE_DIR": str(state), "NEWSROOM_FEEDS": str(feeds), "NEWSROOM_ALLOW_PRIVATE_NETWORKS": "1",
        "NEWSROOM_PER_HOST_DELAY": "0.05", "NEWSROOM_CLAIM_LEASE": "10", "NEWSROOM_STAGE_WORKERS": "2",
        # no fire time between the DAG's start date and now: unpausing starts no catch-up run
        "NEWSROOM_SCHEDULE": "0 0 29 2 *",
        # a worker that stops heartbeating is given up on after 20 s, not 5 minutes
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    })
    out = state / "up.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "airflow", "up", "--executor", "celery",
                                 "--workers", "2", "--concurrency", "1", "--port", str(port),
                                 "--broker-port", str(broker), "--no-trigger"],
                                env=env, stdout=sink, stderr=subprocess.STDOUT)
    t = Topology(proc, out, state, env, port, wire)
    sessions: list[int] = []
    try:
        deadline = time.monotonic() + 400
        logs = t.state / "airflow" / "services"
        while "Stop:" not in t.output() or not all(
                "ready." in (logs / f"airflow-worker-{i}.log").read_text(errors="replace") for i in (1, 2)):
            assert proc.poll() is None, t.output()[-3000:]
            assert time.monotonic() < deadline, t.output()[-3000:]
            time.sleep(1)
        sessions += [int(p.read_text().split()[0]) for p in t.run_dir.glob("*.pid")]
        t.api().patch("/api/v2/dags/news_ingest", json={"is_paused": False}).raise_for_status()
        yield t
    finally:
        if t._client is not None:  # an open keep-alive connection holds the api-server's stop up ~60 s
            t._client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        demo_site.stop()
        wire.stop()
        leftovers = list(t.run_dir.glob("*.pid"))
        # every process each service started (task processes in groups of their own included)
        survivors = [p for sid in sessions for p in processes.session_members(sid)]
        subprocess.run([sys.executable, "-m", "pipeline.cli", "db", "stop"], env=env, capture_output=True)
        if not os.environ.get("NEWSROOM_TEST_KEEP_STATE"):  # for a look at the services' logs
            shutil.rmtree(state, ignore_errors=True)
        assert not leftovers, f"pid files left behind: {leftovers}"
        assert not survivors, f"processes outlived `airflow up`: {survivors}"


def _landed_once(t: Topology, urls: list[str]) -> None:
    """Each URL is one article, tagged; no URL twice."""
    with store.db.session(t.settings) as conn:
        rows = conn.execute("SELECT url, count(*), min(status) FROM articles WHERE url = ANY(%s) GROUP BY url",
                            (urls,)).fetchall()
        doubled = conn.execute("SELECT url FROM articles GROUP BY url HAVING count(*) > 1").fetchall()
    assert not doubled, doubled
    assert {r[0] for r in rows} == set(urls), set(urls) - {r[0] for r in rows}
    assert {r[2] for r in rows} == {"tagged"}, [r for r in rows if r[2] != "tagged"]


def test_a_run_spreads_its_mapped_tasks_over_both_workers_and_lands_every_article_once(topo):
    # enough articles that an extract or tag task lasts seconds: its sibling, queued meanwhile,
    # finds that worker's only slot taken
    topo.publish(24)
    run_id = topo.trigger()
    assert topo.wait(run_id) == "success", topo.task_instances(run_id)
    tis = topo.task_instances(run_id)
    mapped = [t for t in tis if t["task_id"] in ("extract", "tag")]
    assert len(mapped) == 4 and all(t["state"] == "success" for t in mapped), mapped
    assert {t["hostname"] for t in mapped} == {worker_host("worker-1"), worker_host("worker-2")}, mapped
    queues = {t["task_id"]: t["queue"] for t in tis}
    assert queues["extract"] == queues["tag"] == queues["cluster"] == "nlp"
    assert queues["poll_feeds"] == queues["fetch_pages"] == "network" and queues["begin"] == "default"
    _landed_once(topo, topo.wire)
    with store.db.session(topo.settings) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == demo.article_count() + len(topo.wire)


def test_the_broker_stopped_mid_run_and_started_again_the_run_completes(topo):
    urls = topo.publish(16)
    run_id = topo.trigger()
    deadline = time.monotonic() + RUN_TIMEOUT
    while not any(t["task_id"] in ("fetch_pages", "extract") and t["state"] in ("running", "success")
                  for t in topo.task_instances(run_id)):
        assert time.monotonic() < deadline and topo.run_state(run_id) not in ("success", "failed")
        time.sleep(0.5)
    os.killpg(topo.pid("broker"), signal.SIGTERM)  # `up` starts it again a few seconds later
    assert topo.wait(run_id) == "success", topo.task_instances(run_id)
    assert "broker exited" in topo.output() and "restarting it" in topo.output()
    _landed_once(topo, urls)


def _tag_claim(t: Topology, run_id: str) -> tuple[int, int] | None:
    """(pid of the task process holding tag claims in this run, how many), or None."""
    with store.db.session(t.settings) as conn:
        row = conn.execute("SELECT claimed_by, count(*) FROM articles WHERE claimed_by LIKE %s "
                           "AND claimed_until > now() GROUP BY claimed_by LIMIT 1", (f"{run_id}/tag/%",)).fetchone()
    return (int(row[0].rsplit(":", 1)[1]), row[1]) if row else None


def test_a_worker_killed_while_it_tags_its_task_is_retried_on_the_other_worker(topo):
    urls = topo.publish(24)
    run_id = topo.trigger()
    deadline = time.monotonic() + RUN_TIMEOUT
    claim = None
    while claim is None:  # a tag task has claimed articles (and is loading the model, or tagging)
        assert time.monotonic() < deadline and topo.run_state(run_id) not in ("success", "failed"), \
            "no tag task was seen holding claims"
        claim = _tag_claim(topo, run_id)
        time.sleep(0.1)
    task_pid, claimed = claim
    workers = {topo.pid(f"airflow-{n}"): n for n in ("worker-1", "worker-2")}
    name = workers[processes.session_of(task_pid)]  # the worker whose task holds the claims
    survivor = "worker-2" if name == "worker-1" else "worker-1"
    victim = next(t for t in topo.task_instances(run_id)
                  if t["task_id"] == "tag" and t["state"] == "running" and t["hostname"] == worker_host(name))
    # the worker and everything it started (its task processes live in process groups of their
    # own), at once: as when its machine dies
    processes.kill_session(topo.pid(f"airflow-{name}"))
    assert topo.wait(run_id) == "success", topo.task_instances(run_id)
    tries = topo.tries(run_id, "tag", victim["map_index"])
    assert len(tries) >= 2 and tries[0]["state"] == "failed", tries
    assert tries[-1]["state"] == "success" and tries[-1]["hostname"] == worker_host(survivor), tries
    assert f"airflow-{name} exited (signal 9); not restarted" in topo.output()
    assert claimed > 0
    _landed_once(topo, urls)  # the dead task's articles too: taken again once its lease ran out
