"""The Newsroom pages inside Airflow's UI, in a real browser (headless Chromium driven by
selenium), against `newsroom demo` as a person would use it: log in through Airflow's form, open
the "Newsroom" entry of Airflow's navigation (the plugin's pages in an iframe), see the demo's
failing feed, the topics chart, search and read an article, and open the "This run" tab of the
demo's first news_ingest run. A browser that has not logged in is refused.

One `newsroom demo` (its own state, free ports) and one browser for the whole module: CI time
matters. Screenshots of every page, light and dark, go to bench/results/ui/.

Needs Debian's chromium and chromium-driver (.ci/run installs them); never skipped: without them
the test fails and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml

from pipeline import demo, processes

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "bench" / "results" / "ui"
# Debian's packages (.ci/run installs them); wherever PATH has them otherwise
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
START_TIMEOUT = 600.0  # Airflow's first `db migrate` and four services, on a busy 2-core machine
RUN_TIMEOUT = 600.0  # the demo's first news_ingest run
PAGE_TIMEOUT = 60.0  # any one page or element
SEARCH_WORD = "Idlib"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broken_feed() -> str:
    """The name of the demo's feed that always answers 503."""
    feeds = yaml.safe_load(demo.feeds_yaml("http://demo.invalid"))["feeds"]
    return next(f["name"] for f in feeds if "/broken/" in f["url"])


def _titles_with(word: str) -> set[str]:
    doc = yaml.safe_load(demo.SITE_FILE.read_text(encoding="utf-8"))
    return {a["title"] for o in doc["outlets"] for a in o["articles"] if word in a["title"]}


@dataclass
class Demo:
    proc: subprocess.Popen
    out: Path
    state: Path  # NEWSROOM_STATE_DIR; the demo's own state is under state/demo
    env: dict[str, str]
    base: str
    password: str = ""
    run_id: str = ""  # the demo's first news_ingest run
    up_at: float = 0.0
    _client: httpx.Client | None = None

    @property
    def home(self) -> Path:
        return self.state / "demo" / "airflow"

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def tail(self, chars: int = 2500) -> str:
        """`newsroom demo`'s output and the API server's log, their last lines: for failures."""
        api_log = self.home / "services" / "airflow-apiserver.log"
        api = api_log.read_text(errors="replace") if api_log.exists() else ""
        return (f"--- newsroom demo (exit {self.proc.poll()}):\n{self.output()[-chars:]}\n"
                f"--- {api_log.name}:\n{api[-chars:]}")

    def api(self) -> httpx.Client:
        if self._client is None:
            client = httpx.Client(base_url=self.base, timeout=60, trust_env=False)
            token = client.post("/auth/token", json={"username": "admin", "password": self.password})
            token.raise_for_status()
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            self._client = client
        return self._client

    def first_run_done(self) -> None:
        state = self.wait_run("news_ingest", self.run_id)
        assert state == "success", f"the demo's first news_ingest run {state}\n{self.tail()}"
        print(f"first news_ingest run done {time.monotonic() - self.up_at:.0f}s after Airflow was up")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        deadline, state = time.monotonic() + timeout, "?"
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"`newsroom demo` exited\n{self.tail()}"
            try:
                r = self.api().get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
                r.raise_for_status()
                state = r.json()["state"]
            except httpx.TransportError as exc:  # an api-server slow to answer on a busy machine
                state = f"? ({type(exc).__name__})"
            if state in ("success", "failed"):
                return state
            time.sleep(3)
        try:
            tis = self.api().get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances").json()
            tasks = [(t["task_id"], t["map_index"], t["state"]) for t in tis.get("task_instances", [])]
        except httpx.HTTPError as exc:
            tasks = f"unknown ({exc})"
        pytest.fail(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s; tasks: {tasks}\n{self.tail()}")


@pytest.fixture(scope="module")
def demo_airflow():
    """`newsroom demo` on free ports in a state directory of its own, once Airflow answers (its
    first news_ingest run triggered: Demo.first_run_done waits for it); stopped afterwards,
    leaving no process behind."""
    started = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="nrui", dir="/tmp"))  # short: the Postgres socket lives here
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSROOM_"))}
    env.update({
        "NEWSROOM_STATE_DIR": str(state),
        # no fire time between the DAGs' start date and now: unpausing starts no catch-up run to
        # compete with the demo's first run for the CPU
        "NEWSROOM_SCHEDULE": "0 0 29 2 *",
        "NEWSROOM_MAINTENANCE_SCHEDULE": "0 0 29 2 *",
    })
    port = _free_port()
    out = state / "demo.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "demo", "--port", str(_free_port()),
                                 "--airflow-port", str(port)],
                                env=env, stdout=sink, stderr=subprocess.STDOUT)
    d = Demo(proc, out, state, env, f"http://localhost:{port}")
    sessions: list[int] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Stop:" not in d.output():  # the greeting: Airflow answers, news_ingest triggered
            assert proc.poll() is None, f"`newsroom demo` exited before Airflow was up\n{d.tail()}"
            assert time.monotonic() < deadline, f"Airflow not up within {START_TIMEOUT:.0f}s\n{d.tail()}"
            time.sleep(1)
        sessions += [int(p.read_text().split()[0]) for p in (d.home / "run").glob("*.pid")]
        found = re.search(r"first run triggered: (\S+)", d.output())
        assert found, f"`newsroom demo` triggered no first run\n{d.tail()}"
        d.run_id = found.group(1)
        d.password = re.search(r"user: admin\s+password: (\S+)", d.output()).group(1)
        d.up_at = time.monotonic()
        print(f"\nAirflow up after {d.up_at - started:.0f}s")
        yield d
    finally:
        if d._client is not None:  # an open connection would hold the api-server's shutdown up
            d._client.close()
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        leftovers = list((d.home / "run").glob("*.pid"))
        survivors = [p for sid in sessions for p in processes.session_members(sid)]
        killed = [line for line in d.output().splitlines() if "did not stop" in line]
        print(f"`newsroom demo` stopped in {time.monotonic() - t:.0f}s {killed or ''}")
        subprocess.run([sys.executable, "-m", "pipeline.cli", "--demo", "db", "stop"], env=env,
                       capture_output=True)
        if not os.environ.get("NEWSROOM_TEST_KEEP_STATE"):  # for a look at the services' logs
            shutil.rmtree(state, ignore_errors=True)
        assert not leftovers, f"pid files left behind: {leftovers}"
        assert not survivors, f"processes outlived `newsroom demo`: {survivors}"


