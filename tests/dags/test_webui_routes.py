"""The Newsroom pages in Airflow's api-server: Airflow's own app (create_app, with the plugin
loaded from its entry point and Airflow's auth manager) in this process, on the test
Postgres, over fixture data. Every route refuses a caller without a valid Airflow login."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_views import build_corpus

SECRET = "newsroom-test-secret-" + "0123456789abcdef" * 4
ROUTES = ["/newsroom/", "/newsroom/feeds", "/newsroom/feeds/1", "/newsroom/topics", "/newsroom/search?q=S-400",
          "/newsroom/articles/1", "/newsroom/runs/news_ingest/manual__1", "/newsroom/static/newsroom.css"]


@pytest.fixture(scope="module")
def web(airflow_env, make_db):
    """(client, corpus, token_for): a TestClient on Airflow's api-server app."""
    dsn = make_db()
    with psycopg.connect(dsn) as conn:
        corpus = build_corpus(conn)
        conn.execute("INSERT INTO ingest_runs (run_key, trigger, status, feeds_polled, feeds_ok, feeds_failed, "
                     "articles_new, articles_tagged, started_at, details) VALUES ('manual__1', 'manual', 'success', "
                     "4, 3, 1, 7, 6, now() - interval '3 hours', "
                     """'{"checks": [{"name": "extract_rate", "severity": "warning", "message": "low <x>"}]}')""")
    wanted = {k: v for k, v in airflow_env.items() if k.startswith("AIRFLOW")}
    wanted.update({"AIRFLOW__API_AUTH__JWT_SECRET": SECRET, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                   "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False", "AIRFLOW__API_AUTH__JWT_LEEWAY": "0",
                   "NEWSROOM_DATABASE_URL": dsn})
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        from airflow import settings as airflow_settings

        # Another test in this process may have imported Airflow already, configured for its
        # default home (SQLite): point its ORM at this test's metadata database.
        airflow_settings.dispose_orm(do_log=False)
        airflow_settings.configure_vars()
        airflow_settings.configure_orm()

        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from fastapi.testclient import TestClient

        app = create_app()
        client = TestClient(app)

        def token_for(role: str = "ADMIN", **kw) -> str:
            return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role=role), **kw)

        yield client, corpus, token_for
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _get(web, path, **headers):
    client, _, token_for = web
    client.cookies.clear()
    return client.get(path, headers={"Authorization": f"Bearer {token_for()}", **headers}, follow_redirects=False)


# --- refused --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_an_anonymous_caller_with_a_way_to_log_in(web, path):
    client = web[0]
    client.cookies.clear()
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 401, (path, r.status_code, r.text[:300])
    assert "Log in to Airflow" in r.text and "Idlib" not in r.text