def _missing_browser() -> str | None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return (f"{' and '.join(missing)} missing: the browser test needs Debian's chromium and "
                "chromium-driver (`apt-get install chromium chromium-driver`; .ci/run installs them)")
    return None


@pytest.fixture(scope="module")
def browser():
    problem = _missing_browser()
    if problem:
        pytest.fail(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                "--no-proxy-server", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    with pytest.MonkeyPatch.context() as env:
        # both paths given, selenium manager has nothing to find; were it asked, it stays offline
        env.setenv("SE_OFFLINE", "true")
        env.setenv("SE_AVOID_STATS", "true")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The browser on the demo's Airflow: waits that say what they waited for, screenshots."""

    def __init__(self, driver, demo: Demo):
        self.d, self.demo = driver, demo

    def wait(self, condition, what: str, timeout: float = PAGE_TIMEOUT):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.d, timeout).until(condition)
        except TimeoutException:
            pytest.fail(f"{what}: not within {timeout:.0f}s, at {self.d.current_url}\n"
                        f"--- page:\n{self.source()}\n{self.demo.tail()}")

    def css(self, selector: str, what: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(ec.presence_of_element_located((By.CSS_SELECTOR, selector)), what)

    def xpath(self, expression: str, what: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(ec.presence_of_element_located((By.XPATH, expression)), what)

    def source(self, chars: int = 2000) -> str:
        try:
            text, html = self.d.execute_script(
                "return document.body ? [document.body.innerText, document.body.outerHTML] : ['', '']")
            return f"text: {text[:chars]!r}\nbody: {html[:chars]}"
        except Exception as exc:  # only for a failure message
            return f"(no page source: {exc})"

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        assert self.d.save_screenshot(str(SHOTS / name)), f"no screenshot {name}"

    def status(self, path: str) -> int:
        """The HTTP status this browser (its cookies) gets for `path`, fetched by the page."""
        return self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {credentials: 'same-origin', redirect: 'manual'})"
            ".then(r => done(r.status), e => done(String(e)));", path)

    def into_frame(self, what: str):
        """Switch into the plugin's iframe (Airflow shows an external view in one)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.d.switch_to.default_content()
        self.wait(ec.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, "main iframe, iframe")), what)

    def follow(self, path: str, what: str) -> None:
        """Inside the iframe: click the plugin's own link to `path` when it has one, as a person
        would; else go there in the iframe."""
        from selenium.webdriver.common.by import By

        links = [a for a in self.d.find_elements(By.CSS_SELECTOR, "a[href]")
                 if (a.get_attribute("href") or "").split("?")[0].rstrip("/").endswith(path) and a.is_displayed()]
        if links:
            links[0].click()
        else:
            self.d.execute_script("window.location.assign(arguments[0])", path)
        self.wait(lambda d: d.execute_script("return location.pathname").rstrip("/").endswith(path)
                  and d.execute_script("return document.readyState") == "complete", what)


    def goto(self, path: str, selector: str, what: str):
        """Inside the iframe: load `path` there (Airflow's page around it stays)."""
        self.d.execute_script("window.location.assign(arguments[0])", path)
        self.wait(lambda d: d.execute_script("return location.pathname + location.search") == path
                  and d.execute_script("return document.readyState") == "complete", what)
        return self.css(selector, what)

    def color_mode(self, mode: str) -> None:
        """Airflow's own switch: User > Appearance > Light Mode / Dark Mode."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.d.switch_to.default_content()
        self.css("button[aria-label=User]", "the User menu").click()
        self.wait(ec.element_to_be_clickable((By.XPATH, "//*[@role='menuitem'][normalize-space()='Appearance']")),
                  "Appearance in the User menu").click()
        self.wait(ec.element_to_be_clickable((By.CSS_SELECTOR, f"[role=menuitemradio][data-value={mode}]")),
                  f"{mode} in the Appearance menu").click()
        self.wait(lambda d: mode in (d.find_element(By.TAG_NAME, "html").get_attribute("class") or "").split(),
                  f"Airflow in {mode} mode")

    def reload_frame(self, selector: str, mode: str, what: str) -> None:
        """Reload the plugin's page in the iframe: it takes Airflow's colour mode as it loads."""
        self.into_frame(what)
        self.d.execute_script("window.location.reload()")
        dark = "html.dark" if mode == "dark" else "html:not(.dark)"
        self.css(f"{dark} {selector}", f"{what} in {mode} mode")


def test_newsroom_pages_in_airflow(demo_airflow, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d, page, base = browser, Page(browser, demo_airflow), demo_airflow.base
    t = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - t - sum(timings.values()), 1)

    # A browser that has not logged in is refused at the plugin's pages.
    d.get(f"{base}/newsroom/feeds")
    status = page.status("/newsroom/feeds")
    assert status in (401, 403), f"anonymous browser got {status} at /newsroom/feeds\n{page.source()}"
    assert not d.find_elements(By.CSS_SELECTOR, "table#feeds"), "the feeds table shown without a login"

    # Log in through Airflow's form (while the demo's first run goes on).
    d.get(f"{base}/")
    page.css("input[name=username]", "Airflow's login form").send_keys("admin")
    d.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(demo_airflow.password)
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page.wait(lambda d: "/auth/login" not in d.current_url, "leaving the login page (wrong password?)")
    page.css("[data-testid=nav-home-link]", "Airflow's navigation after login")
    assert page.status("/newsroom/feeds") == 200, "logged in, the plugin's feeds page is still refused"
    def newsroom_entry():
        return page.xpath("//a[@aria-label='Newsroom' or normalize-space()='Newsroom']",
                          "a 'Newsroom' entry in Airflow's navigation")

    href = newsroom_entry().get_attribute("href") or ""
    assert href.rstrip("/").endswith("/plugin/newsroom"), f"the Newsroom entry leads to {href!r}"
    lap("anonymous + login")

    # The pages show what the demo's first run brought in.
    demo_airflow.first_run_done()
    lap("rest of the first run")

    # "Newsroom" in Airflow's navigation: the feeds page, the failing demo feed listed as failing.
    newsroom_entry().click()  # found again: Airflow re-renders its navigation as it polls
    page.wait(lambda d: "/plugin/newsroom" in d.current_url, "Airflow's Newsroom page")
    page.into_frame("the Newsroom iframe")
    page.css("table#feeds tr[data-status]", "the feeds table, a row per feed")
    # the feed's name: the first line of the first cell (the plugin puts the URL under it)
    rows = {(r.find_element(By.CSS_SELECTOR, "td, th").text.strip().splitlines() or [""])[0]: r.get_attribute("data-status")
            for r in d.find_elements(By.CSS_SELECTOR, "table#feeds tr[data-status]")}
    broken = _broken_feed()
    assert rows.get(broken) == "failing", f"{broken!r} not listed as failing: {rows}"
    page.shot("feeds.png")
    shown = {"feeds.png": (d.execute_script("return location.pathname"), "table#feeds")}

    # Topics: a chart with bars.
    page.follow("/newsroom/topics", "the topics page")
    bars = page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar"), "bars in the topics chart")
    assert bars and d.find_elements(By.CSS_SELECTOR, "table#topics"), "no topics table"
    page.shot("topics.png")
    shown["topics.png"] = (d.execute_script("return location.pathname"), "svg.chart rect.bar")

    # Search finds a demo article; its page highlights entities.
    page.follow("/newsroom/search", "the search page")
    box = page.css("form#search input[name=q]", "the search form")
    box.clear()
    box.send_keys(SEARCH_WORD, Keys.ENTER)
    # (the page lists recent articles before any search: wait for the search's own page)
    page.wait(lambda d: f"q={SEARCH_WORD}" in d.execute_script("return location.search")
              and d.execute_script("return document.readyState") == "complete", f"the search for {SEARCH_WORD!r}")
    results = page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "ol#results > li a.title"),
                        f"search results for {SEARCH_WORD!r}")
    expected = _titles_with(SEARCH_WORD)
    hits = [a for a in results if a.text.strip() in expected]
    assert hits, f"no demo article among the results for {SEARCH_WORD!r}: {[a.text for a in results]}"
    title = hits[0].text.strip()
    assert re.search(r"/newsroom/articles/\d+$", hits[0].get_attribute("href") or ""), hits[0].get_attribute("href")
    page.shot("search.png")
    shown["search.png"] = (d.execute_script("return location.pathname + location.search"), "ol#results > li")
    hits[0].click()
    article = page.css("article#article", f"the article page of {title!r}")
    assert title in article.text, f"the article page does not show {title!r}: {article.text[:300]!r}"
    assert d.find_elements(By.CSS_SELECTOR, "article#article mark.entity"), "no entity highlighted"
    page.shot("article.png")
    lap("feeds, topics, search, article")

    # Dark mode, switched in Airflow: the plugin's pages follow it.
    page.color_mode("dark")
    page.reload_frame("article#article", "dark", "the article page")
    page.shot("article-dark.png")
    for name, (path, selector) in reversed(shown.items()):
        page.goto(path, f"html.dark {selector}", f"{path} in dark mode")
        page.shot(name.replace(".png", "-dark.png"))
    lap("dark mode")

    # The first news_ingest run's page: its "This run" tab shows the run's counts.
    d.switch_to.default_content()
    d.get(f"{base}/dags/news_ingest/runs/{quote(demo_airflow.run_id, safe='')}")
    lap("run page loaded")
    page.xpath("//a[normalize-space()='This run']", "a 'This run' tab on the DAG run's page").click()
    page.wait(lambda d: d.current_url.rstrip("/").endswith("/plugin/newsroom-run"), "the 'This run' tab")
    page.into_frame("the 'This run' iframe")
    section = page.css("section#run", "the run's section")
    assert not d.find_elements(By.CSS_SELECTOR, "section#run p.note"), \
        f"news_ingest's run has a note instead of counts: {section.text[:300]!r}"
    counts = {r.find_element(By.CSS_SELECTOR, "td").text: r.text
              for r in d.find_elements(By.CSS_SELECTOR, "section#run table#counts tbody tr")}
    new_articles = next((v for k, v in counts.items() if "New articles" in k), "")
    assert re.search(r"\b[1-9]\d*\b", new_articles), f"no new articles counted for the first run: {counts}"
    failed = d.find_elements(By.CSS_SELECTOR, "section#run #failed-feeds li")
    assert any(broken in li.text for li in failed), \
        f"{broken!r} not among the run's failed feeds: {[li.text for li in failed]}"
    page.shot("run-dark.png")
    lap("run page")
    page.color_mode("light")
    page.reload_frame("section#run", "light", "the 'This run' page")
    page.shot("run.png")

    # Another DAG's run: the tab says Newsroom keeps no record for it.
    page.goto("/newsroom/runs/news_maintenance/manual__1", "section#run p.note", "a news_maintenance run's tab")
    lap("run page light, another DAG's run")
    print("browser timings (s):", timings)