def _forged() -> str:
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": "admin", "role": "ADMIN", "aud": "apache-airflow", "iat": now, "nbf": now,
                       "exp": now + 600}, "not-the-secret-at-all-" + "0123456789abcdef" * 4, algorithm="HS512")


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("how", ["bearer", "cookie"])
def test_every_route_refuses_a_forged_token(web, path, how):
    client = web[0]
    client.cookies.clear()
    token = _forged()
    if how == "cookie":
        client.cookies.set("_token", token)
        r = client.get(path, follow_redirects=False)
        client.cookies.clear()
    else:
        r = client.get(path, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)
    assert r.status_code in (401, 403), (path, r.status_code)
    assert "Idlib" not in r.text and "Monitor" not in r.text


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "Bearer", "x" * 20000])
def test_malformed_tokens_are_refused(web, token):
    client = web[0]
    client.cookies.clear()
    r = client.get("/newsroom/feeds", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (401, 403)


def test_an_expired_token_is_refused(web):
    client, _, token_for = web
    client.cookies.clear()
    token = token_for(expiration_time_in_seconds=1)
    time.sleep(2.1)
    r = client.get("/newsroom/feeds", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_the_ui_login_cookie_is_accepted(web):
    client, _, token_for = web
    client.cookies.clear()
    client.cookies.set("_token", token_for())
    r = client.get("/newsroom/feeds")
    client.cookies.clear()
    assert r.status_code == 200 and 'id="feeds"' in r.text


def test_the_plugin_is_registered_with_a_nav_entry_and_a_run_tab(web):
    client, _, token_for = web
    r = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token_for()}"})
    assert r.status_code == 200, r.text[:300]
    plugin = next(p for p in r.json()["plugins"] if p["name"] == "newsroom")
    views = {v["name"]: v for v in plugin["external_views"]}
    assert views["Newsroom"]["destination"] == "nav" and views["Newsroom"]["href"] == "newsroom/feeds"
    assert views["This run"]["destination"] == "dag_run" and "{RUN_ID}" in views["This run"]["href"]
    assert {a["url_prefix"] for a in plugin["fastapi_apps"]} == {"/newsroom"}


# --- pages ----------------------------------------------------------------------------------

def test_feeds_page_lists_the_failing_feed_first_with_its_error(web):
    r = _get(web, "/newsroom/feeds")
    assert r.status_code == 200
    rows = re.findall(r'<tr data-status="(\w+)">', r.text)
    assert rows[0] == "failing" and "ok" in rows
    assert "http_5xx" in r.text and "503 Service Unavailable" in r.text
    assert r.text.count("<svg class=\"spark\"") >= 1


def test_feed_page_shows_its_polls(web):
    _, corpus, _ = web
    r = _get(web, f"/newsroom/feeds/{corpus.feeds['monitor']}")
    assert r.status_code == 200
    assert r.text.count('data-outcome="error"') == 2 and r.text.count('data-outcome="ok"') == 1
    assert _get(web, "/newsroom/feeds/999999").status_code == 404


def test_topics_page_charts_each_topic_with_bars_and_top_entities(web):
    r = _get(web, "/newsroom/topics?since=90d")
    assert r.status_code == 200
    assert 'data-topic="s400-f35-dispute"' in r.text and '<svg class="chart"' in r.text
    assert 'class="bar"' in r.text and 'class="bar orig"' in r.text
    assert "per day" in r.text and 'class="entity' in r.text
    assert "per week" in _get(web, "/newsroom/topics?since=365d").text


@pytest.mark.parametrize("query", ["since=yesterday-ish", "since=2030-01-01", "until=1999-01-01",
                                   "since=0001-01-02", "since=1000-01-01", "since=700000d",
                                   "since=' OR 1=1 --", "since=" + "9" * 5000])
def test_topics_page_says_what_is_wrong_with_a_bad_period(web, query):
    r = _get(web, f"/newsroom/topics?{query}")
    assert r.status_code in (400, 422) and 'id="error"' in r.text


def test_search_finds_ranks_and_highlights(web):
    _, corpus, _ = web
    r = _get(web, "/newsroom/search?q=S-400")
    assert r.status_code == 200
    ids = [int(i) for i in re.findall(r'<li data-id="(\d+)">', r.text)]
    assert set(ids) == {corpus.ids[k] for k in ("a1", "a2", "a3", "a5")}
    assert "<b>" in r.text  # the snippet's highlight survives escaping


def test_search_filters_and_listing_without_words(web):
    _, corpus, _ = web
    r = _get(web, "/newsroom/search?topic=s400-f35-dispute")
    assert r.status_code == 200 and len(re.findall(r'<li data-id="', r.text)) >= 2
    assert _get(web, "/newsroom/search?q=S-400&topic=no-such-topic").status_code == 404
    assert _get(web, "/newsroom/search?q=S-400&language=english!").status_code == 400
    assert _get(web, "/newsroom/search?q=S-400&limit=100000").status_code == 422


def test_search_escapes_what_it_shows(web):
    r = _get(web, "/newsroom/search?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert r.status_code == 200 and "<script>alert" not in r.text and "&lt;script&gt;" in r.text


def test_article_page_marks_entities_and_lists_topics_sources_copies(web):
    _, corpus, _ = web
    r = _get(web, f"/newsroom/articles/{corpus.ids['a1']}")
    assert r.status_code == 200
    assert '<mark class="entity' in r.text and 'id="topic-tags"' in r.text
    assert str(corpus.ids["a3"]) in r.text.split('id="copies"')[1]  # its near-duplicate
    assert _get(web, "/newsroom/articles/99999999").status_code == 404
    assert _get(web, "/newsroom/articles/0").status_code == 404
    assert _get(web, "/newsroom/articles/abc").status_code == 422


def test_run_tab_shows_the_run_row_its_failed_feeds_and_checks(web):
    r = _get(web, "/newsroom/runs/news_ingest/manual__1")
    assert r.status_code == 200
    failed = r.text.split('id="failed-feeds"')[1].split("</ul>")[0]
    assert 'id="counts"' in r.text and failed.count("Al-Monitor") == 1  # two failed polls, one feed
    assert "extract_rate" in r.text and "low &lt;x&gt;" in r.text
    missing = _get(web, "/newsroom/runs/news_ingest/scheduled__nope")
    assert missing.status_code == 200 and "No Newsroom record" in missing.text
    other = _get(web, "/newsroom/runs/some_other_dag/run1")
    assert other.status_code == 200 and 'class="note"' in other.text
    # run ids are unique only within a DAG: a retag run of the same id is not the ingest run
    retag = _get(web, "/newsroom/runs/news_retag/manual__1")
    assert retag.status_code == 200 and "No Newsroom record" in retag.text and "Al-Monitor" not in retag.text


def _refusing(monkeypatch, check: str, asked: list) -> None:
    """Airflow's auth manager, but saying no to `check` (recording what it was asked)."""
    from pipeline import webapp

    real = webapp.get_auth_manager()

    class Refusing:
        def __getattr__(self, name):
            if name == check:
                return lambda **kw: asked.append(kw) or False
            return getattr(real, name)

    monkeypatch.setattr(webapp, "get_auth_manager", lambda: Refusing())


def test_the_run_tab_asks_airflow_whether_the_user_may_see_that_dags_runs(web, monkeypatch):
    asked: list = []
    _refusing(monkeypatch, "is_authorized_dag", asked)
    r = _get(web, "/newsroom/runs/news_ingest/manual__1")
    assert r.status_code == 403 and "Monitor" not in r.text
    assert [kw["details"].id for kw in asked] == ["news_ingest"]


def test_a_login_without_the_website_permission_is_refused(web, monkeypatch):
    _refusing(monkeypatch, "is_authorized_view", [])
    r = _get(web, "/newsroom/feeds")
    assert r.status_code == 403 and "Al-Monitor" not in r.text and "Log in" not in r.text


def test_pages_are_read_only(web):
    # A page's connection refuses writes: even a bug could not change the data.
    from pipeline import config, store

    with store.db.reading(config.Settings.from_env()) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("DELETE FROM feeds")


@pytest.mark.parametrize("path", ["/newsroom/search?q=" + "a" * 600, "/newsroom/topics?since=" + "1" * 600,
                                  "/newsroom/feeds/12345678901234567890123", "/newsroom/search?limit=-1",
                                  "/newsroom/search?q=%00%ff%fe", "/newsroom/search?q=%E2%80%AE%F0%9F%98%80",
                                  "/newsroom/search?q=a&q=b&entity=%27%3B+DROP+TABLE+articles%3B--"])
def test_hostile_urls_get_a_page_saying_so_never_a_traceback(web, path):
    r = _get(web, path)
    assert r.status_code in (200, 400, 404, 422), (path, r.status_code, r.text[:300])
    assert "Traceback" not in r.text and r.headers["content-type"].startswith("text/html")
    assert _get(web, "/newsroom/feeds").status_code == 200  # and the tables are still there
